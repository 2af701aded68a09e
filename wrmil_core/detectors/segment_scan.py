"""Segment scan: one contiguous foreign passage in a document's word sequence.

For every contiguous run ``[a, b)`` of ``L`` words (``1 <= L <= n - 1``) of a document of ``n``
word vectors, the *raw* scan value is the distance between the run's mean and the mean of the
other words, scaled to unit variance per run::

    D(a, b) = sqrt(L (n - L) / n) * || mean(x[a:b]) - mean(x[outside]) ||

(the epidemic / square-wave change-point statistic). With cumulative sums ``C`` and the bridge
``U_k = C_k - (k / n) C_n`` it is ``D^2 = n ||U_b - U_a||^2 / (L (n - L))``, so every run comes from
one Gram matrix of ``U``: O(n^2 d) per document, batched over bags with torch.

Length behaviour. Under H0 (one writer; words independent with covariance S) every ``D^2`` has mean
``tr S`` and variance ``2 tr S^2`` whatever ``n``, but the maximum over the ~n^2/2 runs grows
with ``n``. The document statistic therefore

1. maps each run's ``D^2`` to a standard-normal equivalent ``z`` under H0, the scaled chi-square
   with that mean and variance (Satterthwaite: ``D^2 ~ c chi2_nu``, ``c = tr S^2 / tr S``,
   ``nu = (tr S)^2 / tr S^2``), by the Wilson-Hilferty cube root; ``tr S`` and
   ``tr S^2`` are the document's own, estimated from *successive differences*
   ``x_{i+1} - x_i`` (covariance ``2 S`` under H0; a single passage changes only two of them,
   so the estimate is not inflated by the passage it is looking for); and
2. subtracts the penalty ``sqrt(2 log(n^2 / m))``, ``m = min(L, n - L)``: a Bonferroni-type
   bound for the runs of about ``m`` words. Walther's (2010) ``sqrt(2 log(e n / m))`` still
   let the null mean climb by 0.6 from 10 to 400 words; this one keeps it flat (about -0.8,
   sd 0.5-0.7, on Gaussian noise of 8 to 64 dimensions, n = 10 .. 400; checked in
   ``tests/core/detectors``), at the price of a little power on long runs.

So the statistic is on a z-like scale, comparable between documents of any length and spread;
a value above about 1 is rare for one writer.

Limits. The model is "words independent given the writer". Where the *text* makes neighbouring
words alike (AHAWP writes each word ten times in a row) successive differences understate the
spread and a block of one word already looks like a passage: on AHAWP with the text-dependent
classical embedding the statistic is below chance (``benchmarks/detectors_by_geometry.py``), while
on the demo set's running text it beats ``distance`` from 10 % on. Scattered foreign words raise
the spread estimate and lower the statistic: use ``scattered`` or ``distance`` for them.

The estimated passage is the best run of at most half the document (the foreign writer is the
minority; a longer run scores the same as its complement). A word's evidence is the best
penalised value of any such run that contains it.

Why not ``ruptures``: its 2-breakpoint search fits three free segment means (before, passage,
after), a different model from "one passage against one document"; it runs one document at a
time in Python, where this needs thousands of 50-word bags per batch; and the exact scan is a
few lines of cumulative sums, checked against a brute-force loop in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from wrmil_core.detectors._batch import as_batch, full_precision
from wrmil_core.detectors.base import MILModel, words_to_windows

_EPS = 1e-12


@dataclass(frozen=True)
class SegmentScanBatch:
    """Batched result, every field over bags ``(B, ...)``.

    statistic       (B,)  penalised standardised maximum over all runs (the document statistic)
    start, end      (B,)  first and last word (inclusive) of the best run of at most n/2 words
    word_evidence   (B, n) best penalised value of any run of at most n/2 words containing the word
    raw             (B,)  plain maximum of ``D`` over all runs (grows with n under H0)
    """

    statistic: torch.Tensor
    start: torch.Tensor
    end: torch.Tensor
    word_evidence: torch.Tensor
    raw: torch.Tensor


@dataclass(frozen=True)
class SegmentScanResult:
    """One document's segment scan (see the module docstring for each quantity)."""

    statistic: float
    start: int
    end: int
    word_evidence: np.ndarray
    raw: float

    @property
    def passage(self) -> tuple[int, int]:
        """``(first, last)`` word index of the estimated foreign passage."""
        return self.start, self.end


