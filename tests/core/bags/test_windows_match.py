"""Bags are built from the split's windows table, and ``windows_match_instance_windows`` proves
it: base words sit in consecutive rows of the table, donor windows are rows of it (instance
mode), donor words are consecutive words of one donor document (word mode)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tests.support.bag_tables import default_table
from wrmil_core.bags.build import build_bags
from wrmil_core.bags.checks import (
    check_donors,
    check_labels_match_fractions,
    check_windows_match_instance_windows,
    check_word_ids_in_split,
)
from wrmil_core.bags.config import BagConfig, preset
from wrmil_core.bags.windows import make_windows, windows_for
from wrmil_core.errors import WrmilInputError


@pytest.fixture(scope="module")
def emb() -> pl.DataFrame:
    return default_table(seed=2)


@pytest.fixture(scope="module", params=["demo", "paper"])
def built(request, emb):
    cfg = preset(request.param)
    return cfg, build_bags(emb, "val", cfg)


def _with_ids(bags: pl.DataFrame, bag_id: int, ids: np.ndarray) -> pl.DataFrame:
    all_ids = bags["word_ids"].to_numpy().copy()
    all_ids[bag_id] = ids
    return bags.with_columns(pl.Series("word_ids", all_ids, dtype=bags.schema["word_ids"]))


def _other_checks_pass(bags: pl.DataFrame, emb: pl.DataFrame) -> bool:
    """The tampering below is invisible to the older checks: only the windows check can catch it."""
    return all(fn(bags, emb)[0] for fn in (check_labels_match_fractions, check_donors, check_word_ids_in_split))


def test_check_passes_on_real_bags_of_both_modes(built, emb):
    cfg, res = built
    ok, meta = check_windows_match_instance_windows(res.bags, emb, windows=res.windows)
    assert ok, meta
    assert meta["n_windows"] == res.windows.height and meta["window_size"] == cfg.window_size


def test_bags_are_runs_of_rows_of_the_given_windows_table(built, emb):
    cfg, res = built
    assert res.windows.equals(windows_for(emb, cfg).windows)
    assert build_bags(emb, "val", cfg, windows=res.windows).bags.equals(res.bags)
    genuine = res.bags.filter(pl.col("label") == 0)
    ids = genuine["word_ids"].to_numpy().reshape(genuine.height, cfg.bag_size, cfg.window_size)
    rows = {tuple(w): i for i, w in enumerate(res.windows["word_ids"].to_numpy().tolist())}
    for bag in ids[:: max(1, genuine.height // 7)]:
        at = [rows[tuple(w)] for w in bag.tolist()]
        assert at == list(range(at[0], at[0] + cfg.bag_size))                 # consecutive rows


def test_check_fails_on_a_base_word_out_of_place(built, emb):
    _, res = built
    gen = res.bags.filter(pl.col("label") == 0).row(3, named=True)
    ids = np.asarray(gen["word_ids"])
    ids[[0, 1]] = ids[[1, 0]]                                                  # two base words swapped
    broken = _with_ids(res.bags, gen["bag_id"], ids)
    assert _other_checks_pass(broken, emb)
    ok, meta = check_windows_match_instance_windows(broken, emb, windows=res.windows)
    assert not ok and meta["n_base_words_not_in_instance_windows"] == 1
    assert str(gen["bag_id"]) in meta["reason"] and "re-materialise instance_windows" in meta["reason"]


def test_check_fails_on_a_donor_window_that_is_no_row(emb):
    cfg = preset("paper")
    res = build_bags(emb, "val", cfg)
    con = res.bags.filter(pl.col("label") == 1).row(0, named=True)
    ids = np.asarray(con["word_ids"]).reshape(cfg.bag_size, cfg.window_size)
    j = int(np.flatnonzero(con["window_foreign"])[0])
    ids[j] = ids[j, ::-1]                                                      # donor words, not a donor window
    broken = _with_ids(res.bags, con["bag_id"], ids.reshape(-1))
    assert _other_checks_pass(broken, emb)
    ok, meta = check_windows_match_instance_windows(broken, emb, windows=res.windows)
    assert not ok and meta["n_donor_window_not_in_instance_windows"] == 1


def test_check_fails_on_donor_windows_from_two_documents(emb):
    cfg = preset("paper", ratios=(0.3,))
    res = build_bags(emb, "val", cfg)
    con = res.bags.filter(pl.col("label") == 1).row(0, named=True)
    ids = np.asarray(con["word_ids"]).reshape(cfg.bag_size, cfg.window_size)
    j = int(np.flatnonzero(con["window_foreign"])[0])
    doc_of = dict(zip(emb["word_id"].to_list(), emb["doc_id"].to_list()))
    other = res.windows.filter((pl.col("writer") == con["donor_writer"]) & (pl.col("doc_id") != doc_of[int(ids[j, 0])]))
    ids[j] = other["word_ids"].to_numpy()[0]                                   # a row, of the donor's other document
    broken = _with_ids(res.bags, con["bag_id"], ids.reshape(-1))
    assert _other_checks_pass(broken, emb)
    ok, meta = check_windows_match_instance_windows(broken, emb, windows=res.windows)
    assert not ok and meta["n_donor_windows_from_several_documents"] == 1
    assert meta["n_donor_window_not_in_instance_windows"] == 0


def test_check_fails_on_donor_words_out_of_order(emb):
    res = build_bags(emb, "val", preset("demo"))
    con = res.bags.filter(pl.col("ratio") == 0.3).row(0, named=True)
    ids = np.asarray(con["word_ids"])
    base_writer = dict(zip(emb["word_id"].to_list(), emb["writer"].to_list()))
    foreign = np.flatnonzero([base_writer[int(w)] != con["base_writer"] for w in ids])
    ids[foreign[[0, -1]]] = ids[foreign[[-1, 0]]]                               # first and last donor word swapped
    broken = _with_ids(res.bags, con["bag_id"], ids)
    assert _other_checks_pass(broken, emb)
    ok, meta = check_windows_match_instance_windows(broken, emb, windows=res.windows)
    assert not ok and meta["n_donor_words_not_consecutive_in_one_document"] == 1


@pytest.mark.parametrize("name, cut, why", [
    ("demo", {"window_size": 4, "stride": 4}, "another window_size"),
    ("demo", {"window_size": 5, "stride": 1}, "base_words_not_in_instance_windows"),
    ("paper", {"window_size": 4, "stride": 1}, "another window_size"),
    ("paper", {"window_size": 5, "stride": 2}, "base_words_not_in_instance_windows"),
    ("paper", {"window_size": 5, "stride": 5}, "base_words_not_in_instance_windows"),
])
def test_check_fails_on_windows_cut_with_another_geometry(emb, name, cut, why):
    res = build_bags(emb, "val", preset(name))
    other = make_windows(emb, **cut).windows
    ok, meta = check_windows_match_instance_windows(res.bags, emb, windows=other)
    assert not ok and why in meta["reason"]


def _edit_one_word(windows: pl.DataFrame) -> pl.DataFrame:
    ids = windows["word_ids"].to_numpy().copy()
    ids[7, 2] = ids[40, 2]
    return windows.with_columns(pl.Series("word_ids", ids, dtype=windows.schema["word_ids"]))


@pytest.mark.parametrize("make_other, why", [
    (lambda emb, w: make_windows(emb, window_size=4, stride=4).windows, "windows of 4 words"),
    (lambda emb, w: windows_for(emb, BagConfig(window_stride=3)).windows, "another window_stride"),
    (lambda emb, w: _edit_one_word(w), "first difference is window 7"),
    (lambda emb, w: w.filter(pl.col("writer") != 0), "another window_stride, or edited"),
    (lambda emb, w: w.with_columns(pl.lit("m0").alias("model_id")), "embedding model 'm0'"),
    (lambda emb, w: w.with_columns(pl.when(pl.col("window_id") == 3).then(pl.lit("d999")).otherwise("doc_id")
                                   .alias("doc_id")), "doc_id column does not match"),
])
def test_build_refuses_windows_that_are_not_the_configs_cut(emb, make_other, why):
    cfg = preset("demo")
    windows = windows_for(emb, cfg).windows
    with pytest.raises(WrmilInputError, match=r"instance_windows\[val\]") as e:
        build_bags(emb, "val", cfg, windows=make_other(emb, windows))
    assert why in str(e.value)
    assert "Re-materialise instance_windows[val] and bags_by_difficulty[val] together" in str(e.value)
