"""Cut each document into windows of consecutive words (stage 2, ``instance_windows[split]``).

A window is ``window_size`` consecutive words of one document in reading order; consecutive
windows start ``stride`` words apart (1 in the original pipeline, ``window_size`` for
non-overlapping windows). Windows hold word ids into the split's embedding table, never vectors.

Everything is index arithmetic on numpy arrays: the documents are laid out once, sorted by
``(doc_id, position)``, and every window is a row offset plus ``arange(window_size)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import polars as pl

from wrmil_core.errors import WrmilInputError
from wrmil_core.runtime import Log
from wrmil_core.bags.layout import document_layout, window_starts
from wrmil_core.schema import WINDOW_COLUMNS




@dataclass
class WindowsResult:
    """Output of :func:`make_windows`: the windows table (schema ``windows``) and a summary."""

    windows: pl.DataFrame
    skipped_docs: int
    metadata: dict[str, int | float | str]


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
    doc, start = window_starts(lay.length, window_size, stride)
    start_row = lay.offset[doc] + start
    rows = start_row[:, None] + np.arange(window_size, dtype=np.int64)
    word_ids = lay.word_id[rows].astype(np.int32)
    skipped = int((lay.length < window_size).sum())
    n = int(doc.shape[0])
    windows = pl.DataFrame({
        "window_id": pl.Series(np.arange(n, dtype=np.int64)),
        "doc_id": lay.doc_ids.gather(doc) if n else pl.Series([], dtype=pl.Utf8),
        "writer": pl.Series(lay.doc_writer[doc], dtype=pl.Int64),
        "start": pl.Series(lay.position[start_row], dtype=pl.Int32),
        "word_ids": pl.Series(word_ids.reshape(n, window_size), dtype=pl.Array(pl.Int32, window_size)),
        "model_id": pl.Series([lay.model_id] * n, dtype=pl.Utf8),
    }).select(WINDOW_COLUMNS)
    gaps = int(((np.diff(lay.position) > 1) & (np.diff(np.repeat(np.arange(lay.n_docs), lay.length)) == 0)).sum())
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
        "position_gaps": gaps,
        "model_id": lay.model_id or "",
    }
    if log:
        log(f"windows: {n} windows of {window_size} words (stride {stride}) from "
            f"{lay.n_docs - skipped}/{lay.n_docs} documents; {skipped} shorter than a window skipped")
    return WindowsResult(windows=windows, skipped_docs=skipped, metadata=meta)
