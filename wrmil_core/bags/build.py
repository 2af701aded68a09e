"""Genuine and contaminated document bags (stage 2, ``bags_by_difficulty[split]``).

A bag is ``bag_size`` windows of ``window_size`` consecutive words cut from one document: a base
bag is a run of ``bag_size`` consecutive rows of the split's windows table (``instance_windows``),
one every ``bag_stride`` windows, and :func:`build_bags` refuses a windows table that is not the
config's cut of the split. A
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
    ``k = max(1, int(bag_size * r))`` whole windows at seeded positions are replaced by windows of
    one donor document (rows of the windows table). The recorded fractions show what that rule really does: 5% and 10% are the same bag.

``foreign_word_frac`` is the fraction of the bag's *distinct* word ids written by the donor (in
``word`` mode exactly ``f / S``); ``foreign_window_frac`` is the fraction of its windows that hold
at least one foreign word.

Contamination geometries (``BagConfig.geometries``): ``contiguous`` is the rule above (in
``instance`` mode: the original rule); ``scattered`` (``word`` mode) puts the same number ``f`` of
foreign words at pairwise non-adjacent places of the span, ``f`` distinct words of one donor
document in their reading order, so that no detector is tuned to one geometry; ``two_donors``
(``word`` mode) splices two non-adjacent passages of consecutive words, one from each of two
different donor writers, of ``ceil(f/2)`` and ``floor(f/2)`` words (which passage, in reading order,
gets the odd word is drawn per bag), a bag of three writers (it needs ``f >= 2``, see
:class:`BagConfig`, and three writers in the split: a split with two skips it, logged).
``donor_writer`` is the writer of the first passage, ``donor_writer_2`` of the second (null in the
other geometries). Each bag records its ``geometry`` ("none" for genuine bags).

Balance follows the original, per geometry: 1 genuine : 2 contaminated, the same number of
contaminated bags per ratio (``round(2 * n_genuine / len(ratios))``), base passages re-used with
fresh donors and offsets where needed. The table holds the genuine bags, then each geometry's bags
ratio by ratio (contiguous, scattered, two_donors); each (geometry, ratio) draws from its own random
stream, so the bags of one geometry do not change when another is added. Deterministic for a seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from wrmil_core.bags.config import BagConfig, round_half_up
from wrmil_core.bags.contaminate import (
    contaminate_instance,
    contaminate_scattered,
    contaminate_two_donors,
    contaminate_word,
    distinct_foreign_frac,
)
from wrmil_core.bags.layout import DocLayout, document_layout, window_starts
from wrmil_core.bags.windows import SplitWindows, cut_windows, read_windows
from wrmil_core.errors import WrmilInputError
from wrmil_core.runtime import Log, speaker
from wrmil_core.schema import BAG_COLUMNS

Meta = dict[str, int | float | str]


@dataclass
class BagsResult:
    """Output of :func:`build_bags`: the ``bags`` table of ``wrmil_core/schema.py``, a summary, and
    the windows table the bags were built from."""

    bags: pl.DataFrame
    metadata: Meta
    windows: pl.DataFrame


@dataclass(frozen=True)
class BaseBags:
    """Every base bag of a split: ``bag_size`` consecutive windows of one document.

    doc     (n,) document index (layout order)
    window  (n,) index of the bag's first window in the windows table
    """

    doc: np.ndarray
    window: np.ndarray

    @property
    def n(self) -> int:
        return int(self.doc.shape[0])


@dataclass(frozen=True)
class BagPart:
    """The bags of one kind: the genuine ones, or those of one ratio.

    rows, foreign   (n, bag_size, window_size) layout rows of the words, and donor-written flags
    base            (n,) index into :class:`BaseBags`; donor (n,) donor writer, -1 for genuine
    donor_2         (n,) second donor writer of a "two_donors" bag; None: -1 (no second donor)
    geometry        "none" (genuine), "contiguous", "scattered" or "two_donors"
    """

    rows: np.ndarray
    foreign: np.ndarray
    base: np.ndarray
    donor: np.ndarray
    ratio: float
    geometry: str = "none"
    donor_2: np.ndarray | None = None

    @property
    def second_donor(self) -> np.ndarray:
        """(n,) second donor writer, -1 where there is none."""
        return self.donor_2 if self.donor_2 is not None else np.full(self.base.shape[0], -1, np.int64)


def _rng(seed: int, *stream: int) -> np.random.Generator:
    # one independent stream per stage (genuine pick, each ratio): results depend on the seed and
    # the input only, never on the order in which stages draw
    return np.random.default_rng(np.random.SeedSequence([int(seed), *stream]))


def build_bags(emb: pl.DataFrame, split: str, config: BagConfig | None = None, log: Log = None, *,
               windows: pl.DataFrame | None = None) -> BagsResult:
    """Build a split's genuine and contaminated bags from its windows and embeddings tables.

    ``windows`` is the split's ``instance_windows`` table (None: cut from ``emb`` with the config's
    window geometry); base bags are runs of its rows. ``emb`` needs word_id, writer, doc_id,
    position (and model_id, carried to every bag); the vectors are not read. Returns the ``bags``
    table (genuine bags first, then each ratio in order; ``bag_id`` 0..B-1) and metadata with
    counts per label and ratio and the measured foreign fractions. Raises ``WrmilInputError`` when
    the windows are not the config's cut of ``emb``, every document is shorter than a bag, or a
    writer has no donor in the split.
    """
    cfg = config or BagConfig()
    say = speaker(log)
    lay = document_layout(emb, what=f"embeddings of split {split!r}")
    _require_two_writers(lay, split)
    geometries = split_geometries(lay, cfg, split, say)
    if windows is None:
        windows = cut_windows(lay, cfg.window_size, cfg.effective_window_stride)
    sw = read_windows(windows, lay, window_size=cfg.window_size, stride=cfg.effective_window_stride, split=split)
    base = base_bags(sw, lay, cfg, split)
    genuine = _pick_genuine(base.n, cfg, split, say)
    n_per_ratio = max(1, round_half_up(2 * genuine.shape[0] / len(cfg.ratios)))
    if cfg.colliding_ratios:
        say(f"bags[{split}]: {cfg.mode} mode gives ratios {cfg.colliding_ratios} the same contamination (the "
            "original rule's flaw, kept for comparison); use mode='word' for distinct difficulties")
    parts = [_genuine_part(sw, base, genuine, cfg.bag_size)]
    parts += [_contaminated_part(lay, sw, base, cfg, i, n_per_ratio, split, geometry)
              for geometry in geometries for i in range(len(cfg.ratios))]
    bags = bag_table(parts, lay, base, cfg, split)
    meta = _summary(bags, lay, base, cfg, split, n_per_ratio, geometries)
    say(f"bags[{split}]: {meta['n_genuine']} genuine + {meta['n_contaminated']} contaminated ({n_per_ratio} per "
        f"ratio and geometry: {', '.join(geometries)}) in {cfg.mode} mode, {cfg.words_per_bag} words per bag, from {base.n} base bags in "
        f"{lay.n_docs - meta['docs_shorter_than_bag']}/{lay.n_docs} documents; "
        + ", ".join(f"{r:g}->{meta[f'mean_foreign_word_frac@{r:g}']:.3f}" for r in cfg.ratios))
    return BagsResult(bags=bags, metadata=meta, windows=windows)


def _require_two_writers(lay: DocLayout, split: str) -> None:
    n_writers = int(np.unique(lay.doc_writer).shape[0])
    if n_writers < 2:
        raise WrmilInputError(
            f"split {split!r} has {n_writers} writer: contaminated bags need a donor writer from the same "
            "split other than the base writer; give the split at least 2 writers (see writer_split)."
        )


def split_geometries(lay: DocLayout, cfg: BagConfig, split: str, say: Callable[[str], None]) -> tuple[str, ...]:
    """The configured geometries this split can build: "two_donors" needs 3 writers (a base writer and
    two donors), so a 2-writer split (a small data set's val or test writers) skips it, logged, rather
    than failing the whole run; refused when nothing else is configured."""
    n_writers = int(np.unique(lay.doc_writer).shape[0])
    if "two_donors" not in cfg.geometries or n_writers >= 3:
        return cfg.ordered_geometries
    kept = tuple(g for g in cfg.ordered_geometries if g != "two_donors")
    if not kept:
        raise WrmilInputError(
            f"split {split!r} has {n_writers} writers: 'two_donors' bags need two donor writers from the same split "
            "besides the base writer; give the split at least 3 writers (see writer_split) or add another "
            "geometry to BagConfig.geometries.")
    say(f"bags[{split}]: {n_writers} writers, too few for 'two_donors' (a base writer and two donors): its bags at "
        f"all {len(cfg.ratios)} ratios are skipped in this split; building {', '.join(kept)}")
    return kept


def base_bags(windows: SplitWindows, lay: DocLayout, cfg: BagConfig, split: str) -> BaseBags:
    """Runs of ``bag_size`` consecutive windows of one document, one every ``bag_stride`` windows."""
    doc, first = window_starts(windows.count, cfg.bag_size, cfg.effective_bag_stride)
    if doc.shape[0] == 0:
        raise WrmilInputError(
            f"split {split!r}: every document is shorter than one bag: a bag of {cfg.bag_size} windows x "
            f"{cfg.window_size} words (window stride {cfg.effective_window_stride}) needs documents of at least "
            f"{cfg.words_per_bag} words, and the longest has {int(lay.length.max())}. Use a smaller "
            "bag_size/window_size or longer documents."
        )
    return BaseBags(doc=doc, window=windows.first[doc] + first)


def _pick_genuine(n_base: int, cfg: BagConfig, split: str, say: Callable[[str], None]) -> np.ndarray:
    """Indices of the base bags kept as genuine bags: all, or ``n_genuine`` drawn without replacement."""
    if cfg.n_genuine is not None and cfg.n_genuine > n_base:
        say(f"bags[{split}]: {cfg.n_genuine} genuine bags requested, the split allows {n_base}; using {n_base}")
    if cfg.n_genuine is None or cfg.n_genuine >= n_base:
        return np.arange(n_base)
    return np.sort(_rng(cfg.seed, 0).choice(n_base, int(cfg.n_genuine), replace=False))


def _genuine_part(windows: SplitWindows, base: BaseBags, genuine: np.ndarray, bag_size: int) -> BagPart:
    """Genuine bags: their base bag's windows as they are."""
    rows = windows.rows(base.window[genuine][:, None] + np.arange(bag_size, dtype=np.int64))
    return BagPart(rows=rows, foreign=np.zeros(rows.shape, bool), base=genuine,
                   donor=np.full(genuine.shape[0], -1, np.int64), ratio=0.0)


# random stream of each geometry's contaminated bags: contiguous keeps the stream it always had, so
# adding "scattered" or "two_donors" leaves the other geometries' bags bit-identical for a seed
_GEOMETRY_STREAM = {"contiguous": 1, "scattered": 2, "two_donors": 3}


def _contaminated_part(lay: DocLayout, windows: SplitWindows, base: BaseBags, cfg: BagConfig, i: int,
                       n: int, split: str, geometry: str = "contiguous") -> BagPart:
    """``n`` contaminated bags at ratio ``cfg.ratios[i]`` in ``geometry``, from their own random stream."""
    r = cfg.ratios[i]
    rng = _rng(cfg.seed, _GEOMETRY_STREAM[geometry], i)
    # a fresh permutation of all base bags per ratio, cycled when more bags are needed
    b = rng.permutation(base.n)[np.arange(n) % base.n]
    writer = lay.doc_writer[base.doc[b]]
    count = cfg.foreign_counts[r]
    if geometry == "two_donors":   # word mode only (BagConfig refuses it in instance mode)
        rows, foreign, donor, donor_2 = contaminate_two_donors(
            rng, lay, windows.start_row[base.window[b]], writer, count, cfg.words_per_bag, cfg.window_template(), split)
        return BagPart(rows=rows, foreign=foreign, base=b, donor=donor, ratio=r, geometry=geometry, donor_2=donor_2)
    if cfg.mode == "word":
        splice = contaminate_scattered if geometry == "scattered" else contaminate_word
        base_row = windows.start_row[base.window[b]]
        rows, foreign, donor = splice(rng, lay, base_row, writer, count, cfg.words_per_bag,
                                      cfg.window_template(), split)
    else:
        rows, foreign, donor = contaminate_instance(rng, lay, windows, base.window[b], writer, count,
                                                    cfg.bag_size, split)
    return BagPart(rows=rows, foreign=foreign, base=b, donor=donor, ratio=r, geometry=geometry)


def bag_table(parts: list[BagPart], lay: DocLayout, base: BaseBags, cfg: BagConfig, split: str) -> pl.DataFrame:
    """The ``bags`` table of the parts, in order (``bag_id`` 0..B-1), with the measured fractions."""
    rows = np.concatenate([p.rows for p in parts])              # (B, bag, ws) rows of the layout
    foreign = np.concatenate([p.foreign for p in parts])
    doc = base.doc[np.concatenate([p.base for p in parts])]
    ratio = np.concatenate([np.full(p.base.shape[0], p.ratio) for p in parts])
    B = rows.shape[0]
    flat_rows = rows.reshape(B, -1)
    window_foreign = foreign.any(-1)
    return pl.DataFrame({
        "bag_id": pl.Series(np.arange(B, dtype=np.int64)),
        "split": pl.Series([split] * B, dtype=pl.Utf8),
        "doc_id": lay.doc_ids.gather(doc),
        "base_writer": pl.Series(lay.doc_writer[doc], dtype=pl.Int64),
        "donor_writer": pl.Series(np.concatenate([p.donor for p in parts]), dtype=pl.Int64),
        "donor_writer_2": pl.Series(np.concatenate([p.second_donor for p in parts]), dtype=pl.Int64),
        "label": pl.Series((ratio > 0).astype(np.int8), dtype=pl.Int8),
        "ratio": pl.Series(ratio, dtype=pl.Float64),
        "foreign_word_frac": pl.Series(distinct_foreign_frac(flat_rows, foreign.reshape(B, -1)), dtype=pl.Float64),
        "foreign_window_frac": pl.Series(window_foreign.mean(1), dtype=pl.Float64),
        "word_ids": pl.Series(lay.word_id[flat_rows].astype(np.int32),
                              dtype=pl.Array(pl.Int32, cfg.bag_size * cfg.window_size)),
        "window_foreign": pl.Series(window_foreign, dtype=pl.Array(pl.Boolean, cfg.bag_size)),
        "mode": pl.Series([cfg.mode] * B, dtype=pl.Utf8),
        "geometry": pl.Series(np.repeat([p.geometry for p in parts], [p.base.shape[0] for p in parts]).tolist(),
                              dtype=pl.Utf8),
        "model_id": pl.Series([lay.model_id] * B, dtype=pl.Utf8),
    }).with_columns(
        pl.when(pl.col("label") == 1).then(pl.col("donor_writer")).otherwise(None).alias("donor_writer"),
        pl.when(pl.col("donor_writer_2") >= 0).then(pl.col("donor_writer_2")).otherwise(None).alias("donor_writer_2"),
    ).select(BAG_COLUMNS)


def _summary(bags: pl.DataFrame, lay: DocLayout, base: BaseBags, cfg: BagConfig, split: str, n_per_ratio: int,
             geometries: tuple[str, ...]) -> Meta:
    """Counts per label and ratio, the geometry, and the mean measured fractions per ratio (and,
    with several contamination geometries, the window fraction per geometry too)."""
    ratio, geometry = bags["ratio"].to_numpy(), bags["geometry"].to_numpy()
    word_frac, window_frac = bags["foreign_word_frac"].to_numpy(), bags["foreign_window_frac"].to_numpy()
    B, n_gen = bags.height, int((bags["label"] == 0).sum())
    meta: Meta = {
        "split": split, "mode": cfg.mode, "seed": cfg.seed, "model_id": lay.model_id or "",
        "bag_size": cfg.bag_size, "window_size": cfg.window_size,
        "window_stride": cfg.effective_window_stride, "bag_stride": cfg.effective_bag_stride,
        "words_per_bag": cfg.words_per_bag, "n_docs": lay.n_docs,
        "n_writers": int(np.unique(lay.doc_writer).shape[0]),
        "docs_shorter_than_bag": int((lay.length < cfg.words_per_bag).sum()), "n_base_bags": base.n,
        "n_genuine_requested": "all" if cfg.n_genuine is None else int(cfg.n_genuine),
        "n_genuine": n_gen, "n_contaminated": int(B - n_gen), "n_contaminated_per_ratio": n_per_ratio,
        "n_bags": int(B), "contaminated_per_genuine": float((B - n_gen) / n_gen),
        "ratios_with_same_contamination": "; ".join(str(g) for g in cfg.colliding_ratios) or "none",
        "geometries": ", ".join(geometries),
    }
    unit = "foreign_words" if cfg.mode == "word" else "replaced_windows"
    for r in cfg.ratios:
        m = ratio == r
        meta[f"{unit}@{r:g}"] = cfg.foreign_counts[r]
        meta[f"mean_foreign_word_frac@{r:g}"] = float(word_frac[m].mean())
        meta[f"mean_foreign_window_frac@{r:g}"] = float(window_frac[m].mean())
        if len(geometries) > 1:   # scattered words touch more windows than a passage
            for g in geometries:
                meta[f"mean_foreign_window_frac@{r:g}/{g}"] = float(window_frac[m & (geometry == g)].mean())
    return meta
