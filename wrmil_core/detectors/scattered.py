"""Scattered foreign words: each word's distance from a robust centre of its document.

A foreign writer's words need not form one passage: a forger may change a word here and there.
Such words cannot be pooled along the sequence, so each word is compared with the document on its
own:

1. Robust centre: the mean of the document's words, then (twice) the mean of the
   ``n - floor(trim * n)`` words closest to it (a trimmed mean; ``trim`` above the foreign share
   keeps the centre on the majority writer).
2. Residual ``r_i = ||x_i - centre||^2``; for a word inside the trimmed set it is scaled by
   ``(k / (k - 1))^2`` (``k`` kept words), which makes it its distance from the mean of the *other*
   kept words (leave one out), as the words outside the set already are.
3. Per-word evidence: ``r_i`` itself (``word_z``, the residual standardised by the document's
   median and median absolute deviation, says how unusual the word is *within* its document).
4. Document statistic: the mean of the ``max(1, round(top_frac * n))`` largest ``r_i``.

Length behaviour. Under H0 each ``r_i`` is a squared distance from the mean of about ``n`` other
words of the same writer, whose distribution does not depend on ``n`` beyond the leave-one-out
factor; the top words are a fixed *fraction* of the document, so the statistic tends to a constant
tail mean as ``n`` grows (its mean moves by 0.1 % between 25 and 200 words of Gaussian
noise, its spread shrinks like ``1 / sqrt(n)``; ``tests/core/detectors``). It is on the scale of
the embedding (squared distances of unit vectors, 0 .. 4), and deliberately *not* standardised by
the document's own spread: scattered foreign words are extra spread, and a self-standardised
statistic absorbs them (measured on the demo set's and AHAWP's classical embeddings, 50-word
bags: AUC 0.50-0.62 with the robust z against 0.66-0.77 without). The statistic is invariant to
the order of the words.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from wrmil_core.detectors._batch import as_batch, full_precision
from wrmil_core.detectors.base import MILModel, words_to_windows
from wrmil_core.errors import WrmilInputError

_MAD_TO_SD = 1.4826  # MAD of a normal sample times this is its standard deviation
_EPS = 1e-12


@dataclass(frozen=True)
class ScatteredBatch:
    """Batched result: ``statistic (B,)``, ``word_evidence (B, n)`` (each word's residual) and
    ``word_z (B, n)`` (the residual's robust z within its document)."""

    statistic: torch.Tensor
    word_evidence: torch.Tensor
    word_z: torch.Tensor


@dataclass(frozen=True)
class ScatteredResult:
    """One document: the statistic, each word's evidence (residual) and its robust z, and the
    words the statistic averages."""

    statistic: float
    word_evidence: np.ndarray
    word_z: np.ndarray
    top_words: np.ndarray


def check_params(trim: float, top_frac: float) -> None:
    """Refuse a trim outside [0, 0.5) or a top fraction outside (0, 1]."""
    if not 0.0 <= trim < 0.5:
        raise WrmilInputError(f"scattered: trim={trim!r} must be in [0, 0.5) (the share of words left out of the centre)")
    if not 0.0 < top_frac <= 1.0:
        raise WrmilInputError(f"scattered: top_frac={top_frac!r} must be in (0, 1] (the share of words averaged)")


def top_count(n: int, top_frac: float) -> int:
    """Words averaged by the statistic for a document of ``n`` words: ``max(1, round(top_frac * n))``."""
    return max(1, min(n, int(np.floor(top_frac * n + 0.5))))


def residuals(x: torch.Tensor, trim: float = 0.3, iterations: int = 2) -> torch.Tensor:
    """Squared distance of each word from the trimmed centre of its document (leave-one-out for
    the words inside the trimmed set), ``(B, n)``."""
    n = x.shape[1]
    k = max(2, n - int(np.floor(trim * n)))
    centre = x.mean(dim=1, keepdim=True)
    kept = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    for _ in range(iterations):
        dist = (x - centre).square().sum(-1)
        nearest = dist.topk(min(k, n), dim=1, largest=False).indices
        kept = torch.zeros_like(kept).scatter_(1, nearest, True)
        centre = (x * kept[..., None]).sum(1, keepdim=True) / kept.sum(1, keepdim=True)[..., None]
    r = (x - centre).square().sum(-1)
    m = kept.sum(1, keepdim=True).to(x.dtype)
    loo = (m / (m - 1).clamp_min(1)).square()
    return torch.where(kept, r * loo, r)


def robust_z(r: torch.Tensor) -> torch.Tensor:
    """``(r - median) / (1.4826 MAD)`` along the last axis."""
    med = r.quantile(0.5, dim=-1, keepdim=True)
    mad = (r - med).abs().quantile(0.5, dim=-1, keepdim=True) * _MAD_TO_SD
    return (r - med) / mad.clamp_min(_EPS)


@full_precision
def scattered_batch(x: torch.Tensor, trim: float = 0.3, top_frac: float = 0.1) -> ScatteredBatch:
    """Scattered-word statistic of every document of a batch ``x`` ``(B, n, d)`` (``n >= 3``)."""
    check_params(trim, top_frac)
    r = residuals(x, trim)
    top = r.topk(top_count(x.shape[1], top_frac), dim=1).values
    return ScatteredBatch(statistic=top.mean(dim=1), word_evidence=r, word_z=robust_z(r))


def scattered(words: np.ndarray | torch.Tensor, trim: float = 0.3, top_frac: float = 0.1) -> ScatteredResult:
    """Scattered-word statistic of one document's ``(n_words, dim)`` vectors (``n_words >= 3``).

    Returns the mean residual of the ``round(top_frac * n)`` most distant words (its null
    distribution does not grow with ``n_words``), every word's residual and robust z, and the
    indices of the words averaged.
    """
    r = scattered_batch(as_batch(words, 3, "scattered"), trim, top_frac)
    ev = r.word_evidence[0].double().numpy()
    k = top_count(ev.shape[0], top_frac)
    return ScatteredResult(statistic=float(r.statistic[0]), word_evidence=ev, word_z=r.word_z[0].double().numpy(),
                           top_words=np.sort(np.argsort(-ev, kind="stable")[:k]))


class ScatteredMIL(MILModel):
    """Training-free: bag logit = mean squared distance of the ``top_frac`` words farthest from
    the bag's trimmed centre (leave one out); window score = the largest such distance of its
    words. Scores a whole document of any length."""

    name = "scattered"
    window_output = "logit"
    trainable = False
    whole_document = True

    def __init__(self, dim: int, trim: float = 0.3, top_frac: float = 0.1) -> None:
        super().__init__(dim, trim=trim, top_frac=top_frac)
        self.trim, self.top_frac = float(trim), float(top_frac)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = scattered_batch(x.reshape(x.shape[0], -1, x.shape[-1]), self.trim, self.top_frac)
        return words_to_windows(x, r.statistic, r.word_evidence)


__all__ = ["ScatteredBatch", "ScatteredMIL", "ScatteredResult", "residuals", "robust_z", "scattered", "scattered_batch", "top_count"]
