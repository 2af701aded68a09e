"""Per-query retrieval figures and the writer-bootstrap confidence intervals of embedding_quality."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from wrmil_core.embedding.evaluate import (
    METRIC_KEYS,
    embedding_quality,
    evaluate_embeddings,
    retrieval_metrics,
    retrieval_per_query,
    sample_pairs,
)
from wrmil_core.errors import WrmilInputError


def clustered(n_writers: int = 6, per: int = 20, noise: float | np.ndarray = 0.05,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Writer centres plus noise (``noise`` per writer when an array)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_writers, 32))
    writers = np.repeat(np.arange(n_writers), per)
    scale = np.broadcast_to(np.asarray(noise, dtype=float), (n_writers,))[writers][:, None]
    return centres[writers] + scale * rng.normal(size=(len(writers), 32)), writers


def test_per_query_figures_are_those_retrieval_metrics_averages() -> None:
    emb, writers = clustered(n_writers=5, per=9, noise=1.2, seed=3)
    writers = writers.copy()
    writers[-1] = 99  # a writer with one word: its query cannot be scored and is left out
    query, top1, ap = retrieval_per_query(emb, writers, n_queries=30, seed=4, chunk=7)
    m = retrieval_metrics(emb, writers, n_queries=30, seed=4)
    assert len(query) == m["n_queries"] and 99 not in writers[query]
    assert top1.mean() == pytest.approx(m["top1"], abs=1e-6) and ap.mean() == pytest.approx(m["map"], abs=1e-6)
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    for q, t, a in zip(query, top1, ap, strict=True):  # each query by hand: rank every other word
        others = np.arange(len(writers)) != q
        scores, rel = e[others] @ e[q], writers[others] == writers[q]
        assert a == pytest.approx(average_precision_score(rel, scores), abs=1e-6)
        assert t == float(rel[np.argmax(scores)])


def test_point_figures_are_evaluate_embeddings_and_intervals_hold_them() -> None:
    emb, writers = clustered(n_writers=8, per=15, noise=np.linspace(0.5, 3.0, 8), seed=1)
    q = embedding_quality(emb, writers, n_pairs=3000, n_queries=80, seed=2, n_boot=100)
    m = evaluate_embeddings(emb, writers, n_pairs=3000, n_queries=80, seed=2)
    for key in METRIC_KEYS:
        assert q[key] == pytest.approx(m[key], abs=1e-6)
        assert q[f"{key}_lo"] <= q[key] + 1e-9 and q[key] - 1e-9 <= q[f"{key}_hi"]
    assert (q["n_writers"], q["n_images"], q["n_pairs"], q["n_queries"]) == (8, 120, 3000, 80)
    assert q["n_boot"] == 100 and q["auc_lo"] < q["auc_hi"]


def test_bootstrap_is_seeded() -> None:
    emb, writers = clustered(n_writers=6, per=10, noise=np.linspace(0.5, 3.0, 6), seed=2)
    a = embedding_quality(emb, writers, n_pairs=2000, n_queries=40, seed=5, n_boot=60)
    assert a == embedding_quality(emb, writers, n_pairs=2000, n_queries=40, seed=5, n_boot=60)
    b = embedding_quality(emb, writers, n_pairs=2000, n_queries=40, seed=6, n_boot=60)
    assert (a["auc_lo"], a["auc_hi"]) != (b["auc_lo"], b["auc_hi"])


def test_writers_not_pairs_are_resampled() -> None:
    """Half the writers are perfectly separated, half are noise: which writers a replicate draws
    moves the AUC a lot, so the interval is wide; resampling the pairs would make it narrow."""
    emb, writers = clustered(n_writers=10, per=30, noise=np.r_[np.full(5, 0.01), np.full(5, 30.0)], seed=0)
    q = embedding_quality(emb, writers, n_pairs=20000, n_queries=200, seed=0, n_boot=200)
    i, j, same = sample_pairs(writers, 20000, seed=0)
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    s = np.einsum("nd,nd->n", e[i], e[j])
    rng = np.random.default_rng(0)
    pair_aucs = [roc_auc_score(same[b], s[b]) for b in (rng.integers(0, len(s), len(s)) for _ in range(200))]
    pair_width = np.subtract(*np.quantile(pair_aucs, [0.975, 0.025]))
    assert q["auc_hi"] - q["auc_lo"] > 4 * pair_width
    assert q["top1_hi"] - q["top1_lo"] > 0.2  # a query's hit is its writer's: top-1 swings with the draw


def test_perfect_writers_degenerate_intervals_and_too_few_writers() -> None:
    emb, writers = clustered(n_writers=6, per=10, noise=0.01)
    q = embedding_quality(emb, writers, n_pairs=2000, n_queries=30, n_boot=50)
    for key, perfect in (("auc", 1.0), ("eer", 0.0), ("top1", 1.0), ("map", 1.0)):
        assert q[f"{key}_lo"] == pytest.approx(perfect) and q[f"{key}_hi"] == pytest.approx(perfect)
    emb3, writers3 = clustered(n_writers=3, per=10, noise=1.0)
    q3 = embedding_quality(emb3, writers3, n_pairs=500, n_queries=10, n_boot=300)
    assert 245 < q3["n_boot"] < 290  # 1 in 9 replicates draws one writer thrice: no different-writer pair
    assert q3["auc_lo"] < q3["auc"] < q3["auc_hi"]
    q2 = embedding_quality(emb3[:20], writers3[:20], n_pairs=500, n_queries=10, n_boot=100)
    assert q2["n_writers"] == 2 and q2["n_boot"] == 0 and q2["auc_lo"] is None and q2["map_hi"] is None
    assert q2["auc"] is not None  # the point figures stand; only the interval is n/a
    with pytest.raises(WrmilInputError):
        embedding_quality(emb[:1], writers[:1])
