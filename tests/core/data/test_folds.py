"""Writer-fold cross-validation: disjoint parts, every writer tested once, seeded, checked."""

from __future__ import annotations

import polars as pl
import pytest

from wrmil_core.data.folds import FOLD_COLUMNS, check_folds, fold_split, writer_folds
from wrmil_core.data.split import words_of_split
from wrmil_core.errors import WrmilInputError

WRITERS = list(range(100, 182))  # AHAWP's 82 writers


def parts(folds: pl.DataFrame, f: int) -> dict[str, set[int]]:
    s = fold_split(folds, f)
    return {p: set(s.filter(pl.col("split") == p)["writer"].to_list()) for p in ("train", "val", "test")}


def test_parts_are_disjoint_and_cover_every_writer_in_every_fold() -> None:
    folds = writer_folds(WRITERS, k=5, val_fraction=0.2, seed=0)
    assert folds.columns == list(FOLD_COLUMNS)
    assert folds.schema == pl.Schema({"fold": pl.Int32, "writer": pl.Int64, "split": pl.Utf8})
    for f in range(5):
        p = parts(folds, f)
        assert not (p["train"] & p["val"]) and not (p["train"] & p["test"]) and not (p["val"] & p["test"])
        assert p["train"] | p["val"] | p["test"] == set(WRITERS)
        assert len(p["val"]) == round(0.2 * (82 - len(p["test"])))
    assert check_folds(folds) == (True, {"n_folds": 5, "n_writers": 82, "problem": "none"})


def test_every_writer_is_tested_exactly_once_in_near_equal_groups() -> None:
    folds = writer_folds(WRITERS, k=5)
    tested = folds.filter(pl.col("split") == "test")
    assert sorted(tested["writer"].to_list()) == WRITERS
    sizes = tested.group_by("fold").len()["len"].to_list()
    assert sorted(sizes) == [16, 16, 16, 17, 17]


def test_validation_writers_are_drawn_from_the_rest_with_the_seed() -> None:
    a = writer_folds(WRITERS, k=4, seed=3)
    # Val writers of one fold are not simply the next fold's test writers.
    assert parts(a, 0)["val"] - parts(a, 1)["test"]


def test_deterministic_seeded_and_independent_of_input_order() -> None:
    a = writer_folds(WRITERS, k=5, seed=1)
    assert a.equals(writer_folds(list(reversed(WRITERS)) + WRITERS[:5], k=5, seed=1))
    assert not a.equals(writer_folds(WRITERS, k=5, seed=2))


def test_fold_split_feeds_words_of_split() -> None:
    words = pl.DataFrame({"writer": [w for w in WRITERS for _ in range(3)], "word_id": range(3 * 82)})
    folds = writer_folds(WRITERS, k=5)
    test = words_of_split(words, fold_split(folds, 2), "test")
    assert set(test["writer"].to_list()) == parts(folds, 2)["test"] and test.height == 3 * len(parts(folds, 2)["test"])
    with pytest.raises(WrmilInputError, match="fold 7 is not in the fold table"):
        fold_split(folds, 7)


def test_check_folds_catches_broken_tables() -> None:
    folds = writer_folds(WRITERS, k=5)
    twice = folds.with_columns(  # writer 100 becomes a test writer in every fold
        split=pl.when(pl.col("writer") == 100).then(pl.lit("test")).otherwise(pl.col("split")))
    ok, meta = check_folds(twice)
    assert not ok and "not tested exactly once" in meta["problem"]
    dropped = folds.filter(~((pl.col("fold") == 1) & (pl.col("writer") == 150)))
    assert "misses one" in check_folds(dropped)[1]["problem"]
    no_val = folds.with_columns(
        split=pl.when(pl.col("split") == "val").then(pl.lit("train")).otherwise(pl.col("split")))
    assert "no writers in fold 0 val" in check_folds(no_val)[1]["problem"]


@pytest.mark.parametrize("n, k, why", [(8, 1, "k >= 2"), (3, 5, "cannot make 5 writer folds"),
                                       (4, 2, "cannot make 2 writer folds")])
def test_too_few_writers_or_folds_are_refused(n: int, k: int, why: str) -> None:
    with pytest.raises(WrmilInputError, match=why):
        writer_folds(range(n), k=k)


def test_smallest_workable_set() -> None:
    folds = writer_folds(range(8), k=2, val_fraction=0.2)  # 4 test, 1 val, 3 train per fold
    assert check_folds(folds)[0]
    assert all(len(parts(folds, f)["train"]) >= 2 for f in range(2))
