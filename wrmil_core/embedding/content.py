"""Content-aware comparison: take out of a word's vector what its transcription puts there.

Real documents repeat words, and two words with the same text look alike whoever wrote them, so a
word's embedding mixes its writer's hand with its content. Where the words table carries a
transcription (``text``; empty or null when unknown), :func:`fit_content_offsets` learns on the
TRAINING writers how each word moves its vector: from writer-centred unit vectors (each writer's
mean vector subtracted, so the writer's identity stays in the vectors and only what the word adds
beyond its writer is learnt)

    offset_w = sum over the occurrences of w of (e - mean of e's writer) / (n_w + shrinkage)

a mean shrunk towards zero for rare words (words seen fewer than ``min_count`` times get none).
:meth:`ContentOffsets.apply` subtracts the offset of each word whose text was seen in training and
re-normalises that row; rows of unknown, empty or unseen text come back exactly as they were.
Texts are compared stripped and case-folded (:func:`normalise_text`), in fitting and applying alike.

Saved inside a model directory as the classical part of a fused model is (``fusion.py``): the arrays
of :meth:`ContentOffsets.tensors` under :data:`PREFIX` in ``model.safetensors``, the settings of
:meth:`ContentOffsets.config` under ``content`` in ``config.json``; :func:`content_from_saved` reads
them back. :func:`pair_kind_metrics` measures verification separately on same-word and on
different-word pairs, which is where the content of a word helps or hurts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from wrmil_core.embedding.evaluate import roc_figures
from wrmil_core.errors import WrmilInputError

PREFIX = "content."
CONFIG_KEY = "content"


def normalise_text(text: str | None) -> str | None:
    """A transcription as fitting and applying compare it: stripped and case-folded; None when unknown
    (None, NaN, empty or blank)."""
    if text is None or (isinstance(text, float) and text != text):
        return None
    t = str(text).strip().casefold()
    return t or None


def _words_sha256(words: Sequence[str]) -> torch.Tensor:
    digest = hashlib.sha256(json.dumps(list(words), ensure_ascii=False).encode()).digest()
    return torch.frombuffer(bytearray(digest), dtype=torch.uint8)


def _unit(emb: np.ndarray) -> np.ndarray:
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


def _matrix(emb: np.ndarray, n: int, what: str) -> np.ndarray:
    emb = np.asarray(emb)
    if emb.ndim != 2 or len(emb) != n:
        raise WrmilInputError(f"{what}: need an (N, D) matrix with one row per text, got shape {emb.shape} "
                              f"for {n} texts")
    return emb


@dataclass(frozen=True)
class ContentOffsets:
    """Per-word offsets fitted on training writers: ``words`` (normalised transcriptions, sorted),
    ``offsets`` (len(words), D) float32, ``shrinkage`` the prior count k of the shrunk means."""

    words: tuple[str, ...]
    offsets: np.ndarray
    shrinkage: float

    def __post_init__(self) -> None:
        if self.offsets.ndim != 2 or len(self.offsets) != len(self.words):
            raise WrmilInputError(f"content offsets: {len(self.words)} words but offsets of shape "
                                  f"{self.offsets.shape}")
        if len(set(self.words)) != len(self.words):
            raise WrmilInputError("content offsets: the words are not unique")

    @property
    def dim(self) -> int:
        return int(self.offsets.shape[1])

    def rows(self, texts: Sequence[str | None]) -> np.ndarray:
        """Index into ``words`` of each text, -1 where it is unknown or was not seen in training."""
        index = {w: i for i, w in enumerate(self.words)}
        return np.array([index.get(normalise_text(t), -1) for t in texts], dtype=np.int64)

    def apply(self, emb: np.ndarray, texts: Sequence[str | None]) -> np.ndarray:
        """``emb`` with each known word's offset subtracted from its (unit) row, re-normalised; the rows
        of unknown, empty or unseen text are returned exactly unchanged. Same dtype as ``emb``
        (float32 for a non-float input)."""
        emb = _matrix(emb, len(texts), "ContentOffsets.apply")
        if emb.shape[1] != self.dim:
            raise WrmilInputError(f"content offsets are {self.dim}-d, the vectors {emb.shape[1]}-d")
        out = np.array(emb, dtype=emb.dtype if np.issubdtype(emb.dtype, np.floating) else np.float32)
        rows = self.rows(texts)
        hit = np.flatnonzero(rows >= 0)
        if len(hit):
            moved = _unit(_unit(out[hit].astype(np.float64)) - self.offsets[rows[hit]].astype(np.float64))
            out[hit] = moved.astype(out.dtype)
        return out

    def tensors(self) -> dict[str, torch.Tensor]:
        """The arrays to save (under :data:`PREFIX` in a model's ``model.safetensors``)."""
        return {"offsets": torch.from_numpy(np.ascontiguousarray(self.offsets, np.float32)),
                "words_sha256": _words_sha256(self.words)}

    def config(self) -> dict[str, Any]:
        """The JSON-able settings to save (under :data:`CONFIG_KEY` in a model's ``config.json``)."""
        return {"words": list(self.words), "shrinkage": float(self.shrinkage), "dim": self.dim}


def content_from_saved(cfg: dict[str, Any], tensors: dict[str, torch.Tensor]) -> ContentOffsets:
    """The offsets of saved settings ``cfg`` (:meth:`ContentOffsets.config`) and ``tensors``
    (:meth:`ContentOffsets.tensors`, prefix removed), refused when the two do not belong together."""
    try:
        words, shrinkage, dim = tuple(str(w) for w in cfg["words"]), float(cfg["shrinkage"]), int(cfg["dim"])
        offsets = tensors["offsets"].detach().cpu().numpy().astype(np.float32)
    except (KeyError, TypeError, ValueError) as e:
        raise WrmilInputError(f"the saved content offsets are incomplete ({type(e).__name__}: {e}); "
                              "re-materialise the model") from e
    if offsets.shape != (len(words), dim) or (
            "words_sha256" in tensors and not torch.equal(tensors["words_sha256"], _words_sha256(words))):
        raise WrmilInputError("the saved content offsets do not match their config.json entries (edited by hand?); "
                              "re-materialise the model")
    return ContentOffsets(words, offsets, shrinkage)


def fit_content_offsets(emb: np.ndarray, texts: Sequence[str | None], writers: Sequence[Any],
                        shrinkage: float = 10.0, min_count: int = 2) -> ContentOffsets:
    """Per-word offsets of the training words ``emb`` (N, D; normalised to unit rows here) with
    transcriptions ``texts`` and ``writers`` (N,): each word's writer-centred vectors summed and
    divided by its count + ``shrinkage``; words seen fewer than ``min_count`` times get none.

    A writer's mean is taken over all its words, those without a text included.
    """
    emb = _matrix(emb, len(texts), "fit_content_offsets")
    writers = np.asarray(writers)
    if len(writers) != len(emb):
        raise WrmilInputError(f"fit_content_offsets: {len(emb)} vectors but {len(writers)} writers")
    if not np.isfinite(shrinkage) or shrinkage < 0:
        raise WrmilInputError(f"content shrinkage must be a finite number >= 0, got {shrinkage!r}")
    if not isinstance(min_count, (int, np.integer)) or min_count < 1:
        raise WrmilInputError(f"content min_count must be an integer >= 1, got {min_count!r}")
    x = _unit(np.asarray(emb, np.float64))
    _, winv = np.unique(writers, return_inverse=True)
    winv = winv.reshape(-1)
    wsum = np.zeros((int(winv.max(initial=-1)) + 1, x.shape[1]))
    np.add.at(wsum, winv, x)
    centred = x - (wsum / np.bincount(winv)[:, None])[winv]
    norm = [normalise_text(t) for t in texts]
    known = np.array([t is not None for t in norm], bool)
    if not known.any():
        return ContentOffsets((), np.zeros((0, x.shape[1]), np.float32), float(shrinkage))
    words, inv, counts = np.unique(np.array([t for t in norm if t is not None], dtype=str), return_inverse=True,
                                   return_counts=True)
    sums = np.zeros((len(words), x.shape[1]))
    np.add.at(sums, inv.reshape(-1), centred[known])
    keep = counts >= min_count
    offsets = sums[keep] / (counts[keep] + shrinkage)[:, None]
    return ContentOffsets(tuple(str(w) for w in words[keep]), offsets.astype(np.float32), float(shrinkage))


def pair_kind_metrics(emb: np.ndarray, writers: Sequence[Any], texts: Sequence[str | None], n_pairs: int = 20000,
                      seed: int = 0) -> dict[str, float | int]:
    """Verification AUC of cosine scores separately on same-word and on different-word pairs.

    Only words with a known text take part (compared as :func:`normalise_text` makes them). For each
    kind, ``n_pairs // 2`` same-writer and as many different-writer pairs of that kind are drawn with
    replacement (i != j), reproducibly from ``seed`` (as :func:`evaluate.sample_pairs`). A kind whose
    same- or different-writer pairs do not exist gets AUC NaN and 0 pairs.
    """
    emb = _unit(np.asarray(_matrix(emb, len(texts), "pair_kind_metrics"), np.float64))
    writers = np.asarray(writers)
    if len(writers) != len(emb):
        raise WrmilInputError(f"pair_kind_metrics: {len(emb)} vectors but {len(writers)} writers")
    norm = [normalise_text(t) for t in texts]
    idx = np.array([i for i, t in enumerate(norm) if t is not None], dtype=np.int64)
    rng = np.random.default_rng(seed)
    half = max(1, n_pairs // 2)
    out: dict[str, float | int] = {}
    if len(idx) < 2:
        return {"auc_same_word": float("nan"), "auc_diff_word": float("nan"),
                "n_pairs_same_word": 0, "n_pairs_diff_word": 0}
    _, w = np.unique(writers[idx], return_inverse=True)
    _, t = np.unique(np.array([norm[i] for i in idx], dtype=str), return_inverse=True)
    w, t = w.reshape(-1), t.reshape(-1)
    wt = np.unique(np.stack([w, t], 1), axis=0, return_inverse=True)[1].reshape(-1)
    n_w, n_t, n_wt = np.bincount(w)[w], np.bincount(t)[t], np.bincount(wt)[wt]
    everyone = np.zeros(len(idx), np.int64)
    # per (kind, same writer): the group a partner is drawn from, who has a right partner in it, and
    # what makes a partner wrong
    plans = {
        "same_word": ((wt, n_wt >= 2, lambda a, b: a == b),
                      (t, n_t > n_wt, lambda a, b: w[a] == w[b])),
        "diff_word": ((w, n_w > n_wt, lambda a, b: t[a] == t[b]),
                      (everyone, len(idx) - n_w - n_t + n_wt > 0, lambda a, b: (w[a] == w[b]) | (t[a] == t[b]))),
    }
    for kind, plan in plans.items():
        drawn = [_draw(rng, half, *p) for p in plan]
        if any(d is None for d in drawn):
            out[f"auc_{kind}"], out[f"n_pairs_{kind}"] = float("nan"), 0
            continue
        i = idx[np.concatenate([d[0] for d in drawn])]
        j = idx[np.concatenate([d[1] for d in drawn])]
        same = np.concatenate([np.ones(half, bool), np.zeros(half, bool)])
        out[f"auc_{kind}"] = roc_figures(same, np.einsum("nd,nd->n", emb[i], emb[j]))["auc"]
        out[f"n_pairs_{kind}"] = int(len(same))
    return out


def _draw(rng: np.random.Generator, n: int, group: np.ndarray, has_partner: np.ndarray,
          wrong: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """``n`` pairs ``(a, b)``, ``a`` among the items that ``has_partner``, ``b`` drawn from ``a``'s
    ``group`` until neither ``wrong(a, b)`` nor ``a == b``; None when no item has a partner."""
    eligible = np.flatnonzero(has_partner)
    if not len(eligible):
        return None
    order = np.argsort(group, kind="stable")
    _, ginv, counts = np.unique(group, return_inverse=True, return_counts=True)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    a = rng.choice(eligible, n)
    pick = lambda s: order[starts[ginv[s]] + rng.integers(0, counts[ginv[s]])]  # noqa: E731
    b = pick(a)
    bad = wrong(a, b) | (a == b)
    while bad.any():  # terminates: every a drawn has a right partner in its group
        b[bad] = pick(a[bad])
        bad = wrong(a, b) | (a == b)
    return a, b
