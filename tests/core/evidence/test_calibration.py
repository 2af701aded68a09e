"""Score -> log10 LR calibration: fitted on validation only, reproduces lir, exact JSON round trip,
ELUB bounds, sign and monotonicity; the logistic calibrator when PAV has few steps.

``min_pav_levels=0`` forces the PAV candidate where a test is about PAV itself."""

from __future__ import annotations

import json

import numpy as np
import pytest
from lir.algorithms.bayeserror import ELUBBounder
from lir.algorithms.isotonic_regression import IsotonicCalibrator
from lir.algorithms.logistic_regression import LogitCalibrator
from lir.data.models import LLRData

from wrmil_core.errors import WrmilInputError
from wrmil_core.evidence import (
    Calibrator,
    DetectorEvidence,
    cllr,
    fit_calibrator,
    fit_evidence,
    load_evidence,
    save_evidence,
)
from wrmil_core.evidence.calibration import MIN_PAV_LEVELS


def _scores(n0: int, n1: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    s = np.concatenate([rng.normal(0, 1, n0), rng.normal(shift, 1, n1)])
    return 1 / (1 + np.exp(-s)), np.r_[np.zeros(n0), np.ones(n1)].astype(int)


def _lir_reference(s: np.ndarray, y: np.ndarray) -> np.ndarray:
    """lir's own pipeline: PAV, then ELUB bounds fitted on the PAV output, applied."""
    llrs = IsotonicCalibrator().fit(s, y).transform(s)
    bounder = ELUBBounder().fit(LLRData(features=llrs.copy(), labels=y))
    return bounder.transform(LLRData(features=llrs.copy(), labels=y)).llrs


def test_reproduces_lir_exactly_on_the_fitting_data() -> None:
    s, y = _scores(60, 120, 1.5, 0)
    cal = fit_calibrator(s, y, min_pav_levels=0)
    assert cal.kind == "pav" and np.array_equal(cal.log10_lr(s), _lir_reference(s, y))


def test_json_round_trip_is_exact(tmp_path) -> None:
    s, y = _scores(300, 600, 1.0, 1)  # enough bags for PAV to keep its many steps
    ev = fit_evidence("distance", "abc", s, y, n_writers=7)
    assert ev.calibrator.kind == "pav"
    save_evidence(ev, tmp_path)
    back = load_evidence(tmp_path, model_id="abc")
    assert back == ev and back.calibrator.n_writers == 7
    probe = np.linspace(-0.5, 1.5, 1001)
    assert np.array_equal(back.log10_lr(probe), ev.log10_lr(probe))
    assert Calibrator.from_dict(json.loads(json.dumps(ev.calibrator.to_dict()))) == ev.calibrator
    doc = json.loads((tmp_path / "calibration.json").read_text())
    assert doc["calibrator"]["method"] == "pav+elub" and doc["calibrator"]["n_h1"] == 600
    assert doc["calibrator"]["n_h2"] == 300 and doc["calibrator"]["kind"] == "pav"
    assert set(doc["thresholds"]) == {"fpr_1", "fpr_5"}


def test_elub_bounds_hold_and_are_lirs() -> None:
    s, y = _scores(40, 80, 4.0, 2)  # well separated: PAV alone would give LR 0 and infinity
    cal = fit_calibrator(s, y, min_pav_levels=0)
    llrs = IsotonicCalibrator().fit(s, y).transform(s)
    assert np.isinf(llrs).any()
    bounder = ELUBBounder().fit(LLRData(features=llrs.copy(), labels=y))
    assert (cal.lower, cal.upper) == (bounder.lower_llr_bound, bounder.upper_llr_bound)
    assert cal.lower < 0 < cal.upper
    assert cal.upper <= np.log10(40 + 1) + 1e-9 and cal.lower >= -np.log10(80 + 1) - 1e-9
    out = cal.log10_lr(np.linspace(-100, 100, 2001))  # far outside the fitted scores too
    assert np.isfinite(out).all() and out.min() >= cal.lower and out.max() <= cal.upper
    assert out.min() == cal.lower and out.max() == cal.upper


def test_sign_and_monotonicity() -> None:
    s, y = _scores(100, 200, 2.0, 3)
    for min_levels in (0, 10**6):  # PAV, then logistic
        cal = fit_calibrator(s, y, min_pav_levels=min_levels)
        assert cal.kind == ("pav" if min_levels == 0 else "logistic")
        grid = np.linspace(0, 1, 500)
        llr = cal.log10_lr(grid)
        assert (np.diff(llr) >= 0).all()  # a higher score never lowers the LR
        assert llr[0] < 0 < llr[-1]  # low scores favour one writer, high ones more than one


def test_fitted_on_validation_only() -> None:
    """Same validation bags, wildly different test bags: the calibrator does not change, and its
    test LLRs are the validation map applied (a fit that peeked at test would differ)."""
    val_s, val_y = _scores(60, 120, 1.5, 4)
    test_a, _ = _scores(60, 120, 1.5, 5)
    test_b = test_a * 0.1  # a shifted test set
    cal = fit_calibrator(val_s, val_y, min_pav_levels=0)
    ref = IsotonicCalibrator().fit(val_s, val_y)
    for test in (test_a, test_b):
        assert np.array_equal(cal.log10_lr(test), np.clip(ref.transform(test), cal.lower, cal.upper))
    refit_on_test = fit_calibrator(np.r_[test_b], np.r_[np.zeros(60), np.ones(120)].astype(int), min_pav_levels=0)
    assert refit_on_test != cal


def test_uninformative_scores_give_lr_near_one() -> None:
    y = np.r_[np.zeros(50), np.ones(50)].astype(int)
    cal = fit_calibrator(np.full(100, 0.3), y)  # every bag scores the same
    assert np.allclose(cal.log10_lr([0.0, 0.3, 1.0]), 0.0)


def test_bad_input_is_refused(tmp_path) -> None:
    with pytest.raises(WrmilInputError, match="labels 0 and 1"):
        fit_calibrator(np.arange(4.0), np.ones(4))
    with pytest.raises(WrmilInputError, match="NaN"):
        fit_calibrator(np.array([0.1, np.nan, 0.3, 0.4]), np.array([0, 0, 1, 1]))
    cal = fit_calibrator(np.arange(4.0), np.array([0, 0, 1, 1]))
    with pytest.raises(WrmilInputError, match="finite"):
        cal.log10_lr([np.inf])
    with pytest.raises(WrmilInputError, match="missing"):
        load_evidence(tmp_path)
    ev = DetectorEvidence("m", "id1", cal, {"fpr_5": 0.5}, 2)
    save_evidence(ev, tmp_path)
    with pytest.raises(WrmilInputError, match="stale"):
        load_evidence(tmp_path, model_id="id2")
    (tmp_path / "calibration.json").write_text("{not json")
    with pytest.raises(WrmilInputError, match="not a valid calibration"):
        load_evidence(tmp_path)
    (tmp_path / "calibration.json").write_text(json.dumps({"model_name": "m"}))
    with pytest.raises(WrmilInputError, match="lacks"):
        load_evidence(tmp_path)


def test_few_validation_bags_get_the_logistic_calibrator_with_many_distinct_lrs(tmp_path) -> None:
    """32 bags (like 32 real pages): PAV has a handful of steps, so the smooth calibrator is used; its
    LRs on a spread of scores take many values, and it is monotone and inside its ELUB bounds."""
    s, y = _scores(11, 21, 1.5, 6)
    cal = fit_calibrator(s, y)
    pav = fit_calibrator(s, y, min_pav_levels=0)
    assert pav.kind == "pav" and cal.kind == "logistic" and cal.method == "logistic+elub"
    assert cal.pav_levels == pav.pav_levels < MIN_PAV_LEVELS
    grid = np.linspace(s.min(), s.max(), 200)
    # PAV gives the 32 bags 5 or so LRs, the logistic map one per bag but those ELUB clips
    assert np.unique(pav.log10_lr(s)).size == pav.pav_levels
    assert np.unique(cal.log10_lr(s)).size > 15
    llr = cal.log10_lr(grid)  # a spread of scores: many distinct LRs, PAV's only between its few knots
    assert np.unique(np.round(llr, 6)).size > 60 > 3 * np.unique(np.round(pav.log10_lr(grid), 6)).size
    assert (np.diff(llr) >= 0).all()
    assert cal.lower <= llr.min() and llr.max() <= cal.upper and cal.lower < 0 < cal.upper
    # both candidates' validation Cllr recorded, each the Cllr of that candidate's val LLRs
    assert cal.cllr_val_pav == pytest.approx(cllr(pav.log10_lr(s), y))
    assert cal.cllr_val_logistic == pytest.approx(cllr(cal.log10_lr(s), y))
    assert pav.cllr_val_logistic == cal.cllr_val_logistic and pav.cllr_val_pav == cal.cllr_val_pav
    assert cal.describe() | {"llr_bounds": None} == {
        "kind": "logistic", "method": "logistic+elub", "pav_levels": cal.pav_levels, "llr_bounds": None,
        "cllr_val_pav": cal.cllr_val_pav, "cllr_val_logistic": cal.cllr_val_logistic}
    # the logistic map is lir's LogitCalibrator's on the standardised score, ln -> log10
    z = (s - s.mean()) / s.std()
    ref = LogitCalibrator().fit(z, y).transform(z)
    assert np.allclose(cal.log10_lr(s), np.clip(ref, cal.lower, cal.upper))
    ev = fit_evidence("distance", "abc", s, y)
    save_evidence(ev, tmp_path)
    back = load_evidence(tmp_path, "abc")
    assert back == ev and np.array_equal(back.log10_lr(grid), ev.log10_lr(grid))
    doc = json.loads((tmp_path / "calibration.json").read_text())["calibrator"]
    assert doc["kind"] == "logistic" and doc["x"] == [] and doc["slope"] > 0 and doc["format_version"] == 2


def test_many_validation_bags_keep_pav() -> None:
    s, y = _scores(300, 600, 1.5, 7)
    cal = fit_calibrator(s, y)
    assert cal.kind == "pav" and cal.pav_levels >= MIN_PAV_LEVELS and cal.method == "pav+elub"
    assert cal.cllr_val_pav <= cal.cllr_val_logistic  # PAV's val Cllr is Cllr_min on its own data


def test_old_calibration_json_without_kind_reads_as_pav() -> None:
    old = {"x": [0.1, 0.5, 0.9], "p": [0.2, 0.5, 0.8], "lower": -1.0, "upper": 1.0, "n_h1": 10, "n_h2": 5,
           "n_writers": None, "method": "pav+elub", "format_version": 1}
    cal = Calibrator.from_dict(old)
    assert cal.kind == "pav" and cal.cllr_val_pav is None and cal.describe()["kind"] == "pav"
    assert cal.log10_lr(0.5)[0] == pytest.approx(0.0)
    with pytest.raises(WrmilInputError, match="lacks intercept"):
        Calibrator.from_dict(old | {"kind": "logistic"})
    with pytest.raises(WrmilInputError, match="kind 'spline'"):
        Calibrator.from_dict(old | {"kind": "spline"})
    with pytest.raises(WrmilInputError, match="slope >= 0"):
        Calibrator.from_dict(old | {"kind": "logistic", "method": "logistic+elub", "intercept": 0.0, "slope": -1.0})
    with pytest.raises(WrmilInputError, match="method 'pav\\+elub'"):
        Calibrator.from_dict(old | {"kind": "logistic", "intercept": 0.0, "slope": 1.0})


def test_negative_slope_leaves_pav() -> None:
    """Scores that fall with H1 have no increasing logistic fit: PAV (flat, LR 1 here) is kept."""
    s, y = _scores(11, 21, -2.0, 8)
    cal = fit_calibrator(s, y)
    assert cal.kind == "pav" and cal.cllr_val_logistic is None
