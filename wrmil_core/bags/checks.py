"""Checks on a split's bags table against its embeddings table (``bags_by_difficulty[split]``).

Every check is a pure function ``check_*(bags, emb, **options) -> (passed, metadata)`` that never
raises on a broken table: an unexpected error becomes a failed check whose metadata says why.

Blocking (a bad bag table must not reach a model):
    check_bag_shapes             every bag holds exactly bag_size windows of window_size words
    check_labels_match_fractions labels, ratios, donors, geometries and recorded foreign fractions
                                 agree with what the word ids say (writer of each word vs the base writer);
                                 a two_donors bag's donors both wrote, evenly, the ratio's foreign words
    check_donors                 donors come from the split and differ from the base writer (and a
                                 two_donors bag's two donors from each other)
    check_word_ids_in_split      every word id is in the split's embedding table (same model)
    check_windows_match_instance_windows
                                 every bag is made of rows of the split's instance_windows table
                                 (base words in place; donor windows or donor passages genuine)

Non-blocking (figures to watch):
    check_balance                genuine : contaminated within tolerance of 1 : 2, per geometry
    check_equal_per_ratio        the same number of contaminated bags per ratio and geometry
    check_fraction_near_nominal  mean foreign word fraction per ratio close to the nominal ratio

About ``instance`` mode and ``check_fraction_near_nominal``: the check compares the recorded
``foreign_word_frac`` (the donor's share of the bag's distinct words, the same definition in both
modes) with the nominal ratio and reports the window fraction beside it. The original rule's
fractions are not the nominal ones (5% and 10% both replace one window of ten: 10% of the windows,
about 27% of the 14 distinct words), so on an ``instance``-mode table this check *fails on
purpose*, and its metadata shows the real fractions and which ratios are indistinguishable. It is
non-blocking so that such a table can still be built for comparison with published numbers.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import polars as pl

from wrmil_core.bags.config import GEOMETRIES, word_mode_foreign_count
from wrmil_core.bags.contaminate import distinct_foreign_frac
from wrmil_core.bags.layout import index_word_ids
from wrmil_core.schema import BAG_COLUMNS

Meta = dict[str, int | float | str]
CheckResult = tuple[bool, Meta]

_EXAMPLES = 5


class _Broken(Exception):
    """The table is too broken for this check to evaluate; the message says how."""


def _never_raises(fn: Callable[..., CheckResult]) -> Callable[..., CheckResult]:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs) -> CheckResult:
        try:
            return fn(*args, **kwargs)
        except _Broken as e:
            return False, {"reason": str(e)}
        except Exception as e:  # a check reports a broken table, it does not crash the run
            return False, {"reason": f"check could not evaluate the table: {type(e).__name__}: {e}"}
    return wrapper


def _examples(values: np.ndarray | list) -> str:
    v = list(np.asarray(values).tolist())
    return ", ".join(map(str, v[:_EXAMPLES])) + (" ..." if len(v) > _EXAMPLES else "")


def _need_columns(df: pl.DataFrame, cols: tuple[str, ...] | list[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise _Broken(f"{what} lacks column(s) {missing}")


def _lengths(col: pl.Series) -> np.ndarray:
    """Per-row element count of an Array/List column (-1 for a null row)."""
    if isinstance(col.dtype, pl.Array):
        col = col.cast(pl.List(col.dtype.inner))
    if not isinstance(col.dtype, pl.List):
        raise _Broken(f"column {col.name!r} has dtype {col.dtype}, expected an Array")
    return col.list.len().fill_null(-1).to_numpy().astype(np.int64)


def _geometry(bags: pl.DataFrame, bag_size: int | None, window_size: int | None) -> tuple[int, int]:
    """Expected (bag_size, window_size): given, else the most common lengths in the table."""
    if bag_size is None:
        wf = _lengths(bags["window_foreign"])
        bag_size = int(np.bincount(wf[wf > 0]).argmax()) if (wf > 0).any() else 0
    if window_size is None:
        wl = _lengths(bags["word_ids"])
        n = int(np.bincount(wl[wl > 0]).argmax()) if (wl > 0).any() else 0
        window_size = n // bag_size if bag_size and n % bag_size == 0 else 0
    if bag_size < 1 or window_size < 1:
        raise _Broken("cannot tell bag_size/window_size from the table (empty or inconsistent word_ids/window_foreign)")
    return bag_size, window_size


def _matrices(bags: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(word ids (B, L) int64, window_foreign (B, bag_size) bool, bag_size, window_size) of a
    table whose shapes are sound; raises ``_Broken`` otherwise (see check_bag_shapes)."""
    ok, meta = check_bag_shapes(bags)
    if not ok:
        raise _Broken(f"bag shapes are invalid, see check_bag_shapes: {meta.get('reason', '')}")
    bag_size, window_size = int(meta["bag_size"]), int(meta["window_size"])
    ids = np.asarray(bags["word_ids"].cast(pl.List(pl.Int64)).list.to_array(bag_size * window_size).to_numpy(), np.int64)
    wf = np.asarray(bags["window_foreign"].cast(pl.List(pl.Boolean)).list.to_array(bag_size).to_numpy(), bool)
    return ids.reshape(-1, bag_size * window_size), wf.reshape(-1, bag_size), bag_size, window_size


