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

from wrmil_core.errors import WrmilInputError

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def weights_id(state_dict: dict[str, torch.Tensor], salt: str = "") -> str:
    """Content hash (16 hex chars) of a state dict, independent of dict order, and of ``salt`` when
    given (what tells apart models with the same, e.g. no, weights)."""
    h = hashlib.sha256(salt.encode())
    for name in sorted(state_dict):
        t = state_dict[name].detach().to("cpu").contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def save_model(directory: str | Path, state_dict: dict[str, torch.Tensor], config: dict[str, Any],
               id_salt: str = "") -> str:
    """Write weights and config to ``directory``; return the model id (also stored in the config).

    ``id_salt`` (kept in the config as ``id_salt``) enters the id beside the weights: training-free
    models have no weights, so without it every one of them would get the id of the empty state.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    model_id = weights_id(tensors, id_salt)
    if id_salt:
        config = {**config, "id_salt": id_salt}
    # Write to temporary names first so a crash never leaves a half-written model behind.
    tmp_w, tmp_c = directory / (WEIGHTS_FILE + ".tmp"), directory / (CONFIG_FILE + ".tmp")
    save_file(tensors, str(tmp_w))
    tmp_c.write_text(json.dumps({**config, "model_id": model_id}, indent=2, sort_keys=True, default=str))
    tmp_w.replace(directory / WEIGHTS_FILE)
    tmp_c.replace(directory / CONFIG_FILE)
    return model_id


def read_config(directory: str | Path, required: tuple[str, ...] = (), what: str = "model") -> dict[str, Any]:
    """A model directory's ``config.json``, validated once: both files present, valid JSON, ``required`` keys.

    Every reader of a model directory (training resume, inference, scoring) goes through here, so a
    half-written, foreign or hand-edited directory is refused with the same message everywhere.
    """
    directory = Path(directory)
    weights, config = directory / WEIGHTS_FILE, directory / CONFIG_FILE
    for f in (weights, config):
        if not f.is_file():
            raise WrmilInputError(f"{what} file {f} is missing; give a model directory written by wrmil, or "
                                  f"re-materialise the model asset that writes {directory}")
    try:
        cfg = json.loads(config.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WrmilInputError(f"{config} is not valid JSON ({e}); re-materialise the {what}") from e
    if not isinstance(cfg, dict):
        raise WrmilInputError(f"{config} is not a JSON object; re-materialise the {what}")
    missing = [k for k in required if k not in cfg]
    if missing:
        article = "an" if what[:1] in "aeiou" else "a"
        raise WrmilInputError(f"{directory} is not {article} {what} directory: its config.json lacks {missing}")
    return cfg


def load_model(directory: str | Path, required: tuple[str, ...] = (),
               what: str = "model") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read ``(state_dict, config)`` written by :func:`save_model` (config checked by :func:`read_config`)."""
    config = read_config(directory, required, what)
    state = load_file(str(Path(directory) / WEIGHTS_FILE))
    # The two files are each replaced atomically, but not as a pair: a crash between the renames
    # leaves new weights beside the old config. The id in the config is the weights' hash, so check it.
    if "model_id" in config and weights_id(state, config.get("id_salt", "")) != config["model_id"]:
        raise WrmilInputError(f"{what} {directory}: {WEIGHTS_FILE} does not match config.json (model_id "
                              f"{config['model_id']}); a write was interrupted: re-materialise the {what}")
    return state, config
