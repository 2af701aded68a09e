"""Calibration per document length: ``wrmil_core.evidence.length_calibration`` and the length
``wrmil_core.scoring.calibrated`` applies, on Gaussian "writers" (``tests/support/scoring.py``).

The statistical test: thresholds fitted per length on validation writers' documents keep the
false-positive rate on OTHER writers' genuine documents near its target at 25 .. 200 words. The
documents are disjoint runs of independent words and ``segment_scan`` ignores a writer's mean
(``distance`` sees every writer's mean at one norm, so alike), so the genuine scores are
independent draws of one distribution: the threshold, an empirical quantile of ``n_val`` of them,
lets through a share of new genuine documents with sd ``sqrt(p (1 - p) / n_val)``, and the
``n_test`` test documents measure it with sd ``sqrt(p (1 - p) / n_test)``. The tolerance is 3.5
times their combined sd (two detectors x four lengths x two targets: 16 checks, each failing by
chance with probability under 0.05 %), e.g. 0.033 at 5 % with 400 validation and 800 test
documents. The same check with the 50-word thresholds applied to 200-word documents fails for a
statistic that grows with the length (the max over sliding bags of ``distance``): what the
per-length calibration is for, and proof that the check can fail.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.support.scoring import save_mil, synthetic_embeddings
from wrmil_core.errors import WrmilInputError
from wrmil_core.evidence.length import LENGTHS
from wrmil_core.evidence.length_calibration import (
    LENGTH_CALIBRATION_FILE,
    PARAMETRIC,
    RUNS,
    LengthCalibration,
    LengthModel,
    calibration_docs,
    fit_length_calibration,
    fit_length_calibrations,
    fit_length_model,
    load_length_calibration,
    nearest_length,
    save_length_calibration,
)
from wrmil_core.mil.documents import document_scorer
from wrmil_core.mil.registry import load_mil_model
from wrmil_core.scoring.calibrated import applied_calibration
from wrmil_core.scoring.score import _calibration_line

DIM = 8


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Both detectors' length calibrations (validation writers 0..19, 2000 words each) and their
    scores of genuine documents of every length by the test writers 100..139 (2000 words each)."""
    base = tmp_path_factory.mktemp("length")
    val = synthetic_embeddings(range(20), 2000, DIM, seed=1)
    test = synthetic_embeddings(range(100, 140), 2000, DIM, seed=2)
    out: dict = {}
    for name in ("segment_scan", "distance"):
        model_dir = save_mil(base / name, name, DIM, "toy")
        cal = fit_length_calibration(model_dir, val)
        model, cfg = load_mil_model(model_dir)
        scorer = document_scorer(model, name, int(cfg["window_size"]), int(cfg["bag_size"]))
        genuine = {}
        for length in LENGTHS:
            x, y, _ = calibration_docs(test, length, (), seed=7)  # no fractions: genuine only
            genuine[length] = scorer(x[y == 0])
        out[name] = {"dir": model_dir, "cal": cal, "genuine": genuine}
    return out


def _tolerance(p: float, n_val: int, n_test: int) -> float:
    return 3.5 * math.sqrt(p * (1 - p) * (1 / n_val + 1 / n_test))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["segment_scan", "distance"])
