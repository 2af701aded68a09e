"""Multi-word figures: the mean embedding of n words of one document against another document's."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from wrmil_core.cv.pool import pool_folds
from wrmil_core.cv.report import embedding_table
from wrmil_core.embedding.evaluate import (
    multiword_metrics,
    multiword_pairs,
    multiword_scores,
    pooled_multiword_metrics,
    roc_figures,
)
from wrmil_core.embedding.infer import embedding_matrix, embeddings_table
from wrmil_core.embedding.model_quality import multiword_of_table
from wrmil_core.errors import WrmilInputError


def planted(n_writers: int = 12, n_docs: int = 3, per_doc: int = 12, noise: float = 3.0,
            seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Writer centre + big per-word noise: ``(emb, writers, docs, positions)``, docs ``w<writer>_<k>``."""
    rng = np.random.default_rng(seed)
    writers = np.repeat(np.arange(n_writers), n_docs * per_doc)
    docs = np.array([f"w{w}_{k}" for w in range(n_writers) for k in range(n_docs) for _ in range(per_doc)])
    positions = np.tile(np.arange(per_doc), n_writers * n_docs)
    emb = rng.normal(size=(n_writers, 16))[writers] + noise * rng.normal(size=(len(writers), 16))
    return emb, writers, docs, positions


def test_scores_and_auc_match_a_by_hand_computation() -> None:
    """Writer A: A1 = {(3,0), (0,1)} (unit mean (1,1)/sqrt2), A2 = {(1,0), (2,0)} (mean (1,0)); writer
    B: B1 = {(0,1), (0,5)} (mean (0,1)). At n = 2 each document is one group: the same-writer score is
    cos(A1, A2) = 1/sqrt2; different-writer scores are cos(A1, B1) = 1/sqrt2 (a tie) and cos(A2, B1) = 0."""
    emb = np.array([[3, 0], [0, 1], [1, 0], [2, 0], [0, 1], [0, 5]], dtype=np.float64)
    writers = np.array(["A", "A", "A", "A", "B", "B"])
    docs = np.array(["A1", "A1", "A2", "A2", "B1", "B1"])
    positions = np.array([0, 1, 0, 1, 0, 1])
    ga, gb, same = multiword_pairs(writers, docs, positions, 2, n_pairs=200, seed=5)
    pair = [frozenset({docs[a[0]], docs[b[0]]}) for a, b in zip(ga, gb)]
    by_hand = {frozenset({"A1", "A2"}): 2 ** -0.5, frozenset({"A1", "B1"}): 2 ** -0.5, frozenset({"A2", "B1"}): 0.0}
    scores = multiword_scores(emb, ga, gb)
    assert scores == pytest.approx([by_hand[p] for p in pair], abs=1e-6)
    assert all(p == frozenset({"A1", "A2"}) for p, s in zip(pair, same) if s)
    # AUC: a same pair beats A2-B1 and ties A1-B1
    diff = [p for p, s in zip(pair, same) if not s]
    expected_auc = (diff.count(frozenset({"A2", "B1"})) + 0.5 * diff.count(frozenset({"A1", "B1"}))) / len(diff)
    m = multiword_metrics(emb, writers, docs, positions, sizes=(2,), n_pairs=200, seed=5)
    assert expected_auc == pytest.approx(roc_auc_score(same, scores))
    # multiword_metrics draws its own pairs from [seed, n]: same figures as sklearn / roc_figures on those
    ga, gb, same = multiword_pairs(writers, docs, positions, 2, n_pairs=200, seed=[5, 2])
    scores = multiword_scores(emb, ga, gb)
    assert m["auc_n2"] == pytest.approx(roc_auc_score(same, scores))
    assert m["eer_n2"] == pytest.approx(roc_figures(same, scores)["eer"])
    assert (m["n_pairs_n2"], m["n_writers_n2"], m["n_docs_n2"], m["n_writers"]) == (200, 2, 3, 2)


def test_auc_rises_with_the_number_of_words() -> None:
    m = multiword_metrics(*planted(), sizes=(1, 3, 5, 10), n_pairs=4000)
    aucs = [m[f"auc_n{n}"] for n in (1, 3, 5, 10)]
    assert aucs == sorted(aucs) and aucs[-1] - aucs[0] > 0.2, aucs
    assert m["eer_n10"] < m["eer_n1"]


def test_pairs_respect_documents_writers_and_runs() -> None:
    emb, writers, docs, positions = planted(n_writers=5, per_doc=8)
    short = docs == "w0_0"
    positions = positions.copy()
    keep = ~(short & (positions >= 3))  # w0_0 keeps 3 words: too short for n = 5
    writers, docs, positions = writers[keep], docs[keep], positions[keep]
    rng = np.random.default_rng(1)
    perm = rng.permutation(len(docs))  # row order must not matter
    writers, docs, positions = writers[perm], docs[perm], positions[perm]
    for pos in (positions, None):
        ga, gb, same = multiword_pairs(writers, docs, pos, 5, n_pairs=1000, seed=2)
        assert ga.shape == gb.shape == (1000, 5) and same.sum() == 500
        for g in (ga, gb):
            assert (docs[g] == docs[g[:, :1]]).all()  # one document per group
            assert "w0_0" not in set(docs[g[:, 0]])  # shorter than n: never used
            assert all(len(set(row)) == 5 for row in g)  # distinct words
        assert ((writers[ga[:, 0]] == writers[gb[:, 0]]) == same).all()
        assert (docs[ga[same, 0]] != docs[gb[same, 0]]).all()  # same writer, never the same document
        if pos is not None:  # a run of neighbouring positions
            assert (np.diff(np.sort(pos[ga], axis=1), axis=1) == 1).all()
    m = multiword_metrics(np.ones((len(docs), 4)), writers, docs, positions, sizes=(3, 5))
    assert (m["n_docs_n3"], m["n_docs_n5"]) == (15, 14)


