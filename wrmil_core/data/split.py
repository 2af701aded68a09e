"""Writer-disjoint train/val/test split and the checks that guard it.

No writer may appear in two splits: the embedding model is judged on writers it never saw, and
the MIL bags of a split draw donors from the same split only.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl

from wrmil_core import presets
from wrmil_core.errors import WrmilInputError
from wrmil_core.schema import SPLITS

DEFAULT_FRACTIONS: tuple[float, float, float] = (0.6, 0.2, 0.2)
#: The original CSAFE id ranges (inclusive): 0-179 train, 180-239 val, 240-299 test.
ORIGINAL_RANGES: tuple[tuple[int, int], ...] = ((0, 179), (180, 239), (240, 299))
MODES: tuple[str, ...] = ("random", "fixed_ranges")


def _validate_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    fr = tuple(float(f) for f in fractions)
    if len(fr) != len(SPLITS):
        raise WrmilInputError(
            f"fractions must give one value per split {SPLITS}, got {fractions!r}.")
    if any(not np.isfinite(f) or f <= 0 for f in fr):
        raise WrmilInputError(
            f"every split fraction must be > 0, got {fractions!r}; each of {SPLITS} needs writers.")
    if abs(sum(fr) - 1.0) > 1e-6:
        raise WrmilInputError(f"fractions must sum to 1, got {fractions!r} (sum {sum(fr):g}).")
    return fr


@dataclass(frozen=True)
class SplitConfig:
    """How writers are split: a seeded shuffle cut at the fractions (``random``), or the original
    fixed id ranges ``ORIGINAL_RANGES`` (``fixed_ranges``; fractions and seed unused).

    tolerance   the fraction check passes when each split is within ``max(1, tolerance * n)``
                writers of ``n * fraction``
    """

    mode: Literal["random", "fixed_ranges"] = "random"
    train_fraction: float = DEFAULT_FRACTIONS[0]
    val_fraction: float = DEFAULT_FRACTIONS[1]
    test_fraction: float = DEFAULT_FRACTIONS[2]
    seed: int = 0
    tolerance: float = 0.05

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise WrmilInputError(f"split mode must be one of {MODES}, got {self.mode!r}.")
        _validate_fractions(self.fractions)
        if not 0.0 <= self.tolerance <= 1.0:
            raise WrmilInputError(f"split tolerance must be within [0, 1], got {self.tolerance!r}.")

    @property
    def fractions(self) -> tuple[float, float, float]:
        """(train, val, test) fractions of the writers."""
        return (self.train_fraction, self.val_fraction, self.test_fraction)


DEFAULT = SplitConfig()
# cpu, gpu: a user's own data (`wrmil run --data-root`); the same 60/20/20 writer split.
PRESETS: dict[str, SplitConfig] = {"demo": DEFAULT, "paper": DEFAULT, "cpu": DEFAULT, "gpu": DEFAULT}


def preset(name: str, **overrides: Any) -> SplitConfig:
    """A named preset with optional field overrides, e.g. ``preset("demo", seed=1)``."""
    return presets.preset(PRESETS, name, **overrides)


def split_sizes(n: int, fractions: Sequence[float]) -> list[int]:
    """Writers per split: largest-remainder rounding of ``n * fraction``, then at least 1 each.

    Raises ``WrmilInputError`` for fewer writers than splits.
    """
    fr = _validate_fractions(fractions)
    k = len(fr)
    if n < k:
        raise WrmilInputError(
            f"a writer-disjoint split into {SPLITS} needs at least {k} writers, got {n}; add "
            "writers to the data root (or generate a larger synthetic set).")
    exact = [n * f for f in fr]
    sizes = [int(np.floor(x)) for x in exact]
    # Hand out the remaining writers by largest fractional part (ties: earlier split first).
    for i in sorted(range(k), key=lambda i: (-(exact[i] - sizes[i]), i))[: n - sum(sizes)]:
        sizes[i] += 1
    # Every split gets >= 1 writer, taken from the currently largest split.
    for i in range(k):
        if sizes[i] == 0:
            sizes[int(np.argmax(sizes))] -= 1
            sizes[i] = 1
    return sizes


def split_writers(
    writers: Sequence[int],
    *,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    mode: Literal["random", "fixed_ranges"] = "random",
    ranges: Sequence[tuple[int, int]] = ORIGINAL_RANGES,
) -> pl.DataFrame:
    """Assign every writer to one of ``SPLITS``; returns ``writer`` (Int64), ``split`` (Utf8).

    ``random``: the sorted unique writer ids are shuffled with ``numpy.random.default_rng(seed)``
    and cut at :func:`split_sizes`, so the result depends only on the set of writers and the seed.
    ``fixed_ranges``: writer ``w`` goes to split ``i`` when ``ranges[i][0] <= w <= ranges[i][1]``
    (the original 0-179/180-239/240-299); ``fractions`` and ``seed`` are ignored. Writers outside
    every range, overlapping ranges, or a split left without writers raise ``WrmilInputError``.
    Output rows are sorted by writer.
    """
    ws = np.unique(np.asarray(list(writers), dtype=np.int64))
    if mode == "random":
        sizes = split_sizes(len(ws), fractions)
        perm = np.random.default_rng(seed).permutation(ws)
        labels = np.repeat(np.array(SPLITS, dtype=object), sizes)
        out = pl.DataFrame({"writer": perm, "split": labels.tolist()})
    elif mode == "fixed_ranges":
        out = _fixed_ranges(ws, ranges)
    else:
        raise WrmilInputError(f"mode must be 'random' or 'fixed_ranges', got {mode!r}.")
    return out.with_columns(pl.col("writer").cast(pl.Int64), pl.col("split").cast(pl.Utf8)).sort("writer")


def _fixed_ranges(ws: np.ndarray, ranges: Sequence[tuple[int, int]]) -> pl.DataFrame:
    rg = [(int(lo), int(hi)) for lo, hi in ranges]
    if len(rg) != len(SPLITS) or any(lo > hi for lo, hi in rg):
        raise WrmilInputError(
            f"ranges must be {len(SPLITS)} inclusive (low, high) pairs for {SPLITS}, got {ranges!r}.")
    srt = sorted(rg)
    for (_, hi), (lo, _) in itertools.pairwise(srt):
        if lo <= hi:
            raise WrmilInputError(f"ranges overlap ({ranges!r}); a writer must fall in one range.")
    split = np.full(len(ws), None, dtype=object)
    for name, (lo, hi) in zip(SPLITS, rg):
        split[(ws >= lo) & (ws <= hi)] = name
    outside = ws[split == None].tolist()  # elementwise on an object array
    if outside:
        shown = ", ".join(map(str, outside[:20]))
        if len(outside) > 20:
            shown += f", ... ({len(outside)} in all)"
        raise WrmilInputError(
            f"writer id(s) {shown} fall outside every fixed range {dict(zip(SPLITS, rg))}; "
            "widen the ranges or use mode='random'.")
    empty = [n for n in SPLITS if not (split == n).any()]
    if empty:
        raise WrmilInputError(
            f"fixed ranges {dict(zip(SPLITS, rg))} leave split(s) {empty} without writers "
            f"(writer ids present: {ws.min()}..{ws.max()}, {len(ws)} writers); "
            "pass ranges that match your ids or use mode='random'.")
    return pl.DataFrame({"writer": ws, "split": split.tolist()})


# --------------------------------------------------------------------------- checks


def check_disjoint(splits: pl.DataFrame) -> tuple[bool, dict[str, int | str]]:
    """Passed when no writer appears in more than one split (or twice at all)."""
    per = splits.group_by("writer").agg(pl.col("split").n_unique().alias("n_splits"), pl.len())
    bad = per.filter((pl.col("n_splits") > 1) | (pl.col("len") > 1)).sort("writer")
    meta: dict[str, int | str] = {
        "n_writers": per.height,
        "n_writers_in_several_splits": int((per["n_splits"] > 1).sum()),
        "n_duplicate_rows": int((per["len"] - 1).sum()),
    }
    if bad.height:
        meta["offending_writers"] = ", ".join(map(str, bad["writer"].head(20).to_list()))
    return bad.height == 0, meta


def check_fractions(
    splits: pl.DataFrame,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    tolerance: float = 0.05,
) -> tuple[bool, dict[str, int | float]]:
    """Passed when each split's writer count is within ``max(1, tolerance * n)`` writers of
    ``n * fraction`` (``n`` = number of distinct writers)."""
    fr = _validate_fractions(fractions)
    n = splits["writer"].n_unique()
    counts = dict(splits.group_by("split").agg(pl.col("writer").n_unique()).iter_rows())
    allowed = max(1.0, tolerance * n)
    meta: dict[str, int | float] = {"n_writers": n, "allowed_deviation_writers": allowed}
    ok = True
    for name, f in zip(SPLITS, fr):
        got = int(counts.get(name, 0))
        dev = abs(got - n * f)
        ok &= dev <= allowed + 1e-9
        meta[f"{name}_writers"] = got
        meta[f"{name}_expected"] = round(n * f, 3)
        meta[f"{name}_fraction"] = round(got / n, 4) if n else 0.0
    return bool(ok), meta


def check_nonempty(splits: pl.DataFrame) -> tuple[bool, dict[str, int | str]]:
    """Passed when every split in ``SPLITS`` has >= 1 writer and no other split name occurs."""
    counts = dict(splits.group_by("split").len().iter_rows())
    meta: dict[str, int | str] = {f"{s}_writers": int(counts.get(s, 0)) for s in SPLITS}
    unknown = sorted(str(k) for k in counts if k not in SPLITS)
    if unknown:
        meta["unknown_splits"] = ", ".join(unknown)
    empty = [s for s in SPLITS if not counts.get(s)]
    if empty:
        meta["empty_splits"] = ", ".join(empty)
    return not empty and not unknown, meta


def words_of_split(raw_words: pl.DataFrame, writer_split: pl.DataFrame, split: str) -> pl.DataFrame:
    """The words of the writers assigned to ``split``."""
    writers = writer_split.filter(pl.col("split") == split)["writer"]
    words = raw_words.filter(pl.col("writer").is_in(writers.implode()))
    if words.is_empty():
        raise WrmilInputError(f"split {split!r} has no words; check writer_split and the data root")
    return words


def split_summary(words: pl.DataFrame, splits: pl.DataFrame) -> pl.DataFrame:
    """Writers, documents and words per split: columns split, n_writers, n_documents, n_words.

    One row per ``SPLITS`` entry (zeros included), in that order; words whose writer has no
    split appear in an extra ``"unassigned"`` row, only when there are any.
    """
    joined = words.select("writer", "doc_id").join(splits.select("writer", "split"),
                                                    on="writer", how="left")
    joined = joined.with_columns(pl.col("split").fill_null("unassigned"))
    agg = joined.group_by("split").agg(
        pl.col("doc_id").n_unique().cast(pl.Int64).alias("n_documents"),
        pl.len().cast(pl.Int64).alias("n_words"),
    )
    nw = splits.group_by("split").agg(pl.col("writer").n_unique().cast(pl.Int64).alias("n_writers"))
    unassigned = joined.filter(pl.col("split") == "unassigned")["writer"].n_unique()
    names = list(SPLITS) + (["unassigned"] if unassigned else [])
    base = pl.DataFrame({"split": names, "_o": list(range(len(names)))})
    out = (base.join(nw, on="split", how="left").join(agg, on="split", how="left")
           .sort("_o").drop("_o"))
    if unassigned:
        out = out.with_columns(
            pl.when(pl.col("split") == "unassigned").then(pl.lit(unassigned, pl.Int64))
            .otherwise(pl.col("n_writers")).alias("n_writers"))
    return out.fill_null(0).select("split", "n_writers", "n_documents", "n_words")


def split_metadata(summary: pl.DataFrame) -> dict[str, int]:
    """Flatten :func:`split_summary` into ``{"train_writers": .., "train_documents": .., ...}``."""
    meta: dict[str, int] = {}
    for split, nw, nd, nwd in summary.select("split", "n_writers", "n_documents", "n_words").iter_rows():
        meta[f"{split}_writers"] = int(nw)
        meta[f"{split}_documents"] = int(nd)
        meta[f"{split}_words"] = int(nwd)
    return meta
