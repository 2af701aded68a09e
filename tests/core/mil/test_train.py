"""Training: learns separable toy problems, balanced batches, determinism, the loop's log and curves, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from wrmil_core.errors import WrmilInputError
from wrmil_core.mil.config import MILConfig, preset
from wrmil_core.mil.models import build_mil_model
from wrmil_core.mil.toy import make_toy_bags
from wrmil_core.mil.train import (
    _balanced_batches,
    results_metadata,
    train_all,
    train_mil,
)

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
    return preset("demo", **{"epochs": 12, "max_lr": 1e-2, "tensorboard": False, "num_threads": 1, **kw})


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
    md = results_metadata(res)
    assert md["contrast/val_auc"] == res["contrast"].val_auc and md["distance/model_id"] == res["distance"].model_id


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


def test_epoch_log_early_stop_and_tensorboard(unseen, tmp_path: Path) -> None:
    """The run log keeps one line per epoch (the progress bar never replaces it), early stopping
    keeps the best epoch's weights, and TensorBoard gets this run's curves only."""
    train, val = unseen
    tb = tmp_path / "tb" / "abmil"
    tb.mkdir(parents=True)
    (tb / "events.out.tfevents.stale").write_text("old run")
    lines: list[str] = []
    res = train_mil("abmil", train, val, fast(epochs=30, max_lr=1e-5, lr=1e-6, patience=2, tensorboard=True),
                    tmp_path, log=lines.append)
    epoch_lines = [ln for ln in lines if ln.startswith("[abmil] epoch") and "loss" in ln]
    assert len(epoch_lines) == res.epochs_run == len(res.history) and "epoch 1/30 loss" in epoch_lines[0]
    assert res.epochs_run < 30 and any("early stop" in ln for ln in lines)  # a tiny lr stalls: stops early
    best = max(res.history, key=lambda h: h["val_auc"])
    assert res.best_epoch == best["epoch"] and res.val_auc == pytest.approx(best["val_auc"])
    assert lines[-1].startswith("[abmil] val AUC") and str(res.model_dir) in lines[-1]
    events = list(tb.glob("events.out.tfevents*"))
    assert len(events) == 1 and events[0].read_bytes() != b"old run"


def test_saved_config(unseen, tmp_path: Path) -> None:
    train, val = unseen
    res = train_mil("contrast", train, val, fast(epochs=2), tmp_path)
    cfg = json.loads((res.model_dir / "config.json").read_text())
    for key in ("model_name", "hparams", "dim", "bag_size", "window_size", "embedding_model_id", "thresholds", "model_id"):
        assert key in cfg
    assert cfg["embedding_model_id"] == "toy" and cfg["bag_size"] == 10 and set(cfg["thresholds"]) == {"max_f1", "fpr_5"}
    assert cfg["mil_config"] == fast(epochs=2).to_dict() and cfg["model_id"] == res.model_id
    assert cfg["val_auc"] == res.val_auc and cfg["epochs_run"] == res.epochs_run == 2


def test_refuses_bad_training_input(unseen, tmp_path: Path) -> None:
    train, val = unseen
    other = make_toy_bags(10, seed=3, model_id="other-embedder")
    with pytest.raises(WrmilInputError, match="stale"):
        train_mil("distance", train, other, fast(), tmp_path)
    only_genuine = train.subset(np.flatnonzero(train.label.numpy() == 0))
    with pytest.raises(WrmilInputError, match="genuine and contaminated"):
        train_mil("distance", only_genuine, val, fast(), tmp_path)
    with pytest.raises(WrmilInputError, match="unknown MIL model"):
        train_mil("nope", train, val, fast(), tmp_path)


def test_saves_evidence_fitted_on_val(unseen, tmp_path: Path) -> None:
    """calibration.json beside the model: the calibrator and 1%/5%-FPR thresholds of the val scores
    (refitting on the val scores gives the same; the train bags play no part), and inference loads it."""
    from wrmil_core.evidence import fit_evidence, load_evidence
    from wrmil_core.mil.inference import score_bags, score_saved_models

    train, val = unseen
    res = train_mil("distance", train, val, fast(), tmp_path, val_writers=11)
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


def test_training_free_detectors_get_their_own_ids(unseen, tmp_path: Path) -> None:
    """No weights to hash: name, settings and embedding make the id, so one detector's calibration.json
    cannot pass the stale check of another's; the saved directory still loads and checks."""
    from wrmil_core.artifacts import load_model

    train, val = unseen
    ids = {n: train_mil(n, train, val, fast(), tmp_path / n).model_id for n in ("distance", "segment_scan", "scattered")}
    assert len(set(ids.values())) == 3
    _, cfg = load_model(tmp_path / "distance" / "distance")
    assert cfg["model_id"] == ids["distance"] and json.loads(cfg["id_salt"])[0] == "distance"
    other = make_toy_bags(100, seed=11, separation=1.0, dim=16, model_id="another-embedder")
    assert train_mil("distance", other, other, fast(), tmp_path / "again").model_id != ids["distance"]
