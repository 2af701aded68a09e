"""Bag- and window-level metrics, thin wrappers over scikit-learn.

Every function returns ``None`` ("n/a") instead of NaN or an exception when the question has no
answer on the given data (e.g. an AUC over a single class, a rate over zero bags).
Convention: label 1 = contaminated (multi-writer); a bag is flagged when ``score >= threshold``.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import f1_score, precision_recall_curve, precision_score, recall_score, roc_auc_score, roc_curve


def _arr(a) -> np.ndarray:
    return np.asarray(a.detach().cpu().numpy() if hasattr(a, "detach") else a)


def roc_auc(labels, scores) -> float | None:
    """ROC AUC, or None when only one class is present."""
    y, s = _arr(labels).ravel().astype(int), _arr(scores).ravel().astype(np.float64)
    if y.size == 0 or np.unique(y).size < 2:
        return None
    return float(roc_auc_score(y, s))


def bootstrap_auc_ci(labels, scores, n_boot: int = 1000, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float] | None:
    """Percentile bootstrap CI of the ROC AUC, resampling within each class (stratified, so no
    resample is single-class). Vectorised: all resamples ranked at once (Mann-Whitney U)."""
    y, s = _arr(labels).ravel().astype(int), _arr(scores).ravel().astype(np.float64)
    pos, neg = s[y == 1], s[y == 0]
    if pos.size == 0 or neg.size == 0:
        return None
    rng = np.random.default_rng(seed)
    # Chunk the resamples so memory stays ~O(50 MB) on large test sets.
    chunk = max(1, int(5e6 // (pos.size + neg.size)))
    aucs = []
    for start in range(0, n_boot, chunk):
        m = min(chunk, n_boot - start)
        bp = pos[rng.integers(pos.size, size=(m, pos.size))]
        bn = neg[rng.integers(neg.size, size=(m, neg.size))]
        ranks = rankdata(np.concatenate([bp, bn], axis=1), axis=1)  # ties get average ranks
        u = ranks[:, :pos.size].sum(axis=1) - pos.size * (pos.size + 1) / 2.0
        aucs.append(u / (pos.size * neg.size))
    aucs = np.concatenate(aucs)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(aucs, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def rates_at_threshold(labels, scores, threshold: float) -> dict[str, float | None]:
    """Detection rate (recall on contaminated bags) and false-positive rate (on genuine bags)."""
    y, s = _arr(labels).ravel().astype(int), _arr(scores).ravel()
    flagged = s >= threshold
    pos, neg = y == 1, y == 0
    return {
        "detection_rate": float(flagged[pos].mean()) if pos.any() else None,
        "fpr": float(flagged[neg].mean()) if neg.any() else None,
    }


def classification_metrics(labels, scores, threshold: float) -> dict[str, float | None]:
    """F1, recall, precision (label 1 = contaminated) at a threshold, and ROC AUC: the original's
    overall figures. None where undefined (no bags, or no contaminated bags for recall/F1)."""
    y, s = _arr(labels).ravel().astype(int), _arr(scores).ravel()
    if y.size == 0:
        return {"f1": None, "recall": None, "precision": None, "auc": None}
    pred = (s >= threshold).astype(int)
    has_pos = bool((y == 1).any())
    return {
        "f1": float(f1_score(y, pred, zero_division=0)) if has_pos else None,
        "recall": float(recall_score(y, pred, zero_division=0)) if has_pos else None,
        "precision": float(precision_score(y, pred, zero_division=0)) if pred.any() else None,
        "auc": roc_auc(y, s),
    }


def max_f1_threshold(labels, scores) -> float | None:
    """Threshold maximising F1 (as the original picked it on validation); None if single-class."""
    y, s = _arr(labels).ravel().astype(int), _arr(scores).ravel().astype(np.float64)
    if y.size == 0 or np.unique(y).size < 2:
        return None
    precision, recall, thresholds = precision_recall_curve(y, s)
    p, r = precision[:-1], recall[:-1]  # the last point has no threshold
    f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)
    return float(thresholds[int(np.argmax(f1))])


def fpr_threshold(labels, scores, target_fpr: float = 0.05) -> float | None:
    """Lowest threshold whose false-positive rate on genuine bags is at most ``target_fpr``
    (so it catches as many contaminated bags as that budget allows); None if single-class."""
    y, s = _arr(labels).ravel().astype(int), _arr(scores).ravel().astype(np.float64)
    if y.size == 0 or np.unique(y).size < 2:
        return None
    fpr, _tpr, thresholds = roc_curve(y, s, drop_intermediate=False)
    ok = np.flatnonzero(fpr <= target_fpr + 1e-12)
    t = float(thresholds[ok[-1]])  # fpr is non-decreasing as the threshold falls
    if not np.isfinite(t):  # roc_curve's first threshold is +inf (flag nothing)
        t = float(np.nextafter(s.max(), np.inf))
    return t


def fit_thresholds(labels, scores, target_fpr: float = 0.05) -> dict[str, float]:
    """Both decision thresholds fitted on validation bags: ``max_f1`` and ``fpr_5`` (for 5%)."""
    key = f"fpr_{round(target_fpr * 100):d}"
    out = {"max_f1": max_f1_threshold(labels, scores), key: fpr_threshold(labels, scores, target_fpr)}
    if any(v is None for v in out.values()):
        raise ValueError("thresholds need both genuine and contaminated validation bags")
    return out  # type: ignore[return-value]


def localisation(window_scores, window_foreign, labels=None) -> dict[str, float | None]:
    """How well window scores point at the foreign windows, over contaminated bags.

    ``auc``: ROC AUC of all window scores (pooled over the contaminated bags) against the true
    foreign-window labels; ``top1``: fraction of contaminated bags whose top-scored window holds a
    foreign word. None when there is no contaminated bag (or windows of a single class).
    """
    ws = _arr(window_scores).astype(np.float64)
    wf = _arr(window_foreign).astype(bool)
    keep = wf.any(axis=1) if labels is None else (_arr(labels).ravel() == 1)
    ws, wf = ws[keep], wf[keep]
    if ws.shape[0] == 0:
        return {"auc": None, "top1": None}
    top = np.argmax(ws, axis=1)
    return {"auc": roc_auc(wf.ravel(), ws.ravel()), "top1": float(wf[np.arange(len(top)), top].mean())}


def roc_points(labels, scores) -> tuple[np.ndarray, np.ndarray] | None:
    """(fpr, tpr) of the ROC curve for plotting, or None when single-class."""
    y, s = _arr(labels).ravel().astype(int), _arr(scores).ravel()
    if y.size == 0 or np.unique(y).size < 2:
        return None
    fpr, tpr, _ = roc_curve(y, s)
    return fpr, tpr
