"""The writer embedding fitted by one of its methods: the one call ``arcface_model`` and the writer-fold
CV (:mod:`wrmil_core.cv.fold`) both make, so a recipe measured by CV is the recipe ``wrmil run`` trains.

Methods (``EmbeddingConfig.method``, :data:`METHODS`; adding one is a name there and its fitter in
``_FITTERS``, which a test keeps in step):

* ``arcface``: train the config's ArcFace network (:func:`~wrmil_core.embedding.train.train_embedding`,
  or a caller's ``trainer`` that launches the same training elsewhere); ``out_dir`` is its training
  directory (checkpoint, logs, curve; the model under it), and a killed training resumes there;
* ``classical``: the training-free scikit-image embedding (:mod:`~wrmil_core.embedding.classical`,
  preset ``default``) fitted on the train words and saved in the same model format under
  ``<out_dir>/model``; the config's network gives its shortcut controls;
* ``frozen``: the pretrained backbone's style features with a PCA and an LDA of the train writers
  (:mod:`~wrmil_core.embedding.frozen`), with the classical part fused beside it when
  ``classical_weight`` > 0, saved under ``<out_dir>/model``.

The method is the config's (``EmbeddingConfig.method``), so a preset names its recipe whole. With
``content_prior`` > 0 the train words' content offsets (``content.py``) are added to the directory of
any method (one more embedding pass over the train words).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import torch

from wrmil_core.artifacts import load_model, read_config, save_model
from wrmil_core.embedding import frozen
from wrmil_core.embedding.classical import fit_and_save
from wrmil_core.embedding.classical import preset as classical_preset
from wrmil_core.embedding.config import METHODS, EmbeddingConfig
from wrmil_core.embedding.content import CONFIG_KEY as CONTENT_KEY
from wrmil_core.embedding.content import PREFIX as CONTENT_PREFIX
from wrmil_core.embedding.content import fit_content_offsets
from wrmil_core.embedding.fusion import fit_classical_part, fused_dim
from wrmil_core.embedding.infer import EmbedOutput
from wrmil_core.embedding.models import FrozenEmbedding, FusedEmbedding, classical_from_tensors, load_embedding
from wrmil_core.embedding.train import TrainResult, train_embedding
from wrmil_core.errors import WrmilInputError
from wrmil_core.runtime import Log, resolve_device

# Trains the network as train_embedding would (same arguments, same TrainResult), e.g. under torchrun.
Trainer = Callable[[pl.DataFrame, pl.DataFrame, EmbeddingConfig, Path], TrainResult]
Quality = dict[str, dict[str, float | int | None]]  # model_quality's figures (trained, untrained, pixels)


@dataclass(frozen=True)
class FittedEmbedding:
    """A fitted embedding model: its directory (what ``embed_words`` reads), id, vector length, plain
    metadata figures (epochs_run, train_seconds, ...), the val quality figures when fitting computed
    them (else None: embed the val words again), and the network's TrainResult (None for other methods)."""

    method: str
    model_dir: Path
    model_id: str
    emb_dim: int
    metadata: dict[str, Any] = field(default_factory=dict)
    quality: Quality | None = None
    train_result: TrainResult | None = None


def _fit_network(config: EmbeddingConfig, train: pl.DataFrame, val: pl.DataFrame, out_dir: Path, *, resume: bool,
                 log: Log, num_workers: int, trainer: Trainer | None) -> FittedEmbedding:
    """Train the ArcFace network in ``out_dir`` (here, or through ``trainer``)."""
    if trainer is None:
        res = train_embedding(train, val, config, out_dir, resume=resume, log=log)
    else:
        res = trainer(train, val, config, out_dir)
    # With classical_weight > 0 the val figures are the fused model's; network_val_auc is the
    # network part's alone (its best epoch), so a reader sees what the fusion adds.
    meta = {"classical_weight": float(config.classical_weight), "network_val_auc": float(res.val_metrics["auc"]),
            "epochs_run": int(res.epochs_run), "best_epoch": int(res.best_epoch), "train_seconds": float(res.seconds),
            "skipped_images": int(res.skipped_images)}
    if res.pretrained_metrics:  # the "ImageNet, not fine-tuned" control: the pretrained backbone's features by cosine
        meta["imagenet_val_auc"] = float(res.pretrained_metrics["auc"])
    return FittedEmbedding("arcface", Path(res.model_dir), res.model_id, fused_dim(read_config(res.model_dir)), meta,
                           res.quality, res)