def run_lengths(n: int, device: torch.device | None = None) -> torch.Tensor:
    """``(n + 1, n + 1)`` matrix of run lengths ``b - a`` for run ``[a, b)`` (negative: no run)."""
    k = torch.arange(n + 1, device=device)
    return k[None, :] - k[:, None]


def raw_scan(x: torch.Tensor) -> torch.Tensor:
    """``D(a, b)^2`` for every run of every bag: ``(B, n + 1, n + 1)``, 0 where ``[a, b)`` is no run
    of 1 .. n-1 words. ``x`` is ``(B, n, d)``."""
    b, n, _ = x.shape
    c = torch.cat([x.new_zeros(b, 1, x.shape[2]), x.cumsum(dim=1)], dim=1)       # (B, n+1, d)
    k = torch.arange(n + 1, device=x.device, dtype=x.dtype)
    u = c - (k / n)[None, :, None] * c[:, -1:, :]                                # bridge U_k
    g = u @ u.transpose(1, 2)
    diag = torch.diagonal(g, dim1=1, dim2=2)
    sq = (diag[:, :, None] + diag[:, None, :] - 2 * g).clamp_min(0)             # ||U_b - U_a||^2
    length = run_lengths(n, x.device).to(x.dtype)
    valid = (length >= 1) & (length <= n - 1)
    denom = torch.where(valid, length * (n - length), torch.ones_like(length))
    return torch.where(valid, n * sq / denom, torch.zeros_like(sq))


