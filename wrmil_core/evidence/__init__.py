"""Evidence an examiner can act on: calibrated log10 likelihood ratios and decisions at a set false-positive rate.

H1: more than one writer (label 1); H2: one writer (label 0). Everything is fitted on validation
bags and measured on test bags.

Public API::

    fit_calibrator(val_scores, val_labels) -> Calibrator          # calibration.py (lir PAV, or logistic
                                                                   # when PAV has few steps; ELUB bounds)
    Calibrator.log10_lr(scores) / .to_dict() / Calibrator.from_dict(d)
    fit_fpr_thresholds(val_labels, val_scores) -> {"fpr_1", "fpr_5"}  # decisions.py
    rates_at_thresholds(labels, scores, thresholds)
    fit_evidence(...) -> DetectorEvidence; save_evidence / load_evidence  # store.py (calibration.json)
    forensic_metrics(llrs, labels) -> Cllr, Cllr_min, Cllr_cal, rme_h1, rme_h2  # metrics.py (lir)
    tippett / reliability / plot_panels                             # figures.py
"""

from wrmil_core.evidence.calibration import Calibrator, fit_calibrator
from wrmil_core.evidence.decisions import FPR_TARGETS, fit_fpr_thresholds, fpr_key, rates_at_thresholds
from wrmil_core.evidence.metrics import FIGURES, cllr, cllr_min, forensic_metrics, misleading_evidence_rates
from wrmil_core.evidence.store import (
    EVIDENCE_FILE,
    DetectorEvidence,
    fit_evidence,
    load_evidence,
    save_evidence,
)

__all__ = [
    "EVIDENCE_FILE",
    "FIGURES",
    "FPR_TARGETS",
    "Calibrator",
    "DetectorEvidence",
    "cllr",
    "cllr_min",
    "fit_calibrator",
    "fit_evidence",
    "fit_fpr_thresholds",
    "forensic_metrics",
    "fpr_key",
    "load_evidence",
    "misleading_evidence_rates",
    "rates_at_thresholds",
    "save_evidence",
]
