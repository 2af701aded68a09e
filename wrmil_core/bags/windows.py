"""Cut each document into windows of consecutive words (stage 2, ``instance_windows[split]``),
and read such a table back as the windows bags are built from.

A window is ``window_size`` consecutive words of one document in reading order; consecutive
windows start ``stride`` words apart (1 in the original pipeline, ``window_size`` for
non-overlapping windows). Windows hold word ids into the split's embedding table, never vectors.

Everything is index arithmetic on numpy arrays: the documents are laid out once, sorted by
``(doc_id, position)``, and every window is a row offset plus ``arange(window_size)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from wrmil_core.bags.config import BagConfig
from wrmil_core.bags.layout import (
    DocLayout,
    document_layout,
    index_word_ids,
    single_model_id,
    window_rows,
    window_starts,
)
from wrmil_core.errors import WrmilInputError
from wrmil_core.runtime import Log
from wrmil_core.schema import WINDOW_COLUMNS


@dataclass
class WindowsResult:
    """Output of :func:`make_windows`: the windows table (schema ``windows``) and a summary."""

    windows: pl.DataFrame
    skipped_docs: int
    metadata: dict[str, int | float | str]


def cut_windows(lay: DocLayout, window_size: int, stride: int) -> pl.DataFrame:
    """The ``windows`` table of a layout: window_id 0..W-1 in document order, ``stride`` apart."""
    doc, start = window_starts(lay.length, window_size, stride)
    start_row = lay.offset[doc] + start
    rows = window_rows(start_row, window_size)
    n = int(doc.shape[0])
    return pl.DataFrame({
        "window_id": pl.Series(np.arange(n, dtype=np.int64)),
        "doc_id": lay.doc_ids.gather(doc) if n else pl.Series([], dtype=pl.Utf8),
        "writer": pl.Series(lay.doc_writer[doc], dtype=pl.Int64),
        "start": pl.Series(lay.position[start_row], dtype=pl.Int32),
        "word_ids": pl.Series(lay.word_id[rows].astype(np.int32).reshape(n, window_size),
                              dtype=pl.Array(pl.Int32, window_size)),
        "model_id": pl.Series([lay.model_id] * n, dtype=pl.Utf8),
    }).select(WINDOW_COLUMNS)


def make_windows(
    emb_or_words: pl.DataFrame, *, window_size: int = 5, stride: int = 1, log: Log = None,
) -> WindowsResult:
    """Cut every document into windows of ``window_size`` consecutive words, ``stride`` apart.

    ``emb_or_words`` is a split's embeddings table (or a words table: then ``model_id`` is null).
    Documents shorter than one window are skipped and counted in ``skipped_docs``.
    Returns the ``windows`` table of ``wrmil_core/schema.py`` (window_id 0..W-1 in document order).
    """
    if window_size < 1 or stride < 1:
        raise WrmilInputError(f"window_size and stride must be >= 1; got window_size={window_size}, stride={stride}.")
    lay = document_layout(emb_or_words)
    windows = cut_windows(lay, window_size, stride)
    skipped = int((lay.length < window_size).sum())
    n = windows.height
    same_doc = np.diff(np.repeat(np.arange(lay.n_docs), lay.length)) == 0
    meta: dict[str, int | float | str] = {
        "n_windows": n,
        "n_docs": lay.n_docs,
        "n_docs_windowed": lay.n_docs - skipped,
        "skipped_docs": skipped,
        "n_words": int(lay.word_id.shape[0]),
        "n_writers": int(np.unique(lay.doc_writer).shape[0]),
        "window_size": window_size,
        "stride": stride,
        "doc_words_min": int(lay.length.min()),
        "doc_words_median": float(np.median(lay.length)),
        "doc_words_max": int(lay.length.max()),
        "position_gaps": int(((np.diff(lay.position) > 1) & same_doc).sum()),
        "model_id": lay.model_id or "",
    }
    if log:
        log(f"windows: {n} windows of {window_size} words (stride {stride}) from "
            f"{lay.n_docs - skipped}/{lay.n_docs} documents; {skipped} shorter than a window skipped")
    return WindowsResult(windows=windows, skipped_docs=skipped, metadata=meta)


def windows_for(emb: pl.DataFrame, config: BagConfig, log: Log = None) -> WindowsResult:
    """The windows a bag configuration is built from (what ``instance_windows[split]`` holds)."""
    return make_windows(emb, window_size=config.window_size, stride=config.effective_window_stride, log=log)


@dataclass(frozen=True)
class SplitWindows:
    """A split's windows table read against its word layout: what bags are built from.

    start_row   (W,) layout row of each window's first word, in window_id order
    first       (D,) index of each document's first window (documents in layout order)
    count       (D,) windows per document
    """

    start_row: np.ndarray
    first: np.ndarray
    count: np.ndarray
    window_size: int
    stride: int

    def rows(self, window: np.ndarray) -> np.ndarray:
        """Layout rows of the words of windows ``window`` (any shape): shape ``(..., window_size)``."""
        window = np.asarray(window)
        return window_rows(self.start_row[window.reshape(-1)], self.window_size).reshape(*window.shape, self.window_size)


def _window_word_rows(windows: pl.DataFrame, lay: DocLayout, window_size: int, what: str, fix: str) -> np.ndarray:
    """(W, window_size) layout rows of the table's word ids, in row order; refuses a table
    with another window width, another embedding model or word ids outside the split."""
    missing = [c for c in ("window_id", "doc_id", "word_ids", "model_id") if c not in windows.columns]
    if missing:
        raise WrmilInputError(f"{what} lacks column(s) {missing} (see wrmil_core/schema.py, windows). {fix}")
    dtype = windows.schema["word_ids"]
    width = dtype.size if isinstance(dtype, pl.Array) else None
    if width != window_size:
        raise WrmilInputError(
            f"{what} holds windows of {width if width is not None else dtype} words, but the bags config asks "
            f"for window_size={window_size}: the windows were cut with another config. {fix}")
    model = single_model_id(windows, what) if windows.height else lay.model_id
    if model != lay.model_id:
        raise WrmilInputError(f"{what} was cut from embedding model {model!r}, the embeddings are from "
                              f"{lay.model_id!r}. {fix}")
    ids = windows["word_ids"].to_numpy()
    if ids.dtype.kind not in "iu":
        raise WrmilInputError(f"{what} has null word ids. {fix}")
    ids = ids.astype(np.int64).reshape(-1, window_size)
    rows, found = index_word_ids(lay.word_id, ids.reshape(-1))
    if not found.all():
        bad = int(ids.reshape(-1)[~found][0])
        raise WrmilInputError(f"{what} holds word id {bad}, which is not in the split's embeddings. {fix}")
    return rows.reshape(ids.shape)


def read_windows(windows: pl.DataFrame, lay: DocLayout, *, window_size: int, stride: int, split: str) -> SplitWindows:
    """Read ``instance_windows[split]`` as the windows to build bags from.

    The table must be exactly the cut of the split's documents (``lay``) into windows of
    ``window_size`` consecutive words, ``stride`` apart, in document order: anything else (another
    window size or stride, a stale or edited table) is refused with ``WrmilInputError``, since a
    bag is a run of consecutive windows of this table.
    """
    what = f"instance_windows[{split}]"
    fix = (f"Re-materialise {what} and bags_by_difficulty[{split}] together, with one bags config "
           f"(window_size={window_size}, window_stride={stride}).")
    windows = windows.sort("window_id") if "window_id" in windows.columns else windows
    rows = _window_word_rows(windows, lay, window_size, what, fix)
    doc, start = window_starts(lay.length, window_size, stride)
    expected = lay.offset[doc] + start
    n = min(rows.shape[0], expected.shape[0])
    diff = np.flatnonzero((rows[:n, 0] != expected[:n]) | (rows[:n] != rows[:n, :1] + np.arange(window_size)).any(1))
    if diff.size:
        where = f"the first difference is window {int(diff[0])} (in window_id order)"
    elif rows.shape[0] != expected.shape[0]:
        where = f"they differ from window {n} on"
    elif n and not windows["doc_id"].equals(lay.doc_ids.gather(doc), check_names=False):
        where = "its doc_id column does not match the words"
    else:
        count = np.bincount(doc, minlength=lay.n_docs).astype(np.int64)
        return SplitWindows(start_row=rows[:, 0], first=np.cumsum(count) - count, count=count,
                            window_size=window_size, stride=stride)
    raise WrmilInputError(
        f"{what} is not the split's documents cut into windows of {window_size} consecutive words "
        f"{stride} apart: it has {rows.shape[0]} windows where that cut has {expected.shape[0]}, and "
        f"{where}. The windows were cut with another window_stride, or edited. {fix}")
