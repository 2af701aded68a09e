"""Calibration per document length: ``wrmil_core.scoring.length_calibration`` and the bucket
``wrmil_core.scoring.calibrated`` applies, on Gaussian "writers" (``tests/support/scoring.py``).

The statistical test: thresholds fitted per length on validation writers' documents keep the
false-positive rate on OTHER writers' genuine documents near its target at 25 .. 200 words.
Tolerance: per length 800 genuine validation documents fix the threshold and 800 genuine test
documents measure the rate; each alone gives a binomial sd of sqrt(0.05 * 0.95 / 800) = 0.0077 at
5 %, together 0.011; documents of one writer overlap (20 runs of a 1000-word sequence), which we
allow for by a factor 1.5: sd about 0.016, so |FPR - 5 %| <= 0.05 (3 sd) and, at 1 %, FPR <= 0.035
(sd 0.005 * 1.5 -> 3 sd ~ 0.025 above 1 %). The same check with the 25-word thresholds applied to
200-word documents fails for a statistic that grows with the length (the max over sliding bags):
that is what the per-length buckets are for.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support.scoring import save_mil, synthetic_embeddings
from wrmil_core.errors import WrmilInputError
from wrmil_core.evidence.length import LENGTHS, make_length_docs, writer_sequences
from wrmil_core.mil.inference import load_mil_model
from wrmil_core.scoring.calibrated import applied_calibration
from wrmil_core.scoring.length_calibration import (LENGTH_CALIBRATION_FILE, LengthCalibration,
                                                   fit_length_calibration, load_length_calibration,
                                                   save_length_calibration)
from wrmil_core.scoring.whole import document_scorer

DIM = 8


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("length")
    val = synthetic_embeddings(range(0, 20), 1000, DIM, seed=1)
    test = synthetic_embeddings(range(100, 140), 1000, DIM, seed=2)
    out = {"test": test, "models": {}}
    for name in ("segment_scan", "distance"):
        model_dir = save_mil(base / name, name, DIM, "toy")
        cal = fit_length_calibration(model_dir, val, per_writer=10)
        save_length_calibration(cal, model_dir)
        out["models"][name] = (model_dir, cal)
    return out


def _test_fpr(fitted: dict, name: str, length: int, threshold: float) -> tuple[float, int]:
    """FPR of ``name`` at ``threshold`` on genuine test-writer documents of ``length`` words."""
    model_dir, _ = fitted["models"][name]
    model, cfg = load_mil_model(model_dir)
    seqs, matrix = writer_sequences(fitted["test"])
    docs = make_length_docs(seqs, matrix, length, per_writer=20, seed=7)
    x = docs.x[docs.label == 0]
    scores = document_scorer(model, name, int(cfg["window_size"]), int(cfg["bag_size"]))(x)
    return float((scores >= threshold).mean()), len(x)


@pytest.mark.parametrize("name", ["segment_scan", "distance"])
def test_fpr_stays_near_target_at_every_length(fitted: dict, name: str) -> None:
    _, cal = fitted["models"][name]
    assert sorted(cal.buckets) == list(LENGTHS) and cal.n_writers == 20
    assert all(cal.n_docs[n] == {"h1": 800, "h0": 800} for n in LENGTHS)
    for length in LENGTHS:
        thr = cal.buckets[length].thresholds
        fpr5, n = _test_fpr(fitted, name, length, thr["fpr_5"])
        fpr1, _ = _test_fpr(fitted, name, length, thr["fpr_1"])
        assert n == 800
        assert abs(fpr5 - 0.05) <= 0.05 and fpr1 <= 0.035, (name, length, fpr5, fpr1)


def test_one_length_threshold_fails_a_length_growing_statistic(fitted: dict) -> None:
    """The max over sliding bags grows with the length: 25-word thresholds flag far more than 5 %
    of genuine 200-word documents, so the per-length buckets are needed (and the test above can fail)."""
    _, cal = fitted["models"]["distance"]
    fpr, _ = _test_fpr(fitted, "distance", 200, cal.buckets[25].thresholds["fpr_5"])
    assert fpr > 0.15, fpr


def test_nearest_bucket_and_short_document_warning(fitted: dict) -> None:
    model_dir, _ = fitted["models"]["segment_scan"]
    cfg = load_mil_model(model_dir)[1]
    for n_words, bucket in ((10, 25), (37, 50), (70, 50), (80, 100), (160, 200), (5000, 200)):
        applied = applied_calibration(Path(model_dir), cfg, n_words)
        assert (applied.source, applied.length) == ("length", bucket), n_words
        assert (applied.warning is not None) == (n_words < 25), n_words
    applied = applied_calibration(Path(model_dir), cfg, 10)
    assert "fewer than the shortest calibrated length (25 words" in applied.warning
    assert applied.describe()["calibrated_length_words"] == 25 and applied.describe()["n_h0"] == 800


def test_length_calibration_round_trip_and_refusals(fitted: dict, tmp_path: Path) -> None:
    model_dir, cal = fitted["models"]["segment_scan"]
    back = load_length_calibration(model_dir, cal.model_id)
    assert back == cal and back.scoring == "whole document"
    assert fitted["models"]["distance"][1].scoring == "sliding bags"
    with pytest.raises(WrmilInputError, match="stale"):
        load_length_calibration(model_dir, "another-model")
    assert load_length_calibration(tmp_path) is None
    (tmp_path / LENGTH_CALIBRATION_FILE).write_text("{not json")
    with pytest.raises(WrmilInputError, match="not a valid length calibration"):
        load_length_calibration(tmp_path)
    (tmp_path / LENGTH_CALIBRATION_FILE).write_text('{"model_name": "x"}')
    with pytest.raises(WrmilInputError, match="lacks"):
        LengthCalibration.from_dict({"model_name": "x"}, "here")
