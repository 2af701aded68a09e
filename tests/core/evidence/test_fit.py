"""Each detector's evidence fitted on the val scores training returns: ``wrmil_core.evidence.fit``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wrmil_core.detectors.run import score_bags
from wrmil_core.evidence import fit_evidence, load_evidence
from wrmil_core.evidence.fit import results_metadata, train_with_evidence
from wrmil_core.evidence.scored import score_saved_models
from wrmil_core.mil.config import MILConfig, preset
from wrmil_core.mil.registry import build_mil_model
from wrmil_core.mil.toy import make_toy_bags


@pytest.fixture(scope="module")
def unseen():
    """Realistic toy: unseen writers in val, word-level contamination."""
    kw = dict(separation=1.0, dim=16)
    return make_toy_bags(100, seed=11, **kw), make_toy_bags(50, seed=12, **kw)


def fast(**kw) -> MILConfig:
    return preset("demo", **{"epochs": 12, "max_lr": 1e-2, "tensorboard": False, "num_threads": 1, **kw})


def test_saves_evidence_fitted_on_val(unseen, tmp_path: Path) -> None:
    """calibration.json beside the model: the calibrator and 1%/5%-FPR thresholds of the val scores
    (refitting on the val scores gives the same; the train bags play no part), and inference loads it."""
    train, val = unseen
    res = train_with_evidence(["distance"], train, val, fast(), tmp_path, val_writers=11)["distance"]
    saved = load_evidence(res.model_dir, model_id=res.model_id)
    model = build_mil_model("distance", val.x.shape[-1])
    val_probs, _ = score_bags(model, val)
    assert saved == res.evidence == fit_evidence("distance", res.model_id, val_probs, val.label.numpy(), n_writers=11)
    assert saved.calibrator.n_h1 == int(val.label.sum()) and saved.calibrator.n_writers == 11
    assert saved.thresholds["fpr_5"] == res.thresholds["fpr_5"] and saved.n_genuine_val == int((val.label == 0).sum())
    md = results_metadata({"distance": res})
    assert md["distance/llr_upper"] == saved.calibrator.upper and "distance/threshold_fpr_1" in md
    assert md["distance/calibrator_kind"] == saved.calibrator.kind in ("pav", "logistic")
    assert md["distance/calibrator_cllr_val_pav"] == saved.calibrator.cllr_val_pav
    scores, _ = score_saved_models({"distance": res.model_dir}, val)
    assert scores["distance"].evidence == saved
    assert np.array_equal(scores["distance"].log10_lr(), saved.log10_lr(val_probs))
