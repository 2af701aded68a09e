"""Scoring a segmentation against true word boxes: one-to-one matching at an IoU threshold
(scipy's ``linear_sum_assignment`` on IoU), precision, recall and reading-order accuracy.

Reading-order accuracy is defined on the matched words only (missed and spurious words are
already counted by recall and precision): order the matched words by their true index, and
separately by their predicted index; a matched word is in order when the word after it in the
predicted order is the word after it in the true order (for the last word: when it is last in
both). The accuracy is the share of matched words in order. One word read out of place costs
about two or three words (itself and its neighbours), a swapped pair of lines about three
words, not the whole page.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.optimize import linear_sum_assignment

BOX = ("x0", "y0", "x1", "y1")


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (n, 4) with every box in ``b`` (m, 4); boxes ``x0, y0, x1, y1``, ends exclusive."""
    a = a.astype(np.float64)[:, None, :]
    b = b.astype(np.float64)[None, :, :]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-9)


def match_boxes(pred: np.ndarray, true: np.ndarray, min_iou: float = 0.5) -> list[tuple[int, int]]:
    """One-to-one (pred row, true row) pairs maximising total IoU, keeping pairs with IoU >= ``min_iou``."""
    if len(pred) == 0 or len(true) == 0:
        return []
    iou = iou_matrix(pred, true)
    rows, cols = linear_sum_assignment(iou, maximize=True)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if iou[r, c] >= min_iou]


def order_accuracy(pred_index: np.ndarray, true_index: np.ndarray) -> float:
    """Share of matched words whose successor in predicted order is their successor in true order
    (see the module docstring); ``pred_index[k], true_index[k]`` are the indices of matched pair k."""
    n = len(pred_index)
    if n == 0:
        return 0.0
    by_true = np.argsort(true_index, kind="stable")
    by_pred = np.argsort(pred_index, kind="stable")
    next_true = np.full(n, -1)
    next_true[by_true[:-1]] = by_true[1:]
    next_pred = np.full(n, -1)
    next_pred[by_pred[:-1]] = by_pred[1:]
    return float((next_true == next_pred).mean())


@dataclass(frozen=True)
class PageScore:
    """Counts and rates of one page (or, summed, of many)."""

    n_pred: int
    n_true: int
    n_matched: int
    n_in_order: int

    @property
    def precision(self) -> float:
        return self.n_matched / self.n_pred if self.n_pred else 0.0

    @property
    def recall(self) -> float:
        return self.n_matched / self.n_true if self.n_true else 0.0

    @property
    def order(self) -> float:
        return self.n_in_order / self.n_matched if self.n_matched else 0.0

    def __add__(self, other: PageScore) -> PageScore:
        return PageScore(self.n_pred + other.n_pred, self.n_true + other.n_true,
                         self.n_matched + other.n_matched, self.n_in_order + other.n_in_order)


def score_page(pred: pl.DataFrame, true: pl.DataFrame, min_iou: float = 0.5) -> PageScore:
    """Score predicted word boxes against true ones (both with ``word_index`` and the box columns)."""
    pairs = match_boxes(pred.select(BOX).to_numpy(), true.select(BOX).to_numpy(), min_iou)
    if not pairs:
        return PageScore(pred.height, true.height, 0, 0)
    p_idx = pred["word_index"].to_numpy()[[p for p, _ in pairs]]
    t_idx = true["word_index"].to_numpy()[[t for _, t in pairs]]
    in_order = round(order_accuracy(p_idx, t_idx) * len(pairs))
    return PageScore(pred.height, true.height, len(pairs), in_order)
