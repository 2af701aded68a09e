"""Writer diarization of one document's words: a variational mixture of writers (VBx without the HMM).

In the two-covariance model's diagonal frame (:mod:`.two_covariance`: within-writer covariance
``I``, between ``diag(b)``) a document of ``K`` writers is a mixture: word ``i`` belongs to writer
``k`` with probability ``pi_k``, and writer ``k``'s centre is ``y_k ~ N(0, diag(b))``. Mean-field
variational Bayes (as VBx does for speakers, Landini et al. 2022, but with no transition model, so
foreign words may sit anywhere) alternates::

    q(y_k) = N(m_k, diag(v_k)),  v_k = 1 / (1/b + N_k),  m_k = v_k * sum_i gamma_ik z_i
    gamma_ik ∝ pi_k exp(z_i . m_k - 0.5 sum_d (m_kd^2 + v_kd)),   pi_k = N_k / N

and its evidence lower bound (ELBO) approximates ``log p(words | K writers)``. For ``K = 1`` the
posterior is exact and the ELBO is the closed-form marginal likelihood (:func:`log_evidence_one`),
so ``ELBO_K - log p(words | 1 writer)`` is a log LR of "K writers" against "one". Each word's
posterior of belonging to the main writer (the component with the most words) is ``gamma``.

Initialisation is deterministic (farthest-point seeds: the document mean, then the word farthest
from the seeds so far), so the same words give the same answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from wrmil_core.errors import WrmilInputError

_LOG_2PI = math.log(2 * math.pi)
_SEED_WEIGHT = 0.9  # initial responsibility of a seed word for its own writer


@dataclass(frozen=True)
class Diarization:
    """One fit of ``K`` writers to a batch: ``elbo (B,)``, responsibilities ``gamma (B, N, K)``
    and mixture weights ``pi (B, K)``."""

    elbo: torch.Tensor
    gamma: torch.Tensor
    pi: torch.Tensor

    def main_posterior(self) -> torch.Tensor:
        """``(B, N)``: each word's posterior of belonging to the writer with the most words."""
        main = self.pi.argmax(dim=1)
        return self.gamma.gather(2, main[:, None, None].expand(-1, self.gamma.shape[1], 1))[..., 0]


def log_evidence_one(z: torch.Tensor, between: torch.Tensor) -> torch.Tensor:
    """Exact ``log p(z | one writer)`` of every document of ``z`` ``(B, N, D)`` (float64)."""
    n = z.shape[1]
    s = z.sum(dim=1)
    nb = n * between
    return (-0.5 * n * _LOG_2PI - 0.5 * torch.log1p(nb)
            - 0.5 * (z.square().sum(dim=1) - between * s.square() / (1 + nb))).sum(-1)


def _seeds(z: torch.Tensor, k: int) -> torch.Tensor:
    """``(B, N, K)`` initial responsibilities: writer 0 takes every word but the seeds, writer j > 0
    the word farthest from the earlier seeds (farthest-point seeding)."""
    b, n, _ = z.shape
    centres = [z.mean(dim=1)]
    gamma = torch.zeros(b, n, k, dtype=z.dtype, device=z.device)
    gamma[..., 0] = 1.0
    nearest = (z - centres[0][:, None]).square().sum(-1)
    rows = torch.arange(b, device=z.device)
    for j in range(1, k):
        far = nearest.argmax(dim=1)
        gamma[rows, far] = (1 - _SEED_WEIGHT) / (k - 1)
        gamma[rows, far, j] = _SEED_WEIGHT
        nearest = torch.minimum(nearest, (z - z[rows, far][:, None]).square().sum(-1))
    return gamma


def _posterior(z: torch.Tensor, gamma: torch.Tensor, between: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``q(y_k)``'s means ``(B, K, D)`` and variances ``(B, K, D)`` given the responsibilities."""
    counts = gamma.sum(dim=1)  # (B, K)
    var = 1.0 / (1.0 / between.clamp_min(1e-12) + counts[..., None])
    return var * torch.einsum("bnk,bnd->bkd", gamma, z), var


def _elbo(z: torch.Tensor, gamma: torch.Tensor, pi: torch.Tensor, mean: torch.Tensor, var: torch.Tensor,
          between: torch.Tensor) -> torch.Tensor:
    """The evidence lower bound of the module docstring, ``(B,)``."""
    d = z.shape[-1]
    sq = (z.square().sum(-1)[..., None] - 2 * torch.einsum("bnd,bkd->bnk", z, mean)
          + (mean.square() + var).sum(-1)[:, None])  # E ||z_i - y_k||^2, (B, N, K)
    expected = (gamma * (torch.log(pi.clamp_min(1e-300))[:, None] - 0.5 * d * _LOG_2PI - 0.5 * sq)).sum((1, 2))
    entropy = -(gamma * torch.log(gamma.clamp_min(1e-300))).sum((1, 2))
    b = between.clamp_min(1e-12)
    kl = 0.5 * ((var + mean.square()) / b - 1 - torch.log(var / b)).sum((1, 2))
    return expected + entropy - kl


def diarize(z: torch.Tensor, between: torch.Tensor, n_writers: int, iterations: int = 20) -> Diarization:
    """Fit ``n_writers`` writers to every document of ``z`` ``(B, N, D)`` (diagonal frame) by VB."""
    if n_writers < 1 or z.shape[1] < n_writers:
        raise WrmilInputError(f"diarization: {n_writers} writers need at least as many words, got {z.shape[1]}")
    z, between = z.double(), between.double().to(z.device)
    gamma = _seeds(z, n_writers)
    for _ in range(iterations):
        pi = gamma.mean(dim=1)
        mean, var = _posterior(z, gamma, between)
        logits = (torch.log(pi.clamp_min(1e-300))[:, None] + torch.einsum("bnd,bkd->bnk", z, mean)
                  - 0.5 * (mean.square() + var).sum(-1)[:, None])
        gamma = torch.softmax(logits, dim=2)
    pi = gamma.mean(dim=1)
    mean, var = _posterior(z, gamma, between)
    return Diarization(elbo=_elbo(z, gamma, pi, mean, var, between), gamma=gamma, pi=pi)


__all__ = ["Diarization", "diarize", "log_evidence_one"]
