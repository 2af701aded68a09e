"""Running any bag model on bags: the bag-fit check, the forward pass and scoring.

Generic to every model (:class:`wrmil_core.detectors.base.MILModel`), trained or training-free, so
code below the learned models (:mod:`wrmil_core.mil`) can score bags too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from wrmil_core.bags.tensors import BagTensors
from wrmil_core.detectors.base import MILModel
from wrmil_core.errors import WrmilInputError
from wrmil_core.runtime import use_bf16


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


def forward(model: MILModel, x: torch.Tensor, device: torch.device,
            features: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(bag_logit (B,), window_scores (B, n_win))`` in float32; bf16 autocast on a capable GPU.
    ``features``: the model's own precomputed features of ``x``, passed on to its forward (``FusedMIL``)."""
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16(device)):
        logit, ws = model(x) if features is None else model(x, features)
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
def score_tensor(model: MILModel, x: torch.Tensor | np.ndarray, batch_size: int = 512,
                 features: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`score_bags` on a bare ``(B, n_win, n_words, dim)`` tensor (e.g. bags cut from a document).
    ``features``: the model's precomputed features of all of ``x`` (see :func:`forward`); ``x`` then
    runs as one batch."""
    x = torch.as_tensor(x)
    if features is not None:
        batch_size = max(len(x), 1)  # the features are of the whole of x
    was_training = model.training
    model.eval()
    param = next(model.parameters(), None)  # training-free models have no parameters: they run on the CPU
    device = param.device if param is not None else torch.device("cpu")
    probs, wins = [], []
    for start in range(0, len(x), batch_size):
        logit, ws = forward(model, x[start:start + batch_size].to(device), device, features)
        probs.append(torch.sigmoid(logit).double().cpu())
        wins.append(ws.double().cpu())
    model.train(was_training)
    if not probs:
        return np.zeros(0), np.zeros((0, x.shape[1]))
    return torch.cat(probs).numpy(), torch.cat(wins).numpy()


__all__ = ["check_bags", "forward", "score_bags", "score_tensor"]
