"""Validation figures that mean something for writers the network never saw.

* Verification: cosine similarity of word pairs (half same-writer, half different-writer, drawn
  reproducibly from ``seed``) -> ROC AUC, EER and TAR at FAR 1e-2 / 1e-3 (sklearn ``roc_curve``).
* Retrieval: each query word ranks every other word by cosine -> top-1 writer accuracy and mean
  average precision of the query writer's other words.
* Baseline: downsampled raw pixels (:func:`pixel_features`), to show what training bought.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score, roc_curve

from wrmil_core.errors import WrmilInputError

METRIC_KEYS = ("auc", "eer", "tar_far_1e-2", "tar_far_1e-3", "top1", "map")


def sample_pairs(writers: np.ndarray, n_pairs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(i, j, same)`` index pairs: ``n_pairs // 2`` same-writer and as many different-writer pairs.

    Pairs are drawn with replacement (i != j always), reproducibly from ``seed``.
    """
    writers = np.asarray(writers)
    rng = np.random.default_rng(seed)
    uniq, inv, counts = np.unique(writers, return_inverse=True, return_counts=True)
    if len(uniq) < 2:
        raise WrmilInputError(f"verification needs words of at least 2 writers, got {len(uniq)}")
    half = max(1, n_pairs // 2)
    order = np.argsort(inv, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(writers), dtype=np.int64)
    rank[order] = np.arange(len(writers)) - starts[inv[order]]
    eligible = np.flatnonzero(counts[inv] >= 2)
    if len(eligible) == 0:
        raise WrmilInputError("verification needs a writer with at least 2 words")
    a = rng.choice(eligible, half)
    g, c = inv[a], counts[inv[a]]
    b = order[starts[g] + (rank[a] + rng.integers(1, c)) % c]  # another word of the same writer
    na, nb = rng.integers(0, len(writers), half), rng.integers(0, len(writers), half)
    clash = inv[na] == inv[nb]
    while clash.any():  # terminates: there are >= 2 writers
        nb[clash] = rng.integers(0, len(writers), int(clash.sum()))
        clash = inv[na] == inv[nb]
    same = np.concatenate([np.ones(half, bool), np.zeros(half, bool)])
    return np.concatenate([a, na]), np.concatenate([b, nb]), same


def verification_metrics(emb: np.ndarray, writers: np.ndarray, n_pairs: int = 20000, seed: int = 0) -> dict[str, float]:
    """ROC AUC, EER and TAR at FAR 1e-2 / 1e-3 of cosine scores on sampled word pairs."""
    emb = _unit(emb)
    i, j, same = sample_pairs(writers, n_pairs, seed)
    scores = np.einsum("nd,nd->n", emb[i], emb[j])
    fpr, tpr, _ = roc_curve(same, scores)
    fnr = 1 - tpr
    k = int(np.nanargmin(np.abs(fnr - fpr)))

    def tar_at(far: float) -> float:
        ok = fpr <= far
        return float(tpr[ok].max()) if ok.any() else 0.0

    return {
        "auc": float(roc_auc_score(same, scores)),
        "eer": float((fpr[k] + fnr[k]) / 2),
        "tar_far_1e-2": tar_at(1e-2),
        "tar_far_1e-3": tar_at(1e-3),
        "n_pairs": int(len(same)),
    }


def retrieval_metrics(emb: np.ndarray, writers: np.ndarray, n_queries: int = 2000, seed: int = 0,
                      chunk: int = 256) -> dict[str, float]:
    """Top-1 writer accuracy and mAP when each query word ranks all other words by cosine."""
    emb, writers = torch.from_numpy(_unit(emb)), torch.as_tensor(np.array(writers))  # copy: may be read-only
    n = len(writers)
    rng = np.random.default_rng(seed + 1)
    queries = np.sort(rng.choice(n, min(n_queries, n), replace=False))
    top1, aps = [], []
    ranks = torch.arange(1, n + 1, dtype=torch.float32)
    for s in range(0, len(queries), chunk):
        q = torch.from_numpy(queries[s : s + chunk])
        rows = torch.arange(len(q))
        sims = emb[q] @ emb.T
        sims[rows, q] = -float("inf")  # a word never retrieves itself
        rel = writers[None, :] == writers[q][:, None]
        rel[rows, q] = False
        rel_sorted = torch.gather(rel, 1, torch.argsort(sims, dim=1, descending=True)).float()
        n_rel = rel_sorted.sum(1)
        keep = n_rel > 0  # queries whose writer has no other word cannot be scored
        prec = rel_sorted.cumsum(1) / ranks
        aps.append(((prec * rel_sorted).sum(1) / n_rel.clamp_min(1))[keep])
        top1.append(rel_sorted[:, 0][keep])
    top1_t, ap_t = torch.cat(top1), torch.cat(aps)
    return {"top1": float(top1_t.mean()), "map": float(ap_t.mean()), "n_queries": int(len(ap_t))}


def evaluate_embeddings(emb: np.ndarray, writers: np.ndarray, n_pairs: int = 20000, n_queries: int = 2000,
                        seed: int = 0) -> dict[str, float]:
    """All validation figures for embeddings ``emb`` (N, D) of words by ``writers`` (N,)."""
    emb, writers = np.asarray(emb, dtype=np.float32), np.asarray(writers)
    if len(emb) != len(writers) or len(emb) < 2:
        raise WrmilInputError(f"need >= 2 embeddings with one writer each, got {len(emb)} and {len(writers)}")
    out = verification_metrics(emb, writers, n_pairs, seed)
    out.update(retrieval_metrics(emb, writers, n_queries, seed))
    out.update(n_images=int(len(writers)), n_writers=int(len(np.unique(writers))))
    return out


def pixel_features(x: torch.Tensor, size: tuple[int, int] = (16, 64)) -> torch.Tensor:
    """Raw-pixel baseline features: uint8 images (B, 1, H, W) area-downsampled and flattened."""
    return F.adaptive_avg_pool2d(x.float() / 255.0, size).flatten(1)


def _unit(emb: np.ndarray) -> np.ndarray:
    emb = np.asarray(emb, dtype=np.float32)
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
