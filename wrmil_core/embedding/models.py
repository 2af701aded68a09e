"""One interface for every kind of writer-embedding model, and the one function that reads them.

:func:`load_embedding` reads a model directory (``artifacts.save_model``) and returns an
:class:`EmbeddingModel`: words in, unit vectors out. The kinds, told apart by ``kind`` in
``config.json`` (a trained network's has none, for the directories written before kinds existed):

* :class:`NetworkEmbedding`: the trained ArcFace network (``train.py``);
* :class:`ClassicalEmbedding`: the hand-crafted ink-shape histograms (``classical.py``);
* :class:`FrozenEmbedding`: pretrained style features projected by an LDA (``frozen.py``).

Two parts can wrap any of them, each saved in the same directory so that one ``model_id`` names
the vectors: a classical part fused beside it (``classical`` in the config, ``fusion.py``), and the
content offsets of the training words' transcriptions, removed from words whose text is known
(``content`` in the config, ``content.py``). :func:`embed_words` is what ``word_embeddings``,
``wrmil score``, the CV folds and the benchmarks call; adding a kind touches this module only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import polars as pl
import torch

from wrmil_core.artifacts import load_model
from wrmil_core.embedding import frozen
from wrmil_core.embedding.config import EmbeddingConfig
from wrmil_core.embedding.content import CONFIG_KEY as CONTENT_KEY
from wrmil_core.embedding.content import PREFIX as CONTENT_PREFIX
from wrmil_core.embedding.content import ContentOffsets, content_from_saved
from wrmil_core.embedding.fusion import PREFIX as CLASSICAL_PREFIX
from wrmil_core.embedding.fusion import fuse, is_fused
from wrmil_core.embedding.infer import EmbedOutput, embed_images, embeddings_table, network_from_state
from wrmil_core.embedding.model import EmbeddingNet
from wrmil_core.errors import WrmilInputError
from wrmil_core.runtime import Log, cpu_threads, resolve_device

if TYPE_CHECKING:  # scikit-image loads only when a classical part is used
    from wrmil_core.embedding.classical import ClassicalModel

CLASSICAL_KIND = "classical"  # == classical.KIND (not imported: scikit-image loads only when needed)
_NEEDED = ("word_id", "writer", "doc_id", "position", "path")


class EmbeddingModel(Protocol):
    """Anything that turns word images into writer vectors."""

    model_id: str
    config: EmbeddingConfig  # the network config whose input pipeline gives the shortcut controls

    @property
    def dim(self) -> int: ...

    def embed(self, words: pl.DataFrame, num_workers: int = 0, log: Log = None) -> EmbedOutput:
        """Unit vectors of the readable ``words`` (rows ``index``); unreadable ones in ``skipped``."""
        ...


@dataclass
class NetworkEmbedding:
    """A trained embedding network."""

    net: EmbeddingNet
    model_id: str
    batch_size: int = 64

    @property
    def config(self) -> EmbeddingConfig:
        return self.net.config

    @property
    def dim(self) -> int:
        return self.net.config.emb_dim

    def embed(self, words: pl.DataFrame, num_workers: int = 0, log: Log = None) -> EmbedOutput:
        dev = next(self.net.parameters()).device
        with cpu_threads(dev, 0, num_workers):
            return embed_images(self.net, words["path"].to_list(), self.batch_size, dev, num_workers, log)


@dataclass
class ClassicalEmbedding:
    """The training-free classical embedding (features and projection in ``classical.py``)."""

    model: ClassicalModel
    model_id: str
    config: EmbeddingConfig

    @property
    def dim(self) -> int:
        return self.model.dim

    def embed(self, words: pl.DataFrame, num_workers: int = 0, log: Log = None) -> EmbedOutput:
        return classical_output(self.model, words["path"].to_list(), log)


@dataclass
class FrozenEmbedding:
    """Pretrained style features through a fitted projection (``frozen.py``)."""

    net: EmbeddingNet
    projection: frozen.Projection
    model_id: str

    @property
    def config(self) -> EmbeddingConfig:
        return self.net.config

    @property
    def dim(self) -> int:
        return self.projection.dim

    def embed(self, words: pl.DataFrame, num_workers: int = 0, log: Log = None) -> EmbedOutput:
        out = frozen.features(self.net, words["path"].to_list(), num_workers, log)
        return EmbedOutput(self.projection(out.emb), out.index, out.skipped)


@dataclass
class _Part:
    """A part saved in the same directory around ``inner``: the same id and network config."""

    inner: EmbeddingModel

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def config(self) -> EmbeddingConfig:
        return self.inner.config

    @property
    def dim(self) -> int:
        return self.inner.dim


@dataclass
class FusedEmbedding(_Part):
    """``inner``'s vectors beside the classical part's, cosine weights ``1 - weight`` and ``weight``."""

    classical: ClassicalModel
    weight: float

    @property
    def dim(self) -> int:
        return self.inner.dim + self.classical.dim

    def embed(self, words: pl.DataFrame, num_workers: int = 0, log: Log = None) -> EmbedOutput:
        return self.fuse_part(words, self.inner.embed(words, num_workers, log), log)

    def fuse_part(self, words: pl.DataFrame, out: EmbedOutput, log: Log = None) -> EmbedOutput:
        """``inner``'s output ``out`` for ``words`` fused with the classical part's vectors of the same words."""
        part = classical_output(self.classical, [words["path"][int(i)] for i in out.index], log)
        skipped = out.skipped + [(int(out.index[i]), msg) for i, msg in part.skipped]
        return EmbedOutput(fuse(out.emb[part.index], part.emb, self.weight), out.index[part.index], skipped)


@dataclass
class ContentNormalised(_Part):
    """``inner``'s vectors with the training words' content offsets removed where the text is known."""

    content: ContentOffsets

    def embed(self, words: pl.DataFrame, num_workers: int = 0, log: Log = None) -> EmbedOutput:
        out = self.inner.embed(words, num_workers, log)
        texts = words["text"].to_list() if "text" in words.columns else [None] * words.height
        return EmbedOutput(self.content.apply(out.emb, [texts[int(i)] for i in out.index]), out.index, out.skipped)


def classical_output(model: ClassicalModel, paths: list[str], log: Log = None) -> EmbedOutput:
    """The classical model's unit vectors of the readable ``paths`` as an :class:`EmbedOutput`."""
    from wrmil_core.embedding.classical import extract_features

    feats, ok, errors = extract_features(paths, model.config, log)
    emb = model.project(feats) if ok else np.zeros((0, model.dim), np.float32)
    bad = sorted(set(range(len(paths))) - set(ok))
    return EmbedOutput(emb, np.asarray(ok, np.int64), list(zip(bad, errors)))


