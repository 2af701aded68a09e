"""How a model scores a whole document of any length: the one place every calibration and
``wrmil score`` take it from.

The word-level detectors (class attribute ``whole_document``: ``segment_scan``, ``scattered``) read
a document's words as one sequence of any length, and their one-writer statistic does not grow with
the length. Such a model scores a questioned document *whole*: its MIL wrapper gets the document as
one bag of ``n`` one-word windows, so the bag logit is the document statistic and each "window"
score is one word's evidence (:class:`wrmil_core.detectors.segment_scan.SegmentScanMIL` flattens
the windows back into the word sequence). Every other model scores by *sliding bags* of its
training geometry (:func:`wrmil_core.bags.layout.cut_document`), the maximum over bags being the
document score.

:func:`document_scorer` says how a model scores documents; the length calibration
(:mod:`wrmil_core.evidence.length_calibration`) fits on exactly those scores, so the thresholds and
the LR it saves are on the scale ``wrmil score`` reports. It sits at the mil level, below evidence,
so the calibration can use it without importing scoring or the report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from wrmil_core.bags.layout import cut_document
from wrmil_core.detectors.base import MILModel
from wrmil_core.detectors.run import score_tensor
from wrmil_core.mil.registry import scores_whole

DocScorer = Callable[[np.ndarray], np.ndarray]  # (n_docs, L, dim) float32 -> (n_docs,) scores
WHOLE, SLIDING = "whole document", "sliding bags"


def document_tensor(emb: np.ndarray) -> torch.Tensor:
    """One ``(n, dim)`` document as the one bag of ``n`` one-word windows a whole-document model scores."""
    return torch.from_numpy(np.array(emb, dtype=np.float32))[None, :, None, :]  # a writable copy


def whole_document(model: MILModel, emb: np.ndarray, features: Any = None) -> tuple[float, np.ndarray, np.ndarray]:
    """``(document score, per-word scores (n,), per-word evidence (n,))`` of one ``(n, dim)`` document:
    the scores on the bag-score scale (``sigmoid(statistic)``, ``sigmoid(evidence)``), the evidence
    on the detector's own scale. ``features``: the model's features of :func:`document_tensor` when
    already computed (``FusedMIL.features``)."""
    probs, words = score_tensor(model, document_tensor(emb), features=features)
    return float(probs[0]), 1.0 / (1.0 + np.exp(-words[0])), words[0]


def sliding_scorer(model: MILModel, window_size: int, bag_size: int, chunk: int = 32) -> DocScorer:
    """Documents -> max over their sliding bags of the bag probability."""
    def score(x: np.ndarray) -> np.ndarray:
        n, length, _ = x.shape
        cut = cut_document(length, window_size, bag_size)
        out = []
        for s in range(0, n, chunk):  # a 200-word document is ~30 bags: chunk to bound the memory
            bags = x[s:s + chunk][:, cut.rows[cut.bags]]  # (c, n_bags, k, window_size, dim)
            probs, _ = score_tensor(model, bags.reshape(-1, *bags.shape[2:]))
            out.append(probs.reshape(len(bags), -1).max(axis=1))
        return np.concatenate(out) if out else np.zeros(0)
    return score


def document_scorer(model: MILModel, model_name: str, window_size: int, bag_size: int) -> DocScorer:
    """Documents ``(N, L, dim)`` -> ``(N,)`` scores, the way ``wrmil score`` scores them (module docstring)."""
    if scores_whole(model_name):
        def score(x: np.ndarray) -> np.ndarray:
            return score_tensor(model, np.array(x, dtype=np.float32)[:, None])[0]  # one window of L words
        return score
    return sliding_scorer(model, window_size, bag_size)


__all__ = ["SLIDING", "WHOLE", "DocScorer", "document_scorer", "document_tensor", "sliding_scorer", "whole_document"]
