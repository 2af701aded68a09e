"""Decisions at a controlled false-positive rate: thresholds fixed on validation, rates measured on test.

A threshold ``fpr_<k>`` is the lowest bag score whose false-positive rate on the genuine
(one-writer) validation bags is at most k %. It is then applied unchanged to the test bags, where
the false-positive rate is measured again on the genuine test bags: that measured rate, not the
target, is what a user of the threshold can expect. With n genuine validation bags a target below
1/n cannot be resolved: the threshold then admits no validation false positive at all, which the
report says (``n_genuine``).
"""

from __future__ import annotations

import numpy as np

from wrmil_core.errors import WrmilInputError
from wrmil_core.metrics import fpr_threshold, rates_at_threshold

FPR_TARGETS: tuple[float, ...] = (0.01, 0.05)


def fpr_key(target: float) -> str:
    """0.01 -> 'fpr_1', 0.05 -> 'fpr_5', 0.005 -> 'fpr_0.5'."""
    return f"fpr_{target * 100:.6g}"


def fit_fpr_thresholds(val_labels: np.ndarray, val_scores: np.ndarray,
                       targets: tuple[float, ...] = FPR_TARGETS) -> dict[str, float]:
    """``{"fpr_1": t1, "fpr_5": t5}``: the validation thresholds for each false-positive target."""
    y = np.asarray(val_labels).ravel().astype(int)
    s = np.asarray(val_scores, dtype=np.float64).ravel()
    out = {fpr_key(t): fpr_threshold(y, s, t) for t in targets}
    if any(v is None for v in out.values()):
        raise WrmilInputError("false-positive thresholds need both genuine and contaminated validation bags; "
                              "check the val split of bags_by_difficulty")
    return out  # type: ignore[return-value]


def rates_at_thresholds(labels: np.ndarray, scores: np.ndarray,
                        thresholds: dict[str, float]) -> dict[str, dict[str, float | None]]:
    """Per threshold: ``detection_rate`` on the contaminated bags and the measured ``fpr`` on the
    genuine ones (None where that class is absent). A bag is flagged when ``score >= threshold``."""
    return {k: rates_at_threshold(labels, scores, t) for k, t in thresholds.items()}
