"""The two_donors contamination geometry: two non-adjacent passages from two different donors, the
foreign words split evenly, the other geometries' bags unchanged, writer counts, and checks that
catch a bad two_donors bag."""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl
import pytest

from tests.support.bag_tables import default_table, synth_table
from wrmil_core.bags.build import build_bags
from wrmil_core.bags.checks import (
    check_donors,
    check_labels_match_fractions,
    check_windows_match_instance_windows,
    run_bag_checks,
)
from wrmil_core.bags.config import BagConfig, preset
from wrmil_core.bags.tensors import BagTensors, gather_bags
from wrmil_core.errors import WrmilInputError
from wrmil_core.evidence.fit import bag_writers, n_bag_writers

Info = dict[int, tuple[str, int, int]]


@pytest.fixture(scope="module")
def emb() -> pl.DataFrame:
    return default_table(seed=4)


@pytest.fixture(scope="module")
def demo(emb):
    cfg = preset("demo")
    assert "two_donors" in cfg.geometries
    return cfg, build_bags(emb, "test", cfg)


def _info(emb: pl.DataFrame) -> Info:
    """word id -> (doc_id, position, writer)."""
    return {w: (d, p, wr) for w, d, p, wr in zip(emb["word_id"], emb["doc_id"], emb["position"], emb["writer"])}


def _runs(slots: list[int]) -> list[list[int]]:
    """Maximal runs of consecutive slots."""
    out: list[list[int]] = []
    for t in slots:
        if out and t == out[-1][-1] + 1:
            out[-1].append(t)
        else:
            out.append([t])
    return out


def _two(bags: pl.DataFrame) -> pl.DataFrame:
    return bags.filter(pl.col("geometry") == "two_donors")


