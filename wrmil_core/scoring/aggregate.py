"""From bag scores to window and word scores of one questioned document (numpy, no models).

The word sequence is cut into non-overlapping windows of the MIL model's ``window_size`` (plus one
end-aligned window when the length is not a multiple, so every word is scored), and a document
longer than one bag is covered by sliding bags of ``bag_size`` windows with a stride of one
window; the index arithmetic (:func:`~wrmil_core.bags.layout.cut_document`) lives in
:mod:`wrmil_core.bags.layout`.

Aggregation
    document probability  max over bags of the bag probability (the decision thresholds were
                          fitted on single bags, so a long document, scored by many bags, is
                          flagged somewhat more readily than one bag; the JSON says how many)
    window score          max over the bags holding the window of the window's score, on the
                          bag-probability scale (see :func:`window_probabilities`)
    word score            the score of its window (max over windows holding it); ties between
                          the words of one window are broken by the word's own cosine distance
                          from the rest of the document (``word_distance``)

A document with fewer windows than one bag, but at least two, is scored as one bag of the
windows it has (every MIL model here is size-agnostic over windows: no positional encoding).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from wrmil_core.bags.layout import DocumentCut

if TYPE_CHECKING:
    from wrmil_core.detectors.base import WindowOutput


def bag_embeddings(emb: np.ndarray, cut: DocumentCut) -> np.ndarray:
    """The bags of a document as embeddings, ``(B, k, window_size, dim)``, from its ``(n, dim)`` matrix."""
    return emb[cut.rows[cut.bags]]


def window_probabilities(window_output: WindowOutput, bag_probs: np.ndarray, window_raw: np.ndarray) -> np.ndarray:
    """Window scores on the bag-probability scale, ``(n_bags, k)``.

    ``window_output`` is the model class's declaration (:mod:`wrmil_core.detectors.base`). For
    ``"logit"`` (the bag logit is a smooth max of window logits), ``sigmoid(window score)``: a
    window scores what the bag would if it held only that kind of window. For ``"attention"``, the
    bag probability shared out by attention relative to the bag's most attended window.
    """
    if window_output == "logit":
        return 1.0 / (1.0 + np.exp(-window_raw))
    if window_output == "attention":
        top = np.maximum(window_raw.max(axis=1, keepdims=True), 1e-12)
        return bag_probs[:, None] * window_raw / top
    raise ValueError(f"unknown window_output {window_output!r}; expected 'logit' or 'attention'")


def scatter_max(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """``out[j]`` = max of ``values`` where ``index == j`` (``-inf`` where none); same shapes in."""
    out = np.full(size, -np.inf)
    np.maximum.at(out, index.ravel(), values.ravel())
    return out


def word_distances(emb: np.ndarray) -> np.ndarray:
    """Cosine distance of each word embedding from the mean of all other words of the document."""
    n = emb.shape[0]
    others = (emb.sum(axis=0, keepdims=True) - emb) / max(n - 1, 1)
    num = (emb * others).sum(axis=1)
    den = np.linalg.norm(emb, axis=1) * np.linalg.norm(others, axis=1) + 1e-12
    return 1.0 - num / den


def best_windows(rows: np.ndarray, window_scores: np.ndarray, word_scores: np.ndarray) -> np.ndarray:
    """For each word, the first of the highest-scored windows holding it (its score is the word's)."""
    window_idx = np.broadcast_to(np.arange(rows.shape[0])[:, None], rows.shape)
    hit = window_scores[:, None] == word_scores[rows]
    best = np.full(word_scores.shape[0], rows.shape[0], dtype=np.int64)
    np.minimum.at(best, rows[hit], window_idx[hit])
    return best


def rank_words(word_scores: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """Word indices, most suspicious first: by score, ties by word distance, then reading order."""
    return np.lexsort((np.arange(word_scores.shape[0]), -distances, -word_scores))


@dataclass(frozen=True)
class DocumentScores:
    """Every score of one document; per-bag inputs are ``(B,)``/``(B, k)``, the rest per window/word."""

    bag_probs: np.ndarray       # (B,)
    window_scores: np.ndarray   # (W,) bag-probability scale, max over bags
    window_raw: np.ndarray      # (W,) the model's own window scores, max over bags
    word_scores: np.ndarray     # (n,) the score of the word's best window
    word_distances: np.ndarray  # (n,)
    best_window: np.ndarray     # (n,) that window's index

    @property
    def probability(self) -> float:
        """P(more than one writer): max over bags."""
        return float(self.bag_probs.max())


def aggregate(cut: DocumentCut, window_output: WindowOutput, bag_probs: np.ndarray,
              window_raw: np.ndarray, emb: np.ndarray) -> DocumentScores:
    """Window and word scores from the model's per-bag outputs (see the module docstring)."""
    window_scores = scatter_max(cut.bags, window_probabilities(window_output, bag_probs, window_raw), cut.n_windows)
    per_word = np.broadcast_to(window_scores[:, None], cut.rows.shape)
    word_scores = scatter_max(cut.rows, per_word, emb.shape[0])
    return DocumentScores(
        bag_probs=bag_probs, window_scores=window_scores,
        window_raw=scatter_max(cut.bags, window_raw, cut.n_windows), word_scores=word_scores,
        word_distances=word_distances(emb), best_window=best_windows(cut.rows, window_scores, word_scores))
