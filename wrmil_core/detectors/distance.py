"""The ``distance`` detector: training-free, window level.

Each window's score is the cosine distance of its mean embedding from the leave-one-out mean of
the other windows of its bag; the bag logit is the largest window score (monotone, so thresholds
are fitted on val like every other model's).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from wrmil_core.detectors._batch import full_precision
from wrmil_core.detectors.base import MILModel

EPS = 1e-8


def loo_mean(h: torch.Tensor) -> torch.Tensor:
    """Mean of the *other* windows of each window's bag, ``(B, W, D)``."""
    n = h.shape[1]
    return (h.sum(dim=1, keepdim=True) - h) / max(n - 1, 1)


@full_precision
def distance_scores(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(bag logit (B,), window scores (B, W))`` of bags ``x`` ``(B, W, T, D)`` (module docstring)."""
    h = x.mean(dim=2)
    s = 1.0 - F.cosine_similarity(h, loo_mean(h), dim=-1, eps=EPS)
    return s.amax(dim=1), s


class DistanceMIL(MILModel):
    """Training-free: window score = cosine distance of its mean embedding from the leave-one-out
    mean of the other windows of its bag; bag logit = max window score (monotone; thresholds are
    fitted on val like the others)."""

    name = "distance"
    window_output = "logit"
    trainable = False

    def __init__(self, dim: int) -> None:
        super().__init__(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return distance_scores(x)


__all__ = ["DistanceMIL", "distance_scores", "loo_mean"]