def test_fpr_stays_near_target_at_every_length(fitted: dict, name: str) -> None:
    cal = fitted[name]["cal"]
    assert cal.scoring == ("whole document" if name == "segment_scan" else "sliding bags")
    assert sorted(cal.buckets) == list(LENGTHS) and cal.n_writers == 20
    for length in LENGTHS:
        n_val = cal.n_docs[length]["h0"]
        assert n_val == 20 * (2000 // length) and cal.n_docs[length]["h1"] == 4 * n_val  # disjoint runs, 4 fractions
        thr, scores = cal.buckets[length].thresholds, fitted[name]["genuine"][length]
        assert len(scores) == 40 * (2000 // length)
        for key, p in (("fpr_5", 0.05), ("fpr_1", 0.01)):
            fpr = float((scores >= thr[key]).mean())
            assert abs(fpr - p) <= _tolerance(p, n_val, len(scores)), (name, length, key, fpr)


@pytest.mark.slow
def test_one_length_threshold_fails_a_length_growing_statistic(fitted: dict) -> None:
    """The max over sliding bags grows with the length: the thresholds of 50-word documents (one
    bag, what calibration.json holds) flag far more than 5 % of genuine 200-word documents."""
    scores = fitted["distance"]["genuine"][200]
    fpr = float((scores >= fitted["distance"]["cal"].buckets[50].thresholds["fpr_5"]).mean())
    assert fpr > 0.05 + 2 * _tolerance(0.05, 800, len(scores)), fpr


def test_calibration_docs_are_disjoint_runs_with_planted_passages() -> None:
    emb = synthetic_embeddings(range(3), 130, 4, seed=5)
    x, y, n_writers = calibration_docs(emb, 25, (0.2,), seed=0)
    assert n_writers == 3 and (y == 0).sum() == 3 * 5 and (y == 1).sum() == 3 * 5
    genuine = x[y == 0].reshape(-1, 4)
    assert np.unique(genuine, axis=0).shape[0] == genuine.shape[0]  # no word used twice
    for g, m in zip(x[y == 0], x[y == 1]):  # each contaminated document: its genuine run, 5 words replaced
        changed = ~np.isclose(g, m).all(axis=1)
        assert changed.sum() == 5 and np.ptp(np.flatnonzero(changed)) == 4


def test_nearest_length() -> None:
    assert [nearest_length((25, 50, 100, 200), n) for n in (10, 35, 36, 70, 71, 150, 5000)] == [
        25, 25, 50, 50, 100, 200, 200]  # log scale: sqrt(25 * 50) = 35.4, sqrt(50 * 100) = 70.7


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A quick length calibration of segment_scan: 6 validation writers of 1700 words give 48 disjoint
    200-word documents, fewer than MIN_GENUINE, so 200 words gets the parametric calibration."""
    model_dir = save_mil(tmp_path_factory.mktemp("small") / "segment_scan", "segment_scan", DIM, "toy")
    cal = fit_length_calibration(model_dir, synthetic_embeddings(range(6), 1700, DIM, seed=3), lengths=(25, 100, 200))
    save_length_calibration(cal, model_dir)
    return {"dir": model_dir, "cal": cal}


def test_nearest_calibrated_length_and_outside_length_warnings(small: dict) -> None:
    model_dir = small["dir"]
    cfg = load_mil_model(model_dir)[1]
    cal = small["cal"]
    assert sorted(cal.buckets) == [25, 100, 200] and cal.n_docs[100]["h0"] == 6 * 17 and cal.n_docs[200]["h0"] == 48
    assert {k: cal.method(k) for k in cal.buckets} == {25: RUNS, 100: RUNS, 200: PARAMETRIC}
    assert cal.parametric is not None and cal.parametric.lengths == (25, 100, 200)
    # 25, 100 and 200 words from length_calibration.json; 50 (the bag) from calibration.json
    for n_words, source, length, method in ((10, "length", 25, RUNS), (30, "length", 25, RUNS),
                                            (40, "bags", 50, "bags"), (60, "bags", 50, "bags"),
                                            (80, "length", 100, RUNS), (400, "length", 200, PARAMETRIC),
                                            (5000, "length", 200, PARAMETRIC)):
        applied = applied_calibration(Path(model_dir), cfg, n_words)
        assert (applied.source, applied.length, applied.describe()["length_method"]) == (source, length, method)
        assert (applied.warning is not None) == (n_words < 25 or n_words > 400), n_words
    applied = applied_calibration(Path(model_dir), cfg, 10)
    assert "fewer than the shortest calibrated length (25 words)" in applied.warning
    long = applied_calibration(Path(model_dir), cfg, 5000).warning
    assert "5000 words, more than 2x the longest calibrated length (200 words)" in long
    assert applied.describe()["calibrated_length_words"] == 25 and applied.describe()["n_h0"] == 6 * 68
    assert applied.evidence == small["cal"].buckets[25]


def test_length_calibration_round_trip_and_refusals(small: dict, tmp_path: Path) -> None:
    model_dir, cal = small["dir"], small["cal"]
    back = load_length_calibration(model_dir, cal.model_id)
    assert back == cal and back.scoring == "whole document"
    with pytest.raises(WrmilInputError, match="stale"):
        load_length_calibration(model_dir, "another-model")
    assert load_length_calibration(tmp_path) is None
    (tmp_path / LENGTH_CALIBRATION_FILE).write_text("{not json")
    with pytest.raises(WrmilInputError, match="not a valid length calibration"):
        load_length_calibration(tmp_path)
    with pytest.raises(WrmilInputError, match="lacks"):
        LengthCalibration.from_dict({"model_name": "x"}, "here")


def test_one_long_document_gives_disjoint_runs_of_every_length() -> None:
    """One 164-word document: six runs of 25 words, three of 50, one of 100, none of 200; no word in
    two runs of one length."""
    emb = synthetic_embeddings(range(1), 164, 4, doc_words=164, seed=8)
    for length, n_runs in ((25, 6), (50, 3), (100, 1), (200, 0)):
        x, y, _ = calibration_docs(emb, length, (0.2,), seed=0)
        assert (y == 0).sum() == n_runs and (y == 1).sum() == 0  # one writer: no donor for a planted passage
        words = x[y == 0].reshape(-1, 4)
        assert np.unique(words, axis=0).shape[0] == n_runs * length  # disjoint
    x, y, n_writers = calibration_docs(synthetic_embeddings(range(2), 164, 4, doc_words=164, seed=8), 25, (0.2,))
    assert n_writers == 2 and (y == 0).sum() == 12 and (y == 1).sum() == 12  # donors: the other writer


@pytest.fixture(scope="module")
def one_page(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """segment_scan calibrated on 8 validation writers with one 164-word document each (a page each):
    48 / 24 / 8 genuine runs of 25 / 50 / 100 words, all under MIN_GENUINE."""
    model_dir = save_mil(tmp_path_factory.mktemp("page") / "segment_scan", "segment_scan", DIM, "toy")
    said: list[str] = []
    paths = fit_length_calibrations({"segment_scan": model_dir},
                                    synthetic_embeddings(range(8), 164, DIM, doc_words=164, seed=9), log=said.append)
    return {"dir": model_dir, "cal": load_length_calibration(model_dir), "said": said, "paths": paths}


def test_one_page_per_writer_gets_parametric_calibrations_at_25_50_100(one_page: dict) -> None:
    cal = one_page["cal"]
    assert sorted(cal.buckets) == [25, 50, 100] and cal.n_writers == 8
    assert {k: v["h0"] for k, v in cal.n_docs.items()} == {25: 48, 50: 24, 100: 8}
    assert {k: cal.method(k) for k in cal.buckets} == {25: PARAMETRIC, 50: PARAMETRIC, 100: PARAMETRIC}
    assert cal.parametric is not None and cal.parametric.lengths == (25, 50, 100)
    (line,) = one_page["said"]  # one log line says which lengths are parametric and why
    assert "25 (parametric), 50 (parametric), 100 (parametric) words" in line and "parametric = fewer than" in line
    saved = json.loads(Path(one_page["paths"]["segment_scan"]).read_text())
    assert saved["methods"] == {"25": PARAMETRIC, "50": PARAMETRIC, "100": PARAMETRIC}
    assert saved["parametric"]["terms"] == ["intercept", "score", "ln_words", "score*ln_words"]
    for length, evidence in cal.buckets.items():
        c = evidence.calibrator
        intercept, slope = cal.parametric.at(length)
        assert c.kind == "logistic" and (c.intercept, c.slope) == (intercept, slope) and slope > 0
        assert c.cllr_val_logistic is not None and c.cllr_val_pav is not None and c.pav_levels >= 1
        lo, hi = (c.lower - intercept) / slope, (c.upper - intercept) / slope  # where the ELUB bounds bite
        grid = np.linspace(lo - (hi - lo), hi + (hi - lo), 300)
        llr = evidence.log10_lr(grid)
        assert (np.diff(llr) >= 0).all() and llr.min() == c.lower and llr.max() == c.upper
        assert np.unique(np.round(llr, 6)).size > 90  # a smooth map between the bounds, not a few steps
        assert evidence.n_genuine_val == cal.n_docs[length]["h0"]


def test_parametric_length_reported_by_score(one_page: dict) -> None:
    """What ``wrmil score`` records (describe()) names the parametric method and the calibrator kind."""
    cfg = load_mil_model(one_page["dir"])[1]
    for n_words, length in ((30, 25), (164, 100), (400, 100)):
        d = applied_calibration(Path(one_page["dir"]), cfg, n_words).describe()
        assert (d["source"], d["calibrated_length_words"], d["length_method"], d["kind"]) == (
            "length", length, PARAMETRIC, "logistic"), n_words
        assert d["cllr_val_logistic"] is not None and "cllr_val_pav" in d
    assert "(parametric over lengths)" in _calibration_line(d) and "logistic calibrator" in _calibration_line(d)


def test_parametric_needs_two_lengths_and_old_files_read_as_runs(one_page: dict) -> None:
    rng = np.random.default_rng(0)
    s, y = rng.normal(size=40), np.r_[np.zeros(20), np.ones(20)].astype(int)
    assert fit_length_model({25: (s, y)}) is None  # ln(words) is not identified from one length
    model = fit_length_model({25: (s, y), 50: (s + 1, y)})
    assert model is not None and LengthModel.from_dict(model.to_dict(), "here") == model
    d = one_page["cal"].to_dict()
    del d["methods"], d["parametric"]  # a file written before the parametric fallback
    old = LengthCalibration.from_dict(d, "old")
    assert {old.method(k) for k in old.buckets} == {RUNS} and old.parametric is None
    with pytest.raises(WrmilInputError, match="length method 'guess'"):
        LengthCalibration.from_dict(one_page["cal"].to_dict() | {"methods": {"25": "guess"}}, "here")
