"""Writer-disjoint split and its checks."""

from __future__ import annotations

import polars as pl
import pytest

from tests.support.raw_root import make_raw_root
from wrmil_core.data.ingest import ingest
from wrmil_core.data.split import (
    PRESETS,
    SplitConfig,
    check_disjoint,
    check_fractions,
    check_nonempty,
    split_metadata,
    split_sizes,
    split_summary,
    split_writers,
)
from wrmil_core.data.split import preset as split_preset
from wrmil_core.errors import WrmilInputError
from wrmil_core.schema import SPLITS


def _counts(df: pl.DataFrame) -> dict[str, int]:
    return dict(df.group_by("split").len().iter_rows())


def test_random_split_300_writers_matches_original_sizes():
    s = split_writers(range(300))
    assert s.schema == pl.Schema({"writer": pl.Int64, "split": pl.Utf8})
    assert s["writer"].to_list() == list(range(300))
    assert _counts(s) == {"train": 180, "val": 60, "test": 60}
    assert check_disjoint(s)[0] and check_nonempty(s)[0] and check_fractions(s)[0]


def test_random_split_is_seeded_and_input_order_free():
    ws = list(range(100, 140))
    a = split_writers(ws, seed=1)
    assert a.equals(split_writers(list(reversed(ws)) + ws[:5], seed=1))  # order, duplicates
    b = split_writers(ws, seed=2)
    assert not a.equals(b)
    assert _counts(a) == _counts(b) == {"train": 24, "val": 8, "test": 8}
    # Actually shuffled: train is not just the lowest ids.
    assert a.filter(pl.col("split") == "train")["writer"].max() > 100 + 24


@pytest.mark.parametrize("n", [3, 4, 5, 7, 10, 11, 41])
def test_sizes_cover_all_and_each_split_nonempty(n):
    sizes = split_sizes(n, (0.6, 0.2, 0.2))
    assert sum(sizes) == n and min(sizes) >= 1
    s = split_writers(range(n), seed=n)
    assert s.height == n and check_nonempty(s)[0] and check_disjoint(s)[0]
    assert check_fractions(s)[0]


def test_extreme_fractions_still_give_every_split_a_writer():
    assert split_sizes(3, (0.9, 0.05, 0.05)) == [1, 1, 1]
    assert split_sizes(10, (0.8, 0.1, 0.1)) == [8, 1, 1]
    assert split_sizes(7, (1 / 3, 1 / 3, 1 / 3)) == [3, 2, 2]


def test_too_few_writers_and_bad_fractions():
    with pytest.raises(WrmilInputError, match="at least 3 writers, got 2"):
        split_writers([4, 9])
    with pytest.raises(WrmilInputError, match="sum to 1"):
        split_writers(range(10), fractions=(0.5, 0.2, 0.2))
    with pytest.raises(WrmilInputError, match="> 0"):
        split_writers(range(10), fractions=(0.8, 0.2, 0.0))
    with pytest.raises(WrmilInputError, match="one value per split"):
        split_writers(range(10), fractions=(0.5, 0.5))
    with pytest.raises(WrmilInputError, match="mode"):
        split_writers(range(10), mode="alphabetical")  # type: ignore[arg-type]


def test_fixed_ranges_original():
    s = split_writers(range(300), mode="fixed_ranges")
    assert _counts(s) == {"train": 180, "val": 60, "test": 60}
    got = dict(s.iter_rows())
    assert got[0] == got[179] == "train" and got[180] == got[239] == "val"
    assert got[240] == got[299] == "test"
    # Seed is irrelevant for fixed ranges.
    assert s.equals(split_writers(range(300), mode="fixed_ranges", seed=5))


def test_fixed_ranges_errors():
    with pytest.raises(WrmilInputError, match=r"writer id\(s\) 300, 512 fall outside"):
        split_writers([0, 5, 200, 250, 300, 512], mode="fixed_ranges")
    with pytest.raises(WrmilInputError, match=r"leave split\(s\) \['val', 'test'\]"):
        split_writers(range(40), mode="fixed_ranges")
    with pytest.raises(WrmilInputError, match="overlap"):
        split_writers(range(10), mode="fixed_ranges", ranges=((0, 5), (5, 7), (8, 9)))
    s = split_writers(range(10), mode="fixed_ranges", ranges=((0, 5), (6, 7), (8, 9)))
    assert _counts(s) == {"train": 6, "val": 2, "test": 2}


def test_check_disjoint_detects_overlap():
    s = split_writers(range(20))
    other = "test" if dict(s.iter_rows())[3] != "test" else "val"
    bad = pl.concat([s, pl.DataFrame({"writer": [3], "split": [other]})])
    ok, meta = check_disjoint(bad)
    assert not ok and meta["n_writers_in_several_splits"] == 1 and meta["offending_writers"] == "3"
    ok, meta = check_disjoint(pl.concat([s, s.head(1)]))  # same writer twice, same split
    assert not ok and meta["n_duplicate_rows"] == 1


