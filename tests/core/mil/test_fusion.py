"""Logistic fusion: one fit per geometry averaged as LRs, by hand; writer folds keep a writer in one
fold; cross-fitted logits come from fits without their fold."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from wrmil_core.errors import WrmilInputError
from wrmil_core.mil.fusion import cross_fitted_logits, fit_fusion, signed_log, writer_folds


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature 0 separates the "a" bags, feature 1 the "b" bags, from 60 genuine ones."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(120, 3))
    label = np.repeat([0, 1, 1], [60, 30, 30])
    geometry = np.repeat(["none", "a", "b"], [60, 30, 30])
    x[geometry == "a", 0] += 2.0
    x[geometry == "b", 1] += 2.0
    return x, label, geometry


def test_fusion_is_the_average_of_each_geometrys_lr() -> None:
    x, label, geometry = _data()
    fusion = fit_fusion(x, label, geometry, c=1.0)
    assert fusion.geometries == ("a", "b")
    std = (signed_log(x) - signed_log(x).mean(0)) / (signed_log(x).std(0) + 1e-9)
    llr = []
    for g in ("a", "b"):
        rows = (label == 0) | (geometry == g)
        lr = LogisticRegression(C=1.0, max_iter=1000).fit(std[rows], label[rows])
        llr.append(lr.decision_function(std) - math.log(30 / 60))  # log-odds less the class ratio
    np.testing.assert_allclose(fusion.logit(x), np.logaddexp(*llr) - math.log(2), atol=1e-8)
    assert fusion.coef[0, 0] > 1 and fusion.coef[1, 1] > 1  # each geometry's own statistic


def test_refuses_one_class() -> None:
    x, label, geometry = _data()
    with pytest.raises(WrmilInputError, match="genuine and contaminated"):
        fit_fusion(x[label == 1], label[label == 1], geometry[label == 1])


def test_writer_folds_keep_each_writer_in_one_fold() -> None:
    writers = np.repeat(np.arange(13), 7)
    folds = writer_folds(writers, 5)
    assert set(folds.tolist()) == set(range(5))
    for w in range(13):
        assert len(set(folds[writers == w].tolist())) == 1
    assert set(writer_folds(np.array([4, 4, 9]), 5).tolist()) == {0, 1}  # no more folds than writers


def test_cross_fitted_logits_come_from_fits_without_the_fold() -> None:
    x, label, geometry = _data(1)
    folds = np.arange(len(label)) % 3
    full = fit_fusion(x, label, geometry)
    out = cross_fitted_logits(x, label, geometry, folds, full)
    for k in range(3):
        rest = folds != k
        np.testing.assert_allclose(out[~rest], fit_fusion(x[rest], label[rest], geometry[rest]).logit(x[~rest]))
    assert not np.allclose(out, full.logit(x))
