"""Shortcut controls: the word embeddings a trained writer embedding has to beat.

Both run through the same chain as the trained network (same words, same image pipeline, same
``embeddings`` table, same bags and detectors), so every figure can be read side by side:

* ``untrained``: the trained model's architecture, seed and input pipeline with random weights
  (the network training starts from, or its random twin when training starts from pretrained
  weights): what the architecture gives before it has seen a single writer or image.
* ``pixels``: the network's input image (same resize and padding) area-averaged to 16 x 64
  (:func:`~wrmil_core.embedding.evaluate.pixel_features`), centred on the split's mean and
  L2-normalised, as training's validation does. No learning at all: only what ink tone, paper,
  scanner, word length and size give. Without centring every cosine between mostly-white images is
  near 1 and the control would look weaker than raw pixels are.

When raw pixels come close to the trained embedding, a detector may be reading the capture (each
writer's pages scanned apart) rather than the hand. A baseline's ``model_id`` is
``<baseline>@<trained model id>``: it belongs to the model it controls, so a stale one is refused
downstream (``wrmil_core.report.shortcuts.gather_baseline_bags``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import torch

from wrmil_core.artifacts import read_config
from wrmil_core.embedding.config import EmbeddingConfig
from wrmil_core.embedding.evaluate import embedding_quality
from wrmil_core.embedding.infer import embed_images, embedding_matrix, embeddings_table
from wrmil_core.embedding.models import network_config
from wrmil_core.embedding.model import EmbeddingNet, build_model
from wrmil_core.errors import WrmilInputError
from wrmil_core.runtime import Log, cpu_threads, resolve_device

BASELINES: tuple[str, ...] = ("untrained", "pixels")
MIN_AUC_MARGIN = 0.05  # val verification AUC the trained embedding must gain over raw pixels


def baseline_model_id(baseline: str, trained_model_id: str) -> str:
    """The ``model_id`` of ``baseline``'s vectors for the trained model ``trained_model_id``."""
    if baseline not in BASELINES:
        raise WrmilInputError(f"unknown baseline {baseline!r}; choose one of {BASELINES}")
    return f"{baseline}@{trained_model_id}"


def pretrained_start(config: EmbeddingConfig) -> bool:
    """Does training start from pretrained weights (packaged or a local file)?"""
    return config.weights is not None or config.weights_file is not None


def untrained_network(config: EmbeddingConfig, device: str | torch.device = "cpu") -> EmbeddingNet:
    """The randomly initialised network: ``build_model(config, load_weights=False)`` right after
    ``torch.manual_seed(config.seed)`` (without pretrained weights, exactly the network training starts from).

    The global RNG is left as it was (``fork_rng``), so building it changes nothing downstream.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)  # as state.new_state: the same initial weights
        model = build_model(config, load_weights=False)
    dev = resolve_device(device) if isinstance(device, str) else device
    return model.to(dev).eval()


def embed_baselines(model_dir: str | Path, words: pl.DataFrame, batch_size: int = 64, device: str = "auto",
                    num_workers: int = 0, log: Log = None) -> dict[str, pl.DataFrame]:
    """``{"untrained": table, "pixels": table}`` for ``words`` and the trained model in ``model_dir``.

    One pass of the untrained network over the images gives both (the pixels are its input).
    Tables follow ``schema.EMBEDDING_COLUMNS`` in the input's row order. An unreadable image raises
    ``WrmilInputError`` naming it, as ``embed_words`` does.
    """
    cfg = read_config(model_dir, required=("model_id",), what="embedding model")
    model = untrained_network(network_config(cfg), device)  # a classical model's controls: its "network"
    dev = next(model.parameters()).device
    with cpu_threads(dev, 0, num_workers):
        out = embed_images(model, words["path"].to_list(), batch_size, dev, num_workers, log, with_pixels=True,
                           desc="baselines")
    if out.skipped:
        raise WrmilInputError(f"{len(out.skipped)} word image(s) could not be read, e.g. "
                              f"{'; '.join(msg for _, msg in out.skipped[:3])}. Replace or remove them and re-ingest")
    pixels = out.pixels if out.pixels is not None else np.zeros((0, 16 * 64), np.float32)  # no word: empty tables
    return {"untrained": embeddings_table(words, out.emb, baseline_model_id("untrained", cfg["model_id"])),
            "pixels": embeddings_table(words, centred_unit(pixels), baseline_model_id("pixels", cfg["model_id"]))}


def centred_unit(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` minus their mean, scaled to unit L2 norm (float32)."""
    x = np.asarray(x, dtype=np.float32)
    x = x - x.mean(axis=0, keepdims=True) if len(x) else x
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def quality_by_embedding(tables: dict[str, pl.DataFrame], n_pairs: int = 20000, n_queries: int = 1000,
                         seed: int = 0, n_boot: int = 200) -> dict[str, dict[str, float | int | None]]:
    """:func:`~wrmil_core.embedding.evaluate.embedding_quality` of each embeddings table (same pairs and
    queries for tables of the same words: the figures compare like with like)."""
    return {name: embedding_quality(embedding_matrix(t), t["writer"].to_numpy(), n_pairs, n_queries, seed, n_boot)
            for name, t in tables.items()}


def check_beats_pixels(trained: dict[str, float], pixels: dict[str, float], untrained: dict[str, float] | None = None,
                       min_margin: float = MIN_AUC_MARGIN) -> tuple[bool, dict[str, float | str]]:
    """Does the trained embedding's verification AUC beat raw pixels' by at least ``min_margin``?

    ``trained`` / ``pixels`` / ``untrained``: figures on the same words and pairs (e.g.
    ``TrainResult.val_metrics``, ``.pixel_metrics``, ``.baseline_metrics``). Returns ``(passed,
    metadata)`` for an asset check that warns; passes with a note when the pixel figures are missing.
    """
    md: dict[str, float | str] = {"min_auc_margin": float(min_margin)}
    for name, fig in (("trained", trained), ("pixels", pixels), ("untrained", untrained or {})):
        md.update({f"{name}/{k}": float(v) for k, v in fig.items() if k in ("auc", "eer", "top1", "map",
                                                                               "n_writers", "n_images")})
    if "auc" not in trained or "auc" not in pixels:
        md["note"] = "nothing to compare: the trained or the raw-pixel figures are missing"
        return True, md
    margin = float(trained["auc"] - pixels["auc"])
    md["auc_margin_over_pixels"] = margin
    if margin < min_margin:
        md["verdict"] = (f"raw pixels reach verification AUC {pixels['auc']:.3f} against the trained embedding's "
                         f"{trained['auc']:.3f}: a capture or scanner shortcut (paper, ink tone, letterboxing) could "
                         "explain much of what it does; see the shortcut controls in the report")
    else:
        md["verdict"] = f"the trained embedding beats raw pixels by {margin:+.3f} verification AUC"
    return margin >= min_margin, md
