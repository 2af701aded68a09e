"""Margin-based classification heads: ArcFace, sub-center ArcFace and CosFace.

All three are a cosine classifier (L2-normalised embeddings against L2-normalised class centres)
with a margin applied to the target class only, scaled by ``s`` and trained with cross-entropy:

    ArcFace      target logit  s * cos(theta + m)          (m in radians)
    sub-center   as ArcFace, with cos = max over K centres per class (robust to noisy labels)
    CosFace      target logit  s * (cos(theta) - m)

Where theta + m would pass pi, cos(theta + m) stops decreasing in theta, so (as in insightface) the
target logit falls back to ``cos(theta) - m * sin(m)`` there. The maths runs in fp32 with autocast
disabled and cos clamped to [-1 + eps, 1 - eps], so sqrt(1 - cos^2) and its gradient stay finite
under bf16/fp16 training.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from wrmil_core.embedding.config import EmbeddingConfig


class MarginHead(nn.Module):
    """Margin head over ``n_classes`` classes; ``forward(emb, labels)`` returns the mean loss."""

    def __init__(self, emb_dim: int, n_classes: int, kind: str = "arcface", s: float = 30.0, m: float = 0.5,
                 k: int = 1, eps: float = 1e-7):
        super().__init__()
        if kind not in ("arcface", "subcenter", "cosface"):
            raise ValueError(f"unknown margin head {kind!r}")
        self.kind, self.n_classes, self.s, self.m, self.eps = kind, n_classes, float(s), float(m), eps
        self.k = k if kind == "subcenter" else 1
        self.weight = nn.Parameter(torch.empty(n_classes * self.k, emb_dim))
        nn.init.xavier_uniform_(self.weight)

    def cosine(self, emb: torch.Tensor) -> torch.Tensor:
        """(B, n_classes) fp32 cosine to each class (max over sub-centres), clamped."""
        with torch.autocast(device_type=emb.device.type, enabled=False):
            cos = F.normalize(emb.float(), dim=1) @ F.normalize(self.weight.float(), dim=1).t()
            if self.k > 1:
                cos = cos.view(-1, self.n_classes, self.k).amax(dim=2)
            return cos.clamp(-1 + self.eps, 1 - self.eps)

    def logits(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, n_classes) fp32 scaled logits with the margin applied to each row's target class."""
        with torch.autocast(device_type=emb.device.type, enabled=False):
            cos = self.cosine(emb)
            target = cos.gather(1, labels.view(-1, 1))
            if self.kind == "cosface":
                new_target = target - self.m
            else:
                sin = torch.sqrt((1.0 - target * target).clamp_min(self.eps))
                phi = target * math.cos(self.m) - sin * math.sin(self.m)  # cos(theta + m)
                # theta + m > pi  <=>  cos(theta) < cos(pi - m): keep the logit monotone in theta.
                new_target = torch.where(target > math.cos(math.pi - self.m), phi, target - self.m * math.sin(self.m))
            return self.s * cos.scatter(1, labels.view(-1, 1), new_target)

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=emb.device.type, enabled=False):
            return F.cross_entropy(self.logits(emb, labels), labels)


def build_head(config: EmbeddingConfig, n_classes: int) -> MarginHead:
    """The margin head selected by ``config.head`` for ``n_classes`` training writers."""
    return MarginHead(config.emb_dim, n_classes, kind=config.head, s=config.s, m=config.m, k=config.k_subcenters)
