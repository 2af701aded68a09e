"""Whole-document scoring with a word-level detector, and the document scorer every calibration uses.

The word-level detectors (:mod:`wrmil_core.detectors`: ``segment_scan``, ``scattered``) read a
document's words as one sequence of any length, and their one-writer statistic does not grow with
the length. Such a model scores a questioned document *whole*: its MIL wrapper gets the document as
one bag of ``n`` one-word windows, so the bag logit is the document statistic and each "window"
score is one word's evidence (:class:`wrmil_core.mil.models.SegmentScanMIL` flattens the windows
back into the word sequence). Every other model scores by sliding bags of its training geometry
(:mod:`.aggregate`), the maximum over bags being the document score.

:func:`document_scorer` is the one place that says how a model scores documents; the length
calibration (:mod:`.length_calibration`) fits on exactly those scores, so the thresholds and the
LR it saves are on the scale ``wrmil score`` reports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from wrmil_core.mil.inference import score_tensor

if TYPE_CHECKING:
    from wrmil_core.evidence.length import DocScorer
    from wrmil_core.mil.models import MILModel

# The training-free detectors whose statistic is defined on a whole word sequence of any length.
WHOLE_DOCUMENT_MODELS: frozenset[str] = frozenset({"segment_scan", "scattered"})
WHOLE, SLIDING = "whole document", "sliding bags"


def scores_whole(model_name: str) -> bool:
    """True when ``model_name`` scores a document as one word sequence (else by sliding bags)."""
    return model_name in WHOLE_DOCUMENT_MODELS


def whole_document(model: MILModel, emb: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """``(document score, per-word scores (n,), per-word evidence (n,))`` of one ``(n, dim)`` document:
    the scores on the bag-score scale (``sigmoid(statistic)``, ``sigmoid(evidence)``), the evidence
    on the detector's own scale."""
    probs, words = score_tensor(model, np.array(emb, dtype=np.float32)[None, :, None, :])  # a writable copy
    return float(probs[0]), 1.0 / (1.0 + np.exp(-words[0])), words[0]


def document_scorer(model: MILModel, model_name: str, window_size: int, bag_size: int) -> DocScorer:
    """Documents ``(N, L, dim)`` -> ``(N,)`` scores, the way ``wrmil score`` scores them (module docstring)."""
    if scores_whole(model_name):
        def score(x: np.ndarray) -> np.ndarray:
            return score_tensor(model, np.array(x, dtype=np.float32)[:, None])[0]  # one window of L words
        return score
    # the report's length curve scores bag-level models the same way
    from wrmil_core.mil.report.length import sliding_scorer

    return sliding_scorer(model, window_size, bag_size)


__all__ = ["SLIDING", "WHOLE", "WHOLE_DOCUMENT_MODELS", "document_scorer", "scores_whole", "whole_document"]
