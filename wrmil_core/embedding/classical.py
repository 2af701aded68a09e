"""A training-free classical writer embedding: hand-crafted ink-shape histograms (scikit-image).

An alternative to the trained network where there are too few writers to learn from, and a
baseline row beside it. Each word image becomes the Hellinger-mapped contour-hinge, edge-direction,
LBP and run-length histograms of its binarised ink (``classical_features.py``); no capture cue
(ink tone, paper, contrast) survives the binarisation. Optionally a PCA fitted on the training
words' features (no labels) projects them, scaling component ``i`` by ``variance_i ** (-power / 2)``
(``whiten_power`` 1 = full whitening, 0.5 = a square-root whitening that damps the dominant
directions without blowing up the noisy ones), or a shrinkage LDA fitted on the training writers
projects them on the directions that tell those writers apart (``projection="lda"``, the ``lda``
preset: what the fused embedding adds to a trained network, ``fusion.py``). Vectors are L2-normalised.

:func:`fit_classical` returns a :class:`ClassicalModel`; :func:`save_classical` /
:func:`load_classical` keep it as ``model.safetensors`` + ``config.json`` (never pickled); and
:func:`embed_words_classical` returns the same ``embeddings`` table as ``embed_words``
(``schema.EMBEDDING_COLUMNS``), its ``model_id`` a content hash of the config and the fitted PCA.

Measured on AHAWP (82 writers, 5 writer folds, ``benchmarks/embedding_real.py --no-train``), pooled
over all writers as unseen test writers: verification AUC 0.717, EER 0.346, top-1 0.80 (same word
by the same writer is the usual hit: the set is text-dependent), against raw pixels 0.625 / 0.413 /
0.49. Without the PCA (``projection="center"``) AUC 0.706. With the LDA of each fold's train writers
(``lda`` preset): 0.782, EER 0.292, top-1 0.64 (``benchmarks/embedding_real.py``, row ``classical_lda``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from wrmil_core import presets
from wrmil_core.artifacts import load_model, save_model, weights_id
from wrmil_core.embedding.classical_features import word_features
from wrmil_core.embedding.config import EmbeddingConfig
from wrmil_core.embedding.infer import embeddings_table
from wrmil_core.errors import WrmilInputError
from wrmil_core.imaging import open_image
from wrmil_core.runtime import Log, progress

PROJECTIONS = ("center", "pca", "lda")
KIND = "classical"  # config.json marker that tells a classical model directory from a network's
# Below this many images the features are extracted in this process even when num_workers > 0: each
# spawned worker re-imports numpy, torch and scikit-image before its first image. Measured on the
# 2-core reference machine under load: 80 words took 1.1 s in-process and 44 s with 2 workers, 200
# words 1.9 s and 22 s; at ~10 ms a word, a ~20 s pool start pays off only past a few thousand words,
# so scoring a document (tens to hundreds of words) never starts one and fitting on a training set does.
POOL_MIN_IMAGES = 5000


@dataclass(frozen=True)
class ClassicalConfig:
    """Feature and projection settings of the classical embedding.

    height          words are scaled to this many rows (aspect kept) before binarisation
    hinge_bins      directions per contour-hinge leg (the hinge histogram has hinge_bins^2 bins)
    hinge_leg       contour-hinge leg length in pixels of the scaled word (edge direction: this and twice it)
    direction_bins  bins of the edge-direction histograms
    lbp_points      LBP neighbours at radius 1 and 2 (uniform codes)
    run_bins        bins of the run-length histograms (longer runs share the last bin)
    projection      "center": subtract the training words' mean feature; "pca": then project on
                    ``pca_dim`` principal components scaled by ``variance ** (-whiten_power / 2)``;
                    "lda": then project on the ``lda_dim`` leading discriminant directions of the
                    training writers (scikit-learn's shrinkage LDA, ``shrinkage`` in [0, 1]): uses
                    the writer labels, so it is fitted, not training-free, but in seconds
    num_workers     processes extracting features (0 = this process)
    """

    height: int = 64
    hinge_bins: int = 12
    hinge_leg: int = 4
    direction_bins: int = 16
    lbp_points: int = 8
    run_bins: int = 16
    projection: str = "pca"
    pca_dim: int = 100
    whiten_power: float = 0.5
    lda_dim: int = 30
    shrinkage: float = 0.5
    num_workers: int = 0

    def __post_init__(self) -> None:
        if self.projection not in PROJECTIONS:
            raise WrmilInputError(f"ClassicalConfig.projection={self.projection!r}: choose one of {PROJECTIONS}")
        for f in ("height", "hinge_bins", "hinge_leg", "direction_bins", "lbp_points", "run_bins", "pca_dim",
                  "lda_dim"):
            if getattr(self, f) < 1:
                raise WrmilInputError(f"ClassicalConfig.{f}={getattr(self, f)!r}: must be >= 1")
        if self.height < 4 * self.hinge_leg:
            raise WrmilInputError(
                f"ClassicalConfig.height={self.height}: must be at least 4 x hinge_leg={self.hinge_leg}")
        if not 0 <= self.whiten_power <= 1 or not 0 <= self.shrinkage <= 1 or self.num_workers < 0:
            raise WrmilInputError("ClassicalConfig: whiten_power and shrinkage must be in [0, 1], num_workers >= 0")

    @property
    def feature_kwargs(self) -> dict[str, int]:
        """Arguments of :func:`word_features`."""
        return {k: getattr(self, k) for k in ("height", "hinge_bins", "hinge_leg", "direction_bins", "lbp_points",
                                              "run_bins")}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of all fields."""
        return dataclasses.asdict(self)


# "lda": the writer-discriminant projection the fused embedding uses (EmbeddingConfig.classical_weight).
# On AHAWP (82 writers, 5 writer folds, features fitted on each fold's train writers) test verification
# AUC per fold, mean: centred 0.706, PCA 0.717 (pooled), LDA shrinkage 0.3 / 0.5 / 0.7: 0.779 / 0.782 /
# 0.782, Ledoit-Wolf's automatic shrinkage 0.757 (too little with ~50 writers); 20 / 30 / 50
# directions at 0.3: 0.778 / 0.779 / 0.778.
PRESETS: dict[str, ClassicalConfig] = {"default": ClassicalConfig(), "lda": ClassicalConfig(projection="lda")}


def preset(name: str, **overrides: Any) -> ClassicalConfig:
    """A named preset with optional field overrides, e.g. ``preset("default", projection="center")``."""
    return presets.preset(PRESETS, name, **overrides)


@dataclass(frozen=True)
class ClassicalModel:
    """A config and what was fitted on the training words: ``mean`` (D,), ``components`` (d, D)
    with the whitening scale folded in (None for ``projection="center"``)."""

    config: ClassicalConfig
    mean: np.ndarray
    components: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return len(self.mean) if self.components is None else len(self.components)

    @property
    def model_id(self) -> str:
        """Content hash (16 hex chars) of the config and the fitted arrays: the ``weights_id`` of
        :meth:`tensors`, which hold the config's fingerprint, so it is also the id ``save_model``
        records and ``load_model`` verifies (one id for the model, its directory and its tables)."""
        return weights_id(self.tensors())

    def tensors(self) -> dict[str, torch.Tensor]:
        """The fitted arrays as float32 tensors plus ``config_sha256`` (what ``save_classical`` writes)."""
        out = {"mean": torch.from_numpy(np.ascontiguousarray(self.mean, np.float32)),
               "config_sha256": config_fingerprint(self.config)}
        if self.components is not None:
            out["components"] = torch.from_numpy(np.ascontiguousarray(self.components, np.float32))
        return out

    def project(self, features: np.ndarray) -> np.ndarray:
        """Raw features (N, D) -> L2-normalised float32 embeddings (N, dim)."""
        z = np.asarray(features, np.float64) - self.mean
        if self.components is not None:
            z = z @ self.components.T.astype(np.float64)
        norms = np.linalg.norm(z, axis=1, keepdims=True)
        return (z / np.maximum(norms, 1e-12)).astype(np.float32)


def config_fingerprint(config: ClassicalConfig) -> torch.Tensor:
    """SHA-256 (32 uint8) of the settings that change the vectors (not ``num_workers``)."""
    fields = {k: v for k, v in config.to_dict().items() if k != "num_workers"}
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).digest()
    return torch.frombuffer(bytearray(digest), dtype=torch.uint8)


