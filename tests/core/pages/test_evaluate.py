"""The segmentation metrics against hand-computed values and a brute-force matcher."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest

from wrmil_core.pages.evaluate import (
    PageScore,
    iou_matrix,
    match_boxes,
    order_accuracy,
    score_page,
)


def test_iou_by_hand() -> None:
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30]])
    # overlap 5x10=50, union 100+100-50=150
    assert iou_matrix(a, b) == pytest.approx(np.array([[50 / 150, 1.0, 0.0]]))


def _brute_force(pred: np.ndarray, true: np.ndarray, min_iou: float) -> int:
    """Most matched pairs over all one-to-one assignments maximising total IoU (tiny cases only)."""
    iou = iou_matrix(pred, true)
    best_total, best_count = -1.0, 0
    for perm in itertools.permutations(range(len(true)), len(pred)):
        total = sum(iou[i, j] for i, j in enumerate(perm))
        if total > best_total + 1e-12:
            best_total, best_count = total, sum(iou[i, j] >= min_iou for i, j in enumerate(perm))
    return best_count


@pytest.mark.parametrize("seed", range(5))
def test_matching_agrees_with_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    true = np.array([[x, 0, x + 20, 20] for x in (0, 25, 50, 75)])
    pred = true[rng.permutation(4)[:3]] + rng.integers(-8, 9, size=(3, 4))
    pairs = match_boxes(pred, true, 0.5)
    assert len({p for p, _ in pairs}) == len(pairs) == len({t for _, t in pairs})  # one-to-one
    assert len(pairs) == _brute_force(pred, true, 0.5)


def test_order_accuracy_by_hand() -> None:
    assert order_accuracy(np.arange(5), np.arange(5)) == 1.0
    # predicted order 0 2 1 3 (true indices): successors true 0->1 1->2 2->3 3->end;
    # predicted 0->2 2->1 1->3 3->end: only word 3 (last in both) is in order.
    assert order_accuracy(np.array([0, 2, 1, 3]), np.array([0, 1, 2, 3])) == pytest.approx(1 / 4)
    # one line (2 words) read before the other: 0 1 | 2 3 read as 2 3 0 1: in order are 0 (->1) and 2 (->3)
    assert order_accuracy(np.array([2, 3, 0, 1]), np.array([0, 1, 2, 3])) == pytest.approx(2 / 4)
    assert order_accuracy(np.array([], dtype=int), np.array([], dtype=int)) == 0.0


def test_score_page_counts() -> None:
    true = pl.DataFrame({"word_index": [0, 1, 2], "x0": [0, 30, 60], "y0": [0, 0, 0], "x1": [20, 50, 80],
                         "y1": [10, 10, 10]})
    # word 2 missed, a spurious box, the first two read in reverse order
    pred = pl.DataFrame({"word_index": [1, 0, 2], "x0": [0, 31, 200], "y0": [0, 0, 0], "x1": [20, 50, 220],
                         "y1": [10, 10, 10]})
    s = score_page(pred, true)
    assert (s.n_pred, s.n_true, s.n_matched) == (3, 3, 2)
    assert s.precision == pytest.approx(2 / 3) and s.recall == pytest.approx(2 / 3)
    assert s.order == pytest.approx(0.0)  # 0 is followed by 1 in truth, by nothing in prediction; and vice versa
    total = s + PageScore(1, 1, 1, 1)
    assert (total.n_pred, total.n_true, total.n_matched, total.n_in_order) == (4, 4, 3, 1)
