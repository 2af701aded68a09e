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

import math
from pathlib import Path

import numpy as np
import pytest

from tests.support.scoring import save_mil, synthetic_embeddings
from wrmil_core.errors import WrmilInputError
from wrmil_core.evidence.length import LENGTHS
from wrmil_core.evidence.length_calibration import (
    LENGTH_CALIBRATION_FILE,
    LengthCalibration,
    calibration_docs,
    fit_length_calibration,
    load_length_calibration,
    nearest_length,
    save_length_calibration,
)
from wrmil_core.mil.documents import document_scorer
from wrmil_core.mil.registry import load_mil_model
from wrmil_core.scoring.calibrated import applied_calibration

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
    200-word documents, fewer than MIN_GENUINE, so 200 words is left uncalibrated."""
    model_dir = save_mil(tmp_path_factory.mktemp("small") / "segment_scan", "segment_scan", DIM, "toy")
    cal = fit_length_calibration(model_dir, synthetic_embeddings(range(6), 1700, DIM, seed=3), lengths=(25, 100, 200))
    save_length_calibration(cal, model_dir)
    return {"dir": model_dir, "cal": cal}


def test_nearest_calibrated_length_and_short_document_warning(small: dict) -> None:
    model_dir = small["dir"]
    cfg = load_mil_model(model_dir)[1]
    assert sorted(small["cal"].buckets) == [25, 100] and small["cal"].n_docs[100]["h0"] == 6 * 17
    # 25 and 100 words from length_calibration.json; 50 (the bag) from calibration.json
    for n_words, source, length in ((10, "length", 25), (30, "length", 25), (40, "bags", 50), (60, "bags", 50),
                                    (80, "length", 100), (5000, "length", 100)):
        applied = applied_calibration(Path(model_dir), cfg, n_words)
        assert (applied.source, applied.length) == (source, length), n_words
        assert (applied.warning is not None) == (n_words < 25), n_words
    applied = applied_calibration(Path(model_dir), cfg, 10)
    assert "fewer than the shortest calibrated length (25 words)" in applied.warning
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