def classical_from_tensors(config: dict[str, Any], tensors: dict[str, torch.Tensor],
                           model_dir: str | Path = "the model") -> ClassicalModel:
    """The classical part of a fused model from its ``config.json`` entries and its tensors (under ``classical.``)."""
    from wrmil_core.embedding.classical import classical_from_saved

    part = {k[len(CLASSICAL_PREFIX):]: v for k, v in tensors.items() if k.startswith(CLASSICAL_PREFIX)}
    return classical_from_saved(config["classical"], part, model_dir)


def is_classical(config: dict[str, Any]) -> bool:
    """Does a model directory's ``config.json`` describe a classical embedding?"""
    return config.get("kind") == CLASSICAL_KIND


def network_config(config: dict[str, Any]) -> EmbeddingConfig:
    """The network config of a model directory's ``config.json``: the trained network's own, or for
    the other kinds the network whose input pipeline and initial weights give their shortcut controls."""
    return EmbeddingConfig.from_dict(config["network"] if "network" in config else config)


def load_embedding(model_dir: str | Path, device: str | torch.device = "cpu") -> EmbeddingModel:
    """The embedding model saved in ``model_dir``, of whatever kind, with its fused and content parts."""
    state, cfg = load_model(model_dir)
    dev = resolve_device(device) if isinstance(device, str) else device
    model = _base_model(state, cfg, dev, model_dir)
    if is_fused(cfg) and not is_classical(cfg):
        model = FusedEmbedding(model, classical_from_tensors(cfg, state, model_dir), float(cfg["classical_weight"]))
    if CONTENT_KEY in cfg:
        part = {k[len(CONTENT_PREFIX):]: v for k, v in state.items() if k.startswith(CONTENT_PREFIX)}
        model = ContentNormalised(model, content_from_saved(cfg[CONTENT_KEY], part))
    return model


