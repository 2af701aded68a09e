"""The two-document comparison's calibration: ``wrmil_core.evidence.compare_calibration``, on Gaussian
"writers" (``tests/support/scoring.py``): pairs of disjoint runs of validation writers only, a
calibrator per words per side, saved beside the fused model and applied to held-out writers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from tests.support.scoring import save_fused, synthetic_embeddings
from wrmil_core.errors import WrmilInputError
from wrmil_core.evidence.compare_calibration import (
    COMPARE_CALIBRATION_FILE,
    COMPARE_WORDS,
    MIN_SAME,
    PAIRS,
    PARAMETRIC,
    CompareCalibration,
    disjoint_runs,
    effective_words,
    fit_compare_calibrations,
    load_compare_calibration,
    pair_indices,
    score_pairs,
)
from wrmil_core.evidence.metrics import cllr

DIM = 8
VAL_WRITERS = range(12)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    val = synthetic_embeddings(VAL_WRITERS, 300, DIM, mean_norm=2.0, seed=1)
    directory, model_id = save_fused(tmp_path_factory.mktemp("cmp") / "fused", val)
    paths = fit_compare_calibrations({"fused": directory, "distance": directory.parent / "none"}, val)
    return {"val": val, "dir": directory, "model_id": model_id, "paths": paths}


def test_pairs_are_disjoint_runs_of_one_or_two_writers() -> None:
    emb = synthetic_embeddings(range(3), 55, DIM, seed=0)
    runs, writers, _ = disjoint_runs(emb, 10)
    assert runs.shape == (15, 10) and np.bincount(writers).tolist() == [5, 5, 5]
    assert np.unique(runs).size == runs.size  # no word in two runs
    pairs, same = pair_indices(writers)
    assert same.sum() == 3 * 10  # every pair of a writer's 5 runs
    assert (pairs[:, 0] != pairs[:, 1]).all()
    assert ((writers[pairs[:, 0]] == writers[pairs[:, 1]]) == same.astype(bool)).all()


def test_fitted_on_validation_writers_per_size(fitted: dict) -> None:
    assert set(fitted["paths"]) == {"fused"}  # only the fused model's frame is used
    cal = load_compare_calibration(fitted["dir"], fitted["model_id"])
    assert sorted(cal.buckets) == list(COMPARE_WORDS) and cal.n_writers == len(VAL_WRITERS)
    assert all(c.n_writers == len(VAL_WRITERS) for c in cal.buckets.values())
    assert cal.n_pairs[50] == {"same": 12 * 15, "different": 4 * 12 * 15}  # 6 runs of 50 per writer
    saved = json.loads((fitted["dir"] / COMPARE_CALIBRATION_FILE).read_text())
    assert saved["split"] == "val" and CompareCalibration.from_dict(saved, "x") == cal
    with pytest.raises(WrmilInputError, match="stale"):
        load_compare_calibration(fitted["dir"], "another-model")


def test_separates_held_out_writers(fitted: dict) -> None:
    """Test writers never seen by the fit: same-writer pairs get LR > 1, different-writer ones LR < 1,
    and the calibrated LLRs beat the uninformative Cllr of 1 at every size."""
    from wrmil_core.mil.registry import load_mil_model

    cal = load_compare_calibration(fitted["dir"])
    cov = load_mil_model(fitted["dir"], "cpu")[0].cov.model()
    test = synthetic_embeddings(range(100, 110), 300, DIM, mean_norm=2.0, seed=2)
    for n in COMPARE_WORDS:
        p = score_pairs(test, cov, n)
        llr = cal.buckets[n].log10_lr(p.llr)
        assert np.median(llr[p.same == 1]) > 0 > np.median(llr[p.same == 0])
        assert cllr(llr, p.same) < 0.5


def test_nearest_size_on_the_harmonic_mean() -> None:
    assert effective_words(50, 50) == 50 and effective_words(50, 1000) == pytest.approx(95.2, abs=0.1)
    cal = CompareCalibration("fused", "m", buckets=dict.fromkeys(COMPARE_WORDS), n_pairs={}, n_writers=2)  # type: ignore[arg-type]
    assert cal.nearest(8, 8) == 10 and cal.nearest(30, 30) == 25 and cal.nearest(50, 1000) == 50
    with pytest.raises(WrmilInputError, match="at least one word"):
        effective_words(0, 10)


def test_missing_calibration_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WrmilInputError, match="compare_calibration.json is missing"):
        load_compare_calibration(tmp_path)


def test_each_pair_is_scored_without_its_writers() -> None:
    """By hand: a different-writer pair's LLR is the one in the frame fitted on the other writers only;
    a same-writer pair's comes from a frame without its writer (and one other)."""
    from wrmil_core.detectors.two_covariance import same_writer_llr
    from wrmil_core.evidence.compare_calibration import cross_fitted_pairs, frame_of

    emb = synthetic_embeddings(range(6), 120, DIM, mean_norm=2.0, seed=3)
    p = cross_fitted_pairs(emb, 10)
    runs, writers, matrix = disjoint_runs(emb, 10)
    pairs, _ = pair_indices(writers)

    def by_hand(i: int, left_out: list[int]) -> float:
        frame = frame_of(emb.filter(~pl.col("writer").is_in(left_out)))
        a, b = (frame.project(torch.from_numpy(matrix[runs[j]])) for j in pairs[i])
        return float(same_writer_llr(a, b, frame.between.double()))

    diff = int(np.flatnonzero(p.same == 0)[0])
    assert p.llr[diff] == pytest.approx(by_hand(diff, p.writers[diff].tolist()), rel=1e-9)
    same = int(np.flatnonzero(p.same == 1)[0])
    own = int(p.writers[same, 0])
    candidates = [by_hand(same, [own, other]) for other in range(6) if other != own]
    assert min(abs(p.llr[same] - c) for c in candidates) < 1e-9 * max(1.0, abs(p.llr[same]))
    assert by_hand(same, []) not in candidates  # the in-sample frame would give another value


