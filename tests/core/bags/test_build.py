"""Bags: exact, recorded contamination; balance; loader; and checks that can fail."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch
from hypothesis import event, given, settings
from hypothesis import strategies as st

from tests.support.bag_tables import default_table, synth_table
from wrmil_core.bags.build import build_bags
from wrmil_core.bags.checks import (
    BLOCKING_CHECKS,
    NON_BLOCKING_CHECKS,
    check_bag_shapes,
    check_balance,
    check_donors,
    check_equal_per_ratio,
    check_fraction_near_nominal,
    check_labels_match_fractions,
    check_word_ids_in_split,
    run_bag_checks,
)
from wrmil_core.bags.config import BagConfig, round_half_up
from wrmil_core.bags.tensors import gather_bags
from wrmil_core.errors import WrmilInputError
from wrmil_core.schema import BAG_COLUMNS


def assert_bag_structure(bags: pl.DataFrame, emb: pl.DataFrame, cfg: BagConfig) -> None:
    """Each bag is windows cut from one document's consecutive words (word mode: with one
    contiguous passage of consecutive donor words spliced in)."""
    info = {w: (d, p, wr) for w, d, p, wr in zip(emb["word_id"], emb["doc_id"], emb["position"], emb["writer"])}
    tpl = cfg.window_template()
    S = cfg.words_per_bag
    ids = bags["word_ids"].to_numpy().reshape(-1, cfg.bag_size, cfg.window_size)
    for b, row in enumerate(bags.iter_rows(named=True)):
        if cfg.mode == "word" or row["label"] == 0:
            seq = [None] * S                      # the bag's span, rebuilt from its windows
            for j in range(cfg.bag_size):
                for k in range(cfg.window_size):
                    w = int(ids[b, j, k])
                    assert seq[tpl[j, k]] in (None, w)
                    seq[tpl[j, k]] = w
            docs = [info[w][0] for w in seq]
            foreign = [info[w][2] != row["base_writer"] for w in seq]
            base_t = [t for t in range(S) if not foreign[t]]
            assert {docs[t] for t in base_t} == {row["doc_id"]}
            assert len({info[seq[t]][1] - t for t in base_t}) == 1          # consecutive base words
            f_t = [t for t in range(S) if foreign[t]]
            if row["label"] == 0:
                assert not f_t and row["geometry"] == "none"
                continue
            assert len(f_t) == max(1, round_half_up(row["ratio"] * S))
            assert len({docs[t] for t in f_t}) == 1                          # from one donor document
            if row["geometry"] == "contiguous":
                assert f_t == list(range(f_t[0], f_t[0] + len(f_t)))       # one contiguous passage
                assert len({info[seq[t]][1] - t for t in f_t}) == 1         # of consecutive donor words
            else:
                assert row["geometry"] == "scattered"
                assert all(b - a >= 2 for a, b in zip(f_t, f_t[1:]))        # no two foreign words adjacent
                donor_pos = [info[seq[t]][1] for t in f_t]
                assert donor_pos == sorted(set(donor_pos))                   # distinct donor words, in order
            assert row["foreign_word_frac"] == pytest.approx(len(f_t) / S)
            win = [any(foreign[t] for t in tpl[j]) for j in range(cfg.bag_size)]
            assert list(row["window_foreign"]) == win
        else:
            k = max(1, int(cfg.bag_size * row["ratio"]))
            assert sum(row["window_foreign"]) == k
            starts = set()
            for j in range(cfg.bag_size):
                d = {info[int(w)][0] for w in ids[b, j]}
                assert len(d) == 1                                           # a window is one document's
                p = [info[int(w)][1] for w in ids[b, j]]
                assert p == list(range(p[0], p[0] + cfg.window_size))       # consecutive words
                by_donor = info[int(ids[b, j, 0])][2] == row["donor_writer"]
                assert by_donor == row["window_foreign"][j]
                if not by_donor:                                             # base windows keep their place
                    assert d == {row["doc_id"]}
                    starts.add(p[0] - j * cfg.effective_window_stride)
            assert len(starts) == 1


@settings(max_examples=120, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 120), min_size=2, max_size=7),
    n_writers=st.integers(2, 4),
    bag_size=st.integers(1, 8),
    window_size=st.integers(1, 6),
    stride_frac=st.one_of(st.none(), st.floats(0.0, 1.0)),
    mode=st.sampled_from(["word", "instance"]),
    ratios=st.lists(st.sampled_from([0.05, 0.1, 0.15, 0.2, 0.3, 0.45]), min_size=1, max_size=4, unique=True),
    n_genuine=st.one_of(st.none(), st.integers(1, 12)),
    seed=st.integers(0, 10_000),
    geometries=st.sampled_from([("contiguous",), ("contiguous", "scattered"), ("scattered",)]),
)
def test_bag_invariants(lengths, n_writers, bag_size, window_size, stride_frac, mode, ratios, n_genuine, seed,
                        geometries):
    writers = [i % n_writers for i in range(len(lengths))]
    stride = None if stride_frac is None else 1 + int(stride_frac * (window_size - 1))  # None: mode default
    try:
        cfg = BagConfig(bag_size=bag_size, window_size=window_size, window_stride=stride, mode=mode,
                        ratios=tuple(ratios), n_genuine=n_genuine, seed=seed, geometries=geometries)
    except WrmilInputError as e:
        # refused geometries: word-mode spans where two ratios collide / no base word is left /
        # scattered words cannot be kept apart; scattered words in instance mode
        assert mode == "word" or bag_size == 1 or "scattered" in geometries, str(e)
        if mode == "word":
            S = (bag_size - 1) * (stride or window_size) + window_size
            counts = [max(1, round_half_up(r * S)) for r in ratios]
            assert (len(set(counts)) < len(counts) or max(counts) >= S
                    or ("scattered" in geometries and 2 * max(counts) - 1 > S))
        event("refused: geometry")
        return
    emb = synth_table(lengths, writers, seed=seed)
    S = cfg.words_per_bag
    if max(lengths) < S:
        with pytest.raises(WrmilInputError, match="shorter than one bag"):
            build_bags(emb, "val", cfg)
        event("refused: documents too short")
        return
    try:
        res = build_bags(emb, "val", cfg)
    except WrmilInputError as e:
        assert "no donor" in str(e)                 # only when another writer's docs are all too short
        event("refused: no donor")
        return
    event(f"built {mode}")
    bags, meta = res.bags, res.metadata
    assert bags.columns == list(BAG_COLUMNS)
    assert bags.schema["word_ids"] == pl.Array(pl.Int32, bag_size * window_size)
    assert bags.schema["window_foreign"] == pl.Array(pl.Boolean, bag_size)
    n_base = sum(max(0, (L - S) // (bag_size * cfg.effective_window_stride) + 1) for L in lengths)
    n_gen = n_base if n_genuine is None else min(n_genuine, n_base)
    per_ratio = max(1, round_half_up(2 * n_gen / len(ratios)))
    assert meta["n_genuine"] == int((bags["label"] == 0).sum()) == n_gen
    counts = bags.filter(pl.col("label") == 1).group_by("geometry", "ratio").len()
    assert sorted(counts["ratio"].to_list()) == sorted(ratios * len(geometries))
    assert set(counts["geometry"].to_list()) == set(geometries)
    assert set(counts["len"].to_list()) == {per_ratio}
    # every blocking check passes on a freshly built table (labels agree with word ids, donors
    # are other writers of the split, all word ids valid, shapes exact)
    checks = run_bag_checks(bags, emb, res.windows, split="val", bag_size=bag_size, window_size=window_size)
    assert set(checks) >= set(BLOCKING_CHECKS)
    for name, (ok, m) in checks.items():
        if name in BLOCKING_CHECKS:
            assert ok, (name, m)
    con = bags.filter(pl.col("label") == 1)
    assert (con["donor_writer"] != con["base_writer"]).all()
    assert set(con["donor_writer"].to_list()) <= set(writers) and set(bags["split"].to_list()) == {"val"}
    assert_bag_structure(bags, emb, cfg)
    # deterministic for a seed, whatever the row order of the input
    again = build_bags(emb.reverse(), "val", cfg).bags
    assert again.equals(bags)


def test_default_word_mode_gives_each_ratio_its_own_fraction():
    emb = default_table()
    res = build_bags(emb, "train", BagConfig())
    t = (res.bags.filter(pl.col("label") == 1).group_by("ratio")
         .agg(pl.col("foreign_word_frac").unique()).sort("ratio"))
    fracs = [v.to_list() for v in t["foreign_word_frac"]]
    assert all(len(f) == 1 for f in fracs)                       # exact: one value per ratio
    assert [f[0] for f in fracs] == pytest.approx([3 / 50, 5 / 50, 10 / 50, 15 / 50])
    assert len({f[0] for f in fracs}) == 4
    assert res.metadata["mean_foreign_word_frac@0.05"] != res.metadata["mean_foreign_word_frac@0.1"]
    assert res.metadata["n_contaminated"] == 2 * res.metadata["n_genuine"]
    ok, m = check_fraction_near_nominal(res.bags, emb)
    assert ok, m
    # metadata is plain int/float/str (what Dagster metadata accepts)
    assert all(type(v) in (int, float, str) for v in res.metadata.values())
    assert all(type(v) in (int, float, str) for _, md in run_bag_checks(res.bags, emb, res.windows).values()
               for v in md.values())


def test_instance_mode_shows_that_5_and_10_percent_are_the_same_bag():
    emb = default_table()
    res = build_bags(emb, "train", BagConfig(mode="instance"))
    b = res.bags
    assert res.metadata["words_per_bag"] == 14
    assert res.metadata["replaced_windows@0.05"] == res.metadata["replaced_windows@0.1"] == 1
    for r in (0.05, 0.1):
        assert b.filter(pl.col("ratio") == r)["foreign_window_frac"].unique().to_list() == [0.1]
    ok, m = check_fraction_near_nominal(b, emb)
    assert not ok and "0.05=0.1" in m["indistinct_ratios"] and "instance" in m["reason"]
    for name in BLOCKING_CHECKS:
        assert run_bag_checks(b, emb, res.windows)[name][0], name


def test_too_short_geometry_is_refused():
    with pytest.raises(WrmilInputError, match=r"spans 14 words.*ratios \[0\.05, 0\.1\].*at least 15 words"):
        BagConfig(window_stride=1)                                   # stride-1 windows: 14-word bag
    with pytest.raises(WrmilInputError, match="same bag"):
        BagConfig(bag_size=2, window_size=5)                         # 10 words
    BagConfig(window_stride=1, ratios=(0.1, 0.3))                    # distinct counts: allowed
    BagConfig(mode="instance")                                       # the original rule stays available


def test_bad_splits_are_refused():
    short = synth_table([30, 40, 20], [0, 1, 2])
    with pytest.raises(WrmilInputError, match=r"split 'test'.*at least 50 words"):
        build_bags(short, "test", BagConfig())
    lonely = synth_table([120, 120], [5, 5])
    with pytest.raises(WrmilInputError, match=r"split 'val' has 1 writer"):
        build_bags(lonely, "val", BagConfig())
    no_donor = synth_table([120, 4], [0, 1])                          # writer 1 cannot give 15 words
    with pytest.raises(WrmilInputError, match="no donor for writer 0"):
        build_bags(no_donor, "val", BagConfig())


def test_n_genuine_is_clamped_and_reported():
    emb = default_table()
    res = build_bags(emb, "train", BagConfig(n_genuine=10))
    assert res.metadata["n_genuine"] == 10 and res.metadata["n_contaminated_per_ratio"] == 5
    msgs: list[str] = []
    res = build_bags(emb, "train", BagConfig(n_genuine=10_000), log=msgs.append)
    assert res.metadata["n_genuine"] == res.metadata["n_base_bags"] == 36
    assert res.metadata["n_genuine_requested"] == 10_000 and any("requested" in m for m in msgs)
    assert not build_bags(emb, "train", BagConfig(seed=1)).bags.equals(build_bags(emb, "train", BagConfig(seed=2)).bags)


# ------------------------------------------------------------------------------------ loader

def test_gather_bags_builds_x_from_word_ids():
    emb = default_table(dim=6)
    bags = build_bags(emb, "train", BagConfig()).bags
    bt = gather_bags(bags, emb)
    assert bt.x.shape == (bags.height, 10, 5, 6) and bt.x.dtype == torch.float32
    vec = {w: np.asarray(e) for w, e in zip(emb["word_id"], emb["emb"].to_numpy())}
    ids = bags["word_ids"].to_numpy().reshape(-1, 10, 5)
    for b in (0, bags.height // 2, bags.height - 1):
        assert np.array_equal(bt.x[b].numpy(), np.stack([[vec[w] for w in win] for win in ids[b]]))
    assert torch.equal(bt.label, torch.tensor(bags["label"].to_list(), dtype=torch.long))
    assert bt.window_foreign.dtype == torch.bool and bt.window_foreign.sum() > 0
    assert bt.model_id == "m1" and len(bt.subset(np.array([0, 3]))) == 2


def test_gather_bags_refuses_stale_model_and_missing_words():
    emb = default_table()
    bags = build_bags(emb, "train", BagConfig()).bags
    with pytest.raises(WrmilInputError, match=r"'m1'.*'m2'.*Re-materialise .*bags_by_difficulty\[train\]"):
        gather_bags(bags, emb.with_columns(pl.lit("m2").alias("model_id")))
    gone = sorted(bags["word_ids"].to_numpy()[0, :2].tolist())
    with pytest.raises(WrmilInputError, match=rf"2 word id\(s\).*\[{gone[0]}, {gone[1]}\]"):
        gather_bags(bags, emb.filter(~pl.col("word_id").is_in(gone)))


# ---------------------------------------------------------------------- checks can fail

@pytest.fixture(scope="module")
def built():
    emb = default_table()
    res = build_bags(emb, "train", BagConfig())
    return res.bags, emb, res.windows


def _set(bags: pl.DataFrame, bag_id: int, **values) -> pl.DataFrame:
    hit = pl.col("bag_id") == bag_id
    return bags.with_columns([pl.when(hit).then(pl.lit(v, dtype=bags.schema[c])).otherwise(pl.col(c)).alias(c)
                              for c, v in values.items()])


def test_all_checks_pass_on_a_good_table(built):
    bags, emb, windows = built
    results = run_bag_checks(bags, emb, windows, split="train")
    for name, (ok, m) in results.items():
        assert ok, (name, m)
    assert set(BLOCKING_CHECKS) | set(NON_BLOCKING_CHECKS) == set(results)


def test_shape_check_fails_on_a_short_bag(built):
    bags, emb, _ = built
    as_list = bags.with_columns(pl.col("word_ids").cast(pl.List(pl.Int32)))
    short = as_list.with_columns(
        pl.when(pl.col("bag_id") == 3).then(pl.col("word_ids").list.head(45)).otherwise(pl.col("word_ids")))
    ok, m = check_bag_shapes(short, emb, bag_size=10, window_size=5)
    assert not ok and m["n_bad_bags"] == 1 and m["bad_bag_ids"] == "3"
    ok, m = check_bag_shapes(bags, emb, bag_size=10, window_size=4)           # wrong geometry
    assert not ok
    ok, m = check_bag_shapes(bags.drop("window_foreign"), emb)
    assert not ok and "lacks column" in m["reason"]
    # the other checks report the broken table instead of crashing
    assert check_labels_match_fractions(short, emb)[0] is False


def test_label_check_fails_on_mislabelled_bags(built):
    bags, emb, _ = built
    gen = int(bags.filter(pl.col("label") == 0)["bag_id"][0])
    con = int(bags.filter(pl.col("label") == 1)["bag_id"][0])
    wf = bags.filter(pl.col("bag_id") == con)["window_foreign"].to_list()[0]
    cases = {
        "genuine labelled contaminated": _set(bags, gen, label=1),
        "contaminated labelled genuine": _set(bags, con, label=0),
        "wrong word fraction": _set(bags, con, foreign_word_frac=0.5),
        "wrong window fraction": _set(bags, con, foreign_window_frac=0.0),
        "window flags flipped": _set(bags, con, window_foreign=[not x for x in wf]),
        "genuine with a donor": _set(bags, gen, donor_writer=1),
    }
    for what, broken in cases.items():
        ok, m = check_labels_match_fractions(broken, emb)
        assert not ok, what
        assert "reason" in m


def test_donor_check_fails_on_bad_donors(built):
    bags, emb, _ = built
    con = bags.filter(pl.col("label") == 1).row(0, named=True)
    ok, m = check_donors(_set(bags, con["bag_id"], donor_writer=con["base_writer"]), emb, split="train")
    assert not ok and m["n_donor_is_base_writer"] == 1
    ok, m = check_donors(_set(bags, con["bag_id"], donor_writer=999), emb, split="train")
    assert not ok and m["n_donor_outside_split"] == 1
    ok, m = check_donors(bags, emb, split="val")
    assert not ok and "expected one split 'val'" in m["reason"]
    other_split = emb.filter(pl.col("writer") != con["donor_writer"])    # donor's words not in this split
    assert not check_donors(bags, other_split, split="train")[0]


def test_word_id_check_fails_on_ids_outside_the_split(built):
    bags, emb, _ = built
    ids = bags["word_ids"].to_numpy().copy()
    ids[5, 7] = 10**6
    broken = bags.with_columns(pl.Series("word_ids", ids, dtype=bags.schema["word_ids"]))
    ok, m = check_word_ids_in_split(broken, emb)
    assert not ok and m["n_missing"] == 1 and m["missing_word_ids"] == "1000000" and m["bags_with_missing"] == "5"
    ok, m = check_word_ids_in_split(bags, emb.with_columns(pl.lit("m2").alias("model_id")))
    assert not ok and "model" in m["reason"]
    assert not check_labels_match_fractions(broken, emb)[0]          # reported, no IndexError


def test_balance_and_per_ratio_checks_fail_on_unbalanced_tables(built):
    bags, emb, _ = built
    halved = bags.filter((pl.col("label") == 0) | (pl.col("bag_id") % 2 == 0))
    ok, m = check_balance(halved, emb)
    assert not ok and m["contaminated_per_genuine/contiguous"] == pytest.approx(1.0)
    fewer = bags.filter(~((pl.col("ratio") == 0.2) & (pl.col("bag_id") % 3 == 0)))
    ok, m = check_equal_per_ratio(fewer, emb)
    assert not ok and m["n_bags@0.2/contiguous"] < m["n_bags@0.1/contiguous"]
    assert check_balance(bags, emb)[0] and check_equal_per_ratio(bags, emb)[0]


def test_fraction_check_fails_when_fractions_drift(built):
    bags, emb, _ = built
    drift = bags.with_columns(pl.when(pl.col("ratio") == 0.3).then(0.1).otherwise(pl.col("foreign_word_frac"))
                              .alias("foreign_word_frac"))
    ok, m = check_fraction_near_nominal(drift, emb)
    assert not ok and "0.3 -> 0.100" in m["reason"] and "0.1=0.3" not in m["indistinct_ratios"]
