"""Scattered-word statistic: ranks planted scattered outliers first, matches a by-hand reference,
and its null does not drift with length."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wrmil_core.detectors.scattered import scattered, scattered_batch
from wrmil_core.errors import WrmilInputError


def by_hand(x: np.ndarray, trim: float, top_frac: float) -> tuple[float, np.ndarray]:
    """Trimmed centre (two passes), LOO-scaled residuals, mean of the top residuals, median/MAD z."""
    n = x.shape[0]
    k = max(2, n - int(np.floor(trim * n)))
    centre, kept = x.mean(0), np.ones(n, bool)
    for _ in range(2):
        dist = ((x - centre) ** 2).sum(1)
        kept = np.zeros(n, bool)
        kept[np.argsort(dist, kind="stable")[:k]] = True
        centre = x[kept].mean(0)
    r = ((x - centre) ** 2).sum(1)
    r[kept] *= (kept.sum() / (kept.sum() - 1)) ** 2
    # the LOO scaling makes a kept word's residual its distance from the other kept words' mean
    i = int(np.flatnonzero(kept)[0])
    assert r[i] == pytest.approx(((x[i] - x[kept & (np.arange(n) != i)].mean(0)) ** 2).sum())
    z = (r - np.median(r)) / (1.4826 * np.median(np.abs(r - np.median(r))))
    top = max(1, int(np.floor(top_frac * n + 0.5)))
    return float(np.sort(r)[::-1][:top].mean()), r, z


@pytest.mark.parametrize("n,trim,top_frac", [(3, 0.0, 1.0), (10, 0.3, 0.1), (50, 0.3, 0.1), (37, 0.2, 0.25)])
def test_equals_by_hand_reference(n: int, trim: float, top_frac: float) -> None:
    x = np.random.default_rng(n).normal(size=(n, 6))
    got = scattered(x, trim, top_frac)
    want, r, z = by_hand(x.astype(np.float32).astype(np.float64), trim, top_frac)
    assert got.statistic == pytest.approx(want, rel=1e-4, abs=1e-4)
    np.testing.assert_allclose(got.word_evidence, r, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got.word_z, z, rtol=1e-4, atol=1e-4)


def planted(n: int, d: int, foreign: np.ndarray | None, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(2, d))
    centres *= 1.5 / np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[0] + rng.normal(size=(n, d)) / np.sqrt(d)
    if foreign is not None:
        x[foreign] = centres[1] + rng.normal(size=(len(foreign), d)) / np.sqrt(d)
    return x


def test_ranks_planted_scattered_words_first_and_above_genuine_documents() -> None:
    scores_gen, scores_con = [], []
    for seed in range(20):
        foreign = np.sort(np.random.default_rng(100 + seed).choice(50, 5, replace=False))
        r = scattered(planted(50, 32, foreign, seed))
        assert set(np.argsort(-r.word_evidence)[:5]) == set(foreign.tolist())
        assert set(r.top_words.tolist()) == set(foreign.tolist())
        scores_con.append(r.statistic)
        scores_gen.append(scattered(planted(50, 32, None, seed)).statistic)
    assert min(scores_con) > max(scores_gen)


def test_null_does_not_drift_with_length() -> None:
    """Mean statistic on Gaussian noise (unit-variance coordinates, 16 dims: residuals ~ 16) at
    25 and 200 words within 5 % of each other (measured 0.1 %; the sd over documents at 25 words
    is ~11 % of the mean, so the standard error of the difference over 300 documents is ~0.7 %),
    and the spread narrows with length."""
    gen = torch.Generator().manual_seed(0)
    s = {n: scattered_batch(torch.randn(300, n, 16, generator=gen)).statistic for n in (25, 200)}
    assert abs(float(s[200].mean() / s[25].mean()) - 1) < 0.05, {n: float(v.mean()) for n, v in s.items()}
    assert float(s[200].std()) < 0.6 * float(s[25].std())


def test_scattered_words_raise_the_statistic_more_as_they_grow() -> None:
    """Not self-standardised: more foreign words give a larger statistic (a spread-standardised
    one would absorb them)."""
    means = []
    for k in (0, 3, 8, 15):
        stats_k = []
        for seed in range(10):
            foreign = np.sort(np.random.default_rng(200 + seed).choice(50, k, replace=False)) if k else None
            stats_k.append(scattered(planted(50, 32, foreign, seed)).statistic)
        means.append(np.mean(stats_k))
    assert means == sorted(means) and means[1] > means[0]


def test_bad_input_and_parameters_are_refused() -> None:
    with pytest.raises(WrmilInputError, match="at least 3 words"):
        scattered(np.zeros((2, 4)))
    with pytest.raises(WrmilInputError, match="trim"):
        scattered(np.random.default_rng(0).normal(size=(10, 3)), trim=0.5)
    with pytest.raises(WrmilInputError, match="top_frac"):
        scattered(np.random.default_rng(0).normal(size=(10, 3)), top_frac=0.0)
