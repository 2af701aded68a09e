"""Forensic performance of log10 LRs: Cllr, Cllr_min, Cllr_cal (``lir``) and rates of misleading evidence.

Labels: 1 = H1 (more than one writer), 0 = H2 (one writer). Cllr (Brummer & du Preez 2006) is 1
for an uninformative system (every LR = 1) and 0 for a perfect one; Cllr_min is the Cllr after
the best monotone recalibration of these very LRs (PAV), i.e. what discrimination alone allows;
Cllr_cal = Cllr - Cllr_min is the cost of miscalibration. The rates of misleading evidence are
hand-written (``lir`` 1.3 has none) and checked by hand in the tests:

* ``rme_h1``: share of H1 bags whose LR favours H2 (log10 LR < 0);
* ``rme_h2``: share of H2 bags whose LR favours H1 (log10 LR > 0).

Every figure is None ("n/a") where the data cannot answer it (a class absent).
"""

from __future__ import annotations

import numpy as np

FIGURES: tuple[str, ...] = ("cllr", "cllr_min", "cllr_cal", "rme_h1", "rme_h2")


def _llr_data(llrs: np.ndarray, labels: np.ndarray):
    from lir.data.models import LLRData  # lir imports slowly; only when a metric is asked for

    return LLRData(features=np.asarray(llrs, dtype=np.float64).ravel().copy(),
                   labels=np.asarray(labels).ravel().astype(int))


def cllr(llrs: np.ndarray, labels: np.ndarray) -> float | None:
    """Log-likelihood-ratio cost (``lir.metrics.cllr``); None unless both classes are present."""
    if not _both(labels):
        return None
    from lir.metrics import cllr as lir_cllr

    return float(lir_cllr(_llr_data(llrs, labels)))


def cllr_min(llrs: np.ndarray, labels: np.ndarray) -> float | None:
    """Cllr after PAV recalibration of these LLRs (``lir.metrics.cllr_min``); None unless both classes."""
    if not _both(labels):
        return None
    from lir.metrics import cllr_min as lir_cllr_min

    return float(lir_cllr_min(_llr_data(llrs, labels)))


def misleading_evidence_rates(llrs: np.ndarray, labels: np.ndarray) -> dict[str, float | None]:
    """``rme_h1``: share of H1 LLRs < 0; ``rme_h2``: share of H2 LLRs > 0 (None for an absent class)."""
    llr = np.asarray(llrs, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(int)
    h1, h2 = llr[y == 1], llr[y == 0]
    return {"rme_h1": float((h1 < 0).mean()) if h1.size else None,
            "rme_h2": float((h2 > 0).mean()) if h2.size else None}


def forensic_metrics(llrs: np.ndarray, labels: np.ndarray) -> dict[str, float | None]:
    """Every figure of :data:`FIGURES` for one set of test LLRs and labels."""
    c, cmin = cllr(llrs, labels), cllr_min(llrs, labels)
    out: dict[str, float | None] = {"cllr": c, "cllr_min": cmin,
                                    "cllr_cal": None if c is None or cmin is None else c - cmin}
    return out | misleading_evidence_rates(llrs, labels)


def _both(labels: np.ndarray) -> bool:
    y = np.asarray(labels).ravel()
    return bool((y == 0).any() and (y == 1).any())
