"""Windows, sliding bags and window/word scores of one document: ``wrmil_core.scoring.aggregate``
(over the index arithmetic in ``wrmil_core.bags.layout``)."""

from __future__ import annotations

import numpy as np
import pytest

from wrmil_core.bags.layout import cut_document, document_windows, sliding_bags, window_rows
from wrmil_core.scoring.aggregate import aggregate, best_windows, rank_words, window_probabilities


def test_window_and_bag_geometry() -> None:
    assert document_windows(60, 5).tolist() == list(range(0, 60, 5))
    assert document_windows(62, 5).tolist() == [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 57]  # tail covered
    assert document_windows(5, 5).tolist() == [0]
    assert document_windows(4, 5).tolist() == []
    assert window_rows(np.array([0, 5, 7]), 5)[2].tolist() == [7, 8, 9, 10, 11]
    bags = sliding_bags(12, 10)
    assert bags.shape == (3, 10) and bags[0, 0] == 0 and bags[-1, -1] == 11
    assert sliding_bags(6, 10).tolist() == [list(range(6))]  # short document: one bag of what there is
    cut = cut_document(62, 5, 10)
    assert (cut.n_windows, cut.bags.shape, cut.short) == (13, (4, 10), False)
    assert cut.rows.max() == 61 and set(cut.rows.ravel().tolist()) == set(range(62))  # every word in a window
    assert cut_document(30, 5, 10).short


def test_window_probabilities_follow_the_declared_output() -> None:
    raw = np.array([[-1.0, 0.0, 2.0], [0.5, 0.25, 0.25]])
    probs = np.array([0.8, 0.4])
    np.testing.assert_allclose(window_probabilities("logit", probs, raw), 1 / (1 + np.exp(-raw)))
    att = window_probabilities("attention", probs, np.array([[0.2, 0.3, 0.5], [0.5, 0.25, 0.25]]))
    np.testing.assert_allclose(att, [[0.32, 0.48, 0.8], [0.4, 0.2, 0.2]])  # most attended window = bag prob
    with pytest.raises(ValueError, match="window_output"):
        window_probabilities("probability", probs, raw)  # type: ignore[arg-type]


def _best_windows_by_loop(rows: np.ndarray, window_scores: np.ndarray) -> dict[int, int]:
    """The reference: first window with the strictly highest score, per word."""
    best: dict[int, int] = {}
    for w, idx in enumerate(rows.tolist()):
        for i in idx:
            if i not in best or window_scores[w] > window_scores[best[i]]:
                best[i] = w
    return best


def test_word_scores_are_their_best_window_scores() -> None:
    rng = np.random.default_rng(0)
    cut = cut_document(62, 5, 10)  # the tail window overlaps window 11
    emb = rng.normal(size=(62, 8))
    raw = np.round(rng.normal(size=cut.bags.shape), 1)  # rounded: ties between windows
    assert cut.bags[3, 8:].tolist() == [11, 12]
    raw[3, 8:] = 5.0  # windows 11 and 12 tie on words 57..59: the first window wins
    s = aggregate(cut, "logit", 1 / (1 + np.exp(-raw.max(axis=1))), raw, emb)
    assert s.probability == pytest.approx(1 / (1 + np.exp(-raw.max())))
    for w in range(cut.n_windows):  # window score = max over the bags that hold it
        held = [1 / (1 + np.exp(-raw[b, k])) for b, k in zip(*np.nonzero(cut.bags == w))]
        assert s.window_scores[w] == max(held)
    ref = _best_windows_by_loop(cut.rows, s.window_scores)
    assert s.best_window.tolist() == [ref[i] for i in range(62)] and s.best_window[57:60].tolist() == [11] * 3
    assert all(s.word_scores[i] == s.window_scores[ref[i]] for i in range(62))
    assert best_windows(cut.rows, s.window_scores, s.word_scores).tolist() == s.best_window.tolist()


def test_rank_words_breaks_ties_by_distance_then_reading_order() -> None:
    scores = np.array([0.5, 0.9, 0.9, 0.9, 0.1])
    dist = np.array([0.0, 0.1, 0.3, 0.1, 0.9])
    assert rank_words(scores, dist).tolist() == [2, 1, 3, 0, 4]
