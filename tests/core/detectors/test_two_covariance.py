"""Two-covariance model: the run log LR against a by-hand Gaussian computation in the original
coordinates, the fit recovering planted covariances, and the passage statistic finding a planted run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from wrmil_core.detectors.two_covariance import (
    contiguous_batch,
    fit_two_covariance,
    from_covariances,
    run_llrs,
    same_writer_llr,
)
from wrmil_core.errors import WrmilInputError


def _covariances(d: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a, c = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    return rng.normal(size=d), a @ a.T / d + 0.5 * np.eye(d), c @ c.T / d


def _set_logpdf(x: np.ndarray, mu: np.ndarray, within: np.ndarray, between: np.ndarray) -> float:
    """log N of the stacked words of one writer: covariance I (x) W + 11^T (x) B, by hand."""
    n, d = x.shape
    cov = np.kron(np.eye(n), within) + np.kron(np.ones((n, n)), between)
    return float(multivariate_normal(np.tile(mu, n), cov).logpdf(x.reshape(-1)))


def test_run_llr_matches_gaussian_marginal_likelihoods() -> None:
    d, n = 3, 6
    mu, within, between = _covariances(d, 0)
    x = np.random.default_rng(1).normal(size=(n, d))
    model = from_covariances(mu, within, between)
    runs = run_llrs(model.project(torch.as_tensor(x)[None]), model.between)
    for length, r in enumerate(runs, start=1):
        for start in range(n - length + 1):
            inside = np.zeros(n, bool)
            inside[start:start + length] = True
            want = (_set_logpdf(x[inside], mu, within, between) + _set_logpdf(x[~inside], mu, within, between)
                    - _set_logpdf(x, mu, within, between))
            assert float(r[0, start]) == pytest.approx(want, abs=1e-8)
    assert len(runs) == n // 2


def test_same_writer_llr_matches_gaussian_marginal_likelihoods() -> None:
    d = 3
    mu, within, between = _covariances(d, 4)
    rng = np.random.default_rng(5)
    q, k = rng.normal(size=(4, d)), rng.normal(size=(7, d))
    model = from_covariances(mu, within, between)
    got = same_writer_llr(model.project(torch.as_tensor(q)), model.project(torch.as_tensor(k)), model.between)
    want = (_set_logpdf(np.vstack([q, k]), mu, within, between) - _set_logpdf(q, mu, within, between)
            - _set_logpdf(k, mu, within, between))
    assert float(got) == pytest.approx(want, abs=1e-8)
    with pytest.raises(WrmilInputError, match="at least one word"):
        same_writer_llr(model.project(torch.as_tensor(q)), model.project(torch.as_tensor(k[:0])), model.between)


def test_fit_recovers_planted_covariances() -> None:
    d, writers, words = 2, 400, 30
    rng = np.random.default_rng(2)
    within, between = np.diag([1.0, 0.25]), np.diag([4.0, 1.0])
    centres = rng.multivariate_normal(np.zeros(d), between, size=writers)
    x = centres[:, None] + rng.multivariate_normal(np.zeros(d), within, size=(writers, words))
    fitted = fit_two_covariance(x, shrinkage=0.0)
    t = fitted.transform.numpy()
    # in the fitted frame the planted covariances are I and diag(between)
    np.testing.assert_allclose(t.T @ within @ t, np.eye(d), atol=0.05)
    np.testing.assert_allclose(np.sort(np.diag(t.T @ between @ t)), np.sort(fitted.between.numpy()), rtol=0.15)
    np.testing.assert_allclose(sorted(fitted.between.numpy()), [4.0, 4.0], rtol=0.2)  # 4/1 and 1/0.25


def test_contiguous_statistic_finds_a_planted_passage() -> None:
    rng = np.random.default_rng(3)
    d, n = 8, 40
    model = from_covariances(np.zeros(d), np.eye(d), 2.0 * np.eye(d))
    one = rng.normal(size=(d,)) * np.sqrt(2) + rng.normal(size=(n, d))
    two = one.copy()
    two[10:20] = rng.normal(size=(d,)) * np.sqrt(2) + rng.normal(size=(10, d))
    r = contiguous_batch(torch.as_tensor(np.stack([one, two]), dtype=torch.float32), model)
    assert float(r.statistic[1]) > float(r.statistic[0]) + 10
    ev = r.word_evidence[1].numpy()
    assert set(np.argsort(-ev)[:10]) == set(range(10, 20))


def test_refuses_too_few_groups_and_bad_shrinkage() -> None:
    with pytest.raises(WrmilInputError, match="one-writer groups"):
        fit_two_covariance(np.zeros((1, 5, 3)))
    with pytest.raises(WrmilInputError, match="shrinkage"):
        fit_two_covariance(np.zeros((3, 5, 3)), shrinkage=1.0)
