"""Training end to end on a tiny fixture: artifacts, embedding, resume, divergence, bad splits."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
import torch
from safetensors.torch import load_file

from tests.support.embedding import TINY_CONFIG, make_split
from wrmil_core.embedding.heads import MarginHead
from wrmil_core.embedding.infer import check_embeddings, load_embedding_model
from wrmil_core.embedding.models import embed_words
from wrmil_core.embedding.train import TrainingDivergedError, train_embedding
from wrmil_core.errors import WrmilInputError


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> tuple[pl.DataFrame, pl.DataFrame]:
    return make_split(tmp_path_factory.mktemp("words"))


def test_tiny_end_to_end_train_and_embed(split, tmp_path: Path) -> None:
    train, val = split
    broken = Path(train["path"][5]).with_name("broken.png")
    broken.write_bytes(b"not an image")
    train = train.with_columns(  # one unreadable file
        pl.when(pl.int_range(pl.len()) == 5).then(pl.lit(str(broken))).otherwise(pl.col("path")).alias("path"))
    logs: list[str] = []
    r = train_embedding(train, val, TINY_CONFIG, tmp_path / "run", log=logs.append)

    assert r.epochs_run == 2 and [h["epoch"] for h in r.history] == [1, 2]
    assert r.history[-1]["loss"] < r.history[0]["loss"]
    assert r.skipped_images == 1 and "broken.png" in r.skipped_examples[0]
    assert {"auc", "eer", "tar_far_1e-2", "tar_far_1e-3", "top1", "map"} <= set(r.val_metrics)
    assert {"auc", "eer"} <= set(r.baseline_metrics) and {"auc"} <= set(r.pixel_metrics)
    best = r.history[r.best_epoch - 1]
    assert r.val_metrics == {k[4:]: v for k, v in best.items() if k.startswith("val_")}  # the best epoch's
    # Artifacts for the UI and for resuming.
    assert r.curve_png.read_bytes()[:4] == b"\x89PNG"
    assert any(r.tb_dir.glob("events.out.tfevents.*"))
    assert len(json.loads((tmp_path / "run" / "history.json").read_text())) == 2
    saved = json.loads((r.model_dir / "config.json").read_text())
    assert saved["backbone"] == "test_resnet" and saved["model_id"] == r.model_id
    # The metrics shown in Dagster are the ones saved beside the weights.
    assert saved["val_metrics"] == r.val_metrics and saved["untrained_metrics"] == r.baseline_metrics
    assert saved["pixel_metrics"] == r.pixel_metrics and saved["best_epoch"] == r.best_epoch
    assert not list(r.model_dir.glob("*.pt*")) and not list((tmp_path / "run").rglob("*.pkl"))
    assert any("epoch 2/2" in m for m in logs)

    model, cfg = load_embedding_model(r.model_dir, "cpu")
    assert cfg == TINY_CONFIG and model.model_id == r.model_id
    emb = embed_words(r.model_dir, val, device="cpu")
    ok, stats = check_embeddings(emb, dim=16)
    assert ok, stats
    assert emb["model_id"].unique().to_list() == [r.model_id]


def test_quality_from_trainings_own_passes_equals_a_fresh_pass(split, tmp_path: Path) -> None:
    """TrainResult.quality (the best epoch's and the untrained pass's val vectors, kept) gives what
    model_quality gets by embedding the val words again; the Pipes result carries it."""
    from wrmil_core.embedding.model_quality import model_quality
    from wrmil_core.embedding.train import TrainResult

    train, val = split
    r = train_embedding(train, val, TINY_CONFIG, tmp_path / "run")
    again = model_quality(r.model_dir, val, max_words=None, n_pairs=TINY_CONFIG.val_pairs,
                          n_queries=TINY_CONFIG.val_queries, seed=TINY_CONFIG.seed, device="cpu")
    assert r.quality is not None and r.quality.keys() == again.keys()
    for name in again:
        assert r.quality[name].keys() == again[name].keys()
        for key, value in again[name].items():
            assert r.quality[name][key] == pytest.approx(value, abs=1e-4), (name, key)  # float32 rounding
    assert r.quality["trained"]["auc"] == pytest.approx(r.val_metrics["auc"], abs=1e-6)
    assert TrainResult.from_json(r.to_json()).quality == r.quality


def test_resume_after_interruption_replays_the_uninterrupted_run(split, tmp_path: Path, monkeypatch) -> None:
    train, val = split
    full = train_embedding(train, val, TINY_CONFIG, tmp_path / "full")

    real_forward, calls = MarginHead.forward, {"n": 0}

    def crash_in_second_epoch(self, emb, labels):  # 96 images / batch 16 = 6 steps per epoch
        calls["n"] += 1
        if calls["n"] == 6 + 2:
            raise KeyboardInterrupt("simulated interruption")
        return real_forward(self, emb, labels)

    monkeypatch.setattr(MarginHead, "forward", crash_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_embedding(train, val, TINY_CONFIG, tmp_path / "resumed")
    monkeypatch.setattr(MarginHead, "forward", real_forward)
    state = json.loads((tmp_path / "resumed" / "checkpoint" / "state.json").read_text())
    assert state["epoch"] == 0 and len(state["history"]) == 1

    logs: list[str] = []
    res = train_embedding(train, val, replace(TINY_CONFIG, num_workers=0), tmp_path / "resumed", log=logs.append)
    assert any("resuming" in m and "1 of 2 epochs" in m for m in logs)
    assert not any("baseline:" in m for m in logs)  # baseline comes from the checkpoint
    assert [h["epoch"] for h in res.history] == [1, 2]
    assert res.history[0] == state["history"][0]
    # The last epoch's full state (model, head, optimizer moments) equals the uninterrupted run's.
    a, b = (load_file(str(d / "checkpoint" / "state_e0001.safetensors")) for d in (tmp_path / "full", tmp_path / "resumed"))
    assert a.keys() == b.keys() and any(k.startswith("optim.") for k in a)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    assert res.baseline_metrics == full.baseline_metrics
    assert res.model_id == full.model_id and res.val_metrics == full.val_metrics  # bit-identical
    # The untrained pass came before the interruption: arcface_model embeds the val words again.
    assert res.quality is None and full.quality is not None

    with pytest.raises(WrmilInputError, match="different training.*lr"):
        train_embedding(train, val, replace(TINY_CONFIG, lr=2e-3), tmp_path / "resumed")
    fresh = train_embedding(train, val, replace(TINY_CONFIG, lr=2e-3, epochs=1), tmp_path / "resumed", resume=False)
    assert fresh.epochs_run == 1


def test_nan_loss_names_epoch_and_step(split, tmp_path: Path, monkeypatch) -> None:
    train, val = split
    real_forward, calls = MarginHead.forward, {"n": 0}

    def nan_on_third(self, emb, labels):
        calls["n"] += 1
        loss = real_forward(self, emb, labels)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(MarginHead, "forward", nan_on_third)
    with pytest.raises(TrainingDivergedError, match="epoch 1 step 3"):
        train_embedding(train, val, TINY_CONFIG, tmp_path / "nan")


def test_unusable_splits_are_refused(split, tmp_path: Path) -> None:
    train, val = split
    one_writer = train.filter(pl.col("writer") == train["writer"][0])
    with pytest.raises(WrmilInputError, match="train split has 1 writer"):
        train_embedding(one_writer, val, TINY_CONFIG, tmp_path / "x")
    with pytest.raises(WrmilInputError, match="val split has no word images"):
        train_embedding(train, val.head(0), TINY_CONFIG, tmp_path / "x")
    with pytest.raises(WrmilInputError, match="lower batch_size"):
        train_embedding(train, val, replace(TINY_CONFIG, batch_size=500), tmp_path / "x")
