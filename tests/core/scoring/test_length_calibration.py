"""Calibration per document length: ``wrmil_core.scoring.length_calibration`` and the bucket
``wrmil_core.scoring.calibrated`` applies, on Gaussian "writers" (``tests/support/scoring.py``).

The statistical test: thresholds fitted per length on validation writers' documents keep the
false-positive rate on OTHER writers' genuine documents near its target at 25 .. 200 words.
Tolerance: per length 800 genuine validation documents fix the threshold and 800 genuine test
documents measure the rate; each alone gives a binomial sd of sqrt(0.05 * 0.95 / 800) = 0.0077 at
5 %, together 0.011; documents of one writer overlap (20 runs of a 1000-word sequence), which we
allow for by a factor 1.5: sd about 0.016, so |FPR - 5 %| <= 0.05 (3 sd) and, at 1 %, FPR <= 0.035
(sd 0.005 * 1.5 -> 3 sd ~ 0.025 above 1 %). Measured when written: segment_scan and distance
both within 0.035 .. 0.05 at 5 %. The same check with the 50-word thresholds applied to 200-word
documents fails for a statistic that grows with the length (the max over sliding bags of
``distance``: 0.34): that is what the per-length buckets are for. The writers' means all have one
norm, so every writer's cosine geometry is alike (``distance`` is cosine-based; writers of very
different mean norms would make its FPR a property of which writers were drawn).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.scoring import save_mil, synthetic_embeddings
from wrmil_core.errors import WrmilInputError
from wrmil_core.evidence.length import LENGTHS, make_length_docs, writer_sequences
from wrmil_core.mil.inference import load_mil_model
from wrmil_core.scoring.calibrated import applied_calibration
from wrmil_core.scoring.length_calibration import (
    LENGTH_CALIBRATION_FILE,
    LengthCalibration,
    fit_length_calibration,
    load_length_calibration,
    save_length_calibration,
)
from wrmil_core.scoring.whole import document_scorer

DIM = 8


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Both detectors' length calibrations (validation writers 0..19) and their scores of genuine
    documents of every length by the test writers 100..139."""
    base = tmp_path_factory.mktemp("length")
    val = synthetic_embeddings(range(20), 1000, DIM, seed=1)
    seqs, matrix = writer_sequences(synthetic_embeddings(range(100, 140), 1000, DIM, seed=2))
    out: dict = {}
    for name in ("segment_scan", "distance"):
        model_dir = save_mil(base / name, name, DIM, "toy")
        cal = fit_length_calibration(model_dir, val, per_writer=10)
        save_length_calibration(cal, model_dir)
        model, cfg = load_mil_model(model_dir)
        scorer = document_scorer(model, name, int(cfg["window_size"]), int(cfg["bag_size"]))
        genuine = {}
        for length in LENGTHS:
            docs = make_length_docs(seqs, matrix, length, per_writer=20, seed=7)
            genuine[length] = scorer(docs.x[docs.label == 0])
        out[name] = {"dir": model_dir, "cal": cal, "genuine": genuine}
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", ["segment_scan", "distance"])
def test_fpr_stays_near_target_at_every_length(fitted: dict, name: str) -> None:
    cal = fitted[name]["cal"]
    assert cal.scoring == ("whole document" if name == "segment_scan" else "sliding bags")
    assert sorted(cal.buckets) == list(LENGTHS) and cal.n_writers == 20
    assert all(cal.n_docs[n] == {"h1": 800, "h0": 800} for n in LENGTHS)
    for length in LENGTHS:
        thr, scores = cal.buckets[length].thresholds, fitted[name]["genuine"][length]
        fpr5, fpr1 = float((scores >= thr["fpr_5"]).mean()), float((scores >= thr["fpr_1"]).mean())
        assert len(scores) == 800
        assert abs(fpr5 - 0.05) <= 0.05 and fpr1 <= 0.035, (name, length, fpr5, fpr1)


@pytest.mark.slow
def test_one_length_threshold_fails_a_length_growing_statistic(fitted: dict) -> None:
    """The max over sliding bags grows with the length: the thresholds of 50-word documents (one
    bag, what calibration.json holds) flag far more than 5 % of genuine 200-word documents, so the
    per-length buckets are needed (and the test above can fail)."""
    scores = fitted["distance"]["genuine"][200]
    assert float((scores >= fitted["distance"]["cal"].buckets[50].thresholds["fpr_5"]).mean()) > 0.15


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A quick length calibration (6 validation writers, 2 documents each per fraction) of segment_scan."""
    model_dir = save_mil(tmp_path_factory.mktemp("small") / "segment_scan", "segment_scan", DIM, "toy")
    cal = fit_length_calibration(model_dir, synthetic_embeddings(range(6), 400, DIM, seed=3), per_writer=2)
    save_length_calibration(cal, model_dir)
    return {"dir": model_dir, "cal": cal}


def test_nearest_bucket_and_short_document_warning(small: dict) -> None:
    model_dir = small["dir"]
    cfg = load_mil_model(model_dir)[1]
    for n_words, bucket in ((10, 25), (37, 50), (70, 50), (80, 100), (160, 200), (5000, 200)):
        applied = applied_calibration(Path(model_dir), cfg, n_words)
        assert (applied.source, applied.length) == ("length", bucket), n_words
        assert (applied.warning is not None) == (n_words < 25), n_words
    applied = applied_calibration(Path(model_dir), cfg, 10)
    assert "fewer than the shortest calibrated length (25 words" in applied.warning
    assert applied.describe()["calibrated_length_words"] == 25 and applied.describe()["n_h0"] == 6 * 4 * 2


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
    (tmp_path / LENGTH_CALIBRATION_FILE).write_text('{"model_name": "x"}')
    with pytest.raises(WrmilInputError, match="lacks"):
        LengthCalibration.from_dict({"model_name": "x"}, "here")
