"""Documents of a given length with a planted passage, and the detection-against-length curve."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from wrmil_core.evidence.length import length_curve, make_length_docs, writer_sequences
from wrmil_core.metrics import roc_auc


def _table(n_writers: int = 5, docs_per_writer: int = 3, words: int = 40, dim: int = 6) -> pl.DataFrame:
    """Vectors that name themselves: [writer, doc, position, 0...], rows shuffled; doc ids sort by writer."""
    rows = []
    for w in range(n_writers):
        for d in range(docs_per_writer):
            for p in range(words):
                rows.append((1000 * w + 100 * d + p, w, f"w{w}_d{d}", p, [w, d, p] + [0.0] * (dim - 3)))
    word_id, writer, doc, pos, emb = zip(*rows)
    df = pl.DataFrame({"word_id": pl.Series(word_id, dtype=pl.Int64), "writer": pl.Series(writer, dtype=pl.Int64),
                       "doc_id": list(doc), "position": pl.Series(pos, dtype=pl.Int32),
                       "emb": pl.Series(np.asarray(emb, np.float32), dtype=pl.Array(pl.Float32, dim))})
    return df.sample(fraction=1.0, shuffle=True, seed=0)


def test_writer_sequences_are_in_reading_order() -> None:
    seqs, matrix = writer_sequences(_table())
    assert sorted(seqs) == [0, 1, 2, 3, 4]
    v = matrix[seqs[2]]
    assert (v[:, 0] == 2).all() and v.shape[0] == 120
    assert np.array_equal(v[:, 1] * 100 + v[:, 2], np.sort(v[:, 1] * 100 + v[:, 2]))  # doc, then position


@pytest.mark.parametrize("length", [25, 50, 100])
def test_planted_documents(length: int) -> None:
    seqs, matrix = writer_sequences(_table())
    docs = make_length_docs(seqs, matrix, length, foreign_frac=0.2, per_writer=4, seed=1)
    assert docs.x.shape == (2 * 5 * 4, length, 6) and docs.label.sum() == 5 * 4
    m = round(0.2 * length)
    for x, y, w, f in zip(docs.x, docs.label, docs.writer, docs.foreign):
        host = x[:, 0] == w
        if y == 0:
            assert host.all() and not f.any()
        else:
            assert np.array_equal(~host, f) and f.sum() == m  # the passage is another writer's words
            idx = np.flatnonzero(f)
            assert idx[-1] - idx[0] == m - 1  # contiguous
            assert np.unique(x[f, 0]).size == 1  # from one donor
        order = x[~f, 1] * 100 + x[~f, 2]
        assert (np.diff(order) > 0).all()  # the host's words stay a run in reading order


def test_writers_too_short_give_no_documents() -> None:
    seqs, matrix = writer_sequences(_table(words=10, docs_per_writer=2))  # 20 words per writer
    docs = make_length_docs(seqs, matrix, 25)
    assert docs.x.shape == (0, 25, 6) and docs.label.size == 0


def test_length_curve_uses_the_given_threshold() -> None:
    """A scorer that counts foreign-writer words against the majority: AUC 1; the fixed threshold
    decides detection and false positives exactly as recomputed here."""
    emb = _table()

    def minority(x: np.ndarray) -> np.ndarray:
        w = x[:, :, 0].astype(int)
        return np.array([len(r) - np.bincount(r).max() for r in w], dtype=float)

    rows = length_curve(emb, {"minority": minority}, {"minority": 6.0}, lengths=(25, 50), per_writer=3)
    seqs, matrix = writer_sequences(emb)
    for r in rows:
        docs = make_length_docs(seqs, matrix, r.length, per_writer=3)
        s = minority(docs.x)
        assert r.auc == roc_auc(docs.label, s) == 1.0
        assert r.detection == pytest.approx((s[docs.label == 1] >= 6).mean()) and r.fpr == 0.0
        assert (r.n_h1, r.n_h2, r.n_writers) == (15, 15, 5)
    assert rows[0].detection == 0.0 and rows[1].detection == 1.0  # 5 of 25 words < 6 <= 10 of 50