def _base_model(state: dict[str, torch.Tensor], cfg: dict[str, Any], device: torch.device,
                model_dir: str | Path) -> EmbeddingModel:
    kind = cfg.get("kind", "network")
    model_id = str(cfg.get("model_id"))
    if kind == CLASSICAL_KIND:
        from wrmil_core.embedding.classical import classical_from_saved

        return ClassicalEmbedding(classical_from_saved(cfg, state, model_dir), model_id, network_config(cfg))
    if kind == frozen.KIND:
        net, projection = frozen.load_frozen_parts(state, cfg)
        return FrozenEmbedding(net.to(device), projection, model_id)
    if kind == "network":
        return NetworkEmbedding(network_from_state(state, cfg, device), model_id)
    raise WrmilInputError(f"{model_dir} holds an embedding of unknown kind {kind!r}; re-materialise arcface_model")


def embed_words(model: str | Path | EmbeddingNet | EmbeddingModel, words: pl.DataFrame, batch_size: int = 64,
                device: str | torch.device = "auto", num_workers: int = 0, log: Log = None,
                on_error: str = "raise") -> pl.DataFrame:
    """Embed every word of ``words`` (the ``words`` table, any subset) with a model directory of any
    kind (:func:`load_embedding`), a loaded model, or a bare network.

    Returns ``schema.EMBEDDING_COLUMNS`` in the input's row order: word_id, writer, doc_id, position,
    emb (Array(Float32, dim), unit L2 norm), model_id. An unreadable image raises
    ``WrmilInputError`` naming it (``on_error="raise"``) or drops that word (``on_error="skip"``).
    On CPU, batches of ~64 ran fastest for the demo network (larger batches fall out of cache:
    batch 256 was ~2x slower per image); on a GPU pass a larger ``batch_size``.
    """
    missing = [c for c in _NEEDED if c not in words.columns]
    if missing:
        raise WrmilInputError(f"words table lacks column(s) {missing}; expected the ingest `words` table")
    if on_error not in ("raise", "skip"):
        raise WrmilInputError(f"on_error={on_error!r}: use 'raise' or 'skip'")
    if isinstance(model, EmbeddingNet):
        model = NetworkEmbedding(model, model.model_id or "untrained", batch_size)
    elif isinstance(model, (str, Path)):
        model = load_embedding(model, device)
    if isinstance(model, NetworkEmbedding):
        model.batch_size = batch_size
    out = model.embed(words, num_workers, log)
    if out.skipped:
        first = "; ".join(msg for _, msg in out.skipped[:3])
        if on_error == "raise":
            raise WrmilInputError(
                f"{len(out.skipped)} word image(s) could not be read, e.g. {first}. Replace or remove them "
                "(re-run ingest with image verification), or embed with on_error='skip'"
            )
        if log:
            log(f"skipped {len(out.skipped)} unreadable image(s), e.g. {first}")
    rows = words[out.index.tolist()] if out.skipped else words
    emb = out.emb if len(out.emb) else np.zeros((0, model.dim), np.float32)
    return embeddings_table(rows, emb, model.model_id)
