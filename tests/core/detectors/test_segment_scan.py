"""Segment scan: equals a brute-force loop, finds a planted passage, and its null does not drift with length."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy import stats

from wrmil_core.detectors.segment_scan import (
    penalised_scan,
    run_z,
    scale_penalty,
    segment_scan,
    segment_scan_batch,
)
from wrmil_core.errors import WrmilInputError


def brute_force(x: np.ndarray) -> dict:
    """Every run [a, b) by hand: means, scaled distance, its Wilson-Hilferty z, the penalty;
    then the max, the best run of at most n/2 words and each word's best such run."""
    n, d = x.shape
    delta = np.diff(x, axis=0)
    tr = float(np.mean([dl @ dl for dl in delta]) / 2)
    far = [(delta[i] @ delta[j]) ** 2 for i, j in itertools.product(range(n - 1), repeat=2) if abs(i - j) >= 2]
    tr2 = float(np.mean(far) / 4) if far else tr**2 / d
    tr2 = min(max(tr2, tr**2 / d), tr**2)
    c, nu = tr2 / tr, tr**2 / tr2
    best, best_minority, where, raw = -np.inf, -np.inf, None, 0.0
    evidence = np.full(n, -np.inf)
    for a in range(n):
        for b in range(a + 1, n + 1):
            L = b - a
            if L == n:
                continue
            inside, outside = x[a:b].mean(0), np.delete(x, np.s_[a:b], axis=0).mean(0)
            dist = np.sqrt(L * (n - L) / n) * np.linalg.norm(inside - outside)
            h = 2 / (9 * nu)
            z = ((dist**2 / (c * nu)) ** (1 / 3) - 1 + h) / np.sqrt(h)  # Wilson-Hilferty
            v = z - np.sqrt(2 * np.log(n * n / min(L, n - L)))
            raw, best = max(raw, dist), max(best, v)
            if 2 * L <= max(n, 2):
                if v > best_minority:
                    best_minority, where = v, (a, b - 1)
                evidence[a:b] = np.maximum(evidence[a:b], v)
    return {"statistic": best, "passage": where, "evidence": evidence, "raw": raw}


@pytest.mark.parametrize("n,d,seed", [(2, 3, 0), (3, 2, 1), (4, 5, 2), (7, 3, 3), (12, 4, 4), (17, 6, 5)])
def test_equals_brute_force(n: int, d: int, seed: int) -> None:
    x = np.random.default_rng(seed).normal(size=(n, d))
    got, want = segment_scan(x), brute_force(x.astype(np.float32).astype(np.float64))
    assert got.statistic == pytest.approx(want["statistic"], abs=2e-3)
    assert got.raw == pytest.approx(want["raw"], rel=1e-4)
    assert got.passage == want["passage"]
    np.testing.assert_allclose(got.word_evidence, want["evidence"], atol=2e-3)


def clustered(n: int, d: int, passage: tuple[int, int] | None, seed: int, sep: float = 1.5) -> np.ndarray:
    """Unit-ish word vectors around one writer centre, with words [a, b] around another."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(2, d))
    centres *= sep / np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[0] + rng.normal(size=(n, d)) / np.sqrt(d)
    if passage is not None:
        a, b = passage
        x[a:b + 1] = centres[1] + rng.normal(size=(b - a + 1, d)) / np.sqrt(d)
    return x


@pytest.mark.parametrize("n,passage", [(50, (20, 29)), (50, (0, 4)), (50, (47, 49)), (120, (60, 95)), (25, (3, 3))])
def test_locates_a_planted_passage(n: int, passage: tuple[int, int]) -> None:
    x = clustered(n, 32, passage, seed=n + passage[0])
    r = segment_scan(x)
    assert r.passage == passage
    a, b = passage
    inside = np.zeros(n, bool)
    inside[a:b + 1] = True
    assert r.word_evidence[inside].min() > r.word_evidence[~inside].max()
    assert r.statistic > 1.0 > segment_scan(clustered(n, 32, None, seed=n)).statistic


def test_null_does_not_drift_with_length() -> None:
    """On Gaussian noise the mean statistic at 25 and at 200 words differs by < 0.25: under half
    the statistic's own sd (0.5-0.6) over 300 documents, whose standard error of the difference
    is ~0.05. The unpenalised maximum of the same run z climbs by ~0.9 over that range
    (> 0.5 asserted), so the penalty is what holds it flat."""
    gen = torch.Generator().manual_seed(0)
    means, unpenalised = {}, {}
    for n in (25, 200):
        x = torch.randn(300, n, 16, generator=gen)
        means[n] = float(segment_scan_batch(x).statistic.mean())
        pen, _ = penalised_scan(x)
        z = (pen + scale_penalty(n)).nan_to_num(nan=-1e9, neginf=-1e9)   # no-run cells: -inf + inf
        unpenalised[n] = float(z.reshape(300, -1).amax(1).mean())
    assert abs(means[200] - means[25]) < 0.25, means
    assert unpenalised[200] - unpenalised[25] > 0.5, unpenalised


def test_run_z_matches_the_exact_chi_square_quantile_in_the_bulk() -> None:
    """Wilson-Hilferty against scipy's exact scaled chi-square quantile, p in [1e-6, 0.9], nu 3..20: within 4 %."""
    for tr, tr2 in ((1.0, 0.05), (2.0, 1.0), (0.5, 0.25 / 3)):
        c, nu = tr2 / tr, tr**2 / tr2
        p = np.array([0.9, 0.5, 0.1, 1e-2, 1e-4, 1e-6])
        d2 = torch.from_numpy(stats.chi2.isf(p, nu) * c)[None, None, :]
        got = run_z(d2, torch.tensor([tr]), torch.tensor([tr2]))[0, 0].numpy()
        np.testing.assert_allclose(got, stats.norm.isf(p), rtol=0.04, atol=0.02)


def test_batch_equals_one_document_at_a_time() -> None:
    x = torch.from_numpy(np.random.default_rng(1).normal(size=(5, 30, 8)).astype(np.float32))
    r = segment_scan_batch(x)
    for i in range(5):
        one = segment_scan(x[i].numpy())
        assert one.statistic == pytest.approx(float(r.statistic[i]), abs=1e-9)
        assert one.passage == (int(r.start[i]), int(r.end[i]))


def test_bad_input_is_refused() -> None:
    with pytest.raises(WrmilInputError, match="at least 2 words"):
        segment_scan(np.zeros((1, 4)))
    with pytest.raises(WrmilInputError, match=r"\(n_words, dim\)"):
        segment_scan(np.zeros((3, 4, 2)))
    with pytest.raises(WrmilInputError, match="NaN"):
        segment_scan(np.full((3, 4), np.nan))