def _emb_rows(ids: np.ndarray, emb: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``emb`` holding word ids ``ids`` (any shape), and where they were found."""
    _need_columns(emb, ("word_id",), "embeddings table")
    rows, found = index_word_ids(emb["word_id"].cast(pl.Int64).to_numpy(), ids.reshape(-1))
    return rows.reshape(ids.shape), found.reshape(ids.shape)


def _second_donor(bags: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(has a second donor (B,), second donor writer (B,), a never-a-writer value where null); a table
    written before the column existed has none."""
    if "donor_writer_2" not in bags.columns:
        return np.zeros(bags.height, bool), np.full(bags.height, -(2**62), np.int64)
    d2 = bags["donor_writer_2"].cast(pl.Int64)
    return d2.is_not_null().to_numpy(), d2.fill_null(-(2**62)).to_numpy()


def _two_donor_label_problems(ids: np.ndarray, writer: np.ndarray, foreign: np.ndarray, donor: np.ndarray,
                              donor_2: np.ndarray, two: np.ndarray, ratio: np.ndarray) -> dict[str, np.ndarray]:
    """A two_donors bag: both donors wrote some of its foreign words, as evenly as possible, and together
    the word-mode count of its ratio (``max(1, round_half_up(ratio * distinct words))``)."""
    n1 = _distinct_span(ids, foreign & (writer == donor[:, None]))[0]
    n2 = _distinct_span(ids, foreign & (writer == donor_2[:, None]))[0]
    expected = np.zeros(ids.shape[0], np.int64)
    rows = np.flatnonzero(two)   # the count rule per bag, only where it is needed
    n_words = _distinct_span(ids[rows], np.ones(ids[rows].shape, bool))[0]
    expected[rows] = [word_mode_foreign_count(r, n) for r, n in zip(ratio[rows].tolist(), n_words.tolist())]
    return {
        "two_donors_not_both_writing": two & ((n1 == 0) | (n2 == 0)),
        "two_donors_split_uneven": two & (np.abs(n1 - n2) > 1),
        "two_donors_foreign_count_wrong": two & (n1 + n2 != expected),
    }


def _writers_of(ids: np.ndarray, emb: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    _need_columns(emb, ("word_id", "writer"), "embeddings table")
    rows, found = _emb_rows(ids, emb)
    return emb["writer"].cast(pl.Int64).to_numpy()[rows], found


# ----------------------------------------------------------------------------------- blocking

def _verdict(problems: dict[str, np.ndarray], bag_ids: np.ndarray, meta: Meta,
             failing: list[str] | None = None) -> CheckResult:
    """Count each problem mask into ``meta`` (``n_<problem>``); fail naming a few offending bag ids."""
    failing = list(failing or [])
    for name, mask in problems.items():
        meta[f"n_{name}"] = int(mask.sum())
        if mask.any():
            failing.append(f"{name} in {int(mask.sum())} bag(s) (bag ids {_examples(bag_ids[mask])})")
    if failing:
        meta["reason"] = "; ".join(failing)
    return not failing, meta


@_never_raises
def check_bag_shapes(
    bags: pl.DataFrame, emb: pl.DataFrame | None = None, *, bag_size: int | None = None,
    window_size: int | None = None,
) -> CheckResult:
    """Every bag holds exactly ``bag_size`` windows of ``window_size`` word ids, no nulls, unique
    bag ids, all schema columns present. Geometry defaults to the table's most common lengths."""
    _need_columns(bags, BAG_COLUMNS, "bags table")
    if bags.height == 0:
        return False, {"reason": "the bags table is empty", "n_bags": 0}
    bs, ws = _geometry(bags, bag_size, window_size)
    wl, fl = _lengths(bags["word_ids"]), _lengths(bags["window_foreign"])
    bad = (wl != bs * ws) | (fl != bs)
    null_ids = bags.select(
        pl.col("word_ids").cast(pl.List(pl.Int64)).list.eval(pl.element().is_null().any()).list.first().fill_null(False)
    ).to_series().to_numpy()
    null_wf = bags.select(
        pl.col("window_foreign").cast(pl.List(pl.Boolean)).list.eval(pl.element().is_null().any()).list.first().fill_null(False)
    ).to_series().to_numpy()
    bad |= null_ids.astype(bool) | null_wf.astype(bool)
    dup_ids = int(bags.height - bags["bag_id"].n_unique())
    meta: Meta = {
        "n_bags": bags.height, "bag_size": bs, "window_size": ws, "words_per_bag": bs * ws,
        "n_bad_bags": int(bad.sum()), "n_duplicate_bag_ids": dup_ids,
        "word_ids_dtype": str(bags.schema["word_ids"]), "window_foreign_dtype": str(bags.schema["window_foreign"]),
    }
    passed = not bad.any() and dup_ids == 0
    if bad.any():
        meta["bad_bag_ids"] = _examples(bags["bag_id"].to_numpy()[bad])
        meta["reason"] = (f"{int(bad.sum())} bag(s) do not hold {bs} windows x {ws} word ids "
                          f"(word_ids length {bs * ws}, window_foreign length {bs}, no nulls)")
    elif dup_ids:
        meta["reason"] = f"{dup_ids} repeated bag_id(s)"
    return passed, meta


@_never_raises
def check_labels_match_fractions(bags: pl.DataFrame, emb: pl.DataFrame, *, atol: float = 1e-9) -> CheckResult:
    """Labels agree with the contamination the word ids show.

    From the writer of every word id (looked up in ``emb``) versus the bag's base writer, recompute
    the foreign share of distinct words and which windows hold a foreign word, and require:
    label 1 <=> foreign_word_frac > 0; recorded foreign_word_frac, window_foreign and
    foreign_window_frac equal the recomputed ones; genuine bags have ratio 0 and no donor,
    contaminated ones a ratio > 0 and a donor who wrote every foreign word; geometry "none"
    exactly for the genuine bags, one of ``GEOMETRIES`` for the others; a second donor exactly for
    the "two_donors" bags, whose foreign words are both donors' (each some, split as evenly as
    possible) and as many as their ratio gives.
    """
    ids, wf, bs, ws = _matrices(bags)
    writer, found = _writers_of(ids, emb)
    if not found.all():
        raise _Broken(f"{int((~found).sum())} word id(s) are not in the embeddings table (see check_word_ids_in_split), "
                      f"e.g. {_examples(np.unique(ids[~found]))}")
    base = bags["base_writer"].cast(pl.Int64).to_numpy()
    label = bags["label"].cast(pl.Int64).to_numpy()
    ratio = bags["ratio"].cast(pl.Float64).to_numpy()
    donor = bags["donor_writer"].cast(pl.Int64)
    has_donor = donor.is_not_null().to_numpy()
    donor_np = donor.fill_null(-(2**62)).to_numpy()
    rec_word = bags["foreign_word_frac"].cast(pl.Float64).to_numpy()
    rec_win = bags["foreign_window_frac"].cast(pl.Float64).to_numpy()

    foreign = writer != base[:, None]
    word_frac = distinct_foreign_frac(ids, foreign)
    win = foreign.reshape(-1, bs, ws).any(-1)
    bag_ids = bags["bag_id"].to_numpy()
    problems = {
        "label_not_0_or_1": ~np.isin(label, (0, 1)),
        "label_vs_recorded_fraction": (label == 1) != (np.nan_to_num(rec_word, nan=-1.0) > 0),
        "recorded_word_frac_wrong": ~np.isclose(rec_word, word_frac, rtol=0, atol=atol),
        "label_vs_word_ids": (label == 1) != (word_frac > 0),
        "window_foreign_wrong": (wf != win).any(1),
        "window_frac_wrong": ~np.isclose(rec_win, win.mean(1), rtol=0, atol=atol),
        "genuine_with_ratio_or_donor": (label == 0) & ((ratio != 0) | has_donor),
        "contaminated_without_ratio_or_donor": (label == 1) & (~(ratio > 0) | ~has_donor),
    }
    has_2, donor_2 = _second_donor(bags)
    problems["foreign_word_not_by_donor"] = (foreign & (writer != donor_np[:, None]) & (writer != donor_2[:, None])).any(1)
    geometry = bags["geometry"].cast(pl.Utf8).fill_null("").to_numpy().astype(str)
    two = geometry == "two_donors"
    problems["two_donors_without_second_donor"] = two & ~has_2
    problems["second_donor_outside_two_donors"] = ~two & has_2
    problems.update(_two_donor_label_problems(ids, writer, foreign, donor_np, donor_2, two & has_2, ratio))
    problems["unknown_geometry"] = ~np.isin(geometry, ("none", *GEOMETRIES))
    problems["geometry_vs_label"] = np.isin(geometry, ("none", *GEOMETRIES)) & ((label == 0) != (geometry == "none"))
    meta: Meta = {"n_bags": int(ids.shape[0]), "n_contaminated": int((label == 1).sum())}
    return _verdict(problems, bag_ids, meta)


@_never_raises
def check_donors(bags: pl.DataFrame, emb: pl.DataFrame, *, split: str | None = None) -> CheckResult:
    """Bags belong to one split (``split`` when given) and every donor is a writer of that split's
    embedding table other than the base writer; base writer and document also come from the table."""
    _need_columns(bags, ("bag_id", "split", "doc_id", "base_writer", "donor_writer", "label"), "bags table")
    _need_columns(emb, ("writer", "doc_id"), "embeddings table")
    splits = bags["split"].unique().drop_nulls().sort().to_list()
    split_ok = len(splits) == 1 and bags["split"].null_count() == 0 and (split is None or splits[0] == split)
    writers = np.unique(emb["writer"].cast(pl.Int64).to_numpy())
    doc_writer = emb.group_by("doc_id").agg(pl.col("writer").first().cast(pl.Int64).alias("_doc_writer"))
    t = bags.select("bag_id", "doc_id", "label", pl.col("base_writer").cast(pl.Int64),
                    pl.col("donor_writer").cast(pl.Int64)).join(doc_writer, on="doc_id", how="left")
    contaminated = (t["label"] == 1).to_numpy()
    donor_null = t["donor_writer"].is_null().to_numpy()
    donor = t["donor_writer"].fill_null(-(2**62)).to_numpy()
    base = t["base_writer"].to_numpy()
    has_2, donor_2 = _second_donor(bags)   # same row order as t (a left join keeps it)
    problems = {
        "donor_missing": contaminated & donor_null,
        "donor_is_base_writer": contaminated & ~donor_null & (donor == base),
        "donor_outside_split": contaminated & ~donor_null & ~np.isin(donor, writers),
        "base_writer_outside_split": ~np.isin(base, writers),
        "doc_not_by_base_writer": t["_doc_writer"].fill_null(-(2**62)).to_numpy() != base,
        "second_donor_is_base_writer": has_2 & (donor_2 == base),
        "second_donor_is_first_donor": has_2 & (donor_2 == donor),
        "second_donor_outside_split": has_2 & ~np.isin(donor_2, writers),
    }
    bag_ids = t["bag_id"].to_numpy()
    meta: Meta = {"split": "/".join(map(str, splits)), "expected_split": split or "", "n_contaminated": int(contaminated.sum()),
                  "n_split_writers": int(writers.shape[0]),
                  "n_donor_writers": int(np.unique(donor[contaminated & ~donor_null]).shape[0])}
    failing = [] if split_ok else [f"bags carry split(s) {splits}, expected one split{f' {split!r}' if split else ''}"]
    return _verdict(problems, bag_ids, meta, failing)


@_never_raises
def check_word_ids_in_split(bags: pl.DataFrame, emb: pl.DataFrame) -> CheckResult:
    """Every word id of every bag is a row of the split's embedding table, and the bags were built
    against the same embedding model (``model_id``) as that table."""
    _need_columns(bags, ("bag_id", "word_ids", "model_id"), "bags table")
    _need_columns(emb, ("word_id",), "embeddings table")
    flat = bags.select(pl.col("bag_id"), pl.col("word_ids").cast(pl.List(pl.Int64))).explode("word_ids")
    ids = flat["word_ids"].to_numpy()
    null = np.isnan(ids) if ids.dtype.kind == "f" else np.zeros(ids.shape, bool)
    ids_i = np.where(null, -1, ids).astype(np.int64)
    _, found = index_word_ids(emb["word_id"].cast(pl.Int64).to_numpy(), ids_i)
    found &= ~null
    bag_models = bags["model_id"].unique().sort().to_list()
    emb_models = emb["model_id"].unique().sort().to_list() if "model_id" in emb.columns else [None]
    model_ok = len(bag_models) == 1 and bag_models == emb_models
    meta: Meta = {"n_word_ids": int(ids.shape[0]), "n_missing": int((~found).sum()),
                  "bags_model_id": "/".join(map(str, bag_models)), "embeddings_model_id": "/".join(map(str, emb_models))}
    failing = []
    if not found.all():
        meta["missing_word_ids"] = _examples(np.unique(ids_i[~found]))
        meta["bags_with_missing"] = _examples(np.unique(flat["bag_id"].to_numpy()[~found]))
        failing.append(f"{int((~found).sum())} word id(s) are not in the split's embeddings table "
                       f"(e.g. {meta['missing_word_ids']})")
    if not model_ok:
        failing.append(f"bags were built against model(s) {bag_models}, embeddings are from {emb_models}: "
                       "re-materialise bags_by_difficulty for this split")
    if failing:
        meta["reason"] = "; ".join(failing)
    return not failing, meta


def _window_matrix(windows: pl.DataFrame, window_size: int) -> tuple[pl.DataFrame, np.ndarray]:
    """The windows table in window_id order and its (W, window_size) word ids."""
    _need_columns(windows, ("window_id", "doc_id", "start", "word_ids"), "instance_windows table")
    w = windows.sort("window_id")
    dtype = w.schema["word_ids"]
    width = dtype.size if isinstance(dtype, pl.Array) else None
    if width != window_size:
        raise _Broken(f"instance_windows holds windows of {width if width is not None else dtype} words, the bags' "
                      f"windows have {window_size}: the windows were cut with another window_size")
    if w.height == 0:
        raise _Broken("the instance_windows table is empty")
    return w, np.asarray(w["word_ids"].to_numpy(), np.int64).reshape(-1, window_size)


def _codes(values: pl.Series, vocab: list[str]) -> np.ndarray:
    """Index of each value in ``vocab`` (-1 when absent): document ids as comparable integers."""
    return values.replace_strict(vocab, list(range(len(vocab))), default=-1, return_dtype=pl.Int64).to_numpy()


def _same_where(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per row: all ``values`` where ``mask`` holds are equal (True for a row with no such value)."""
    v = values.astype(np.int64)
    hi = np.where(mask, v, np.iinfo(np.int64).min).max(1)
    lo = np.where(mask, v, np.iinfo(np.int64).max).min(1)
    return ~mask.any(1) | (hi == lo)


def _base_window_rows(
    ids: np.ndarray, base: np.ndarray, w_ids: np.ndarray, bag_size: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per bag, the run of ``bag_size`` consecutive table rows its base words must fill, anchored on
    its first base word (a word sits at a given slot of at most one window of its document).

    Returns ``(run (B, bag_size), anchored (B,), slot_row (B, L), hit (B, L))``: the run, whether
    it could be anchored inside the table, and for every word the table row holding it at its slot.
    """
    B, L = ids.shape
    W, ws = w_ids.shape
    slot = np.tile(np.arange(ws), bag_size)
    pos, hit = index_word_ids((w_ids * ws + np.arange(ws)).reshape(-1), (ids * ws + slot).reshape(-1))
    slot_row, hit = (pos // ws).reshape(B, L), hit.reshape(B, L)
    first = np.argmax(base, axis=1)
    b = np.arange(B)
    anchor = slot_row[b, first] - first // ws
    found = base.any(1) & hit[b, first] & (anchor >= 0) & (anchor + bag_size <= W)
    rows = np.clip(anchor[:, None] + np.arange(bag_size), 0, W - 1)
    return rows, found, slot_row, hit


def _distinct_span(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, over the masked values: ``(number of distinct values, max - min + 1)``."""
    big = np.iinfo(np.int64).max
    s = np.sort(np.where(mask, values.astype(np.int64), big), axis=1)
    first = np.ones(s.shape, bool)
    first[:, 1:] = s[:, 1:] != s[:, :-1]
    hi = np.where(mask, values, np.iinfo(np.int64).min).max(1)
    lo = np.where(mask, values, big).min(1)
    return (first & (s != big)).sum(1), np.where(mask.any(1), hi - lo + 1, 0)


def _scattered_problems(replaced: np.ndarray, donor_pos: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: (donor words not in the reading order of the places they fill, two places adjacent)."""
    ri, rj = replaced[:, :, None], replaced[:, None, :]
    di, dj = donor_pos[:, :, None], donor_pos[:, None, :]
    pair = mask[:, :, None] & mask[:, None, :]
    disorder = pair & (((ri < rj) & ~(di < dj)) | ((ri == rj) & (di != dj)))
    return disorder.any((1, 2)), (pair & (np.abs(ri - rj) == 1)).any((1, 2))


def _passage_ok(doc: np.ndarray, replaced: np.ndarray, donor_pos: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per row: the ``mask``ed words are one passage of consecutive words of one document, each in
    the place of the base word it replaces, filling a run of places without gaps."""
    n_distinct, span = _distinct_span(replaced, mask)
    return _same_where(doc, mask) & _same_where(donor_pos - replaced, mask) & (n_distinct == span)


def _two_donor_passage_problems(two: np.ndarray, foreign: np.ndarray, second: np.ndarray, doc: np.ndarray,
                                replaced: np.ndarray, donor_pos: np.ndarray) -> dict[str, np.ndarray]:
    """A two_donors bag: each donor's words one passage, the first donor's before the second's, with at
    least one base word between them (``second``: the words of ``donor_writer_2``)."""
    first = foreign & ~second
    n_distinct, span = _distinct_span(replaced, foreign)
    big = np.iinfo(np.int64).max
    first_end = np.where(first, replaced, -1).max(1)
    second_start = np.where(second, replaced, big).min(1)
    return {
        "two_donor_passage_not_consecutive_in_one_document":
            two & ~(_passage_ok(doc, replaced, donor_pos, first) & _passage_ok(doc, replaced, donor_pos, second)),
        # adjacent passages would read as one run: two runs need a gap in the foreign places
        "two_donor_passages_adjacent": two & (n_distinct == span),
        "two_donor_passages_out_of_order": two & first.any(1) & second.any(1) & (first_end >= second_start),
    }


def _word_mode_problems(mode: np.ndarray, geometry: np.ndarray, anchored: np.ndarray, foreign: np.ndarray,
                        doc: np.ndarray, replaced: np.ndarray, donor_pos: np.ndarray,
                        second: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Word-mode foreign words by geometry; ``replaced`` is the base position each slot fills and
    ``second`` flags the words of a bag's second donor (None: no bag has one)."""
    word = (mode == "word") & anchored
    # a table without geometries is all contiguous: every name but the others' counts as one passage
    contiguous = word & ~np.isin(geometry, ("scattered", "two_donors"))
    scattered, two = word & (geometry == "scattered"), word & (geometry == "two_donors")
    n_distinct, span = _distinct_span(replaced, foreign)
    disorder, adjacent = np.zeros(mode.shape, bool), np.zeros(mode.shape, bool)
    if scattered.any():   # pairwise comparisons only for the bags that need them
        disorder[scattered], adjacent[scattered] = _scattered_problems(
            replaced[scattered], donor_pos[scattered], foreign[scattered])
    one_doc = _same_where(doc, foreign)
    second = np.zeros(foreign.shape, bool) if second is None else second
    return _two_donor_passage_problems(two, foreign, second, doc, replaced, donor_pos) | {
        # contiguous: donor word position minus the position of the base word it replaces is constant
        "donor_words_not_consecutive_in_one_document": contiguous & ~(one_doc & _same_where(donor_pos - replaced, foreign)),
        "foreign_passage_not_contiguous": contiguous & (n_distinct != span),
        "scattered_words_not_in_reading_order_of_one_document": scattered & ~(one_doc & ~disorder),
        "scattered_words_adjacent": scattered & adjacent,
        "scattered_in_instance_mode": (mode == "instance") & (geometry == "scattered"),
        "two_donors_in_instance_mode": (mode == "instance") & (geometry == "two_donors"),
    }


@_never_raises
def check_windows_match_instance_windows(bags: pl.DataFrame, emb: pl.DataFrame, *, windows: pl.DataFrame) -> CheckResult:
    """Every bag is made of rows of the split's ``instance_windows`` table (``windows``).

    The base writer's words of a bag fill ``bag_size`` consecutive rows of the table, all of the
    bag's document, each word at its own slot. In ``instance`` mode every window holding a foreign
    word is a whole row of the table, all from one donor document; in ``word`` mode the foreign
    words are, for a ``contiguous`` bag, one passage of consecutive words of one donor document of
    the split, in reading order, each in the place of the base word it replaces, and for a
    ``scattered`` bag distinct words of one donor document in their reading order, at pairwise
    non-adjacent places, and for a ``two_donors`` bag one such passage per donor (the first donor's
    first), not adjacent to each other. Fails on bags cut with another window size or stride.
    """
    ids, _, bs, ws = _matrices(bags)
    wt, w_ids = _window_matrix(windows, ws)
    rows, found = _emb_rows(ids, emb)
    if not found.all():
        raise _Broken(f"{int((~found).sum())} word id(s) are not in the embeddings table (see check_word_ids_in_split)")
    _need_columns(emb, ("writer", "doc_id", "position"), "embeddings table")
    writer = emb["writer"].cast(pl.Int64).to_numpy()[rows]
    base = writer == bags["base_writer"].cast(pl.Int64).to_numpy()[:, None]
    run, anchored, slot_row, hit = _base_window_rows(ids, base, w_ids, bs)
    vocab = wt["doc_id"].unique().sort().to_list()
    w_doc = _codes(wt["doc_id"], vocab)
    expected = w_ids[run].reshape(ids.shape)
    mode = bags["mode"].to_numpy()
    problems = {
        "no_base_word": ~base.any(1),
        "base_words_not_in_instance_windows": base.any(1) & (~anchored | (base & (ids != expected)).any(1)),
        "windows_not_of_bag_document": anchored & (w_doc[run] != _codes(bags["doc_id"], vocab)[:, None]).any(1),
        "unknown_mode": ~np.isin(mode, ("word", "instance")),
    }
    foreign = ~base
    # instance mode: each window with a foreign word is a whole row, all from one donor document
    win_foreign = foreign.reshape(-1, bs, ws).any(-1)
    row0, hit0 = slot_row.reshape(-1, bs, ws)[:, :, 0], hit.reshape(-1, bs, ws)[:, :, 0]
    whole = hit0 & (w_ids[row0] == ids.reshape(-1, bs, ws)).all(-1)
    instance = mode == "instance"
    problems["donor_window_not_in_instance_windows"] = instance & (win_foreign & ~whole).any(1)
    problems["donor_windows_from_several_documents"] = instance & ~_same_where(w_doc[row0], win_foreign)
    doc = _codes(emb["doc_id"], emb["doc_id"].unique().sort().to_list())[rows]
    replaced = wt["start"].cast(pl.Int64).to_numpy()[np.repeat(run, ws, axis=1)] + np.tile(np.arange(ws), bs)
    donor_pos = emb["position"].cast(pl.Int64).to_numpy()[rows]
    problems.update(_word_mode_problems(mode, bags["geometry"].cast(pl.Utf8).fill_null("").to_numpy().astype(str),
                                        anchored, foreign, doc, replaced, donor_pos,
                                        foreign & (writer == _second_donor(bags)[1][:, None])))
    meta: Meta = {"n_bags": int(ids.shape[0]), "n_windows": int(w_ids.shape[0]), "window_size": ws}
    passed, meta = _verdict(problems, bags["bag_id"].to_numpy(), meta)
    if not passed:
        meta["reason"] += ("; the bags were not built from these windows: re-materialise instance_windows and "
                           "bags_by_difficulty for this split together, with one bags config")
    return passed, meta


# ------------------------------------------------------------------------------- non-blocking

def _ratio_counts(bags: pl.DataFrame) -> dict[tuple[str, float], int]:
    """Contaminated bags per (geometry, ratio); geometry "contiguous" for a table without the column."""
    t = bags.filter(pl.col("label") == 1)
    if "geometry" not in t.columns:
        t = t.with_columns(pl.lit("contiguous").alias("geometry"))
    c = t.group_by("geometry", "ratio").len().sort("geometry", "ratio")
    return {(str(g), float(r)): int(n) for g, r, n in zip(c["geometry"].to_list(), c["ratio"].to_list(), c["len"].to_list())}


@_never_raises
def check_balance(bags: pl.DataFrame, emb: pl.DataFrame | None = None, *, target: float = 2.0,
                  tol: float = 0.01) -> CheckResult:
    """Per contamination geometry, its contaminated : genuine within ``tol`` (relative) of
    ``target`` (2, i.e. 1 : 2), allowing the half bag per ratio that rounding the per-ratio count
    can add or remove."""
    _need_columns(bags, ("label", "ratio"), "bags table")
    n_gen = int((bags["label"] == 0).sum())
    counts = _ratio_counts(bags)
    geometries = sorted({g for g, _ in counts}) or ["contiguous"]
    meta: Meta = {"n_genuine": n_gen, "n_contaminated": int((bags["label"] == 1).sum()),
                  "target_contaminated_per_genuine": target, "geometries": ", ".join(geometries)}
    off = []
    for g in geometries:
        n_con = sum(n for (gg, _), n in counts.items() if gg == g)
        n_ratios = max(1, sum(1 for gg, _ in counts if gg == g))
        allowed = max(tol * target * n_gen, math.ceil(n_ratios / 2))
        dev = abs(n_con - target * n_gen)
        meta.update({f"n_contaminated/{g}": n_con, f"allowed_deviation_bags/{g}": float(allowed),
                     f"deviation_bags/{g}": float(dev),
                     f"contaminated_per_genuine/{g}": float(n_con / n_gen) if n_gen else float("nan")})
        if dev > allowed:
            off.append(f"{g}: {n_gen} genuine : {n_con} contaminated is not within {allowed:g} bags of 1 : {target:g}")
    passed = n_gen > 0 and not off
    if not passed:
        meta["reason"] = "; ".join(off) or "no genuine bags"
    return passed, meta


@_never_raises
def check_equal_per_ratio(bags: pl.DataFrame, emb: pl.DataFrame | None = None) -> CheckResult:
    """The same number of contaminated bags at every ratio (difficulty) and geometry."""
    _need_columns(bags, ("label", "ratio"), "bags table")
    counts = _ratio_counts(bags)
    meta: Meta = {"n_ratios": len({r for _, r in counts}), "geometries": ", ".join(sorted({g for g, _ in counts}))}
    meta.update({f"n_bags@{r:g}/{g}": n for (g, r), n in counts.items()})
    passed = len(counts) > 0 and len(set(counts.values())) == 1
    if not passed:
        meta["reason"] = ("no contaminated bags" if not counts else
                          "unequal counts per ratio: " + ", ".join(f"{r:g} {g}: {n}" for (g, r), n in counts.items()))
    return passed, meta


@_never_raises
def check_fraction_near_nominal(bags: pl.DataFrame, emb: pl.DataFrame | None = None, *,
                                tol: float = 0.02) -> CheckResult:
    """Mean recorded foreign word fraction per ratio within ``max(tol, 0.5 / words_per_bag)`` of the
    nominal ratio (half a word is the rounding a bag's geometry forces), and no two ratios with
    the same contamination. Fails by design on ``instance``-mode tables (see module docstring);
    the metadata carries the real word and window fractions per ratio either way."""
    _need_columns(bags, ("label", "ratio", "foreign_word_frac", "foreign_window_frac", "word_ids", "mode"), "bags table")
    ids, _, _, _ = _matrices(bags)
    genuine = (bags["label"] == 0).to_numpy()
    s = np.sort(ids[genuine] if genuine.any() else ids, axis=1)
    # a genuine bag's distinct words are its span in the document (instance-mode contaminated
    # bags hold more: the replaced windows' base words survive in their overlapping neighbours)
    n_words = float(np.median(1 + (s[:, 1:] != s[:, :-1]).sum(1)))
    allowed = max(tol, 0.5 / n_words)
    t = (bags.filter(pl.col("label") == 1).group_by("ratio")
         .agg(pl.col("foreign_word_frac").mean().alias("w"), pl.col("foreign_window_frac").mean().alias("win"))
         .sort("ratio"))
    ratios, w, win = t["ratio"].to_list(), t["w"].to_list(), t["win"].to_list()
    modes = bags["mode"].unique().sort().to_list()
    meta: Meta = {"mode": "/".join(map(str, modes)), "words_per_bag": n_words, "allowed_deviation": allowed}
    far = []
    for r, a, b in zip(ratios, w, win):
        meta[f"mean_foreign_word_frac@{r:g}"] = float(a)
        meta[f"mean_foreign_window_frac@{r:g}"] = float(b)
        if abs(a - r) > allowed:
            far.append(f"{r:g} -> {a:.3f}")
    same = [f"{ratios[i]:g}={ratios[j]:g}" for i in range(len(ratios)) for j in range(i + 1, len(ratios))
            if abs(w[i] - w[j]) < 0.5 / n_words and abs(win[i] - win[j]) < 0.5 / n_words]
    meta["max_abs_deviation"] = float(max((abs(a - r) for r, a in zip(ratios, w)), default=float("nan")))
    meta["indistinct_ratios"] = ", ".join(same) or "none"
    failing = []
    if not ratios:
        failing.append("no contaminated bags")
    if far:
        failing.append(f"mean foreign word fraction far from nominal (> {allowed:.3f}): " + ", ".join(far))
    if same:
        failing.append(f"ratios with the same contamination: {meta['indistinct_ratios']}")
    if failing:
        if "instance" in modes:
            failing.append("expected for mode='instance': the original rule replaces max(1, int(bag_size*r)) windows, "
                           "so its fractions are not the nominal ones")
        meta["reason"] = "; ".join(failing)
    return not failing, meta


BLOCKING_CHECKS: dict[str, Callable[..., CheckResult]] = {
    "bag_shapes": check_bag_shapes,
    "labels_match_fractions": check_labels_match_fractions,
    "donors_from_split": check_donors,
    "word_ids_in_split": check_word_ids_in_split,
    "windows_match_instance_windows": check_windows_match_instance_windows,
}
NON_BLOCKING_CHECKS: dict[str, Callable[..., CheckResult]] = {
    "balance_1_to_2": check_balance,
    "equal_count_per_ratio": check_equal_per_ratio,
    "fraction_near_nominal": check_fraction_near_nominal,
}


def run_bag_checks(bags: pl.DataFrame, emb: pl.DataFrame, windows: pl.DataFrame, *, split: str | None = None,
                   bag_size: int | None = None, window_size: int | None = None) -> dict[str, CheckResult]:
    """All checks by name (blocking first) of a split's bags against its embeddings and its
    ``instance_windows`` table (``windows``)."""
    out: dict[str, CheckResult] = {
        "bag_shapes": check_bag_shapes(bags, emb, bag_size=bag_size, window_size=window_size),
        "labels_match_fractions": check_labels_match_fractions(bags, emb),
        "donors_from_split": check_donors(bags, emb, split=split),
        "word_ids_in_split": check_word_ids_in_split(bags, emb),
        "windows_match_instance_windows": check_windows_match_instance_windows(bags, emb, windows=windows),
    }
    out.update({name: fn(bags, emb) for name, fn in NON_BLOCKING_CHECKS.items()})
    return out
