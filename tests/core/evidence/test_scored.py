"""Saved models: they round-trip, score bags like the trained model (``wrmil_core.evidence.scored``), and refuse bags that do not fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wrmil_core.detectors.run import score_bags
from wrmil_core.errors import WrmilInputError
from wrmil_core.evidence.scored import ModelScores, score_saved_models
from wrmil_core.metrics import roc_auc
from wrmil_core.mil.config import preset
from wrmil_core.mil.registry import load_mil_model
from wrmil_core.mil.toy import make_toy_bags
from wrmil_core.mil.train import train_mil


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    kw = dict(separation=1.0, dim=16)
    train, val = make_toy_bags(100, seed=11, **kw), make_toy_bags(50, seed=12, **kw)
    out = tmp_path_factory.mktemp("mil")
    cfg = preset("demo", epochs=2, max_lr=1e-2, tensorboard=False, num_threads=1)
    return val, train_mil("contrast", train, val, cfg, out), train_mil("distance", train, val, cfg, out)


def test_saved_model_round_trip(trained) -> None:
    val, res, _d = trained
    model, cfg = load_mil_model(res.model_dir)
    assert cfg["model_name"] == "contrast" and not model.training
    probs, ws = score_bags(model, val)
    assert probs.shape == (len(val),) and ws.shape == (len(val), 10) and probs.dtype == np.float64
    assert roc_auc(val.label.numpy(), probs) == pytest.approx(res.val_auc)
    # thresholds: the 5%-FPR one keeps val false positives within budget
    assert (probs[val.label.numpy() == 0] >= res.thresholds["fpr_5"]).mean() <= 0.05


def test_score_saved_models(trained) -> None:
    val, res, d = trained
    scores, vauc = score_saved_models({"contrast": res.model_dir, "distance": d.model_dir}, val)
    assert set(scores) == {"contrast", "distance"} and vauc["distance"] == pytest.approx(d.val_auc)
    s = scores["contrast"]
    assert isinstance(s, ModelScores) and s.thresholds == res.thresholds
    assert s.bag_probs.shape == (len(val),) and s.window_scores.shape == (len(val), 10)


def test_refuses_stale_or_mismatched_bags(trained) -> None:
    _val, _res, d = trained
    with pytest.raises(WrmilInputError, match="other-embedder"):
        score_saved_models({"distance": d.model_dir}, make_toy_bags(10, seed=3, model_id="other-embedder"))
    with pytest.raises(WrmilInputError, match="bag_size"):
        score_saved_models({"distance": d.model_dir}, make_toy_bags(10, seed=3, bag_size=6))
    with pytest.raises(WrmilInputError, match="dim"):
        score_saved_models({"distance": d.model_dir}, make_toy_bags(10, seed=3, dim=8))
    with pytest.raises(WrmilInputError, match="re-materialise"):
        score_saved_models({"distance": Path(d.model_dir).parent / "missing"}, make_toy_bags(10, seed=3))
