"""The new opt-in config fields (and old checkpoints without them), the cpu/gpu presets, and figures pooled
over cross-validation folds."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from tests.support.embedding import TINY_CONFIG, make_split
from wrmil_core.embedding.config import PRESETS, EmbeddingConfig, preset
from wrmil_core.embedding.evaluate import pooled_metrics, retrieval_metrics, verification_metrics
from wrmil_core.embedding.train import train_embedding
from wrmil_core.errors import WrmilInputError

NEW_FIELDS = {"sampler": "random", "words_per_writer": 4, "shortcut_augment": False, "image_budget": None}


def test_new_fields_default_to_the_old_behaviour_everywhere_they_are_not_asked_for() -> None:
    for cfg in (EmbeddingConfig(), PRESETS["demo"], PRESETS["paper"]):
        assert {k: getattr(cfg, k) for k in NEW_FIELDS} == NEW_FIELDS
        assert cfg.for_data(5000) is cfg  # no image budget: epochs as given


def test_cpu_preset_scales_epochs_to_the_data_set() -> None:
    cpu = preset("cpu")
    assert cpu.sampler == "pk" and cpu.shortcut_augment and cpu.image_budget
    assert cpu.for_data(5144).epochs == 16  # AHAWP-size: 80,000 / 5,144 images per epoch
    assert cpu.for_data(500).epochs == cpu.epochs  # small sets: capped
    assert cpu.for_data(10**6).epochs == 1  # large sets: at least one epoch, same time budget
    capped = preset("cpu", max_train_images_per_epoch=4000)
    assert capped.for_data(10**6).epochs == 20
    gpu = preset("gpu")
    assert gpu.sampler == "pk" and gpu.batch_size % gpu.words_per_writer == 0
    assert "cpu" in PRESETS and "gpu" in PRESETS and PRESETS["demo"] is not PRESETS["cpu"]


@pytest.mark.parametrize("field, value, why", [
    ("sampler", "balanced", "choose one of"),
    ("words_per_writer", 40, "K <= batch_size/2"),
    ("image_budget", 10, "at least one batch"),
])
def test_bad_values_are_refused(field: str, value: object, why: str) -> None:
    with pytest.raises(WrmilInputError, match=why):
        dataclasses.replace(preset("cpu"), **{field: value})


def test_pooled_metrics_of_one_part_match_the_single_set_figures() -> None:
    rng = np.random.default_rng(0)
    writers = np.repeat(np.arange(8), 12)
    emb = rng.normal(size=(96, 16)) + 1.5 * rng.normal(size=(8, 16))[writers]
    pooled = pooled_metrics([(emb, writers)], n_pairs=4000, n_queries=50, seed=3)
    single = {**verification_metrics(emb, writers, 4000, 3), **retrieval_metrics(emb, writers, 50, 3)}
    for k in ("auc", "eer", "tar_far_1e-2", "top1", "map", "n_pairs", "n_queries"):
        assert pooled[k] == pytest.approx(single[k])
    assert pooled["n_writers"] == 8 and pooled["n_images"] == 96


def test_pooled_metrics_combine_folds_with_their_own_models() -> None:
    rng = np.random.default_rng(1)
    parts = []
    for f, strength in enumerate((3.0, 0.0)):  # one fold separates writers, the other is noise
        writers = np.repeat(np.arange(10 * f, 10 * f + 10), 8)
        parts.append((rng.normal(size=(80, 8)) + strength * rng.normal(size=(10, 8))[writers - 10 * f], writers))
    good, bad = (pooled_metrics([p], n_pairs=2000)["auc"] for p in parts)
    both = pooled_metrics(parts, n_pairs=2000)
    assert bad < both["auc"] < good
    assert both["n_writers"] == 20 and both["n_pairs"] == 4000 and both["n_images"] == 160
    with pytest.raises(WrmilInputError):
        pooled_metrics([])


def test_a_checkpoint_written_before_the_new_fields_still_resumes(tmp_path: Path) -> None:
    train, val = make_split(tmp_path / "img", n_train=3, n_val=2, per_writer=12)
    cfg = dataclasses.replace(TINY_CONFIG, epochs=1)
    first = train_embedding(train, val, cfg, tmp_path / "run")
    state_json = tmp_path / "run" / "checkpoint" / "state.json"
    state = json.loads(state_json.read_text())
    state["config"] = {k: v for k, v in state["config"].items() if k not in NEW_FIELDS}  # an older checkpoint
    state_json.write_text(json.dumps(state))
    logs: list[str] = []
    again = train_embedding(train, val, cfg, tmp_path / "run", log=logs.append)
    assert any("resuming from" in m for m in logs) and again.model_id == first.model_id
    state["config"]["sampler"] = "pk"  # a checkpoint of another recipe is still refused
    state_json.write_text(json.dumps(state))
    with pytest.raises(WrmilInputError, match="sampler"):
        train_embedding(train, val, cfg, tmp_path / "run")
