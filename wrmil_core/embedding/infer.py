"""Batched network inference and the ``embeddings`` table with the checks its asset runs.

``embed_images`` loads images through the same pipeline as training (without augmentation), runs
the network in eval mode (bf16 autocast on CUDA) and returns L2-normalised float32 vectors. Every
kind of embedding model (network, classical, frozen, fused) is read and applied in ``models.py``
(``load_embedding``, ``embed_words``); this module knows networks only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from wrmil_core.artifacts import load_model
from wrmil_core.embedding.config import EmbeddingConfig
from wrmil_core.embedding.data import WordImageDataset, WordTransform, make_loader
from wrmil_core.embedding.evaluate import pixel_features
from wrmil_core.embedding.model import EmbeddingNet, build_model
from wrmil_core.errors import WrmilInputError
from wrmil_core.runtime import Log, progress, resolve_device, use_bf16
from wrmil_core.schema import EMBEDDING_COLUMNS

def load_embedding_model(model_dir: str | Path, device: str | torch.device = "cpu") -> tuple[EmbeddingNet, EmbeddingConfig]:
    """The trained network (eval mode, on ``device``) and its config from a ``save_model`` directory."""
    state, cfg_dict = load_model(model_dir)
    if cfg_dict.get("kind", "network") != "network":
        raise WrmilInputError(f"{model_dir} holds a {cfg_dict['kind']} embedding, not a network: embed it with "
                              "models.embed_words")
    dev = resolve_device(device) if isinstance(device, str) else device
    net = network_from_state(state, cfg_dict, dev)
    return net, net.config


def network_from_state(state: dict[str, torch.Tensor], cfg: dict[str, Any], device: torch.device) -> EmbeddingNet:
    """The network of a saved state and ``config.json`` (a fused model's other arrays left out), in eval mode."""
    model = build_model(EmbeddingConfig.from_dict(cfg), load_weights=False)  # the state holds the backbone weights
    model.load_state_dict({k: v for k, v in state.items() if "." in k and k.split(".", 1)[0] in ("backbone", "head")})
    model.model_id = cfg.get("model_id")
    return model.to(device).eval()


@dataclass
class EmbedOutput:
    """Result of :func:`embed_images`: rows ``index`` of the input got vectors ``emb``."""

    emb: np.ndarray  # (n_ok, dim) float32, L2-normalised
    index: np.ndarray  # (n_ok,) int64 positions in the input list
    skipped: list[tuple[int, str]] = field(default_factory=list)
    pixels: np.ndarray | None = None  # (n_ok, 1024) raw-pixel baseline features when requested


@torch.no_grad()
def embed_images(model: EmbeddingNet, paths: list[str], batch_size: int = 64, device: torch.device | None = None,
                 num_workers: int = 0, log: Log = None, with_pixels: bool = False,
                 desc: str = "embedding", backbone_only: bool = False) -> EmbedOutput:
    """Embed image files in batches; unreadable files are listed in ``skipped``, not raised.

    ``backbone_only``: the backbone's pooled features (``EmbeddingNet.backbone_features``, not
    normalised) instead of the embedding.

    A progress bar (``desc``) shows on an interactive terminal; ``log`` gets a line per 10 %.
    """
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    loader = make_loader(WordImageDataset(paths, None, WordTransform(model.config, train=False)),
                         batch_size, num_workers, pin_memory=device.type == "cuda")
    embs, idxs, pix, skipped = [], [], [], []
    n_batches, next_report = len(loader), 0.1
    for b, batch in enumerate(progress(loader, total=n_batches, desc=desc, unit="batch")):
        skipped.extend(batch["skipped"])
        if batch["x"] is None:
            continue
        x = batch["x"].to(device, non_blocking=True)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16(device)):
            embs.append((model.backbone_features(x) if backbone_only else model.embed(x)).cpu())
        idxs.append(batch["idx"])
        if with_pixels:
            pix.append(pixel_features(batch["x"]))
        if log and (b + 1) / n_batches >= next_report:
            log(f"embedded {min((b + 1) * batch_size, len(paths))}/{len(paths)} images")
            next_report += 0.1
    model.train(was_training)
    dim = model.config.emb_dim
    return EmbedOutput(
        emb=torch.cat(embs).numpy() if embs else np.zeros((0, dim), np.float32),
        index=torch.cat(idxs).numpy() if idxs else np.zeros(0, np.int64),
        skipped=skipped,
        pixels=torch.cat(pix).numpy() if pix else None,
    )


