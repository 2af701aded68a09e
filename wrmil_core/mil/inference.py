"""Running MIL models on bags: the bag-fit check, the forward pass, scoring, and saved models.

A saved model directory (written by :mod:`wrmil_core.mil.train`) holds the weights and a JSON
config with the model name, its constructor hparams, the bag geometry and embedding model it was
trained on, its decision thresholds and its val AUC; beside them ``calibration.json`` holds the
detector's evidence (:mod:`wrmil_core.evidence`: score -> log10 LR and 1%/5%-FPR thresholds).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wrmil_core.artifacts import load_model
from wrmil_core.bags.tensors import BagTensors
from wrmil_core.errors import WrmilInputError
from wrmil_core.evidence import EVIDENCE_FILE, DetectorEvidence, load_evidence
from wrmil_core.mil.models import MILModel, build_mil_model
from wrmil_core.runtime import resolve_device, use_bf16


@dataclass(frozen=True)
class ModelScores:
    """One model's scores of a set of bags, the decision thresholds and the evidence saved with it."""

    bag_probs: np.ndarray  # (B,) float64: sigmoid of the bag logit
    window_scores: np.ndarray  # (B, n_win) float64: higher = more likely foreign
    thresholds: dict[str, float]
    evidence: DetectorEvidence | None = None  # None: no calibration saved with the model

    def log10_lr(self) -> np.ndarray | None:
        """The bags' calibrated log10 LRs (H1: more than one writer), None without evidence."""
        return None if self.evidence is None else self.evidence.log10_lr(self.bag_probs)


def check_bags(bags: BagTensors, what: str, model_id: str | None = None, dim: int | None = None,
               bag_size: int | None = None, window_size: int | None = None) -> None:
    """Refuse bags that do not fit: wrong rank, other embedding model (stale upstream), other geometry."""
    if bags.x.ndim != 4:
        raise WrmilInputError(f"{what}: bag tensor must be (bags, windows, words, dim), got shape {tuple(bags.x.shape)}")
    if model_id is not None and bags.model_id != model_id:
        raise WrmilInputError(
            f"{what}: bags hold embeddings of model {bags.model_id!r} but {model_id!r} was expected; "
            "the embeddings or bags are stale: re-materialise word_embeddings and bags_by_difficulty")
    _, w, t, d = bags.x.shape
    for name, want, got in (("dim", dim, d), ("bag_size", bag_size, w), ("window_size", window_size, t)):
        if want is not None and want != got:
            raise WrmilInputError(f"{what}: {name} is {got} but the model was trained with {want}; "
                                  "use bags built with the same geometry and embedding model")


def forward(model: MILModel, x: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(bag_logit (B,), window_scores (B, n_win))`` in float32; bf16 autocast on a capable GPU."""
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16(device)):
        logit, ws = model(x)
    return logit.float(), ws.float()


@torch.no_grad()
def score_bags(model: MILModel, bags: BagTensors, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Score bags with a model: ``(bag_probs (B,), window_scores (B, n_win))`` as numpy float64.

    ``bag_probs`` is sigmoid(bag logit); for ``distance`` that is a monotone map of its max
    distance, so thresholds fitted on it are on the same scale.
    """
    check_bags(bags, "score_bags", dim=model.dim)
    return score_tensor(model, bags.x, batch_size)


@torch.no_grad()
def score_tensor(model: MILModel, x: torch.Tensor | np.ndarray, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """:func:`score_bags` on a bare ``(B, n_win, n_words, dim)`` tensor (e.g. bags cut from a document)."""
    x = torch.as_tensor(x)
    was_training = model.training
    model.eval()
    param = next(model.parameters(), None)  # training-free models have no parameters: they run on the CPU
    device = param.device if param is not None else torch.device("cpu")
    probs, wins = [], []
    for start in range(0, len(x), batch_size):
        logit, ws = forward(model, x[start:start + batch_size].to(device), device)
        probs.append(torch.sigmoid(logit).double().cpu())
        wins.append(ws.double().cpu())
    model.train(was_training)
    if not probs:
        return np.zeros(0), np.zeros((0, x.shape[1]))
    return torch.cat(probs).numpy(), torch.cat(wins).numpy()


def load_mil_model(model_dir: str | Path, device: str = "cpu") -> tuple[MILModel, dict[str, Any]]:
    """Rebuild a saved model in eval mode from ``model_dir``: ``(model, config)``."""
    state, config = load_model(model_dir)
    model = build_mil_model(config["model_name"], int(config["dim"]), **config.get("hparams", {}))
    model.load_state_dict(state)
    return model.to(resolve_device(device)).eval(), config


def score_saved_models(model_dirs: dict[str, str | Path], bags: BagTensors, batch_size: int = 512,
                       device: str = "cpu") -> tuple[dict[str, ModelScores], dict[str, float]]:
    """Load each saved model, check ``bags`` fit it (embedding model id, geometry) and score them.

    Returns ``(scores, val_auc)``: each model's :class:`ModelScores` (the input of
    :func:`wrmil_core.mil.report.build_report`, with the model's evidence when its directory holds
    ``calibration.json``; a stale one is refused) and its saved val AUC.
    """
    scores, val_auc = {}, {}
    for name, directory in model_dirs.items():
        model, cfg = load_mil_model(directory, device)
        check_bags(bags, f"bags scored by model {name!r} ({directory})", model_id=cfg["embedding_model_id"],
                   dim=cfg["dim"], bag_size=cfg["bag_size"], window_size=cfg["window_size"])
        probs, ws = score_bags(model, bags, batch_size)
        evidence = (load_evidence(directory, model_id=cfg.get("model_id"))
                    if (Path(directory) / EVIDENCE_FILE).is_file() else None)
        scores[name] = ModelScores(bag_probs=probs, window_scores=ws, thresholds=dict(cfg["thresholds"]),
                                   evidence=evidence)
        if cfg.get("val_auc") is not None:
            val_auc[name] = float(cfg["val_auc"])
    return scores, val_auc
