"""Metric wrappers against scikit-learn, the bootstrap CI, and the n/a (None) cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from wrmil_core import metrics as M


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(60, int), np.ones(120, int)]
    s = np.round(rng.normal(size=180) + 0.8 * y, 1)  # rounded: plenty of ties
    return y, s


def test_auc_matches_sklearn_and_is_none_on_one_class(data) -> None:
    y, s = data
    assert M.roc_auc(y, s) == pytest.approx(roc_auc_score(y, s))
    assert M.roc_auc(np.ones(5), np.arange(5)) is None
    assert M.roc_auc([], []) is None
    assert M.bootstrap_auc_ci(np.zeros(4), np.arange(4)) is None


def test_bootstrap_ci_matches_a_naive_loop_and_contains_the_estimate(data) -> None:
    y, s = data
    ci = M.bootstrap_auc_ci(y, s, n_boot=300, seed=7)
    # The same stratified draws, scored one by one with scikit-learn.
    rng = np.random.default_rng(7)
    pos, neg = s[y == 1], s[y == 0]
    bp = pos[rng.integers(pos.size, size=(300, pos.size))]
    bn = neg[rng.integers(neg.size, size=(300, neg.size))]
    lab = np.r_[np.ones(pos.size), np.zeros(neg.size)]
    aucs = [roc_auc_score(lab, np.r_[p, n]) for p, n in zip(bp, bn)]
    np.testing.assert_allclose(ci, np.quantile(aucs, [0.025, 0.975]), atol=1e-12)
    assert ci[0] < M.roc_auc(y, s) < ci[1]
    assert M.bootstrap_auc_ci(y, s, n_boot=300, seed=7) == ci  # seeded
    assert M.bootstrap_auc_ci(y, s, n_boot=300, seed=8) != ci


def test_rates_and_classification_metrics_match_sklearn(data) -> None:
    y, s = data
    t = 0.5
    pred = (s >= t).astype(int)
    r = M.rates_at_threshold(y, s, t)
    assert r["detection_rate"] == pytest.approx(pred[y == 1].mean())
    assert r["fpr"] == pytest.approx(pred[y == 0].mean())
    c = M.classification_metrics(y, s, t)
    assert c["f1"] == pytest.approx(f1_score(y, pred))
    assert c["recall"] == pytest.approx(recall_score(y, pred))
    assert c["precision"] == pytest.approx(precision_score(y, pred))
    assert c["auc"] == pytest.approx(roc_auc_score(y, s))
    # Only genuine bags: no detection rate, no recall, no AUC, but a false-positive rate.
    g = y == 0
    assert M.rates_at_threshold(y[g], s[g], t)["detection_rate"] is None
    assert M.rates_at_threshold(y[g], s[g], t)["fpr"] is not None
    c0 = M.classification_metrics(y[g], s[g], t)
    assert c0["f1"] is None and c0["recall"] is None and c0["auc"] is None
    assert M.rates_at_threshold([], [], t) == {"detection_rate": None, "fpr": None}


def test_max_f1_threshold_is_the_best_cut(data) -> None:
    y, s = data
    t = M.max_f1_threshold(y, s)
    best = max(f1_score(y, (s >= c).astype(int)) for c in np.unique(s))
    assert f1_score(y, (s >= t).astype(int)) == pytest.approx(best)


def test_fpr_threshold_is_the_lowest_within_budget(data) -> None:
    y, s = data
    t = M.fpr_threshold(y, s, 0.05)
    neg = s[y == 0]
    assert (neg >= t).mean() <= 0.05
    lower = np.unique(s)[np.unique(s) < t]
    assert lower.size == 0 or (neg >= lower.max()).mean() > 0.05
    th = M.fit_thresholds(y, s)
    assert set(th) == {"max_f1", "fpr_5"} and th["fpr_5"] == t
    with pytest.raises(ValueError):
        M.fit_thresholds(np.zeros(3), np.arange(3))


def test_fpr_threshold_when_the_top_score_is_genuine() -> None:
    y = np.array([0, 1, 1, 0])
    s = np.array([0.9, 0.5, 0.4, 0.1])
    t = M.fpr_threshold(y, s, 0.05)
    assert (s[y == 0] >= t).mean() == 0 and np.isfinite(t)


def test_localisation_against_sklearn() -> None:
    rng = np.random.default_rng(1)
    wf = rng.random((20, 10)) < 0.2
    wf[:10] = False  # genuine bags
    wf[10:, 0] |= ~wf[10:].any(1)
    y = np.r_[np.zeros(10, int), np.ones(10, int)]
    ws = rng.normal(size=(20, 10)) + wf
    loc = M.localisation(ws, wf, y)
    assert loc["auc"] == pytest.approx(roc_auc_score(wf[10:].ravel(), ws[10:].ravel()))
    assert loc["top1"] == pytest.approx(np.mean([wf[i, np.argmax(ws[i])] for i in range(10, 20)]))
    assert M.localisation(ws[:10], wf[:10], y[:10]) == {"auc": None, "top1": None}
    assert M.localisation(ws, wf)["auc"] == loc["auc"]  # labels inferred from the window truth
