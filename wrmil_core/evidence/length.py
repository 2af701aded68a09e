"""Detection against document length: test "documents" of 25 to 200 words with a planted foreign passage.

The bags have one fixed length, so the length question needs documents of its own. Each test
writer's words are concatenated in reading order (their documents by id, each by position) into
one sequence; a *genuine* document of ``L`` words is a run of that sequence, a *contaminated* one
is the same run with a contiguous passage of ``round(foreign_frac * L)`` words (at least one) at a
random place replaced by a run of another test writer's words. Writers with fewer than ``L``
words give no documents of that length; each writer gives up to ``per_writer`` of each kind.

Each detector scores a batch of documents ``(n_docs, L, dim)`` through a callable (so any model,
bag-level or word-level, fits); per length the curve reports the ROC AUC and the detection and
false-positive rates at the detector's 5%-FPR threshold fixed on the validation bags. A detector
whose statistic grows with the length shows it here as a false-positive rate that climbs with L.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

from wrmil_core.bags.layout import document_layout
from wrmil_core.errors import WrmilInputError
from wrmil_core.metrics import rates_at_threshold, roc_auc
from wrmil_core.mil.documents import DocScorer

LENGTHS: tuple[int, ...] = (25, 50, 100, 200)


@dataclass(frozen=True)
class LengthDocs:
    """Documents of one length: ``x`` (n, L, dim) float32, ``label`` (n,) 1 = planted passage,
    ``writer`` (n,) host writer, ``foreign`` (n, L) bool."""

    length: int
    x: np.ndarray
    label: np.ndarray
    writer: np.ndarray
    foreign: np.ndarray


@dataclass(frozen=True)
class LengthRow:
    """One detector at one document length."""

    model: str
    length: int
    n_h1: int
    n_h2: int
    n_writers: int
    auc: float | None
    detection: float | None  # at the val 5%-FPR threshold
    fpr: float | None  # measured on the genuine documents of this length

    def as_dict(self) -> dict:
        """The row as written to report.json."""
        return asdict(self)


def writer_sequences(emb: pl.DataFrame) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Each writer's word vectors in reading order: ``({writer: row indices}, (N, dim) matrix)``."""
    lay = document_layout(emb, what="test embeddings")
    order = emb.with_row_index("_row").sort(["doc_id", "position"])["_row"].to_numpy()
    matrix = np.asarray(emb["emb"].to_numpy(), dtype=np.float32)[order]
    rows: dict[int, list[np.ndarray]] = {}
    for d in range(lay.n_docs):  # documents are sorted by id, so each writer's come in that order
        o, n = int(lay.offset[d]), int(lay.length[d])
        rows.setdefault(int(lay.doc_writer[d]), []).append(np.arange(o, o + n))
    return {w: np.concatenate(r) for w, r in rows.items()}, matrix


def make_length_docs(seqs: Mapping[int, np.ndarray], matrix: np.ndarray, length: int, foreign_frac: float = 0.2,
                     per_writer: int = 10, seed: int = 0) -> LengthDocs:
    """Genuine and contaminated documents of ``length`` words (module docstring), equally many."""
    rng = np.random.default_rng([seed, length])
    m = max(1, int(round(foreign_frac * length)))
    donors = [w for w, r in seqs.items() if r.size >= m]
    docs: list[tuple[np.ndarray, int, int, np.ndarray]] = []  # (rows, label, host writer, foreign mask)
    for w in (w for w, r in seqs.items() if r.size >= length):
        seq, others = seqs[w], [d for d in donors if d != w]
        n_starts = seq.size - length + 1
        for s in rng.choice(n_starts, size=min(per_writer, n_starts), replace=False):
            doc = seq[s:s + length]
            docs.append((doc, 0, w, np.zeros(length, bool)))
            if others:
                planted, mask = _plant(rng, doc, seqs[others[int(rng.integers(len(others)))]], m)
                docs.append((planted, 1, w, mask))
    if not docs:
        return LengthDocs(length, np.zeros((0, length, matrix.shape[1]), np.float32), np.zeros(0, int),
                          np.zeros(0, int), np.zeros((0, length), bool))
    rows, labels, writers, foreign = zip(*docs)
    return LengthDocs(length, matrix[np.stack(rows)], np.asarray(labels), np.asarray(writers), np.stack(foreign))


def _plant(rng: np.random.Generator, doc: np.ndarray, donor: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """``doc`` with ``m`` consecutive words at a random place replaced by a random run of ``donor``:
    ``(rows, foreign mask)``."""
    p, q = int(rng.integers(doc.size - m + 1)), int(rng.integers(donor.size - m + 1))
    planted, mask = doc.copy(), np.zeros(doc.size, bool)
    planted[p:p + m], mask[p:p + m] = donor[q:q + m], True
    return planted, mask


def length_curve(emb: pl.DataFrame, scorers: Mapping[str, DocScorer], thresholds: Mapping[str, float],
                 lengths: tuple[int, ...] = LENGTHS, foreign_frac: float = 0.2, per_writer: int = 10,
                 seed: int = 0) -> list[LengthRow]:
    """AUC and detection / false-positive rate at the val 5%-FPR threshold, per detector and length.

    ``scorers``: detector name -> document scorer; ``thresholds``: detector name -> its val
    5%-FPR threshold on the same score scale. The same documents serve every detector.
    """
    if not set(scorers) <= set(thresholds):
        raise WrmilInputError(f"no 5%-FPR threshold for {sorted(set(scorers) - set(thresholds))}")
    seqs, matrix = writer_sequences(emb)
    out = []
    for length in lengths:
        docs = make_length_docs(seqs, matrix, length, foreign_frac, per_writer, seed)
        n_writers = int(np.unique(docs.writer).size)
        for name, score in scorers.items():
            s = np.asarray(score(docs.x), dtype=np.float64) if len(docs.label) else np.zeros(0)
            r = rates_at_threshold(docs.label, s, thresholds[name])
            out.append(LengthRow(model=name, length=length, n_h1=int(docs.label.sum()),
                                 n_h2=int((docs.label == 0).sum()), n_writers=n_writers, auc=roc_auc(docs.label, s),
                                 detection=r["detection_rate"], fpr=r["fpr"]))
    return out
