"""Logistic-regression fusion of detector statistics, and the writer folds that keep it honest.

:func:`fit_fusion` fits one logistic regression per contaminated geometry (its bags against every
genuine bag) on signed-log, standardised statistics, and turns each into a log LR (its log-odds less
the log of its class ratio); :meth:`Fusion.logit` averages the geometries' LRs (H1 "more than one
writer" is their union). :func:`writer_folds` splits bags into folds by writer, so that a fit can
score every validation bag with a model that never saw that bag's writer (cross-fitting).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from wrmil_core.errors import WrmilInputError

C = 1.0  # inverse L2 regularisation on standardised statistics (measured on AHAWP folds: 0.1-1 alike)


def signed_log(v: np.ndarray) -> np.ndarray:
    """``sign(v) log(1 + |v|)``: LR-like statistics grow with the evidence without bound, and a few
    huge values would otherwise set the fusion's scale (measured on the demo: +0.01 AUC overall)."""
    return np.sign(v) * np.log1p(np.abs(v))


@dataclass(frozen=True)
class Fusion:
    """A fitted fusion: standardisation ``(F,)``, per-geometry coefficients ``(G, F)`` and intercepts
    ``(G,)`` on the log-LR scale, and each geometry's log weight ``(G,)`` in the average."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    log_weight: np.ndarray
    geometries: tuple[str, ...]

    def logit(self, values: np.ndarray) -> np.ndarray:
        """``log mean_g LR_g`` of raw statistic rows ``(B, F)``."""
        std = (signed_log(np.asarray(values, dtype=np.float64)) - self.mean) / self.scale
        per_geometry = std @ self.coef.T + self.intercept + self.log_weight
        return np.logaddexp.reduce(per_geometry, axis=1)

    def describe(self, features: tuple[str, ...]) -> dict[str, Any]:
        """Each geometry's weights per standard deviation of each (signed-log) statistic."""
        return {f"weights_{g}": dict(zip(features, np.round(self.coef[i], 4).tolist()))
                for i, g in enumerate(self.geometries)}


def fit_fusion(values: np.ndarray, label: np.ndarray, geometry: np.ndarray, c: float = C) -> Fusion:
    """One logistic regression per contaminated geometry of ``geometry`` against the genuine rows."""
    from sklearn.linear_model import LogisticRegression  # imported here: only a fit needs it

    label, geometry = np.asarray(label), np.asarray(geometry).astype(str)
    geometries = tuple(sorted(set(geometry[label == 1].tolist())))
    if not geometries or not (label == 0).any():
        raise WrmilInputError("fusion: the validation bags need genuine and contaminated bags; "
                              "check bags_by_difficulty[val]")
    squashed = signed_log(np.asarray(values, dtype=np.float64))
    mean, scale = squashed.mean(axis=0), squashed.std(axis=0) + 1e-9
    std, genuine = (squashed - mean) / scale, label == 0
    coef, intercept = [], []
    for g in geometries:
        rows = genuine | (geometry == g)
        lr = LogisticRegression(C=c, max_iter=1000).fit(std[rows], label[rows])
        coef.append(lr.coef_[0])
        intercept.append(float(lr.intercept_[0]) - math.log((geometry[rows] == g).sum() / genuine.sum()))
    return Fusion(mean=mean, scale=scale, coef=np.array(coef), intercept=np.array(intercept),
                  log_weight=np.full(len(geometries), -math.log(len(geometries))), geometries=geometries)


def writer_folds(groups: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """``(B,)`` fold index of each bag, every group (writer) in one fold, ``min(k, groups)`` folds."""
    groups = np.asarray(groups)
    unique = np.unique(groups)
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of = dict(zip(unique[order].tolist(), (np.arange(len(unique)) % max(1, min(k, len(unique)))).tolist()))
    return np.array([fold_of[g] for g in groups.tolist()], dtype=np.int64)


def cross_fitted_logits(values: np.ndarray, label: np.ndarray, geometry: np.ndarray, folds: np.ndarray,
                        full: Fusion, c: float = C) -> np.ndarray:
    """Each row's fused logit from a fusion fitted without its fold (the full fusion where the rest
    lacks a class or a geometry): the scores a new writer's bags get, to calibrate and threshold on."""
    out = full.logit(values)
    label, geometry = np.asarray(label), np.asarray(geometry).astype(str)
    for k in np.unique(folds):
        rest = folds != k
        if set(geometry[rest & (label == 1)]) == set(full.geometries) and (label[rest] == 0).any():
            out[~rest] = fit_fusion(values[rest], label[rest], geometry[rest], c).logit(values[~rest])
    return out


__all__ = ["C", "Fusion", "cross_fitted_logits", "fit_fusion", "signed_log", "writer_folds"]