def spread(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(tr S, tr S^2)`` per bag from successive differences ``delta_i = x_{i+1} - x_i``.

    ``E ||delta||^2 = 2 tr S`` and, for non-adjacent (independent) differences,
    ``E (delta_i . delta_j)^2 = 4 tr S^2``. ``tr S^2`` is clipped to ``[(tr S)^2 / d, (tr S)^2]``
    (isotropic .. rank one), its possible range, which also covers documents of fewer than four
    words (no non-adjacent pair: isotropic assumed).
    """
    n, d = x.shape[1], x.shape[2]
    delta = x[:, 1:] - x[:, :-1]                                                 # (B, n-1, d)
    k = delta @ delta.transpose(1, 2)
    tr = torch.diagonal(k, dim1=1, dim2=2).mean(dim=1) / 2
    idx = torch.arange(n - 1, device=x.device)
    far = (idx[:, None] - idx[None, :]).abs() >= 2
    if far.any():
        tr2 = (k.square() * far).sum(dim=(1, 2)) / far.sum() / 4
    else:
        tr2 = tr.square() / d
    tr2 = torch.minimum(torch.maximum(tr2, tr.square() / d), tr.square())
    return tr.clamp_min(_EPS), tr2.clamp_min(_EPS ** 2)


def scale_penalty(n: int, device: torch.device | None = None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``sqrt(2 log(n^2 / m))`` with ``m = min(L, n - L)`` per run, ``(n + 1, n + 1)`` (inf: no run)."""
    length = run_lengths(n, device).to(dtype)
    m = torch.minimum(length, n - length)
    pen = torch.sqrt(2 * torch.log(n * n / m.clamp_min(1)))
    return torch.where(m >= 1, pen, torch.full_like(pen, float("inf")))


def run_z(d2: torch.Tensor, tr: torch.Tensor, tr2: torch.Tensor) -> torch.Tensor:
    """Standard-normal equivalent of each run's ``D^2`` under H0 (float64): ``D^2 ~ c chi2_nu``
    with ``c = tr S^2 / tr S``, ``nu = (tr S)^2 / tr S^2`` (mean ``tr S``, variance ``2 tr S^2``),
    mapped by the Wilson-Hilferty cube root ``((D^2 / tr S)^(1/3) - 1 + 2 / (9 nu)) / sqrt(2 / (9 nu))``.
    Unlike the exact tail probability, which underflows for a long foreign passage and ties
    every strong run, it keeps growing; it agrees with the exact quantile within 4 % for p >= 1e-6 and nu >= 3."""
    tr, tr2 = tr.double()[:, None, None], tr2.double()[:, None, None]
    h = 2 * tr2 / (9 * tr.square())                                              # 2 / (9 nu)
    return ((d2.double() / tr).pow(1 / 3) - 1 + h) / h.sqrt()


def penalised_scan(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(penalised z (B, n+1, n+1) float64, raw D^2)``: the run's H0 quantile ``z`` minus the
    scale penalty, ``-inf`` where ``[a, b)`` is no run."""
    d2 = raw_scan(x)
    tr, tr2 = spread(x)
    return run_z(d2, tr, tr2) - scale_penalty(x.shape[1], x.device), d2


def _minority_runs(values: torch.Tensor) -> torch.Tensor:
    """``values`` with runs longer than half the document set to ``-inf``."""
    n = values.shape[-1] - 1
    length = run_lengths(n, values.device)
    keep = (length >= 1) & (2 * length <= max(n, 2))
    return values.masked_fill(~keep, float("-inf"))


def word_evidence(values: torch.Tensor) -> torch.Tensor:
    """Per word ``i``: max of ``values[a, b]`` over runs with ``a <= i < b``, ``(B, n)``."""
    n = values.shape[-1] - 1
    # best run starting at a and ending at or after i+1: reverse cumulative max over b
    suffix = values.flip(-1).cummax(dim=-1).values.flip(-1)[:, :, 1:]            # (B, a, i) = max_{b>i}
    a = torch.arange(n + 1, device=values.device)[:, None]
    i = torch.arange(n, device=values.device)[None, :]
    return suffix.masked_fill(a > i, float("-inf")).amax(dim=1)


@full_precision
def segment_scan_batch(x: torch.Tensor) -> SegmentScanBatch:
    """Segment scan of every document of a batch ``x`` ``(B, n, d)`` (``n >= 2``)."""
    bsz, n, _ = x.shape
    pen, d2 = penalised_scan(x)
    minority = _minority_runs(pen)
    best = minority.reshape(bsz, -1).argmax(dim=1)
    start, stop = best // (n + 1), best % (n + 1)
    return SegmentScanBatch(
        statistic=pen.reshape(bsz, -1).amax(dim=1), start=start, end=stop - 1,
        word_evidence=word_evidence(minority), raw=d2.reshape(bsz, -1).amax(dim=1).sqrt())


def segment_scan(words: np.ndarray | torch.Tensor) -> SegmentScanResult:
    """Segment scan of one document's ``(n_words, dim)`` word vectors (``n_words >= 2``).

    Returns the penalised, standardised statistic (its null distribution does not grow with
    ``n_words``), the estimated passage and each word's evidence; see the module docstring.
    """
    r = segment_scan_batch(as_batch(words, 2, "segment_scan"))
    return SegmentScanResult(statistic=float(r.statistic[0]), start=int(r.start[0]), end=int(r.end[0]),
                             word_evidence=r.word_evidence[0].double().numpy(), raw=float(r.raw[0]))


class SegmentScanMIL(MILModel):
    """Training-free: bag logit = segment-scan statistic of the bag's words in reading order
    (penalised, standardised; about -0.8 on average for one writer at any length), window
    score = the best evidence of its words (best run of at most half the bag containing them).
    Depends on the order of the windows; scores a whole document of any length; ``wrmil score``
    estimates the foreign passage with it, whatever the detector."""

    name = "segment_scan"
    window_output = "logit"
    trainable = False
    whole_document = True
    window_order_invariant = False

    def __init__(self, dim: int) -> None:
        super().__init__(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = segment_scan_batch(x.reshape(x.shape[0], -1, x.shape[-1]))
        return words_to_windows(x, r.statistic, r.word_evidence)


__all__ = ["SegmentScanBatch", "SegmentScanMIL", "SegmentScanResult", "penalised_scan", "raw_scan", "run_z", "scale_penalty",
           "segment_scan", "segment_scan_batch", "spread"]