def _fit_classical(config: EmbeddingConfig, train: pl.DataFrame, val: pl.DataFrame, out_dir: Path, *, resume: bool,
                   log: Log, num_workers: int, trainer: Trainer | None) -> FittedEmbedding:
    """Fit the classical embedding on the train words (no labels, no training loop) into ``out_dir/model``."""
    model_dir = out_dir / "model"
    t0 = time.perf_counter()
    model = fit_and_save(train, model_dir, classical_preset("default", num_workers=num_workers), network=config,
                         log=log)
    meta = {"epochs_run": 0, "train_seconds": float(time.perf_counter() - t0)}
    return FittedEmbedding("classical", model_dir, model.model_id, model.dim, meta)


def _fit_frozen(config: EmbeddingConfig, train: pl.DataFrame, val: pl.DataFrame, out_dir: Path, *, resume: bool,
                log: Log, num_workers: int, trainer: Trainer | None) -> FittedEmbedding:
    """Fit the frozen-feature embedding (and its fused classical part) on the train words into ``out_dir/model``."""
    model_dir = out_dir / "model"
    t0 = time.perf_counter()
    net, projection, vectors = frozen.fit_frozen(train, config, resolve_device(config.device), num_workers, log)
    tensors, entries = fit_classical_part(train, config, log) if config.classical_weight > 0 else ({}, {})
    if config.content_prior > 0:  # from the vectors at hand: no second pass of the backbone over the train words
        model = FrozenEmbedding(net, projection, "")
        if entries:
            model = FusedEmbedding(model, classical_from_tensors(entries, tensors), config.classical_weight)
            vectors = model.fuse_part(train, vectors, log)
        content_tensors, content_entries = _content_part(vectors, train, config, log)
        tensors, entries = {**tensors, **content_tensors}, {**entries, **content_entries}
    model_id = frozen.save_frozen(model_dir, net, projection, tensors, entries)
    meta = {"epochs_run": 0, "train_seconds": float(time.perf_counter() - t0),
            "classical_weight": float(config.classical_weight)}
    return FittedEmbedding("frozen", model_dir, model_id, fused_dim(read_config(model_dir)), meta)


_FITTERS: dict[str, Callable[..., FittedEmbedding]] = {"arcface": _fit_network, "classical": _fit_classical,
                                                       "frozen": _fit_frozen}


def fit_embedding(config: EmbeddingConfig, train: pl.DataFrame, val: pl.DataFrame, out_dir: str | Path,
                  *, resume: bool = True, log: Log = None, num_workers: int = 0,
                  trainer: Trainer | None = None) -> FittedEmbedding:
    """Fit the embedding of ``config.method`` on the train words (``val``: the network's early stopping
    and figures) under ``out_dir`` (module docstring). ``resume``: a network continues its checkpoint;
    ``num_workers``: feature-extraction processes of the classical fit; ``trainer``: runs the network's
    training in place of ``train_embedding`` (the asset's torchrun/Kubernetes launch)."""
    fit = _FITTERS[config.method]
    fitted = fit(config, train, val, Path(out_dir), resume=resume, log=log, num_workers=num_workers, trainer=trainer)
    if config.content_prior > 0 and config.method != "frozen":  # the frozen fit adds its own in one save
        fitted = _with_content(fitted, train, config, num_workers, log)
    return fitted


def _with_content(fitted: FittedEmbedding, train: pl.DataFrame, config: EmbeddingConfig, num_workers: int,
                  log: Log) -> FittedEmbedding:
    """The model directory rewritten with the train words' content offsets (``content.py``); a model
    that has them already (a rerun) is returned as it is. Words without text are left out of the fit."""
    state, cfg = load_model(fitted.model_dir)
    if CONTENT_KEY in cfg:
        return fitted
    tensors, entries = _content_part(load_embedding(fitted.model_dir, "cpu").embed(train, num_workers, log), train,
                                     config, log)
    cfg = {k: v for k, v in cfg.items() if k != "model_id"}
    model_id = save_model(fitted.model_dir, {**state, **tensors}, {**cfg, **entries})
    # training's own val figures are of the vectors without the offsets: arcface_model measures again
    return dataclasses.replace(fitted, model_id=model_id, quality=None)


def _content_part(vectors: EmbedOutput, train: pl.DataFrame, config: EmbeddingConfig,
                  log: Log) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The content offsets fitted on the train words' vectors (rows ``vectors.index`` of ``train``): the
    arrays (under ``content.``) and the config entry, for one ``save_model`` call."""
    rows = [int(i) for i in vectors.index]
    texts = [train["text"][i] for i in rows] if "text" in train.columns else [None] * len(rows)
    content = fit_content_offsets(vectors.emb, texts, train["writer"].to_numpy()[rows], shrinkage=config.content_prior)
    if log:
        log(f"content offsets of {len(content.words)} transcriptions seen in training (prior {config.content_prior:g})")
    return {CONTENT_PREFIX + k: v for k, v in content.tensors().items()}, {CONTENT_KEY: content.config()}


__all__ = ["METHODS", "FittedEmbedding", "Trainer", "fit_embedding"]
