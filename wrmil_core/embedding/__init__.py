"""Stage 1: ArcFace-family writer embeddings of word images (timm backbone + margin head).

Public API (the Dagster assets ``arcface_model`` and ``word_embeddings[split]`` wrap these):

* :class:`EmbeddingConfig`, :data:`PRESETS` (``demo``, ``paper``, ``cpu``, ``gpu``), :func:`preset`
* :func:`train_embedding` -> :class:`TrainResult` (single process, or one rank under torchrun)
* :func:`load_embedding_model`, :func:`embed_words` -> ``embeddings`` table (schema.EMBEDDING_COLUMNS)
* :func:`embedding_stats`, :func:`check_embeddings` (asset-check logic)
* :func:`evaluate_embeddings` (verification AUC/EER/TAR@FAR, retrieval top-1/mAP), ``pooled_metrics``
  over cross-validation folds
* ``classical``: a training-free embedding of hand-crafted ink-shape histograms, same table

Modules: ``config`` (hyper-parameters), ``model`` (backbone + head), ``heads`` (ArcFace, sub-center,
CosFace), ``data`` (images -> tensors, loaders, the P x K writer-balanced sampler), ``augment``
(capture-shortcut augmentation), ``train`` (the loop), ``state`` (what a run holds
fixed and what it changes), ``callbacks`` (validation, checkpoint, TensorBoard, log, curve),
``checkpoint`` (resume state on disk), ``evaluate`` (metrics), ``infer`` (batched embedding, checks),
``ddp`` (torchrun plumbing), ``classical`` / ``classical_features`` (the training-free embedding),
``__main__`` (``python -m wrmil_core.embedding`` / torchrun entry).
"""

from __future__ import annotations

import importlib
from typing import Any

# Lazy exports: importing the config alone should not pull in torch's DDP stack, and
# ``python -m wrmil_core.embedding.train`` must not find ``train`` already imported (runpy warns).
_EXPORTS = {
    "PRESETS": "config", "EmbeddingConfig": "config", "preset": "config",
    "evaluate_embeddings": "evaluate",
    "check_embeddings": "infer", "embed_words": "infer", "embedding_stats": "infer", "load_embedding_model": "infer",
    "TrainResult": "train", "TrainingDivergedError": "train", "train_embedding": "train",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"wrmil_core.embedding.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'wrmil_core.embedding' has no attribute {name!r}")
