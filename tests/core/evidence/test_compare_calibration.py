"""The two-document comparison's calibration: ``wrmil_core.evidence.compare_calibration``, on Gaussian
"writers" (``tests/support/scoring.py``): pairs of disjoint runs of validation writers only, a
calibrator per words per side, saved beside the fused model and applied to held-out writers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support.scoring import synthetic_embeddings
from wrmil_core.artifacts import save_model
from wrmil_core.detectors.two_covariance import fit_two_covariance
from wrmil_core.errors import WrmilInputError
from wrmil_core.evidence.compare_calibration import (
    COMPARE_CALIBRATION_FILE,
    COMPARE_WORDS,
    CompareCalibration,
    disjoint_runs,
    effective_words,
    fit_compare_calibrations,
    load_compare_calibration,
    pair_indices,
    score_pairs,
)
from wrmil_core.evidence.metrics import cllr
from wrmil_core.mil.registry import build_mil_model

DIM = 8
VAL_WRITERS = range(12)


def save_fused(directory: Path, val_emb, dim: int = DIM) -> tuple[Path, str]:
    """A fused model whose two-covariance model is fitted on ``val_emb``'s writers (one group each)."""
    groups = np.stack([np.stack(g) for g in val_emb.group_by("writer", maintain_order=True)
                       .agg("emb")["emb"].to_list()])[:, :200]
    model = build_mil_model("fused", dim)
    model.cov.set(fit_two_covariance(torch.as_tensor(groups, dtype=torch.float64)))
    config = {"model_name": "fused", "hparams": model.hparams, "dim": dim, "bag_size": 10, "window_size": 5,
              "embedding_model_id": "toy", "thresholds": {"fpr_5": 0.5}, "trainable": False}
    return directory, save_model(directory, dict(model.state_dict()), config)


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
