"""Writer-fold cross-validation for small data sets: every writer is a test writer exactly once.

With a few tens of writers, one train/val/test split leaves 7-17 test writers and its figures move
by several hundredths with the seed. Folding over writers instead puts every writer in the test
part of exactly one fold, so the test figures can be pooled over all writers (and their spread
across folds shown). Within a fold, validation writers (early stopping, model choice) are drawn
from the non-test writers; the rest train. No writer is ever in two parts of one fold.

The fold table is long: one row per (fold, writer) with the writer's ``split`` in that fold, so
``fold_split(folds, f)`` is an ordinary writer split table for ``words_of_split``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from wrmil_core.errors import WrmilInputError
from wrmil_core.schema import SPLITS

FOLD_COLUMNS: tuple[str, ...] = ("fold", "writer", "split")


def writer_folds(writers: Sequence[int], k: int = 5, val_fraction: float = 0.2, seed: int = 0) -> pl.DataFrame:
    """Assign each writer to train/val/test in each of ``k`` folds.

    The sorted unique writers are shuffled with ``numpy.random.default_rng(seed)`` and cut into
    ``k`` test groups of sizes differing by at most one (fold ``f`` tests group ``f``). In fold
    ``f``, ``round(val_fraction * n_rest)`` (at least 1) of the ``n_rest`` other writers are drawn
    as validation writers with ``default_rng([seed, f])``; the rest train. The result depends only
    on the set of writers, ``k``, ``val_fraction`` and ``seed``.

    Returns columns fold (Int32), writer (Int64), split (Utf8, one of ``SPLITS``), sorted by fold
    then writer. Raises ``WrmilInputError`` when the writers cannot fill k folds with at least one
    test, one val and two train writers each.
    """
    ws = np.unique(np.asarray(list(writers), dtype=np.int64))
    _check_args(len(ws), k, val_fraction)
    groups = np.array_split(np.random.default_rng(seed).permutation(ws), k)
    frames = []
    for f, test in enumerate(groups):
        rest = np.setdiff1d(ws, test)
        n_val = max(1, round(val_fraction * len(rest)))
        val = np.random.default_rng([seed, f]).permutation(rest)[:n_val]
        split = np.where(np.isin(ws, test), "test", np.where(np.isin(ws, val), "val", "train"))
        frames.append(pl.DataFrame({"fold": np.full(len(ws), f, np.int32), "writer": ws, "split": split}))
    return pl.concat(frames).sort("fold", "writer")


def _check_args(n: int, k: int, val_fraction: float) -> None:
    if not isinstance(k, (int, np.integer)) or k < 2:
        raise WrmilInputError(f"folds k={k!r}: cross-validation needs k >= 2 folds (k = 5 is usual)")
    if not 0 < val_fraction < 1:
        raise WrmilInputError(f"val_fraction={val_fraction!r}: must be in (0, 1), a fraction of the non-test writers")
    smallest_rest = n - int(np.ceil(n / k))
    n_val = max(1, round(val_fraction * smallest_rest))
    if n < k or smallest_rest - n_val < 2:
        raise WrmilInputError(
            f"{n} writer(s) cannot make {k} writer folds with at least 1 test, 1 val and 2 train writers each; "
            f"use fewer folds (k={max(2, min(k - 1, n // 4))}), a smaller val_fraction, or a data set with more writers"
        )


def fold_split(folds: pl.DataFrame, fold: int) -> pl.DataFrame:
    """Fold ``fold`` of a :func:`writer_folds` table as a writer split table (writer, split)."""
    out = folds.filter(pl.col("fold") == fold).select("writer", "split")
    if out.is_empty():
        known = sorted(folds["fold"].unique().to_list())
        raise WrmilInputError(f"fold {fold} is not in the fold table (folds {known})")
    return out


def check_folds(folds: pl.DataFrame) -> tuple[bool, dict[str, int | str]]:
    """Passed when every fold assigns every writer exactly once to one of ``SPLITS``, every fold has
    writers in each part, and every writer is a test writer in exactly one fold."""
    problems = []
    n_folds = folds["fold"].n_unique()
    writers = folds["writer"].unique()
    per_fold = folds.group_by("fold").agg(pl.len(), pl.col("writer").n_unique().alias("n_writers"),
                                          *(pl.col("split").eq(s).sum().alias(s) for s in SPLITS))
    if (per_fold["len"] != per_fold["n_writers"]).any() or (per_fold["n_writers"] != len(writers)).any():
        problems.append("a fold lists a writer twice or misses one")
    if not folds["split"].is_in(list(SPLITS)).all():
        problems.append(f"split values outside {SPLITS}")
    empty = [f"fold {r['fold']} {s}" for r in per_fold.iter_rows(named=True) for s in SPLITS if r[s] == 0]
    if empty:
        problems.append("no writers in " + ", ".join(sorted(empty)[:10]))
    tested = folds.filter(pl.col("split") == "test").group_by("writer").len()
    not_once = len(writers) - int((tested["len"] == 1).sum())
    if not_once:
        problems.append(f"{not_once} writer(s) not tested exactly once")
    meta: dict[str, int | str] = {"n_folds": n_folds, "n_writers": len(writers),
                                  "problem": "; ".join(problems) if problems else "none"}
    return not problems, meta
