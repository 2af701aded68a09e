"""The fused embedding: a trained network's vector beside the classical LDA embedding's.

With a few tens of training writers the network and the hand-crafted ink-shape histograms
(``classical.py``, projected by a shrinkage LDA of the training writers) each reach about the same
verification AUC on unseen writers, and they err on different pairs: on AHAWP, pooled over 5 writer
folds (82 unseen writers), the network gives 0.772, the classical LDA 0.782 and the two fused 0.819
(top-1 retrieval 0.45, 0.64, 0.76; docs/cross-validation.md, "How good is the embedding on your data").

``EmbeddingConfig.classical_weight`` = w > 0 turns it on. After training, :func:`fit_classical_part`
fits the classical LDA on the training words, and the network is saved with it in one directory: its
arrays under ``classical.`` in ``model.safetensors``, its settings under ``classical`` in
``config.json``, so the one ``model_id`` (the hash of every array) names the fused vectors, and
``models.load_embedding`` wraps the network in a ``FusedEmbedding``. A fused vector is
``[sqrt(1 - w) * network, sqrt(w) * classical]``, both unit vectors, so it is a unit vector too and
its cosine is ``(1 - w)`` x the network's cosine + ``w`` x the classical cosine.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import polars as pl
import torch

from wrmil_core.embedding.config import EmbeddingConfig
from wrmil_core.errors import WrmilInputError
from wrmil_core.runtime import Log

PREFIX = "classical."
CLASSICAL_PRESET = "lda"
MAX_FEATURE_WORKERS = 8


def is_fused(config: dict[str, Any]) -> bool:
    """Does a network model directory's ``config.json`` carry a classical part?"""
    return "classical" in config


def fused_dim(config: dict[str, Any]) -> int:
    """Length of the vectors a model directory's ``config.json`` describes (network + classical part)."""
    return int(config["emb_dim"]) + (int(config["classical_dim"]) if is_fused(config) else 0)


def fit_classical_part(train_words: pl.DataFrame, config: EmbeddingConfig,
                       log: Log = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Fit the classical LDA embedding on ``train_words``: the arrays (under ``classical.``) and the
    config entries that make a network's model directory a fused one, for one ``save_model`` call."""
    from wrmil_core.embedding.classical import fit_classical, preset

    # Training is over, so every core may extract features (a spawned pool; 0 = this process).
    workers = min(MAX_FEATURE_WORKERS, os.cpu_count() or 1)
    classical = fit_classical(train_words, preset(CLASSICAL_PRESET, num_workers=workers if workers > 1 else 0), log)
    if log:
        log(f"fused embedding: the {config.method} model's vector (weight {1 - config.classical_weight:g}) "
            f"beside the classical LDA's {classical.dim}-d (weight {config.classical_weight:g}), fitted on "
            f"{train_words.height} training words of {train_words['writer'].n_unique()} writers")
    return ({PREFIX + k: v for k, v in classical.tensors().items()},
            {"classical": classical.config.to_dict(), "classical_dim": classical.dim})


def fuse(network: np.ndarray, classical: np.ndarray, weight: float) -> np.ndarray:
    """Unit rows ``[sqrt(1 - weight) * network, sqrt(weight) * classical]`` (float32)."""
    if len(network) != len(classical):
        raise WrmilInputError(f"cannot fuse {len(network)} network vectors with {len(classical)} classical ones")
    return np.concatenate([np.sqrt(1.0 - weight) * network, np.sqrt(weight) * classical], axis=1).astype(np.float32)
