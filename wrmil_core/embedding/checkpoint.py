"""Resumable training checkpoints in safetensors + JSON (never pickle, never ``torch.save``).

``<dir>/state.json`` is the commit record: it names the safetensors files of the latest epoch
(model + head + flattened optimiser state) and of the best epoch's model weights, and holds the
scheduler state, counters, history and seeds. Tensor files carry the epoch in their name and the
JSON is replaced atomically last, so an interruption at any point leaves the previous complete
checkpoint readable.

A checkpoint resumes only the training it belongs to: :func:`training_set_key` names a training
directory after its data, and ``state.restore`` refuses a checkpoint of another config.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import polars as pl
import torch
from safetensors.torch import load_file, save_file

STATE_JSON = "state.json"


def flatten_optimizer(opt_state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors (``optim.<param>.<name>``) and a JSON-able rest."""
    tensors, scalars = {}, {}
    for pid, st in opt_state["state"].items():
        for name, v in st.items():
            if torch.is_tensor(v):
                tensors[f"optim.{pid}.{name}"] = v.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[name] = v
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in opt_state["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`flatten_optimizer`."""
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    for pid, st in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(st)
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def save_checkpoint(directory: Path, epoch: int, tensors: dict[str, torch.Tensor], meta: dict[str, Any],
                    best_model: dict[str, torch.Tensor] | None) -> None:
    """Write epoch ``epoch``'s tensors (and new best weights if given), then commit ``state.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    old = read_state(directory)
    state_file = f"state_e{epoch:04d}.safetensors"
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(directory / state_file))
    best_file = old["best_file"] if old else None
    if best_model is not None:
        best_file = f"best_e{epoch:04d}.safetensors"
        save_file({k: v.detach().cpu().contiguous() for k, v in best_model.items()}, str(directory / best_file))
    record = {**meta, "epoch": epoch, "state_file": state_file, "best_file": best_file}
    tmp = directory / (STATE_JSON + ".tmp")
    tmp.write_text(json.dumps(record, indent=1, default=float))
    os.replace(tmp, directory / STATE_JSON)
    for f in directory.glob("*.safetensors"):  # files no longer referenced
        if f.name not in (state_file, best_file):
            f.unlink(missing_ok=True)


def read_state(directory: Path) -> dict[str, Any] | None:
    """The committed ``state.json`` of a checkpoint directory, or None if there is none."""
    f = directory / STATE_JSON
    return json.loads(f.read_text()) if f.is_file() else None


def load_tensors(directory: Path, name: str) -> dict[str, torch.Tensor]:
    """A tensor file of the checkpoint."""
    return load_file(str(directory / name))


def split_prefix(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """``{k[len(prefix):]: v}`` for keys starting with ``prefix``."""
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def training_set_key(train: pl.DataFrame, val: pl.DataFrame) -> str:
    """Short content key of the train/val word lists (image paths and writers).

    One training directory per key means a checkpoint is never resumed on other images, other
    labels, or writers moved between the splits.
    """
    h = hashlib.sha256()
    for name, df in (("train", train), ("val", val)):
        h.update(name.encode())
        h.update("\n".join(df["path"].to_list()).encode())
        h.update(df["writer"].to_numpy().tobytes())
    return h.hexdigest()[:12]