def test_check_fractions_tolerance():
    # 100 writers: tolerance is max(1, 5) = 5 writers per split.
    def mk(tr, va, te):
        return pl.DataFrame({"writer": list(range(tr + va + te)),
                             "split": ["train"] * tr + ["val"] * va + ["test"] * te})

    ok, meta = check_fractions(mk(65, 15, 20))
    assert ok and meta["train_writers"] == 65 and meta["allowed_deviation_writers"] == 5
    assert not check_fractions(mk(66, 14, 20))[0]
    # 10 writers: tolerance is 1 writer.
    assert check_fractions(mk(7, 2, 1))[0]  # every split within 1 writer of 6/2/2
    assert check_fractions(mk(6, 2, 2))[0]
    assert not check_fractions(mk(8, 1, 1))[0]
    assert check_fractions(mk(8, 1, 1), fractions=(0.8, 0.1, 0.1))[0]


def test_check_nonempty():
    ok, meta = check_nonempty(pl.DataFrame({"writer": [1, 2], "split": ["train", "val"]}))
    assert not ok and meta["empty_splits"] == "test" and meta["test_writers"] == 0
    four = pl.DataFrame({"writer": [1, 2, 3, 4], "split": ["train", "val", "test", "dev"]})
    ok, meta = check_nonempty(four)
    assert not ok and meta["unknown_splits"] == "dev"
    assert check_nonempty(split_writers(range(3)))[0]


def test_split_summary_on_ingested_words(tmp_path):
    root = make_raw_root(tmp_path, n_writers=5, n_reps=4, reps_per_session=2)
    words = ingest(root, reps_per_session=2).words
    s = split_writers(words["writer"].unique().to_list(), seed=0)
    summ = split_summary(words, s)
    assert summ["split"].to_list() == list(SPLITS)
    assert summ["n_writers"].sum() == 5
    assert summ["n_documents"].sum() == 10 and summ["n_words"].sum() == words.height
    per_writer = dict(s.iter_rows())
    for split, nw, nd, nwd in summ.iter_rows():
        mine = [w for w, sp in per_writer.items() if sp == split]
        assert nw == len(mine) and nd == 2 * len(mine) and nwd == 24 * len(mine)
    meta = split_metadata(summ)
    assert meta["train_writers"] + meta["val_writers"] + meta["test_writers"] == 5
    assert meta["train_words"] == summ.filter(pl.col("split") == "train")["n_words"][0]


def test_split_summary_reports_unassigned_words(tmp_path):
    root = make_raw_root(tmp_path, n_writers=4, n_reps=2)
    words = ingest(root, reps_per_session=2).words
    s = split_writers([0, 1, 2])
    summ = split_summary(words, s)
    un = summ.filter(pl.col("split") == "unassigned")
    assert un.height == 1 and un["n_writers"][0] == 1 and un["n_words"][0] == 12


def test_words_of_split_keeps_only_that_splits_writers_and_refuses_an_empty_split():
    from wrmil_core.data.split import words_of_split

    words = pl.DataFrame({"word_id": [0, 1, 2, 3], "writer": pl.Series([1, 1, 2, 3], dtype=pl.Int64)})
    splits = pl.DataFrame({"writer": pl.Series([1, 2, 3], dtype=pl.Int64), "split": ["train", "val", "val"]})
    assert words_of_split(words, splits, "val")["word_id"].to_list() == [2, 3]
    with pytest.raises(WrmilInputError, match="'test' has no words"):
        words_of_split(words, splits, "test")


def test_split_config_presets_and_validation():
    """The launchpad's SplitConfig comes from this dataclass; its defaults are the old ones."""
    cfg = SplitConfig()
    assert (cfg.mode, cfg.fractions, cfg.seed, cfg.tolerance) == ("random", (0.6, 0.2, 0.2), 0, 0.05)
    assert set(PRESETS) >= {"demo", "paper"} and split_preset("paper") == cfg
    assert split_preset("demo", seed=3, mode="fixed_ranges").seed == 3
    with pytest.raises(WrmilInputError, match="sum to 1"):
        split_preset("demo", train_fraction=0.8)
    with pytest.raises(WrmilInputError, match="must be > 0"):
        SplitConfig(train_fraction=0.8, val_fraction=0.2, test_fraction=0.0)
    with pytest.raises(WrmilInputError, match="mode"):
        SplitConfig(mode="by_age")  # type: ignore[arg-type]
    with pytest.raises(WrmilInputError, match="tolerance"):
        SplitConfig(tolerance=-0.1)