def _features_of(args: tuple[str, dict[str, int]]) -> np.ndarray | str:
    path, kwargs = args
    try:
        with open_image(path) as im:
            return word_features(im, **kwargs)
    except Exception as e:  # unreadable/truncated/not an image: reported by the caller
        return f"{path}: {type(e).__name__}: {e}"


def extract_features(paths: list[str], config: ClassicalConfig,
                     log: Log = None) -> tuple[np.ndarray, list[int], list[str]]:
    """Features (n_ok, D) of the readable images, their positions in ``paths``, and error messages.
    ``config.num_workers`` processes share the work from :data:`POOL_MIN_IMAGES` images on."""
    jobs = [(p, config.feature_kwargs) for p in paths]
    if config.num_workers > 0 and len(jobs) >= POOL_MIN_IMAGES:
        with get_context("spawn").Pool(config.num_workers) as pool:
            results = list(progress(pool.imap(_features_of, jobs, chunksize=64), total=len(jobs), desc="features"))
            # Let the workers exit on their own: the context manager's terminate() kills idle workers
            # with SIGTERM, which hangs forever under a parent that ignores SIGTERM (nohup'd jobs, some CI).
            pool.close()
            pool.join()
    else:
        results = [_features_of(j) for j in progress(jobs, desc="features")]
    ok = [i for i, r in enumerate(results) if not isinstance(r, str)]
    errors = [r for r in results if isinstance(r, str)]
    if log:
        log(f"classical features of {len(ok)}/{len(paths)} images" + (f", {len(errors)} unreadable" if errors else ""))
    feats = np.stack([results[i] for i in ok]) if ok else np.zeros((0, 0), np.float32)
    return feats, ok, errors