def test_two_donor_bags_hold_two_passages_of_two_other_writers(demo, emb):
    cfg, res = demo
    info, S = _info(emb), cfg.words_per_bag
    two = _two(res.bags)
    assert two.height == 2 * int((res.bags["label"] == 0).sum())        # 1 : 2 like the other geometries
    assert sorted(set(two["ratio"].to_list())) == sorted(cfg.ratios)
    split_writers = set(emb["writer"].to_list())
    first_longer = set()
    for row in two.iter_rows(named=True):
        ids = list(row["word_ids"])                     # non-overlapping windows: the span in order
        base, d1, d2 = row["base_writer"], row["donor_writer"], row["donor_writer_2"]
        assert len({base, d1, d2}) == 3 and {d1, d2} <= split_writers
        foreign = [t for t, w in enumerate(ids) if info[w][2] != base]
        f = cfg.foreign_counts[row["ratio"]]
        assert len(foreign) == f and row["foreign_word_frac"] == pytest.approx(f / S)
        runs = _runs(foreign)
        assert len(runs) == 2                            # two passages with a base word between them
        lens = [len(r) for r in runs]
        assert sorted(lens) == [f // 2, f - f // 2]      # as even as possible
        first_longer.add((f % 2, lens[0] > lens[1]))
        for run, donor in zip(runs, (d1, d2)):           # donor_writer's passage comes first
            words = [info[ids[t]] for t in run]
            assert {w[2] for w in words} == {donor} and len({w[0] for w in words}) == 1
            assert len({w[1] - t for w, t in zip(words, run)}) == 1     # consecutive donor words, in order
        assert len({info[ids[t]][1] - t for t in range(S) if t not in foreign}) == 1   # base words in place
    assert {(1, True), (1, False)} <= first_longer       # the odd word goes to either passage
    assert res.metadata["geometries"] == "contiguous, scattered, two_donors"


def test_other_geometries_are_bit_identical_with_two_donors(demo, emb):
    _, res = demo
    alone = build_bags(emb, "test", preset("demo", geometries=("contiguous", "scattered"))).bags
    assert res.bags.head(alone.height).equals(alone)
    assert alone["donor_writer_2"].null_count() == alone.height
    assert set(res.bags["geometry"].to_list()[alone.height:]) == {"two_donors"}
    # the same bags as before two_donors existed (fingerprint of the code before this geometry)
    old = build_bags(emb, "test", preset("demo", geometries=("contiguous", "scattered"), seed=7)).bags
    h = hashlib.sha256()
    h.update(old["word_ids"].to_numpy().astype(np.int64).tobytes())
    h.update(old["donor_writer"].fill_null(-1).to_numpy().astype(np.int64).tobytes())
    h.update(old["window_foreign"].to_numpy().astype(np.int8).tobytes())
    h.update(old["ratio"].to_numpy().tobytes())
    h.update("|".join(old["geometry"].to_list()).encode())
    assert h.hexdigest() == "db3dfa4bec425983c4f655a1b8dcc9b90427ff897815db898866aab6a6ed7c4e"


def test_two_donors_is_refused_in_instance_mode_and_below_two_foreign_words():
    with pytest.raises(WrmilInputError) as e:
        preset("paper", geometries=("contiguous", "two_donors"))
    msg = str(e.value)
    assert "\n" not in msg and "'two_donors' needs mode='word'" in msg
    with pytest.raises(WrmilInputError, match=r"at least 2 foreign words .* ratio\(s\) \[0.05\] give 1"):
        BagConfig(bag_size=4, window_size=5, ratios=(0.05, 0.2), geometries=("two_donors",))


def test_a_two_writer_split_skips_two_donors_logged_or_refuses_it_alone():
    two_writers = synth_table([120] * 4, [0, 0, 1, 1], seed=1)
    said: list[str] = []
    res = build_bags(two_writers, "val", preset("demo"), log=said.append)
    assert set(res.bags["geometry"].to_list()) == {"none", "contiguous", "scattered"}
    assert res.metadata["geometries"] == "contiguous, scattered"
    assert any("too few for 'two_donors'" in line and "skipped" in line for line in said)
    with pytest.raises(WrmilInputError, match="has 2 writers: 'two_donors' bags need two donor writers"):
        build_bags(two_writers, "val", preset("demo", geometries=("two_donors",)))


def test_all_checks_pass_on_two_donor_bags(demo, emb):
    _, res = demo
    for name, (ok, meta) in run_bag_checks(res.bags, emb, res.windows, split="test").items():
        assert ok, (name, meta)


def _set(bags: pl.DataFrame, bag_id: int, **values) -> pl.DataFrame:
    return bags.with_columns([pl.when(pl.col("bag_id") == bag_id).then(pl.lit(v)).otherwise(pl.col(c))
                              .cast(bags.schema[c]).alias(c) for c, v in values.items()])


def _first(bags: pl.DataFrame, geometry: str, ratio: float) -> pl.Series:
    return bags.filter((pl.col("geometry") == geometry) & (pl.col("ratio") == ratio)).row(0, named=True)


def test_checks_catch_bad_donors(demo, emb):
    bags = demo[1].bags
    row = _first(bags, "two_donors", 0.2)
    ok, meta = check_donors(_set(bags, row["bag_id"], donor_writer_2=row["base_writer"]), emb)
    assert not ok and meta["n_second_donor_is_base_writer"] == 1
    ok, meta = check_donors(_set(bags, row["bag_id"], donor_writer_2=row["donor_writer"]), emb)
    assert not ok and meta["n_second_donor_is_first_donor"] == 1
    ok, meta = check_labels_match_fractions(_set(bags, row["bag_id"], donor_writer_2=row["base_writer"]), emb)
    assert not ok and meta["n_foreign_word_not_by_donor"] == 1
    con = _first(bags, "contiguous", 0.2)["bag_id"]
    ok, meta = check_labels_match_fractions(_set(bags, con, geometry="two_donors"), emb)
    assert not ok and meta["n_two_donors_without_second_donor"] == 1
    ok, meta = check_labels_match_fractions(_set(bags, row["bag_id"], geometry="contiguous"), emb)
    assert not ok and meta["n_second_donor_outside_two_donors"] == 1


def _rewrite(bags: pl.DataFrame, bag_id: int, ids: list[int]) -> pl.DataFrame:
    new = bags["word_ids"].to_numpy().copy()
    new[bag_id] = ids
    return bags.with_columns(pl.Series("word_ids", new, dtype=bags.schema["word_ids"]))


def test_checks_catch_adjacent_passages_and_a_wrong_count(demo, emb):
    cfg, res = demo
    bags, info = res.bags, _info(emb)
    by_place = {(d, p): w for w, (d, p, _) in info.items()}
    row = _first(bags, "two_donors", 0.3)
    ids = list(row["word_ids"])
    foreign = [t for t, w in enumerate(ids) if info[w][2] != row["base_writer"]]
    first, second = _runs(foreign)
    doc, start = next((info[ids[t]][0], info[ids[t]][1] - t) for t in range(len(ids)) if t not in foreign)
    # slide the second passage back to touch the first: one run of two writers
    moved = [by_place[(doc, start + t)] for t in range(len(ids))]
    for t in first:
        moved[t] = ids[t]
    for k, t in enumerate(second):
        moved[first[-1] + 1 + k] = ids[t]
    adjacent = _rewrite(bags, row["bag_id"], moved)
    ok, meta = check_windows_match_instance_windows(adjacent, emb, windows=res.windows)
    assert not ok and meta["n_two_donor_passages_adjacent"] == 1
    assert meta["n_two_donor_passage_not_consecutive_in_one_document"] == 0   # each passage is still whole
    # the second donor's last word given back to the base writer: one foreign word short
    short = list(ids)
    short[second[-1]] = by_place[(doc, start + second[-1])]
    fewer = _rewrite(bags, row["bag_id"], short)
    fewer = _set(fewer, row["bag_id"], foreign_word_frac=(len(foreign) - 1) / cfg.words_per_bag)
    ok, meta = check_labels_match_fractions(fewer, emb)
    assert not ok and meta["n_two_donors_foreign_count_wrong"] == 1 and meta["n_recorded_word_frac_wrong"] == 0
    # the passages swapped between the donor columns: donor_writer's passage must come first
    swapped = _set(bags, row["bag_id"], donor_writer=row["donor_writer_2"], donor_writer_2=row["donor_writer"])
    ok, meta = check_windows_match_instance_windows(swapped, emb, windows=res.windows)
    assert not ok and meta["n_two_donor_passages_out_of_order"] == 1


def test_windows_check_refuses_two_donors_in_instance_mode(emb):
    res = build_bags(emb, "test", preset("paper"))
    con = int(res.bags.filter(pl.col("label") == 1)["bag_id"][0])
    ok, meta = check_windows_match_instance_windows(_set(res.bags, con, geometry="two_donors"), emb,
                                                    windows=res.windows)
    assert not ok and meta["n_two_donors_in_instance_mode"] == 1


def test_writer_counts(demo, emb):
    _, res = demo
    t = gather_bags(res.bags, emb)
    expected = {"none": 1, "contiguous": 2, "scattered": 2, "two_donors": 3}
    assert t.n_writers.tolist() == [expected[g] for g in res.bags["geometry"].to_list()]
    idx = np.array([len(t) - 1, 0])
    assert t.subset(idx).n_writers.tolist() == [3, 1]
    # without n_writers given (e.g. bags built in memory), it follows label and geometry
    bare = BagTensors(x=t.x, label=t.label, window_foreign=t.window_foreign, ratio=t.ratio,
                      foreign_word_frac=t.foreign_word_frac, bag_id=t.bag_id, model_id=t.model_id, geometry=t.geometry)
    assert bare.n_writers.tolist() == t.n_writers.tolist()
    one = _two(res.bags).head(1)
    assert bag_writers(one).shape == (1, 3) and n_bag_writers(one) == 3
