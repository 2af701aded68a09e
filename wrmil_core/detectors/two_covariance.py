"""The two-covariance (PLDA-style) writer model, and its closed-form LR for one foreign passage.

A generative model of word vectors: writer ``w`` has a latent centre ``y_w ~ N(mu, B)`` and each of
its words is ``x = y_w + e`` with ``e ~ N(0, W)`` (the within-writer covariance). It is the model
behind PLDA scoring and VBx diarization in speaker recognition (Brümmer & de Villiers 2010; Landini
et al. 2022). Both covariances are estimated from one-writer word groups (bags), then diagonalised
together: ``z = (x - mu) @ transform`` has within covariance ``I`` and between covariance
``diag(between)``, where every marginal likelihood factorises over dimensions.

The words of a set ``S`` (``n`` of them, summed ``s = sum z``) from one writer have the marginal
log-likelihood, per dimension ``d`` and up to terms in ``sum z^2`` that cancel in every ratio::

    f(n, s) = sum_d  -0.5 log(1 + n b_d) + 0.5 b_d s_d^2 / (1 + n b_d)

The log LR of "the run ``S`` was written by a second writer, the rest ``R`` by one" against "one
writer wrote all ``N`` words" is ``f(|S|, s_S) + f(|R|, s_R) - f(N, s_all)``. The contiguous
detector's statistic is the log of that LR averaged over every run of 1 .. N/2 words (a uniform
prior over where the passage is and how long), and a word's evidence is the share of that average
carried by the runs that hold it. Cumulative sums make every run O(1), so a document of ``N``
words costs O(N^2 d).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from wrmil_core.detectors._batch import full_precision
from wrmil_core.errors import WrmilInputError

_EIG_FLOOR = 1e-6  # relative floor of the within-writer eigenvalues: unit vectors leave one direction empty


@dataclass(frozen=True)
class TwoCovariance:
    """A fitted two-covariance model in its diagonal frame: ``z = (x - mean) @ transform`` has
    within-writer covariance ``I`` and between-writer covariance ``diag(between)``."""

    mean: torch.Tensor  # (D,)
    transform: torch.Tensor  # (D, D)
    between: torch.Tensor  # (D,)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Word vectors ``(..., D)`` in the diagonal frame (float64)."""
        return (x.double() - self.mean.double()) @ self.transform.double()


def from_covariances(mean: np.ndarray, within: np.ndarray, between: np.ndarray) -> TwoCovariance:
    """The model with these covariances, diagonalised together (``within`` must be positive definite)."""
    within = np.asarray(within, dtype=np.float64)
    lam, vec = np.linalg.eigh((within + within.T) / 2)
    lam = np.maximum(lam, _EIG_FLOOR * max(lam.max(), _EIG_FLOOR))
    whiten = vec / np.sqrt(lam)  # W^{-1/2} up to a rotation
    bw = whiten.T @ np.asarray(between, dtype=np.float64) @ whiten
    b, rot = np.linalg.eigh((bw + bw.T) / 2)
    return TwoCovariance(mean=torch.as_tensor(np.asarray(mean, dtype=np.float64)),
                         transform=torch.as_tensor(whiten @ rot), between=torch.as_tensor(np.maximum(b, 0.0)))


def fit_two_covariance(groups: torch.Tensor | np.ndarray, shrinkage: float = 0.1) -> TwoCovariance:
    """Estimate the model from one-writer groups ``(G, n, D)`` (e.g. genuine bags' words).

    Within: the pooled scatter of words about their group mean, shrunk by ``shrinkage`` towards its
    mean variance (unseen writers vary more than the groups show). Between: the covariance of the
    group means less the within part they still carry (``W / n``), clipped to be positive semi-definite.
    """
    x = torch.as_tensor(groups).double()
    if x.ndim != 3 or x.shape[0] < 2 or x.shape[1] < 2:
        raise WrmilInputError(f"two-covariance fit: need (groups >= 2, words >= 2, dim) one-writer groups, "
                              f"got shape {tuple(x.shape)}")
    if not 0.0 <= shrinkage < 1.0:
        raise WrmilInputError(f"two-covariance fit: shrinkage={shrinkage!r} must be in [0, 1)")
    g, n, d = x.shape
    means = x.mean(dim=1)
    resid = (x - means[:, None]).reshape(-1, d)
    within = (resid.T @ resid / (g * (n - 1))).numpy()
    within = (1 - shrinkage) * within + shrinkage * np.trace(within) / d * np.eye(d)
    centred = (means - means.mean(dim=0)).numpy()
    between = centred.T @ centred / max(g - 1, 1) - within / n
    lam, vec = np.linalg.eigh((between + between.T) / 2)
    between = (vec * np.maximum(lam, 0.0)) @ vec.T
    return from_covariances(means.mean(dim=0).numpy(), within, between)


