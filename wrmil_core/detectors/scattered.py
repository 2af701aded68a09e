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
3. Per-word evidence: ``z_i = (r_i - median r) / (1.4826 MAD r)``, standardised by the document's
   own median and median absolute deviation (both barely moved by a minority of foreign words).
4. Document statistic: the mean of the ``max(1, round(top_frac * n))`` largest ``z_i``.

Length behaviour. The median and MAD are consistent quantile estimates and the top words are a
fixed *fraction* of the document, so under H0 the statistic tends to a constant tail mean of the
standardised residuals as ``n`` grows; its mean moves by less than 0.2 between 25 and 200 words of
Gaussian noise and its spread shrinks like ``1 / sqrt(n)`` (``tests/core/detectors``). The
statistic is invariant to the order of the words.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from wrmil_core.detectors._batch import as_batch, full_precision
from wrmil_core.errors import WrmilInputError

_MAD_TO_SD = 1.4826  # MAD of a normal sample times this is its standard deviation
_EPS = 1e-12


@dataclass(frozen=True)
class ScatteredBatch:
    """Batched result: ``statistic (B,)``, ``word_evidence (B, n)`` (robust z of each residual)."""

    statistic: torch.Tensor
    word_evidence: torch.Tensor


@dataclass(frozen=True)
class ScatteredResult:
    """One document: the statistic, each word's evidence, and the words the statistic averages."""

    statistic: float
    word_evidence: np.ndarray
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
    z = robust_z(residuals(x, trim))
    top = z.topk(top_count(x.shape[1], top_frac), dim=1).values
    return ScatteredBatch(statistic=top.mean(dim=1), word_evidence=z)


def scattered(words: np.ndarray | torch.Tensor, trim: float = 0.3, top_frac: float = 0.1) -> ScatteredResult:
    """Scattered-word statistic of one document's ``(n_words, dim)`` vectors (``n_words >= 3``).

    Returns the mean robust z of the ``round(top_frac * n)`` most distant words (its null
    distribution does not grow with ``n_words``), every word's z, and those words' indices.
    """
    r = scattered_batch(as_batch(words, 3, "scattered"), trim, top_frac)
    z = r.word_evidence[0].double().numpy()
    k = top_count(z.shape[0], top_frac)
    return ScatteredResult(statistic=float(r.statistic[0]), word_evidence=z,
                           top_words=np.sort(np.argsort(-z, kind="stable")[:k]))


__all__ = ["ScatteredBatch", "ScatteredResult", "residuals", "robust_z", "scattered", "scattered_batch", "top_count"]