def fit_projection(features: np.ndarray, config: ClassicalConfig, writers: np.ndarray | None = None) -> ClassicalModel:
    """Fit the centring (and PCA or LDA) of ``config.projection`` on training features (N, D);
    ``writers`` (N,) are the labels LDA needs."""
    if len(features) < 2:
        raise WrmilInputError(f"the classical embedding needs at least 2 readable training words, got {len(features)}")
    x = np.asarray(features, np.float64)
    mean = x.mean(0)
    if config.projection == "center":
        return ClassicalModel(config, mean.astype(np.float32))
    if config.projection == "lda":
        return ClassicalModel(config, mean.astype(np.float32), _lda_components(x, writers, config))
    _, sing, vt = np.linalg.svd(x - mean, full_matrices=False)
    d = min(config.pca_dim, len(sing), len(x) - 1)  # centring costs one rank
    var = sing[:d] ** 2 / (len(x) - 1)
    # a floor, so that a (numerically) empty direction is not blown up into noise by the whitening
    scale = np.maximum(var, 1e-6 * max(var[0], 1e-30)) ** (-config.whiten_power / 2)
    return ClassicalModel(config, mean.astype(np.float32), (vt[:d] * scale[:, None]).astype(np.float32))


def _lda_components(x: np.ndarray, writers: np.ndarray | None, config: ClassicalConfig) -> np.ndarray:
    """(d, D) leading discriminant directions of the writers, d = min(lda_dim, writers - 1)."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    n_writers = 0 if writers is None else len(np.unique(writers))
    if writers is None or len(writers) != len(x) or n_writers < 3:
        raise WrmilInputError(f"the classical LDA projection needs the writer of every training word and at least "
                              f"3 training writers, got {n_writers}; use projection='pca' for fewer")
    # The eigen solver sorts its directions by discriminant power and projects without re-centring.
    lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage=config.shrinkage).fit(x, writers)
    d = min(config.lda_dim, n_writers - 1, x.shape[1])
    return lda.scalings_[:, :d].T.astype(np.float32)


def fit_classical(train_words: pl.DataFrame, config: ClassicalConfig | None = None, log: Log = None) -> ClassicalModel:
    """Fit the classical embedding's projection on the training words (their writers only for LDA)."""
    config = config or ClassicalConfig()
    feats, ok, errors = extract_features(train_words["path"].to_list(), config, log)
    if errors and log:
        log(f"skipped {len(errors)} unreadable training image(s), e.g. {errors[0]}")
    return fit_projection(feats, config, train_words["writer"].to_numpy()[ok])


