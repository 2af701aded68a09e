"""Model artifacts: safetensors weights + a JSON config beside them. Nothing is ever pickled.

A model directory holds ``model.safetensors`` and ``config.json``. The ``model_id`` is a short
content hash of the weights, so downstream tables can record which model produced them and
refuse stale inputs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def weights_id(state_dict: dict[str, torch.Tensor]) -> str:
    """Content hash (16 hex chars) of a state dict, independent of dict order."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().to("cpu").contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def save_model(directory: str | Path, state_dict: dict[str, torch.Tensor], config: dict[str, Any]) -> str:
    """Write weights and config to ``directory``; return the model id (also stored in the config)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    model_id = weights_id(tensors)
    # Write to temporary names first so a crash never leaves a half-written model behind.
    tmp_w, tmp_c = directory / (WEIGHTS_FILE + ".tmp"), directory / (CONFIG_FILE + ".tmp")
    save_file(tensors, str(tmp_w))
    tmp_c.write_text(json.dumps({**config, "model_id": model_id}, indent=2, sort_keys=True, default=str))
    tmp_w.replace(directory / WEIGHTS_FILE)
    tmp_c.replace(directory / CONFIG_FILE)
    return model_id


def load_model(directory: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read ``(state_dict, config)`` written by :func:`save_model`."""
    directory = Path(directory)
    weights, config = directory / WEIGHTS_FILE, directory / CONFIG_FILE
    for f in (weights, config):
        if not f.is_file():
            raise FileNotFoundError(f"model file {f} is missing; re-materialise the model asset that writes {directory}")
    return load_file(str(weights)), json.loads(config.read_text())
