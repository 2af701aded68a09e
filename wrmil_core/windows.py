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
from wrmil_core.schema import WINDOW_COLUMNS

Log = Callable[[str], None] | None

_REQUIRED = ("word_id", "writer", "doc_id", "position")
_INT32_MAX = np.iinfo(np.int32).max


@dataclass(frozen=True)
class DocLayout:
    """A split's words sorted by ``(doc_id, position)``, with per-document offsets.

    Row ``r`` of the per-word arrays is the ``r``-th word in that order; document ``d`` occupies
    rows ``offset[d] : offset[d] + length[d]``.
    """

    word_id: np.ndarray      # int64 (N,)
    writer: np.ndarray       # int64 (N,)
    position: np.ndarray     # int32 (N,)
    doc_ids: pl.Series       # Utf8 (D,) sorted
    doc_writer: np.ndarray   # int64 (D,)
    offset: np.ndarray       # int64 (D,)
    length: np.ndarray       # int64 (D,)
    model_id: str | None

    @property
    def n_docs(self) -> int:
        return int(self.length.shape[0])


def single_model_id(df: pl.DataFrame, what: str) -> str | None:
    """The one ``model_id`` of a table (None when the column is absent, e.g. a words table).

    A table mixing several embedding models is refused: its vectors are not comparable.
    """
    if "model_id" not in df.columns:
        return None
    ids = df["model_id"].drop_nulls().unique().sort().to_list()
    if len(ids) > 1:
        raise WrmilInputError(
            f"{what} mixes embedding models {ids[:5]}: vectors from different models are not "
            "comparable; re-materialise word_embeddings for this split with a single model."
        )
    return ids[0] if ids else None


def document_layout(df: pl.DataFrame, *, what: str = "embeddings table") -> DocLayout:
    """Sort a words/embeddings table into documents and validate it.

    Refuses (``WrmilInputError``) missing columns, an empty table, a position repeated inside a
    document, a document with more than one writer and word ids that do not fit in int32.
    """
    missing = [c for c in _REQUIRED if c not in df.columns]
    if missing:
        raise WrmilInputError(
            f"{what} lacks column(s) {missing}; expected at least {list(_REQUIRED)} "
            "(see wrmil_core/schema.py, embeddings table)."
        )
    if df.height == 0:
        raise WrmilInputError(f"{what} is empty: no words to cut into windows or bags.")
    model_id = single_model_id(df, what)
    t = df.select(_REQUIRED).sort(["doc_id", "position"])
    for c in _REQUIRED:
        n_null = t[c].null_count()
        if n_null:
            raise WrmilInputError(f"{what}: column {c!r} has {n_null} null value(s); fill or drop those rows.")
    word_id = t["word_id"].cast(pl.Int64).to_numpy()
    if word_id.min() < 0 or word_id.max() > _INT32_MAX:
        raise WrmilInputError(
            f"{what}: word ids must lie in 0..{_INT32_MAX} to be stored as int32 in windows and bags; "
            f"found range {word_id.min()}..{word_id.max()}."
        )
    writer = t["writer"].cast(pl.Int64).to_numpy()
    position = t["position"].cast(pl.Int32).to_numpy()
    doc_idx = t["doc_id"].rle_id().to_numpy().astype(np.int64)
    length = np.bincount(doc_idx).astype(np.int64)
    offset = np.cumsum(length) - length
    doc_writer = writer[offset]
    bad = np.flatnonzero(writer != doc_writer[doc_idx])
    if bad.size:
        d = int(doc_idx[bad[0]])
        raise WrmilInputError(
            f"{what}: document {t['doc_id'][int(offset[d])]!r} holds words of writers "
            f"{sorted(set(writer[offset[d]:offset[d] + length[d]].tolist()))[:5]}; a document must "
            "have one writer (doc_id defaults to '<writer>_s<session>')."
        )
    same_doc = doc_idx[1:] == doc_idx[:-1]
    dup = np.flatnonzero(same_doc & (position[1:] == position[:-1]))
    if dup.size:
        r = int(dup[0])
        raise WrmilInputError(
            f"{what}: document {t['doc_id'][r]!r} has position {int(position[r])} twice "
            f"(word ids {int(word_id[r])} and {int(word_id[r + 1])}); positions must be unique per document."
        )
    return DocLayout(
        word_id=word_id, writer=writer, position=position, doc_ids=t["doc_id"].gather(offset),
        doc_writer=doc_writer, offset=offset, length=length, model_id=model_id,
    )


def window_starts(length: np.ndarray, span: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """All starts ``0, step, 2*step, ...`` of a ``span``-long run inside each document.

    Returns ``(doc, start)``: the document index and the offset inside it of every run, in
    document order; documents shorter than ``span`` give none. Vectorised (repeat + cumsum).
    """
    n = np.where(length >= span, (length - span) // step + 1, 0).astype(np.int64)
    doc = np.repeat(np.arange(length.shape[0], dtype=np.int64), n)
    first = np.cumsum(n) - n
    start = (np.arange(doc.shape[0], dtype=np.int64) - first[doc]) * step
    return doc, start


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