def set_loglik(n: torch.Tensor | float, s: torch.Tensor, between: torch.Tensor) -> torch.Tensor:
    """``f(n, s)`` of the module docstring: a one-writer set's marginal log-likelihood (the terms that
    do not cancel), for counts ``n`` (broadcast over ``s``'s leading axes) and sums ``s`` ``(..., D)``."""
    n = torch.as_tensor(n, dtype=s.dtype, device=s.device)[..., None]
    nb = n * between
    return (-0.5 * torch.log1p(nb) + 0.5 * between * s.square() / (1.0 + nb)).sum(-1)


def same_writer_llr(zq: torch.Tensor, zk: torch.Tensor, between: torch.Tensor) -> torch.Tensor:
    """Natural log LR of "one writer wrote both word sets" against "two writers, one each": for word
    vectors ``zq (..., nQ, D)`` and ``zk (..., nK, D)`` in the diagonal frame, ``f(nQ + nK, sQ + sK)
    - f(nQ, sQ) - f(nK, sK)`` (module docstring; the ``sum z^2`` terms cancel). Batched over the
    leading axes; positive favours one writer."""
    nq, nk = zq.shape[-2], zk.shape[-2]
    if nq < 1 or nk < 1:
        raise WrmilInputError(f"two-covariance comparison: each side needs at least one word, got {nq} and {nk}")
    return same_writer_llr_sums(nq, zq.sum(dim=-2), nk, zk.sum(dim=-2), between)


def same_writer_llr_sums(nq: int, sq: torch.Tensor, nk: int, sk: torch.Tensor, between: torch.Tensor) -> torch.Tensor:
    """:func:`same_writer_llr` from the sets' sizes and summed vectors ``(..., D)`` (many pairs of
    runs then cost one sum per run, not one copy of its words per pair)."""
    return (set_loglik(float(nq + nk), sq + sk, between) - set_loglik(float(nq), sq, between)
            - set_loglik(float(nk), sk, between))


def run_llrs(z: torch.Tensor, between: torch.Tensor, max_frac: float = 0.5) -> list[torch.Tensor]:
    """Log LR of every contiguous run of ``1 .. floor(max_frac * N)`` words being a second writer's:
    one ``(B, N - L + 1)`` tensor per run length ``L`` (entry ``i``: the run starting at word ``i``)."""
    b, n, _ = z.shape
    csum = torch.cat([torch.zeros_like(z[:, :1]), z.cumsum(dim=1)], dim=1)
    total = csum[:, -1:]
    h0 = set_loglik(float(n), total[:, 0], between)[:, None]
    out = []
    for length in range(1, max(1, int(max_frac * n)) + 1):
        s_run = csum[:, length:] - csum[:, :-length]
        out.append(set_loglik(float(length), s_run, between) + set_loglik(float(n - length), total - s_run, between) - h0)
    return out


@dataclass(frozen=True)
class ContiguousBatch:
    """Batched result: ``statistic (B,)`` (log of the LR averaged over runs) and ``word_evidence (B, N)``
    (log of the part of that average carried by runs holding the word)."""

    statistic: torch.Tensor
    word_evidence: torch.Tensor


@full_precision
def contiguous_batch(x: torch.Tensor, model: TwoCovariance, max_frac: float = 0.5) -> ContiguousBatch:
    """The two-covariance passage statistic of every document of ``x`` ``(B, N, D)`` (``N >= 2``)."""
    if x.shape[1] < 2:
        raise WrmilInputError(f"two-covariance: a document needs at least 2 words, got {x.shape[1]}")
    z = model.project(x)
    runs = run_llrs(z, model.between.to(z.device), max_frac)
    n_runs = sum(r.shape[1] for r in runs)
    peak = torch.stack([r.amax(dim=1) for r in runs], dim=1).amax(dim=1, keepdim=True)  # (B, 1): exp stays finite
    mass = torch.zeros(x.shape[0], x.shape[1] + 1, dtype=z.dtype, device=z.device)
    for length, r in enumerate(runs, start=1):
        e = torch.exp(r - peak)  # (B, N - L + 1): run i covers words i .. i + L - 1
        mass[:, : e.shape[1]] += e  # difference array: +e at the start, -e after the end
        mass[:, length: length + e.shape[1]] -= e
    per_word = mass[:, :-1].cumsum(dim=1).clamp_min(1e-300)
    total = sum(torch.exp(r - peak).sum(dim=1) for r in runs)
    stat = torch.log(total) + peak[:, 0] - math.log(n_runs)
    return ContiguousBatch(statistic=stat.float(), word_evidence=(torch.log(per_word) + peak - math.log(n_runs)).float())


__all__ = ["ContiguousBatch", "TwoCovariance", "contiguous_batch", "fit_two_covariance", "from_covariances",
           "run_llrs", "same_writer_llr", "same_writer_llr_sums",
           "set_loglik"]
