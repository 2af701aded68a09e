"""Hyper-parameters of stage 2 (windows and bags), with the ``demo`` and ``paper`` presets.

One :class:`BagConfig` drives both ``instance_windows[split]`` (window geometry) and
``bags_by_difficulty[split]`` (bag geometry, contamination rule, balance, seed). It is frozen and
validated once; derived values (effective strides, words per bag, foreign counts) are properties.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from wrmil_core import presets
from wrmil_core.bags.layout import bag_template
from wrmil_core.errors import WrmilInputError
from wrmil_core.schema import DEFAULT_RATIOS

Mode = Literal["word", "instance"]
MODES: tuple[str, ...] = ("word", "instance")
Geometry = Literal["contiguous", "scattered", "two_donors"]
# the order the bags table holds them in; a new geometry goes last so earlier bag ids do not move
GEOMETRIES: tuple[str, ...] = ("contiguous", "scattered", "two_donors")
WORD_ONLY_GEOMETRIES: tuple[str, ...] = ("scattered", "two_donors")  # refused in instance mode


def round_half_up(x: float) -> int:
    """Round to the nearest integer, halves up (``round`` would send 2.5 to 2, i.e. 5% of 50 to 4%)."""
    return int(math.floor(x + 0.5 + 1e-9))


def word_mode_foreign_count(ratio: float, n_words: int) -> int:
    """Foreign words for ``ratio`` in a ``word``-mode bag of ``n_words`` words: ``max(1, round(r*n))``."""
    return max(1, round_half_up(ratio * n_words))


def two_donor_split(f: int) -> tuple[int, int]:
    """The two passages' lengths for ``f`` foreign words, as even as possible: ``(f // 2 + f % 2, f // 2)``
    (which passage gets the odd word is drawn per bag)."""
    return f // 2 + f % 2, f // 2


def instance_mode_foreign_count(ratio: float, bag_size: int) -> int:
    """Windows replaced for ``ratio`` by the original rule: ``max(1, int(bag_size * r))``."""
    return max(1, int(bag_size * ratio))


def min_words_for_distinct_ratios(ratios: tuple[float, ...], limit: int = 2000) -> int | None:
    """Smallest bag span (in words) from which on every span gives each ratio its own foreign
    word count, all leaving at least one base word; None when that needs more than ``limit``."""
    ok = []
    for n in range(1, limit + 1):
        counts = [word_mode_foreign_count(r, n) for r in ratios]
        ok.append(len(set(counts)) == len(counts) and max(counts) < n)
    if not ok[-1]:
        return None
    last_bad = max((i for i, good in enumerate(ok) if not good), default=-1)
    return last_bad + 2


@dataclass(frozen=True)
class BagConfig:
    """How to cut a split's windows and build its bags.

    bag_size        windows per bag (10)
    window_size     words per window (5)
    mode            "word" (exact word-level contamination, default) or "instance" (original rule)
    ratios          nominal contamination ratios (a tuple), one difficulty each
    window_stride   words between consecutive windows; None = window_size in "word" mode
                    (non-overlapping) and 1 in "instance" mode (the original). Must be <= window_size
                    so that a bag covers every word of its span.
    bag_stride      windows between consecutive base bags of a document; None = bag_size
                    (base bags do not share windows)
    n_genuine       genuine bags to build; None = every base bag the split allows (more than the
                    split allows is clamped, and reported)
    seed            seed of every random draw (base bags, offsets, donors)
    geometries      where the foreign words sit: "contiguous" (one passage; in ``instance`` mode
                    the original rule's replaced windows) and/or "scattered" (``word`` mode only:
                    the same number of foreign words at random, pairwise non-adjacent positions).
                    and/or "two_donors" (``word`` mode only: two passages from two different
                    donor writers, non-adjacent, together the same number of foreign words, split
                    as evenly as possible; needs at least 2 foreign words at every ratio and 3
                    writers in the split).
                    Each geometry gets its own contaminated bags (1 : 2 against the genuine ones)
                    from its own random stream, so adding a geometry leaves the others' bags
                    as they are.
    """

    bag_size: int = 10
    window_size: int = 5
    mode: Mode = "word"
    ratios: tuple[float, ...] = DEFAULT_RATIOS
    window_stride: int | None = None
    bag_stride: int | None = None
    n_genuine: int | None = None
    seed: int = 0
    geometries: tuple[str, ...] = ("contiguous",)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise WrmilInputError(f"BagConfig.mode must be one of {MODES}; got {self.mode!r}.")
        for name in ("bag_size", "window_size"):
            if int(getattr(self, name)) < 1:
                raise WrmilInputError(f"BagConfig.{name} must be >= 1; got {getattr(self, name)}.")
        self._check_ratios()
        if self.window_stride is not None and not (1 <= self.window_stride <= self.window_size):
            raise WrmilInputError(
                f"BagConfig.window_stride must be between 1 and window_size={self.window_size} "
                f"(a larger stride leaves words of the bag's span outside every window); got {self.window_stride}."
            )
        if self.bag_stride is not None and self.bag_stride < 1:
            raise WrmilInputError(f"BagConfig.bag_stride must be >= 1 window; got {self.bag_stride}.")
        if self.n_genuine is not None and self.n_genuine < 1:
            raise WrmilInputError(f"BagConfig.n_genuine must be >= 1 or None (all); got {self.n_genuine}.")
        if self.mode == "word":
            self._check_word_geometry()
        elif self.bag_size < 2:
            raise WrmilInputError("instance mode needs bag_size >= 2: replacing the only window leaves no base writer.")
        self._check_geometries()

    def _check_geometries(self) -> None:
        g = self.geometries
        if not isinstance(g, tuple) or not g or any(x not in GEOMETRIES for x in g) or len(set(g)) != len(g):
            raise WrmilInputError(f"BagConfig.geometries must be a non-empty tuple of distinct names from {GEOMETRIES}; "
                                  f"got {g!r}.")
        if self.mode != "word":
            word_only = [x for x in g if x in WORD_ONLY_GEOMETRIES]
            if word_only:
                raise WrmilInputError(
                    f"BagConfig.geometries: {', '.join(map(repr, word_only))} "
                    f"{'needs' if len(word_only) == 1 else 'need'} mode='word' (instance mode replaces whole "
                    "windows of one donor, which already sit at random slots); drop it or use mode='word'.")
            return
        if "scattered" in g:
            self._check_scattered()
        if "two_donors" in g:
            self._check_two_donors()

    def _check_scattered(self) -> None:
        most = max(self.foreign_counts.values())
        if 2 * most - 1 > self.words_per_bag:
            raise WrmilInputError(
                f"BagConfig.geometries: {most} scattered foreign words cannot be pairwise non-adjacent in a bag of "
                f"{self.words_per_bag} words; use smaller ratios or a longer bag.")

    def _check_two_donors(self) -> None:
        # refused rather than rounded up: a rounded-up bag would not be the difficulty its ratio names
        few = {r: c for r, c in self.foreign_counts.items() if c < 2}
        if few:
            raise WrmilInputError(
                f"BagConfig.geometries: 'two_donors' needs at least 2 foreign words per bag (one per donor), and "
                f"ratio(s) {sorted(few)} give 1 in a bag of {self.words_per_bag} words; use a longer bag "
                "(e.g. bag_size=10, window_size=5), drop those ratios, or drop 'two_donors'.")

    def _check_ratios(self) -> None:
        if not isinstance(self.ratios, tuple):
            # a tuple keeps the frozen config hashable; the launchpad's lists are converted by resolve()
            raise WrmilInputError(f"BagConfig.ratios must be a tuple, e.g. (0.05, 0.1); got {self.ratios!r}.")
        if not self.ratios:
            raise WrmilInputError("BagConfig.ratios is empty: give at least one contamination ratio, e.g. (0.05, 0.1, 0.2, 0.3).")
        if any(isinstance(r, bool) or not isinstance(r, numbers.Real) or not (0.0 < r < 1.0) for r in self.ratios):
            raise WrmilInputError(f"BagConfig.ratios must be numbers strictly between 0 and 1; got {self.ratios}.")
        if len(set(self.ratios)) != len(self.ratios):
            raise WrmilInputError(f"BagConfig.ratios has repeated values {self.ratios}; each ratio is one difficulty.")

    def _check_word_geometry(self) -> None:
        n = self.words_per_bag
        by_count: dict[int, list[float]] = {}
        for r, c in self.foreign_counts.items():
            by_count.setdefault(c, []).append(r)
        clashes = {c: rs for c, rs in by_count.items() if len(rs) > 1}
        too_big = [r for r, c in self.foreign_counts.items() if c >= n]
        if not clashes and not too_big:
            return
        need = min_words_for_distinct_ratios(self.ratios)
        need_txt = f"at least {need} words" if need else "more words than is practical (the ratios are too close)"
        why = []
        if clashes:
            why.append("; ".join(f"ratios {rs} all give {c} foreign word(s)" for c, rs in sorted(clashes.items()))
                       + ", so those difficulties would be the same bag")
        if too_big:
            why.append(f"ratio(s) {too_big} would leave no word of the base writer")
        raise WrmilInputError(
            f"bag geometry too short for the requested ratios: a bag of {self.bag_size} windows x "
            f"{self.window_size} words with window stride {self.effective_window_stride} spans {n} words, "
            f"and {'; and '.join(why)}. Use a bag spanning {need_txt} (e.g. non-overlapping windows: "
            "window_stride=window_size, or a larger bag_size/window_size), or drop the colliding ratios."
        )

    @property
    def effective_window_stride(self) -> int:
        """Words between consecutive windows (``window_stride`` or the mode's default)."""
        if self.window_stride is not None:
            return int(self.window_stride)
        return int(self.window_size) if self.mode == "word" else 1

    @property
    def effective_bag_stride(self) -> int:
        """Windows between consecutive base bags of a document (``bag_stride`` or ``bag_size``)."""
        return int(self.bag_stride) if self.bag_stride is not None else int(self.bag_size)

    @property
    def words_per_bag(self) -> int:
        """Words a bag spans in its document: ``(bag_size - 1) * window_stride + window_size``."""
        return (self.bag_size - 1) * self.effective_window_stride + self.window_size

    @property
    def foreign_counts(self) -> dict[float, int]:
        """Per ratio: foreign words (``word`` mode) or replaced windows (``instance`` mode)."""
        if self.mode == "word":
            return {r: word_mode_foreign_count(r, self.words_per_bag) for r in self.ratios}
        return {r: instance_mode_foreign_count(r, self.bag_size) for r in self.ratios}

    @property
    def colliding_ratios(self) -> list[list[float]]:
        """Groups of ratios that give the same contamination (possible in ``instance`` mode only)."""
        groups: dict[int, list[float]] = {}
        for r, c in self.foreign_counts.items():
            groups.setdefault(c, []).append(r)
        return [g for g in groups.values() if len(g) > 1]

    @property
    def ordered_geometries(self) -> tuple[str, ...]:
        """The configured geometries in the order the bags table holds them (contiguous first)."""
        return tuple(g for g in GEOMETRIES if g in self.geometries)

    def window_template(self) -> np.ndarray:
        """(bag_size, window_size) offsets of each window's words inside the bag's span."""
        return bag_template(self.bag_size, self.window_size, self.effective_window_stride)


# Named presets: "demo" is the default, exact word-level contamination (50-word bags), with a
# contiguous passage, scattered words and two passages of two donors side by side; "paper" is the
# original rule (stride-1 windows, whole windows replaced), for comparison with published numbers.
PRESETS: dict[str, BagConfig] = {
    # base bags overlap by half (bag_stride 5 windows): the synthetic documents are short (126
    # words), so this doubles the bags per document; every contaminated bag still has its own donor.
    "demo": BagConfig(bag_stride=5, geometries=("contiguous", "scattered", "two_donors")),
    "paper": BagConfig(mode="instance"),
}
# A user's own data (`wrmil run --data-root`, on a CPU or a GPU): the demo's exact word-level bags;
# only the embedding recipe differs between these presets.
PRESETS.update(cpu=PRESETS["demo"], gpu=PRESETS["demo"])


def preset(name: str, **overrides: Any) -> BagConfig:
    """A named preset with optional field overrides, e.g. ``preset("paper", seed=3)``."""
    return presets.preset(PRESETS, name, **overrides)
