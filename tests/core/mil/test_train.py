"""Training: learns separable toy problems, balanced batches, determinism, save/load, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from wrmil_core.errors import WrmilInputError
from wrmil_core.mil.toy import make_toy_bags
from wrmil_core.mil.train import (MILConfig, _balanced_batches, load_mil_model, score_bags, score_saved_models,
                                  train_all, train_mil)

# Writers shared by train and val, foreign windows from a separate donor pool: a problem every
# model (the original ABMIL included) can learn quickly.
SEPARABLE = dict(n_writers=8, separation=2.0, writer_seed=0, dim=16, bag_size=6, window_size=3,
                 donors="disjoint", mode="instance", ratios=(0.3, 0.5))


@pytest.fixture(scope="module")
def separable():
    return make_toy_bags(64, seed=1, **SEPARABLE), make_toy_bags(32, seed=2, **SEPARABLE)


@pytest.fixture(scope="module")
def unseen():
    """Realistic toy: unseen writers in val, word-level contamination."""
    kw = dict(separation=1.0, dim=16)
    return make_toy_bags(100, seed=11, **kw), make_toy_bags(50, seed=12, **kw)


def fast(**kw) -> MILConfig:
    return MILConfig.preset("demo", **{"epochs": 12, "max_lr": 1e-2, "tensorboard": False, "num_threads": 1, **kw})


@pytest.mark.parametrize("name,max_lr,hparams", [
    ("abmil", 1e-1, {}), ("gated_abmil", 1e-2, {}),
    ("set_transformer", 1e-2, {"inputs": "embedding"}),  # from raw embeddings (contrast inputs: trivial here)
])
def test_learns_a_separable_toy_problem(separable, tmp_path: Path, name: str, max_lr: float, hparams: dict) -> None:
    train, val = separable
    cfg = fast(epochs=40, max_lr=max_lr, patience=40, hparams={name: hparams})
    res = train_mil(name, train, val, cfg, tmp_path)
    assert res.val_auc > 0.9, res.history
    assert res.history[0]["val_auc"] < res.val_auc


def test_contrast_beats_abmil_on_unseen_writers(unseen, tmp_path: Path) -> None:
    """The design's claim: comparing windows within a bag transfers to unseen writers."""
    train, val = unseen
    res = train_all(["abmil", "contrast", "distance"], train, val, fast(), tmp_path)
    assert res["contrast"].val_auc > 0.9
    assert res["distance"].val_auc > 0.85 and res["distance"].epochs_run == 0
    assert res["contrast"].val_auc > res["abmil"].val_auc + 0.15


def test_balanced_batches() -> None:
    y = np.r_[np.zeros(40, int), np.ones(80, int)]
    cfg = MILConfig(batch_genuine=8, batch_contaminated=8)
    batches = _balanced_batches(y, cfg, torch.Generator().manual_seed(0))
    assert len(batches) == 10  # one pass over the larger class
    for b in batches:
        assert (y[b] == 0).sum() == 8 and (y[b] == 1).sum() == 8
    assert len(set(np.concatenate(batches)[np.concatenate(batches) >= 40])) == 80  # every contaminated bag once
    assert len(_balanced_batches(y, MILConfig(batch_genuine=8, batch_contaminated=8, max_batches_per_epoch=3),
                                 torch.Generator())) == 3


def test_deterministic_for_a_seed(unseen, tmp_path: Path) -> None:
    train, val = unseen
    cfg = fast(epochs=3)
    a = train_mil("set_transformer", train, val, cfg, tmp_path / "a")
    b = train_mil("set_transformer", train, val, cfg, tmp_path / "b")
    c = train_mil("set_transformer", train, val, fast(epochs=3, seed=1), tmp_path / "c")
    assert a.model_id == b.model_id and a.history == b.history and a.thresholds == b.thresholds
    assert c.model_id != a.model_id


def test_saved_model_round_trip_and_tensorboard(unseen, tmp_path: Path) -> None:
    train, val = unseen
    res = train_mil("contrast", train, val, fast(epochs=2, tensorboard=True), tmp_path)
    cfg = json.loads((res.model_dir / "config.json").read_text())
    for key in ("model_name", "hparams", "dim", "bag_size", "window_size", "embedding_model_id", "thresholds", "model_id"):
        assert key in cfg
    assert cfg["embedding_model_id"] == "toy" and cfg["bag_size"] == 10 and set(cfg["thresholds"]) == {"max_f1", "fpr_5"}
    model, cfg2 = load_mil_model(res.model_dir)
    probs, ws = score_bags(model, val)
    assert probs.shape == (len(val),) and ws.shape == (len(val), 10)
    from wrmil_core.mil.metrics import roc_auc
    assert roc_auc(val.label.numpy(), probs) == pytest.approx(res.val_auc)
    assert list((tmp_path / "tb" / "contrast").glob("events.out.tfevents*"))
    # thresholds: the 5%-FPR one keeps val false positives within budget
    fp = (probs[val.label.numpy() == 0] >= res.thresholds["fpr_5"]).mean()
    assert fp <= 0.05
    d = train_mil("distance", train, val, fast(), tmp_path)
    scores, vauc = score_saved_models({"contrast": res.model_dir, "distance": d.model_dir}, val)
    assert set(scores) == {"contrast", "distance"} and vauc["distance"] == pytest.approx(d.val_auc)


def test_refuses_stale_or_mismatched_bags(unseen, tmp_path: Path) -> None:
    train, val = unseen
    other = make_toy_bags(10, seed=3, model_id="other-embedder")
    with pytest.raises(WrmilInputError, match="stale"):
        train_mil("distance", train, other, fast(), tmp_path)
    res = train_mil("distance", train, val, fast(), tmp_path)
    with pytest.raises(WrmilInputError, match="other-embedder"):
        score_saved_models({"distance": res.model_dir}, other)
    small = make_toy_bags(10, seed=3, bag_size=6)
    with pytest.raises(WrmilInputError, match="bag_size"):
        score_saved_models({"distance": res.model_dir}, small)
    only_genuine = train.subset(np.flatnonzero(train.label.numpy() == 0))
    with pytest.raises(WrmilInputError, match="genuine and contaminated"):
        train_mil("distance", only_genuine, val, fast(), tmp_path)
    with pytest.raises(WrmilInputError, match="preset"):
        MILConfig.preset("huge")
