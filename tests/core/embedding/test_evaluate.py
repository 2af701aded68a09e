"""Verification and retrieval figures on embeddings with known structure."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from wrmil_core.embedding.evaluate import evaluate_embeddings, retrieval_metrics, sample_pairs
from wrmil_core.errors import WrmilInputError


def clustered(n_writers: int = 6, per: int = 20, noise: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_writers, 32))
    writers = np.repeat(np.arange(n_writers), per)
    return centres[writers] + noise * rng.normal(size=(len(writers), 32)), writers


def test_pairs_are_correct_and_deterministic() -> None:
    writers = np.array([5, 5, 5, 7, 7, 9, 11])
    i, j, same = sample_pairs(writers, 400, seed=3)
    assert len(i) == 400 and same.sum() == 200
    assert (i != j).all()
    assert ((writers[i] == writers[j]) == same).all()
    i2, j2, _ = sample_pairs(writers, 400, seed=3)
    assert (i == i2).all() and (j == j2).all()
    with pytest.raises(WrmilInputError):
        sample_pairs(np.array([1, 1, 1]), 10)


def test_separated_writers_score_perfectly_random_ones_at_chance() -> None:
    emb, writers = clustered()
    m = evaluate_embeddings(emb, writers, n_pairs=4000, n_queries=120)
    assert m["auc"] == pytest.approx(1.0) and m["eer"] == pytest.approx(0.0)
    assert m["tar_far_1e-3"] == pytest.approx(1.0) and m["top1"] == 1.0 and m["map"] == pytest.approx(1.0)
    rnd = evaluate_embeddings(np.random.default_rng(1).normal(size=emb.shape), writers, n_pairs=4000, n_queries=120)
    assert 0.4 < rnd["auc"] < 0.6 and 0.4 < rnd["eer"] < 0.6
    assert rnd["map"] < 0.4


def test_map_matches_sklearn_average_precision() -> None:
    emb, writers = clustered(n_writers=4, per=8, noise=1.5, seed=2)  # heavily overlapping writers
    m = retrieval_metrics(emb, writers, n_queries=len(writers), chunk=5)
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    aps, top1 = [], []
    for q in range(len(writers)):
        others = np.arange(len(writers)) != q
        scores, rel = e[others] @ e[q], writers[others] == writers[q]
        aps.append(average_precision_score(rel, scores))
        top1.append(rel[np.argmax(scores)])
    assert m["map"] == pytest.approx(np.mean(aps), abs=1e-6)
    assert m["top1"] == pytest.approx(np.mean(top1))
    assert 0.3 < m["map"] < 0.95  # the example is not degenerate
