"""The scattered contamination geometry beside the contiguous passage: exact fractions, words
apart, donors of the split, contiguous bags unchanged, and checks that catch a wrong geometry."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest

from tests.support.bag_tables import default_table
from wrmil_core.bags.build import build_bags
from wrmil_core.bags.checks import (
    check_balance,
    check_equal_per_ratio,
    check_labels_match_fractions,
    check_windows_match_instance_windows,
    run_bag_checks,
)
from wrmil_core.bags.config import preset
from wrmil_core.bags.tensors import gather_bags


@pytest.fixture(scope="module")
def emb() -> pl.DataFrame:
    return default_table(seed=4)


@pytest.fixture(scope="module")
def both(emb):
    cfg = preset("demo", geometries=("contiguous", "scattered"))   # two_donors: test_two_donors.py
    return cfg, build_bags(emb, "test", cfg)


def _writers(emb: pl.DataFrame) -> dict[int, tuple[str, int, int]]:
    return {w: (d, p, wr) for w, d, p, wr in zip(emb["word_id"], emb["doc_id"], emb["position"], emb["writer"])}


def test_contiguous_bags_are_unchanged_by_adding_scattered(both, emb):
    _, res = both
    alone = build_bags(emb, "test", preset("demo", geometries=("contiguous",))).bags
    kept = res.bags.filter(pl.col("geometry") != "scattered")
    assert kept.equals(alone)
    assert res.bags["geometry"].to_list()[kept.height:] == ["scattered"] * (res.bags.height - kept.height)
    assert res.bags["bag_id"].to_list() == list(range(res.bags.height))


def test_scattered_bags_have_exact_fractions_and_words_apart(both, emb):
    cfg, res = both
    info, S = _writers(emb), cfg.words_per_bag
    sc = res.bags.filter(pl.col("geometry") == "scattered")
    assert sorted(set(sc["ratio"].to_list())) == sorted(cfg.ratios)
    split_writers = set(emb["writer"].to_list())
    for row in sc.iter_rows(named=True):
        ids = list(row["word_ids"])                     # non-overlapping windows: the span in order
        foreign = [t for t, w in enumerate(ids) if info[w][2] != row["base_writer"]]
        f = cfg.foreign_counts[row["ratio"]]
        assert len(foreign) == f and row["foreign_word_frac"] == pytest.approx(f / S)
        assert all(b - a >= 2 for a, b in itertools.pairwise(foreign))               # never two in a row
        assert {info[ids[t]][2] for t in foreign} == {row["donor_writer"]} and row["donor_writer"] in split_writers
        assert row["donor_writer"] != row["base_writer"]
        assert len({info[ids[t]][0] for t in foreign}) == 1                          # one donor document
        base = [t for t in range(S) if t not in foreign]
        assert len({info[ids[t]][1] - t for t in base}) == 1                        # base words in place
    # the scattered words spread over more windows than the passage of the same size
    con = res.bags.filter(pl.col("geometry") == "contiguous")
    for r in cfg.ratios:
        assert (sc.filter(pl.col("ratio") == r)["foreign_window_frac"].mean()
                >= con.filter(pl.col("ratio") == r)["foreign_window_frac"].mean())
    assert res.metadata["geometries"] == "contiguous, scattered"


def test_all_checks_pass_per_geometry(both, emb):
    _, res = both
    for name, (ok, meta) in run_bag_checks(res.bags, emb, res.windows, split="test").items():
        assert ok, (name, meta)
    ok, meta = check_balance(res.bags, emb)
    n_gen = meta["n_genuine"]
    assert meta["contaminated_per_genuine/scattered"] == pytest.approx(2.0, abs=2 / n_gen)
    assert meta["contaminated_per_genuine/contiguous"] == meta["contaminated_per_genuine/scattered"]
    dropped = res.bags.filter(~((pl.col("geometry") == "scattered") & (pl.col("bag_id") % 2 == 0)))
    assert not check_balance(dropped, emb)[0]
    ok, meta = check_equal_per_ratio(dropped, emb)
    assert not ok and meta["n_bags@0.1/scattered"] < meta["n_bags@0.1/contiguous"]


def _relabel(bags: pl.DataFrame, bag_id: int, geometry: str) -> pl.DataFrame:
    return bags.with_columns(pl.when(pl.col("bag_id") == bag_id).then(pl.lit(geometry))
                             .otherwise(pl.col("geometry")).alias("geometry"))


def _first(bags: pl.DataFrame, geometry: str, ratio: float) -> int:
    return int(bags.filter((pl.col("geometry") == geometry) & (pl.col("ratio") == ratio))["bag_id"][0])


def test_windows_check_catches_a_wrong_geometry(both, emb):
    _, res = both
    bags, w = res.bags, res.windows
    ok, meta = check_windows_match_instance_windows(_relabel(bags, _first(bags, "scattered", 0.2), "contiguous"), emb,
                                                    windows=w)
    assert not ok and meta["n_foreign_passage_not_contiguous"] == 1
    ok, meta = check_windows_match_instance_windows(_relabel(bags, _first(bags, "contiguous", 0.2), "scattered"), emb,
                                                    windows=w)
    assert not ok and meta["n_scattered_words_adjacent"] == 1
    ok, meta = check_labels_match_fractions(_relabel(bags, _first(bags, "contiguous", 0.2), "none"), emb)
    assert not ok and meta["n_geometry_vs_label"] == 1
    assert not check_labels_match_fractions(_relabel(bags, 0, "scattered"), emb)[0]          # a genuine bag
    assert not check_labels_match_fractions(_relabel(bags, 0, "spread"), emb)[0]


def test_windows_check_catches_donor_words_out_of_order(both, emb):
    _, res = both
    info, b = _writers(emb), _first(res.bags, "scattered", 0.3)
    ids = res.bags["word_ids"].to_numpy().copy()
    row = res.bags.row(b, named=True)
    foreign = [t for t, wid in enumerate(ids[b]) if info[int(wid)][2] != row["base_writer"]]
    ids[b, foreign[0]], ids[b, foreign[1]] = ids[b, foreign[1]], ids[b, foreign[0]]
    swapped = res.bags.with_columns(pl.Series("word_ids", ids, dtype=res.bags.schema["word_ids"]))
    assert check_labels_match_fractions(swapped, emb)[0]                 # the fractions still agree
    ok, meta = check_windows_match_instance_windows(swapped, emb, windows=res.windows)
    assert not ok and meta["n_scattered_words_not_in_reading_order_of_one_document"] == 1


def test_instance_mode_bags_are_contiguous_only(emb):
    res = build_bags(emb, "test", preset("paper"))
    assert set(res.bags["geometry"].to_list()) == {"none", "contiguous"}
    con = int(res.bags.filter(pl.col("label") == 1)["bag_id"][0])
    ok, meta = check_windows_match_instance_windows(_relabel(res.bags, con, "scattered"), emb, windows=res.windows)
    assert not ok and meta["n_scattered_in_instance_mode"] == 1


def test_bag_tensors_carry_the_geometry(both, emb):
    _, res = both
    t = gather_bags(res.bags, emb)
    assert t.geometry.tolist() == res.bags["geometry"].to_list()
    idx = np.array([len(t) - 1, 0])
    assert t.subset(idx).geometry.tolist() == ["scattered", "none"]
