"""Cllr and friends against lir and known values; misleading-evidence rates by hand; decisions at a
false-positive rate use the validation threshold."""

from __future__ import annotations

import numpy as np
import pytest
from lir.data.models import LLRData
from lir.metrics import cllr as lir_cllr
from lir.metrics import cllr_cal as lir_cllr_cal
from lir.metrics import cllr_min as lir_cllr_min

from wrmil_core.evidence import (
    cllr,
    fit_fpr_thresholds,
    forensic_metrics,
    misleading_evidence_rates,
    rates_at_thresholds,
)


def test_cllr_known_values() -> None:
    y = np.r_[np.zeros(5), np.ones(7)].astype(int)
    assert cllr(np.zeros(12), y) == pytest.approx(1.0)  # every LR = 1: uninformative
    perfect = np.where(y == 1, 30.0, -30.0)  # overwhelming and right
    assert cllr(perfect, y) == pytest.approx(0.0, abs=1e-8)
    # one H1 LR of 10, one H2 LR of 1/10: each costs log2(1 + 1/10)
    assert cllr(np.array([-1.0, 1.0]), np.array([0, 1])) == pytest.approx(np.log2(1.1))


def test_forensic_metrics_equal_lirs() -> None:
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(80), np.ones(120)].astype(int)
    llrs = rng.normal(0, 1, y.size) + 0.8 * y - 0.2
    m = forensic_metrics(llrs, y)
    data = LLRData(features=llrs.copy(), labels=y)
    assert m["cllr"] == lir_cllr(data)
    assert m["cllr_min"] == lir_cllr_min(LLRData(features=llrs.copy(), labels=y))
    assert m["cllr_cal"] == pytest.approx(lir_cllr_cal(LLRData(features=llrs.copy(), labels=y)), abs=1e-15)
    assert 0 <= m["cllr_min"] <= m["cllr"]


def test_misleading_evidence_by_hand() -> None:
    llrs = np.array([-2.0, 0.5, 0.0, -0.1, 1.0, -0.3, 2.0, 0.0])
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    # H2 (y=0): LLRs -2, 0.5, 0, -0.1 -> one of four favours H1 (0 is neutral, not misleading)
    # H1 (y=1): LLRs 1, -0.3, 2, 0 -> one of four favours H2
    assert misleading_evidence_rates(llrs, y) == {"rme_h1": 0.25, "rme_h2": 0.25}
    m = forensic_metrics(llrs[y == 1], y[y == 1])
    assert m["cllr"] is None and m["cllr_cal"] is None and m["rme_h1"] == 0.25 and m["rme_h2"] is None


def test_detection_at_fpr_uses_the_validation_threshold() -> None:
    """Validation genuine scores 0..99: the 5% threshold admits 5 of them (>= 95), the 1% one
    admits 1 (>= 99). Test scores are shifted up, so the measured test FPR is far above target:
    a threshold refitted on test would have hidden that."""
    val_y = np.r_[np.zeros(100), np.ones(50)].astype(int)
    val_s = np.r_[np.arange(100.0), np.full(50, 200.0)]
    th = fit_fpr_thresholds(val_y, val_s)
    assert th == {"fpr_1": 99.0, "fpr_5": 95.0}
    test_y = np.r_[np.zeros(10), np.ones(4)].astype(int)
    test_s = np.r_[np.arange(90.0, 100.0), [96.0, 98.0, 99.5, 50.0]]
    r = rates_at_thresholds(test_y, test_s, th)
    assert r["fpr_5"] == {"detection_rate": 0.75, "fpr": 0.5}  # genuine 95..99 flagged: 5 of 10
    assert r["fpr_1"] == {"detection_rate": 0.25, "fpr": 0.1}