def test_in_sample_only_with_too_few_writers(tmp_path: Path) -> None:
    val = synthetic_embeddings(range(3), 300, DIM, mean_norm=2.0, seed=4)
    directory, _ = save_fused(tmp_path / "fused", val)
    fit_compare_calibrations({"fused": directory}, val)
    cal = load_compare_calibration(directory)
    assert not cal.cross_fitted and sorted(cal.buckets) == list(COMPARE_WORDS)


def test_sizes_with_few_same_writer_pairs_are_parametric(tmp_path: Path) -> None:
    """120 words per writer: 12 runs of 10 (66 same-writer pairs each), 2 runs of 50 (one pair each):
    50 words per side gets the parametric model, 10 its own pairs; the choice is saved."""
    val = synthetic_embeddings(range(12), 120, DIM, mean_norm=2.0, seed=5)
    directory, _ = save_fused(tmp_path / "fused", val)
    fit_compare_calibrations({"fused": directory}, val)
    cal = load_compare_calibration(directory)
    assert cal.cross_fitted and cal.n_pairs[50]["same"] == 12 < MIN_SAME
    assert cal.method(50) == PARAMETRIC and cal.method(10) == PAIRS and cal.buckets[50].kind == "logistic"
    saved = json.loads((directory / COMPARE_CALIBRATION_FILE).read_text())
    assert saved["methods"]["50"] == PARAMETRIC and saved["cross_fitted"] is True


def test_version_1_files_read_as_in_sample_pairs(fitted: dict) -> None:
    d = CompareCalibration.from_dict(json.loads((fitted["dir"] / COMPARE_CALIBRATION_FILE).read_text()), "x").to_dict()
    del d["methods"], d["cross_fitted"]
    old = CompareCalibration.from_dict(d | {"format_version": 1}, "x")
    assert not old.cross_fitted and {old.method(n) for n in old.buckets} == {PAIRS}