def save_classical(directory: str | Path, model: ClassicalModel, network: EmbeddingConfig | None = None) -> str:
    """Write the model as ``model.safetensors`` + ``config.json``; returns its ``model_id``.

    The directory then serves wherever a trained network's does (``arcface_model``, ``embed_words``,
    ``wrmil score``): ``backbone`` is ``"classical"``, ``emb_dim`` its dimension, and ``network`` the
    network config whose input pipeline and initial weights give its shortcut controls (untrained
    network, raw pixels; default ``EmbeddingConfig()``).
    """
    network = network or EmbeddingConfig()
    return save_model(directory, model.tensors(), {
        **model.config.to_dict(), "kind": KIND, "backbone": KIND, "emb_dim": model.dim,
        "network": network.to_dict()})


def load_classical(directory: str | Path) -> ClassicalModel:
    """The model written by :func:`save_classical`."""
    tensors, cfg = load_model(directory, required=("kind",), what="classical embedding model")
    if cfg["kind"] != KIND:
        raise WrmilInputError(f"{directory} holds a {cfg['kind']!r} model, not a classical embedding")
    return classical_from_saved(cfg, tensors, directory)


def classical_from_saved(settings: dict[str, Any], tensors: dict[str, torch.Tensor],
                         directory: str | Path) -> ClassicalModel:
    """The model of saved ``settings`` (ClassicalConfig fields) and ``tensors`` (:meth:`ClassicalModel.tensors`),
    refused when the settings are not those the arrays were fitted with."""
    names = {f.name for f in dataclasses.fields(ClassicalConfig)}
    comps = tensors.get("components")
    model = ClassicalModel(ClassicalConfig(**{k: v for k, v in settings.items() if k in names}),
                           tensors["mean"].numpy(), None if comps is None else comps.numpy())
    if "config_sha256" in tensors and not torch.equal(tensors["config_sha256"], config_fingerprint(model.config)):
        raise WrmilInputError(f"{directory}/config.json does not match the settings the model was fitted with "
                              "(edited by hand?); re-materialise arcface_model")
    return model


def fit_and_save(train_words: pl.DataFrame, directory: str | Path, config: ClassicalConfig | None = None,
                 network: EmbeddingConfig | None = None, log: Log = None) -> ClassicalModel:
    """Fit the classical embedding on ``train_words`` and save it in ``directory`` (see :func:`save_classical`)."""
    model = fit_classical(train_words, config, log)
    save_classical(directory, model, network)
    if log:
        log(f"classical embedding {model.model_id}: {model.dim}-d, fitted on {train_words.height} training words, "
            f"saved to {directory}")
    return model


def embed_words_classical(model: ClassicalModel, words: pl.DataFrame, log: Log = None,
                          on_error: str = "raise") -> pl.DataFrame:
    """The ``embeddings`` table (``schema.EMBEDDING_COLUMNS``) of ``words`` under the classical model.

    As ``embed_words``: input row order, unit-norm ``Array(Float32, dim)`` vectors; an unreadable
    image raises ``WrmilInputError`` (``on_error="raise"``) or drops its word (``"skip"``).
    """
    missing = [c for c in ("word_id", "writer", "doc_id", "position", "path") if c not in words.columns]
    if missing:
        raise WrmilInputError(f"words table lacks column(s) {missing}; expected the ingest `words` table")
    if on_error not in ("raise", "skip"):
        raise WrmilInputError(f"on_error={on_error!r}: use 'raise' or 'skip'")
    feats, ok, errors = extract_features(words["path"].to_list(), model.config, log)
    if errors and on_error == "raise":
        raise WrmilInputError(f"{len(errors)} word image(s) could not be read, e.g. {'; '.join(errors[:3])}. "
                              "Replace or remove them, or embed with on_error='skip'")
    rows = words[ok] if errors else words
    emb = model.project(feats) if len(ok) else np.zeros((0, model.dim), np.float32)
    return embeddings_table(rows, emb, model.model_id)
