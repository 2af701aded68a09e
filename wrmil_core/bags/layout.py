"""Window and bag index arithmetic: the single home of "which rows of a document form a window".

The documents of a split are laid out once, sorted by ``(doc_id, position)``; a window is a row
offset plus ``arange(window_size)`` and a bag is a run of windows. Everything here is numpy index
arithmetic on that layout, shared by windows, bags, bag tensors and document scoring.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from wrmil_core.errors import WrmilInputError

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


def index_word_ids(table_ids: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``query`` word ids in ``table_ids`` by one sorted lookup: ``(rows, found)``.

    ``rows`` is only meaningful where ``found``; duplicates in the table are the caller's concern.
    """
    table_ids = np.asarray(table_ids, dtype=np.int64)
    q = np.asarray(query, dtype=np.int64)
    order = np.argsort(table_ids, kind="stable")
    sorted_ids = table_ids[order]
    if sorted_ids.shape[0] == 0:
        return np.zeros(q.shape, np.int64), np.zeros(q.shape, bool)
    pos = np.clip(np.searchsorted(sorted_ids, q), 0, sorted_ids.shape[0] - 1)
    found = sorted_ids[pos] == q
    return order[pos], found


def document_windows(n_words: int, window_size: int) -> np.ndarray:
    """Starts of the windows that cover one questioned document of ``n_words`` words.

    Non-overlapping windows (:func:`window_starts` with step = span), plus one end-aligned window
    when ``n_words`` is not a multiple of ``window_size``, so every word is in some window. None
    when the document is shorter than one window.
    """
    _, starts = window_starts(np.array([n_words], dtype=np.int64), window_size, window_size)
    if starts.size and starts[-1] + window_size < n_words:
        starts = np.append(starts, n_words - window_size)
    return starts


def window_rows(starts: np.ndarray, window_size: int) -> np.ndarray:
    """Row indices of each window's words, ``(n_windows, window_size)``: start + arange(window_size)."""
    return np.asarray(starts, dtype=np.int64)[:, None] + np.arange(window_size, dtype=np.int64)[None, :]


def sliding_bags(n_windows: int, bag_size: int) -> np.ndarray:
    """Window indices of each bag, ``(n_bags, k)``: stride-1 runs of ``bag_size`` windows, or one
    bag of all windows when there are fewer than ``bag_size``."""
    k = min(bag_size, n_windows)
    return np.arange(n_windows - k + 1)[:, None] + np.arange(k)[None, :]


@dataclass(frozen=True)
class DocumentCut:
    """How one document is cut: window starts ``(W,)``, the word rows of each window ``(W, ws)``
    and the window indices of each sliding bag ``(B, k)``."""

    starts: np.ndarray
    rows: np.ndarray
    bags: np.ndarray
    bag_size: int

    @property
    def n_windows(self) -> int:
        return int(self.starts.shape[0])

    @property
    def short(self) -> bool:
        """Fewer windows than one bag: scored as one smaller bag (thresholds were fitted on full bags)."""
        return self.n_windows < self.bag_size


def cut_document(n_words: int, window_size: int, bag_size: int) -> DocumentCut:
    """Windows covering every word and the stride-1 sliding bags over them."""
    starts = document_windows(n_words, window_size)
    return DocumentCut(starts=starts, rows=window_rows(starts, window_size),
                       bags=sliding_bags(len(starts), bag_size), bag_size=bag_size)


def bag_template(bag_size: int, window_size: int, stride: int) -> np.ndarray:
    """(bag_size, window_size) offsets of each window's words inside a bag's span of consecutive
    words: window ``j`` starts ``j * stride`` words into the span."""
    return np.arange(bag_size)[:, None] * stride + np.arange(window_size)[None, :]
