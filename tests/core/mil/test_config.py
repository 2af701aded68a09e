"""MILConfig follows the preset convention: frozen, validated, PRESETS + preset(name, **overrides)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from wrmil_core.errors import WrmilInputError
from wrmil_core.mil.config import DEFAULT_MODELS, PRESETS, MILConfig, preset
from wrmil_core.mil.registry import MODEL_NAMES


def test_presets_and_overrides() -> None:
    assert set(PRESETS) == {"demo", "cpu", "gpu", "paper"}
    assert PRESETS["cpu"] == PRESETS["gpu"] == PRESETS["demo"]  # cpu / gpu only change the embedding
    assert preset("paper") == PRESETS["paper"] and preset("paper").max_lr == 1e-4
    demo = preset("demo", epochs=3, seed=7)
    assert (demo.epochs, demo.seed, demo.max_lr, demo.max_batches_per_epoch) == (3, 7, 3e-3, 50)
    assert PRESETS["demo"].epochs == 20  # overriding never changes the preset itself
    assert set(DEFAULT_MODELS) <= set(MODEL_NAMES) and PRESETS["demo"].models == DEFAULT_MODELS


def test_unknown_preset_or_field_is_refused() -> None:
    with pytest.raises(WrmilInputError, match="preset.*demo"):
        preset("huge")
    with pytest.raises(WrmilInputError, match="no field"):
        preset("demo", epoch=3)


@pytest.mark.parametrize("bad,match", [
    (dict(epochs=0), "epochs"), (dict(batch_genuine=0), "batch_genuine"), (dict(patience=0), "patience"),
    (dict(lr=1e-2, max_lr=1e-3), "lr"), (dict(lr=0.0), "lr"), (dict(pct_start=1.0), "pct_start"),
    (dict(target_fpr=0.0), "target_fpr"), (dict(weight_decay=-1.0), "weight_decay"),
    (dict(max_batches_per_epoch=-1), "max_batches_per_epoch"), (dict(models=()), "models"),
    (dict(models=("abmil", "nope")), "nope"), (dict(hparams={"nope": {}}), "hparams"),
    (dict(hparams={"abmil": 3}), "hparams"),
])
def test_invalid_values_are_refused(bad: dict, match: str) -> None:
    with pytest.raises(WrmilInputError, match=match):
        preset("demo", **bad)


def test_frozen_and_json_ready() -> None:
    cfg = preset("demo", hparams={"set_transformer": {"inputs": "both"}})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 1  # type: ignore[misc]
    d = json.loads(json.dumps(cfg.to_dict()))
    assert d["models"] == list(DEFAULT_MODELS) and d["hparams"] == {"set_transformer": {"inputs": "both"}}
    assert MILConfig(**{**d, "models": tuple(d["models"])}) == cfg  # the saved config rebuilds the same one
