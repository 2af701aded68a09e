"""Model directories: saved and loaded whole, and refused when half-written or foreign."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from wrmil_core.artifacts import CONFIG_FILE, load_model, read_config, save_model
from wrmil_core.errors import WrmilInputError


def _save(directory: Path, value: float) -> str:
    return save_model(directory, {"w": torch.full((3,), value)}, {"kind": "toy"})


def test_round_trip_keeps_weights_and_config(tmp_path: Path) -> None:
    model_id = _save(tmp_path, 1.0)
    state, config = load_model(tmp_path, required=("kind",))
    assert torch.equal(state["w"], torch.full((3,), 1.0))
    assert config == {"kind": "toy", "model_id": model_id}


def test_weights_from_another_save_than_the_config_are_refused(tmp_path: Path) -> None:
    """A crash between the two renames of save_model leaves new weights beside the old config."""
    _save(tmp_path, 1.0)
    old_config = (tmp_path / CONFIG_FILE).read_text()
    _save(tmp_path, 2.0)
    (tmp_path / CONFIG_FILE).write_text(old_config)
    with pytest.raises(WrmilInputError, match="does not match config.json.*re-materialise"):
        load_model(tmp_path, what="embedding model")


@pytest.mark.parametrize("damage, expected", [
    (lambda d: (d / "model.safetensors").unlink(), "model.safetensors is missing"),
    (lambda d: (d / CONFIG_FILE).write_text("{not json"), "not valid JSON"),
    (lambda d: (d / CONFIG_FILE).write_text(json.dumps([1, 2])), "not a JSON object"),
])
def test_damaged_directories_are_named(tmp_path: Path, damage, expected: str) -> None:
    _save(tmp_path, 1.0)
    damage(tmp_path)
    with pytest.raises(WrmilInputError, match=expected):
        read_config(tmp_path)


def test_a_directory_of_another_kind_is_refused(tmp_path: Path) -> None:
    _save(tmp_path, 1.0)
    with pytest.raises(WrmilInputError, match="is not an embedding model directory.*lacks \\['backbone'\\]"):
        read_config(tmp_path, ("backbone",), "embedding model")
