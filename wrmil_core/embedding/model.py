"""The embedding network: a timm backbone followed by the original projection head.

Grayscale: word images are single-channel, so by default the backbone is built with
``in_chans=1``. When a pretrained file is given, timm adapts the RGB stem by summing its weights
over the three channels; with the input normalised by the channel-averaged ImageNet mean/std this
gives (almost exactly) the response the RGB network has to the same gray image repeated three
times, at a third of the stem's input cost and memory. ``in_chans=3`` repeats the gray image
instead, for backbones whose stem timm cannot adapt.
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from timm.data import resolve_data_config
from torch import nn

from wrmil_core.embedding.config import EmbeddingConfig
from wrmil_core.errors import WrmilInputError


class EmbeddingNet(nn.Module):
    """Backbone -> Linear(hidden) -> BN -> ReLU -> Dropout -> Linear(emb_dim) -> BN.

    ``forward`` returns the raw (un-normalised) BN output, which the margin heads normalise in
    fp32; ``embed`` returns L2-normalised vectors for inference. Input is uint8 pixels from
    :mod:`wrmil_core.embedding.data`; the network normalises them with the backbone's mean/std.
    """

    def __init__(self, backbone: nn.Module, config: EmbeddingConfig, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.config = config
        self.model_id: str | None = None
        # Not persistent: they follow from the backbone, so the state dict stays the backbone's + head's.
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.backbone = backbone
        # Pooled feature size with num_classes=0 (differs from num_features for e.g. MobileNet/LCNet heads).
        feat = getattr(backbone, "head_hidden_size", None) or backbone.num_features
        self.head = nn.Sequential(
            nn.Linear(feat, config.hidden_dim),
            nn.BatchNorm1d(config.hidden_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden_dim, config.emb_dim),
            nn.BatchNorm1d(config.emb_dim),
        )

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 pixels (B, 1, H, W) (or floats in [0, 1]) -> normalised (B, in_chans, H, W) floats."""
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        if x.shape[1] == 1 and self.config.in_chans == 3:
            x = x.expand(-1, 3, -1, -1)
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(self.normalise(x)))

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised float32 embeddings (call in eval mode)."""
        return F.normalize(self.forward(x).float(), dim=1)


def _norm_constants(backbone: nn.Module, in_chans: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    cfg = resolve_data_config({}, model=backbone)
    mean, std = tuple(float(v) for v in cfg["mean"]), tuple(float(v) for v in cfg["std"])
    if in_chans == 1 and len(mean) == 3:
        # Summed RGB stem (see module docstring) -> the channel average is the matching constant.
        mean, std = (sum(mean) / 3,), (sum(std) / 3,)
    return mean, std


def build_model(config: EmbeddingConfig, load_weights: bool = True) -> EmbeddingNet:
    """Create the network; load ``config.weights_file`` into the backbone if set and ``load_weights``.

    Raises ``WrmilInputError`` for an unknown backbone, a missing weights file, or a weights file
    that does not fit the backbone (the message names both).
    """
    weights = config.weights_file if load_weights else None
    if weights is not None and not Path(weights).is_file():
        raise WrmilInputError(
            f"weights_file {weights!r} does not exist; give a local .safetensors/.pth file with "
            f"{config.backbone!r} weights, or weights_file=None to train from scratch"
        )
    kwargs = dict(num_classes=0, in_chans=config.in_chans)
    if not timm.is_model(config.backbone.split(".")[0]):
        raise WrmilInputError(
            f"unknown timm backbone {config.backbone!r}; pick a name from timm.list_models(), e.g. 'resnet18d'"
        )
    try:
        if weights:
            backbone = timm.create_model(
                config.backbone, pretrained=True, pretrained_cfg_overlay=dict(file=str(weights)), **kwargs
            )
        else:
            backbone = timm.create_model(config.backbone, pretrained=False, **kwargs)
    except Exception as e:  # timm raises RuntimeError/KeyError/... for a file of another architecture
        if not weights:
            raise WrmilInputError(f"timm could not build backbone {config.backbone!r}: {e}") from e
        raise WrmilInputError(
            f"weights_file {weights!r} does not match backbone {config.backbone!r} "
            f"({type(e).__name__}: {str(e)[:400]}); use the weights of that exact timm model or change backbone"
        ) from e
    mean, std = _norm_constants(backbone, config.in_chans)
    return EmbeddingNet(backbone, config, mean, std)