def test_seed_reproducibility() -> None:
    data = planted(n_writers=6)
    for pos in (data[3], None):
        a = multiword_pairs(data[1], data[2], pos, 3, n_pairs=300, seed=4)
        b = multiword_pairs(data[1], data[2], pos, 3, n_pairs=300, seed=4)
        c = multiword_pairs(data[1], data[2], pos, 3, n_pairs=300, seed=5)
        assert all((x == y).all() for x, y in zip(a, b)) and not (a[0] == c[0]).all()
    assert multiword_metrics(*data, n_pairs=300, seed=1) == multiword_metrics(*data, n_pairs=300, seed=1)


def test_no_pairs_gives_none_and_pooling_adds_the_sets() -> None:
    emb, writers, docs, positions = planted(n_writers=4, n_docs=1)  # one document per writer: no same pair
    m = multiword_metrics(emb, writers, docs, positions, sizes=(1, 3))
    assert m["auc_n1"] is None and m["eer_n3"] is None and m["n_pairs_n1"] == 0 and m["n_writers_n1"] == 4
    assert multiword_metrics(*planted(), sizes=(20,))["auc_n20"] is None  # every document shorter than 20
    a, b = planted(n_writers=5, seed=1), planted(n_writers=4, seed=2)
    pooled = pooled_multiword_metrics([a, b, (emb, writers, docs, positions)], sizes=(3,), n_pairs=400)
    assert pooled["n_pairs_n3"] == 800 and pooled["n_writers"] == 13 and pooled["n_writers_n3"] == 13
    ga, gb, same = multiword_pairs(*a[1:], 3, 400, seed=[0, 3])
    ha, hb, same_b = multiword_pairs(*b[1:], 3, 400, seed=[1, 3])
    scores = np.concatenate([multiword_scores(a[0], ga, gb), multiword_scores(b[0], ha, hb)])
    assert pooled["auc_n3"] == pytest.approx(roc_auc_score(np.concatenate([same, same_b]), scores))
    with pytest.raises(WrmilInputError):
        multiword_pairs(writers, docs, positions, 0)
    with pytest.raises(WrmilInputError):
        pooled_multiword_metrics([])


def _cv_fold(fold: str, writers: list[int], seed: int) -> tuple[dict, dict]:
    """A finished fold's record and test tables (two documents of 12 words per writer)."""
    emb, w, docs, positions = planted(n_writers=len(writers), n_docs=2, seed=seed)
    w = np.array(writers)[w]
    words = pl.DataFrame({"word_id": np.arange(len(w)) + 1000 * writers[0], "writer": w,
                          "doc_id": [f"{fold}_{d}" for d in docs], "position": positions})
    table = embeddings_table(words, emb / np.linalg.norm(emb, axis=1, keepdims=True), "m")
    fig = {"auc": 1.0, "eer": 0.0, "tar_far_1e-2": 1.0, "top1": 1.0, "map": 1.0}
    record = {"fold": fold, "test_writers": writers,
              "embedding": {"trained": {**fig, **multiword_of_table(table)}, "untrained": fig, "pixels": fig},
              "counts": {"test_documents": 2 * len(writers), "test_words": len(w), "train_writers": 5,
                         "val_writers": 2}, "detection": []}
    scores = pl.DataFrame({"bag_id": [0, 1], "doc_id": ["a", "b"], "base_writer": writers[:2],
                           "donor_writer": [None, 1], "label": [0, 1], "ratio": [0.0, 0.1], "prob": [0.1, 0.9],
                           "model": ["distance"] * 2})
    return record, {"trained": table, "untrained": table, "pixels": table, "scores": scores}


def test_cv_pools_the_folds_multiword_figures_into_the_report() -> None:
    (ra, ta), (rb, tb) = _cv_fold("fold_0", [1, 2, 3, 4], 0), _cv_fold("fold_1", [5, 6, 7], 1)
    assert ra["embedding"]["trained"]["multiword_n_pairs_n3"] == 4000  # the fold record's figures
    summary = pool_folds([ra, rb], [ta, tb], n_pairs=200, n_queries=10, n_boot=10)
    trained = summary["embedding"]["trained"]
    pooled = pooled_multiword_metrics([(embedding_matrix(t["trained"]), t["trained"]["writer"].to_numpy(),
                                        t["trained"]["doc_id"].to_numpy(), t["trained"]["position"].to_numpy())
                                       for t in (ta, tb)])
    assert trained["multiword_auc_n5"] == pooled["auc_n5"] and trained["multiword_n_pairs_n10"] == 8000
    assert trained["multiword_n_writers_n10"] == 7 and trained["multiword_auc_n10"] > trained["multiword_auc_n1"]
    head, _, row = embedding_table(summary).splitlines()[:3]
    assert "doc vs doc AUC, n = 1/3/5/10" in head
    assert f"{trained['multiword_auc_n1']:.3f} / {trained['multiword_auc_n3']:.3f}" in row and "7 / 7 / 7 / 7" in row
