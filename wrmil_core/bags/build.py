"""Genuine and contaminated document bags (stage 2, ``bags_by_difficulty[split]``).

A bag is ``bag_size`` windows of ``window_size`` consecutive words cut from one document. A
genuine bag (label 0) is one writer's words as written; a contaminated bag (label 1) has some of
another writer's words (the donor, from the same split, never the base writer) mixed in. Bags
store word ids into the split's embedding table, never vectors.

Two modes:

``word`` (default)
    Windows are non-overlapping by default (``window_stride = window_size``), so a bag spans
    ``S = bag_size * window_size`` consecutive words (50). For ratio ``r`` a contiguous passage of
    ``f = max(1, round_half_up(r * S))`` words at a seeded offset is replaced by ``f`` consecutive
    words of a donor document, as a forger writing a passage into someone else's document would,
    and the windows are cut from the mixed sequence. Every ratio is a distinct difficulty (a
    geometry where two ratios give the same ``f`` is refused), the true foreign fraction is
    ``f / S``, and each window is flagged when it holds a foreign word.

``instance`` (the original rule, for comparison with published numbers)
    Stride-1 windows, a bag is ``bag_size`` consecutive windows (14 distinct words for 10x5), and
    ``k = max(1, int(bag_size * r))`` whole windows at seeded positions are replaced by donor
    windows. The recorded fractions show what that rule really does: 5% and 10% are the same bag.

``foreign_word_frac`` is the fraction of the bag's *distinct* word ids written by the donor (in
``word`` mode exactly ``f / S``); ``foreign_window_frac`` is the fraction of its windows that hold
at least one foreign word.

Balance follows the original: 1 genuine : 2 contaminated, the same number of contaminated bags
per ratio (``round(2 * n_genuine / len(ratios))``), base passages re-used with fresh donors and
offsets where needed; everything is deterministic for a seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np
import polars as pl

from wrmil_core.errors import WrmilInputError
from wrmil_core.runtime import Log, speaker
from wrmil_core.schema import BAG_COLUMNS, DEFAULT_RATIOS
from wrmil_core.bags.layout import DocLayout, document_layout, window_starts

Mode = Literal["word", "instance"]
MODES: tuple[str, ...] = ("word", "instance")


def round_half_up(x: float) -> int:
    """Round to the nearest integer, halves up (``round`` would send 2.5 to 2, i.e. 5% of 50 to 4%)."""
    return int(math.floor(x + 0.5 + 1e-9))


def word_mode_foreign_count(ratio: float, n_words: int) -> int:
    """Foreign words for ``ratio`` in a ``word``-mode bag of ``n_words`` words: ``max(1, round(r*n))``."""
    return max(1, round_half_up(ratio * n_words))


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


@dataclass
class BagConfig:
    """How to build a split's bags.

    bag_size        windows per bag (10)
    window_size     words per window (5)
    mode            "word" (exact word-level contamination, default) or "instance" (original rule)
    ratios          nominal contamination ratios, one difficulty each
    window_stride   words between consecutive windows; None = window_size in "word" mode
                    (non-overlapping) and 1 in "instance" mode (the original). Must be <= window_size
                    so that a bag covers every word of its span.
    bag_stride      windows between consecutive base bags of a document; None = bag_size
                    (base bags do not share windows)
    n_genuine       genuine bags to build; None = every base bag the split allows (more than the
                    split allows is clamped, and reported)
    seed            seed of every random draw (base bags, offsets, donors)
    """

    bag_size: int = 10
    window_size: int = 5
    mode: Mode = "word"
    ratios: tuple[float, ...] = DEFAULT_RATIOS
    window_stride: int | None = None
    bag_stride: int | None = None
    n_genuine: int | None = None
    seed: int = 0
    _foreign_counts: tuple[int, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise WrmilInputError(f"BagConfig.mode must be one of {MODES}; got {self.mode!r}.")
        for name in ("bag_size", "window_size"):
            if int(getattr(self, name)) < 1:
                raise WrmilInputError(f"BagConfig.{name} must be >= 1; got {getattr(self, name)}.")
        self.ratios = tuple(float(r) for r in self.ratios)
        if not self.ratios:
            raise WrmilInputError("BagConfig.ratios is empty: give at least one contamination ratio, e.g. (0.05, 0.1, 0.2, 0.3).")
        if any(not (0.0 < r < 1.0) for r in self.ratios):
            raise WrmilInputError(f"BagConfig.ratios must lie strictly between 0 and 1; got {self.ratios}.")
        if len(set(self.ratios)) != len(self.ratios):
            raise WrmilInputError(f"BagConfig.ratios has repeated values {self.ratios}; each ratio is one difficulty.")
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
            self._foreign_counts = self._check_word_geometry()
        else:
            if self.bag_size < 2:
                raise WrmilInputError("instance mode needs bag_size >= 2: replacing the only window leaves no base writer.")
            self._foreign_counts = tuple(instance_mode_foreign_count(r, self.bag_size) for r in self.ratios)

    def _check_word_geometry(self) -> tuple[int, ...]:
        n = self.words_per_bag
        counts = tuple(word_mode_foreign_count(r, n) for r in self.ratios)
        by_count: dict[int, list[float]] = {}
        for r, c in zip(self.ratios, counts):
            by_count.setdefault(c, []).append(r)
        clashes = {c: rs for c, rs in by_count.items() if len(rs) > 1}
        too_big = [r for r, c in zip(self.ratios, counts) if c >= n]
        if clashes or too_big:
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
        return counts

    @property
    def effective_window_stride(self) -> int:
        if self.window_stride is not None:
            return int(self.window_stride)
        return int(self.window_size) if self.mode == "word" else 1

    @property
    def effective_bag_stride(self) -> int:
        return int(self.bag_stride) if self.bag_stride is not None else int(self.bag_size)

    @property
    def words_per_bag(self) -> int:
        """Words a bag spans in its document: ``(bag_size - 1) * window_stride + window_size``."""
        return (self.bag_size - 1) * self.effective_window_stride + self.window_size

    @property
    def foreign_counts(self) -> dict[float, int]:
        """Per ratio: foreign words (``word`` mode) or replaced windows (``instance`` mode)."""
        return dict(zip(self.ratios, self._foreign_counts))

    def window_template(self) -> np.ndarray:
        """(bag_size, window_size) offsets of each window's words inside the bag's span."""
        s = self.effective_window_stride
        return np.arange(self.bag_size)[:, None] * s + np.arange(self.window_size)[None, :]


@dataclass
class BagsResult:
    """Output of :func:`build_bags`: the ``bags`` table of ``wrmil_core/schema.py`` and a summary."""

    bags: pl.DataFrame
    metadata: dict[str, int | float | str]


def _rng(seed: int, *stream: int) -> np.random.Generator:
    # one independent stream per stage (genuine pick, each ratio): results depend on the seed and
    # the input only, never on the order in which stages draw
    return np.random.default_rng(np.random.SeedSequence([int(seed), *stream]))


def draw_donor_docs(
    rng: np.random.Generator, base_writer: np.ndarray, eligible: np.ndarray, doc_writer: np.ndarray,
    *, split: str, need: str,
) -> np.ndarray:
    """For each base writer, a uniformly drawn eligible document of *another* writer.

    Vectorised without rejection: eligible docs are grouped by writer, and a draw ``u`` over the
    docs of the other writers skips the base writer's own block.
    """
    c = s = np.zeros(base_writer.shape, np.int64)   # own eligible docs: count and first index
    if eligible.shape[0]:
        ew = doc_writer[eligible]
        order = np.argsort(ew, kind="stable")
        eligible, ew = eligible[order], ew[order]
        uniq, first, counts = np.unique(ew, return_index=True, return_counts=True)
        pos = np.minimum(np.searchsorted(uniq, base_writer), uniq.shape[0] - 1)
        own = uniq[pos] == base_writer
        c = np.where(own, counts[pos], 0)
        s = np.where(own, first[pos], 0)
    n_other = eligible.shape[0] - c
    if (n_other <= 0).any():
        w = int(base_writer[np.flatnonzero(n_other <= 0)[0]])
        raise WrmilInputError(
            f"split {split!r}: no donor for writer {w}: no other writer of the split has a document "
            f"with {need}. Contaminated bags need a second writer in the same split; give the split "
            "more writers (see writer_split) or longer documents."
        )
    u = np.floor(rng.random(base_writer.shape[0]) * n_other).astype(np.int64)
    return eligible[np.where(u < s, u, u + c)]


def distinct_foreign_frac(rows: np.ndarray, foreign: np.ndarray) -> np.ndarray:
    """Per bag: foreign share of the distinct words. ``rows``/``foreign`` are (B, L) word keys and
    flags (a word's flag must not depend on which slot holds it)."""
    order = np.argsort(rows, axis=1, kind="stable")
    r = np.take_along_axis(rows, order, axis=1)
    f = np.take_along_axis(foreign, order, axis=1)
    first = np.ones(r.shape, bool)
    first[:, 1:] = r[:, 1:] != r[:, :-1]
    return (first & f).sum(1) / first.sum(1)


def _contaminate_word(
    rng: np.random.Generator, lay: DocLayout, base_row: np.ndarray, base_writer: np.ndarray,
    f: int, n_words: int, template: np.ndarray, split: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Word mode: splice ``f`` consecutive donor words into each base span at a seeded offset."""
    n = base_row.shape[0]
    eligible = np.flatnonzero(lay.length >= f)
    donor_doc = draw_donor_docs(rng, base_writer, eligible, lay.doc_writer, split=split, need=f"at least {f} words")
    donor_row = lay.offset[donor_doc] + np.floor(rng.random(n) * (lay.length[donor_doc] - f + 1)).astype(np.int64)
    off = np.floor(rng.random(n) * (n_words - f + 1)).astype(np.int64)
    j = np.arange(n_words, dtype=np.int64)[None, :]
    foreign = (j >= off[:, None]) & (j < (off + f)[:, None])                         # (n, S)
    seq = np.where(foreign, donor_row[:, None] + (j - off[:, None]), base_row[:, None] + j)
    return seq[:, template], foreign[:, template], lay.doc_writer[donor_doc]          # (n, bag, ws) x2


def _contaminate_instance(
    rng: np.random.Generator, lay: DocLayout, base_row: np.ndarray, base_writer: np.ndarray,
    k: int, template: np.ndarray, split: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Instance mode (original rule): replace ``k`` whole windows at seeded positions by windows
    drawn from one donor document."""
    n = base_row.shape[0]
    bag_size, ws = template.shape
    eligible = np.flatnonzero(lay.length >= ws)
    donor_doc = draw_donor_docs(rng, base_writer, eligible, lay.doc_writer, split=split, need=f"at least {ws} words")
    slots = np.argsort(rng.random((n, bag_size)), axis=1)[:, :k]
    replaced = np.zeros((n, bag_size), bool)
    np.put_along_axis(replaced, slots, True, axis=1)
    n_starts = (lay.length[donor_doc] - ws + 1)[:, None]
    donor_start = lay.offset[donor_doc][:, None] + np.floor(rng.random((n, bag_size)) * n_starts).astype(np.int64)
    w = np.arange(ws, dtype=np.int64)
    rows = np.where(replaced[:, :, None], donor_start[:, :, None] + w, base_row[:, None, None] + template[None])
    return rows, np.broadcast_to(replaced[:, :, None], rows.shape), lay.doc_writer[donor_doc]


def _colliding_ratios(cfg: BagConfig) -> list[list[float]]:
    groups: dict[int, list[float]] = {}
    for r, c in cfg.foreign_counts.items():
        groups.setdefault(c, []).append(r)
    return [g for g in groups.values() if len(g) > 1]


def build_bags(emb: pl.DataFrame, split: str, config: BagConfig | None = None, log: Log = None) -> BagsResult:
    """Build a split's genuine and contaminated bags from its embeddings table.

    ``emb`` needs word_id, writer, doc_id, position (and model_id, carried to every bag); the
    vectors are not read. Returns the ``bags`` table (genuine bags first, then each ratio in
    order; ``bag_id`` 0..B-1) and metadata with counts per label and ratio and the measured
    foreign fractions. Raises ``WrmilInputError`` when every document is shorter than a bag or
    when a writer has no donor in the split.
    """
    cfg = config or BagConfig()
    say = speaker(log)
    lay = document_layout(emb, what=f"embeddings of split {split!r}")
    n_words = cfg.words_per_bag
    template = cfg.window_template()
    n_writers = int(np.unique(lay.doc_writer).shape[0])
    if n_writers < 2:
        raise WrmilInputError(
            f"split {split!r} has {n_writers} writer: contaminated bags need a donor writer from the same "
            "split other than the base writer; give the split at least 2 writers (see writer_split)."
        )
    base_doc, base_off = window_starts(lay.length, n_words, cfg.effective_bag_stride * cfg.effective_window_stride)
    n_base = int(base_doc.shape[0])
    if n_base == 0:
        raise WrmilInputError(
            f"split {split!r}: every document is shorter than one bag: a bag of {cfg.bag_size} windows x "
            f"{cfg.window_size} words (window stride {cfg.effective_window_stride}) needs documents of at least "
            f"{n_words} words, and the longest has {int(lay.length.max())}. Use a smaller bag_size/window_size "
            "or longer documents."
        )
    base_row = lay.offset[base_doc] + base_off
    skipped_docs = int((lay.length < n_words).sum())

    n_gen = n_base if cfg.n_genuine is None else min(int(cfg.n_genuine), n_base)
    if cfg.n_genuine is not None and cfg.n_genuine > n_base:
        say(f"bags[{split}]: {cfg.n_genuine} genuine bags requested, the split allows {n_base}; using {n_base}")
    gen = np.arange(n_base) if n_gen == n_base else np.sort(_rng(cfg.seed, 0).choice(n_base, n_gen, replace=False))
    n_per_ratio = max(1, round_half_up(2 * n_gen / len(cfg.ratios)))
    same = _colliding_ratios(cfg)
    if same:
        say(f"bags[{split}]: {cfg.mode} mode gives ratios {same} the same contamination (the original rule's "
            "flaw, kept for comparison); use mode='word' for distinct difficulties")

    parts_rows = [base_row[gen][:, None, None] + template[None]]
    parts_foreign = [np.zeros(parts_rows[0].shape, bool)]
    base_idx = [gen]
    donors = [np.full(n_gen, -1, np.int64)]
    ratio_col = [np.zeros(n_gen)]
    for i, r in enumerate(cfg.ratios):
        rng = _rng(cfg.seed, 1, i)
        # a fresh permutation of all base bags per ratio, cycled when more bags are needed
        b = rng.permutation(n_base)[np.arange(n_per_ratio) % n_base]
        bw = lay.doc_writer[base_doc[b]]
        c = cfg.foreign_counts[r]
        if cfg.mode == "word":
            rows, foreign, dw = _contaminate_word(rng, lay, base_row[b], bw, c, n_words, template, split)
        else:
            rows, foreign, dw = _contaminate_instance(rng, lay, base_row[b], bw, c, template, split)
        parts_rows.append(rows)
        parts_foreign.append(foreign)
        base_idx.append(b)
        donors.append(dw)
        ratio_col.append(np.full(n_per_ratio, r))

    rows = np.concatenate(parts_rows)                           # (B, bag, ws) rows of the layout
    foreign = np.concatenate(parts_foreign)
    bidx = np.concatenate(base_idx)
    donor = np.concatenate(donors)
    ratio = np.concatenate(ratio_col)
    B = rows.shape[0]
    flat_rows = rows.reshape(B, -1)
    word_frac = distinct_foreign_frac(flat_rows, foreign.reshape(B, -1))
    window_foreign = foreign.any(-1)
    window_frac = window_foreign.mean(1)
    label = (ratio > 0).astype(np.int8)
    L = cfg.bag_size * cfg.window_size

    bags = pl.DataFrame({
        "bag_id": pl.Series(np.arange(B, dtype=np.int64)),
        "split": pl.Series([split] * B, dtype=pl.Utf8),
        "doc_id": lay.doc_ids.gather(base_doc[bidx]),
        "base_writer": pl.Series(lay.doc_writer[base_doc[bidx]], dtype=pl.Int64),
        "donor_writer": pl.Series(donor, dtype=pl.Int64),
        "label": pl.Series(label, dtype=pl.Int8),
        "ratio": pl.Series(ratio, dtype=pl.Float64),
        "foreign_word_frac": pl.Series(word_frac, dtype=pl.Float64),
        "foreign_window_frac": pl.Series(window_frac, dtype=pl.Float64),
        "word_ids": pl.Series(lay.word_id[flat_rows].astype(np.int32), dtype=pl.Array(pl.Int32, L)),
        "window_foreign": pl.Series(window_foreign, dtype=pl.Array(pl.Boolean, cfg.bag_size)),
        "mode": pl.Series([cfg.mode] * B, dtype=pl.Utf8),
        "model_id": pl.Series([lay.model_id] * B, dtype=pl.Utf8),
    }).with_columns(
        pl.when(pl.col("label") == 1).then(pl.col("donor_writer")).otherwise(None).alias("donor_writer")
    ).select(BAG_COLUMNS)

    meta: dict[str, int | float | str] = {
        "split": split, "mode": cfg.mode, "seed": cfg.seed, "model_id": lay.model_id or "",
        "bag_size": cfg.bag_size, "window_size": cfg.window_size,
        "window_stride": cfg.effective_window_stride, "bag_stride": cfg.effective_bag_stride,
        "words_per_bag": n_words, "n_docs": lay.n_docs, "n_writers": n_writers,
        "docs_shorter_than_bag": skipped_docs, "n_base_bags": n_base,
        "n_genuine_requested": "all" if cfg.n_genuine is None else int(cfg.n_genuine),
        "n_genuine": n_gen, "n_contaminated": int(B - n_gen), "n_contaminated_per_ratio": n_per_ratio,
        "n_bags": int(B), "contaminated_per_genuine": float((B - n_gen) / n_gen),
        "ratios_with_same_contamination": "; ".join(str(g) for g in same) or "none",
    }
    unit = "foreign_words" if cfg.mode == "word" else "replaced_windows"
    for r in cfg.ratios:
        m = ratio == r
        meta[f"{unit}@{r:g}"] = cfg.foreign_counts[r]
        meta[f"mean_foreign_word_frac@{r:g}"] = float(word_frac[m].mean())
        meta[f"mean_foreign_window_frac@{r:g}"] = float(window_frac[m].mean())
    say(f"bags[{split}]: {n_gen} genuine + {B - n_gen} contaminated ({n_per_ratio} per ratio) in {cfg.mode} mode, "
        f"{n_words} words per bag, from {n_base} base bags in {lay.n_docs - skipped_docs}/{lay.n_docs} documents; "
        + ", ".join(f"{r:g}->{meta[f'mean_foreign_word_frac@{r:g}']:.3f}" for r in cfg.ratios))
    return BagsResult(bags=bags, metadata=meta)


# Named presets: "demo" is the default, exact word-level contamination (50-word bags); "paper" is
# the original rule (stride-1 windows, whole windows replaced), for comparison with published numbers.
PRESETS: dict[str, BagConfig] = {
    # base bags overlap by half (bag_stride 5 windows): the synthetic documents are short (126
    # words), so this doubles the bags per document; every contaminated bag still has its own donor.
    "demo": BagConfig(bag_stride=5),
    "paper": BagConfig(mode="instance"),
}