def embeddings_table(words: pl.DataFrame, emb: np.ndarray, model_id: str) -> pl.DataFrame:
    """The ``embeddings`` table (``schema.EMBEDDING_COLUMNS``): row ``i`` of ``words`` with vector ``emb[i]``."""
    return pl.DataFrame({
        "word_id": words["word_id"].cast(pl.Int64),
        "writer": words["writer"].cast(pl.Int64),
        "doc_id": words["doc_id"].cast(pl.Utf8),
        "position": words["position"].cast(pl.Int32),
        "emb": pl.Series("emb", emb.astype(np.float32), dtype=pl.Array(pl.Float32, emb.shape[1])),
        "model_id": pl.Series("model_id", [model_id] * len(emb), dtype=pl.Utf8),
    }).select(EMBEDDING_COLUMNS)


def embedding_matrix(df: pl.DataFrame) -> np.ndarray:
    """The ``emb`` column as a (N, dim) float32 array."""
    if df.height == 0:
        dim = df.schema["emb"].size if isinstance(df.schema["emb"], pl.Array) else 0
        return np.zeros((0, dim), np.float32)
    return df["emb"].to_numpy().astype(np.float32, copy=False).reshape(df.height, -1)


def embedding_stats(df: pl.DataFrame) -> dict[str, float | int]:
    """Summary of an embeddings table: row count, dim, non-finite values, L2 norms and components.

    The original pipeline's vectors had component mean ~0 and std ~0.088 (about 1/sqrt(128)).
    """
    e = embedding_matrix(df).astype(np.float64)
    finite_rows = np.isfinite(e).all(axis=1)
    norms = np.linalg.norm(e[finite_rows], axis=1)
    comp = e[finite_rows]
    nan = float("nan")
    return {
        "n_rows": int(df.height),
        "dim": int(e.shape[1]),
        "n_nonfinite": int((~np.isfinite(e)).sum()),
        "norm_min": float(norms.min()) if len(norms) else nan,
        "norm_max": float(norms.max()) if len(norms) else nan,
        "norm_mean": float(norms.mean()) if len(norms) else nan,
        "norm_std": float(norms.std()) if len(norms) else nan,
        "component_mean": float(comp.mean()) if comp.size else nan,
        "component_std": float(comp.std()) if comp.size else nan,
    }


def check_embeddings(df: pl.DataFrame, dim: int, tol: float = 1e-3) -> tuple[bool, dict[str, float | int | str]]:
    """Blocking-check logic: every value finite, dimension ``dim``, every L2 norm within ``tol`` of 1.

    Returns ``(passed, metadata)``; ``metadata["problem"]`` says what failed.
    """
    if "emb" not in df.columns:
        return False, {"problem": "no 'emb' column"}
    if not isinstance(df.schema["emb"], pl.Array):
        return False, {"problem": f"'emb' column is {df.schema['emb']}, expected Array(Float32, {dim})"}
    stats: dict[str, float | int | str] = dict(embedding_stats(df))
    problems = []
    if df.height == 0:
        problems.append("table is empty")
    if stats["dim"] != dim:
        problems.append(f"dimension {stats['dim']} != {dim}")
    if stats["n_nonfinite"]:
        problems.append(f"{stats['n_nonfinite']} non-finite value(s)")
    e = embedding_matrix(df).astype(np.float64)
    with np.errstate(invalid="ignore"):
        bad_norm = int((~(np.abs(np.linalg.norm(e, axis=1) - 1.0) <= tol)).sum()) if e.size else 0
    stats["n_bad_norm"] = bad_norm
    if bad_norm:
        problems.append(f"{bad_norm} vector(s) with |norm - 1| > {tol}")
    stats["problem"] = "; ".join(problems) if problems else "none"
    return not problems, stats
