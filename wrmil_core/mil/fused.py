"""The default detector: the word-level detectors' statistics fused by logistic regression, fitted
on validation bags of every geometry.

No single detector is safe on a questioned document of unknown geometry: ``segment_scan`` is the
best on one foreign passage and gives evidence *for* one writer on scattered foreign words (AUC
0.06 at 30 % on a held-out real set), ``scattered`` is the reverse. :class:`FusedMIL` computes, on
a bag's words in reading order, the statistics (:data:`FEATURES`):

- ``segment_scan`` and ``scattered`` (:mod:`wrmil_core.detectors`), the window ``distance`` (windows of
  ``window`` words cut from the word sequence, so a whole document and a bag agree);
- ``two_covariance``: the closed-form two-covariance passage LR (:mod:`wrmil_core.detectors.two_covariance`);
- ``diarization_2`` and ``diarization_3``: the VB gain of two or three writers over one
  (:mod:`wrmil_core.detectors.diarization`), for scattered words and several foreign hands.

Fusion. H1 "more than one writer" is a union of geometries, so the fused LR is the average of the
geometries' LRs: for each geometry ``g`` of the validation bags a logistic regression of its
contaminated bags against the genuine ones gives ``log LR_g`` (its log-odds less the log of its
class ratio), and the bag logit is ``log mean_g LR_g``. Each geometry's own fusion is as good as
the best of its inputs there, and the average is dominated by the geometry the words show, which is
what keeps every geometry x difficulty cell near the best single detector. The covariances, the
fusion and the writer-count thresholds are fitted on the validation bags only (the embedding has
seen the training writers); :mod:`wrmil_core.evidence` then calibrates the logit with ``lir``.

Writer count and word posteriors (:meth:`FusedMIL.writers`): one writer when the fused logit is
below its validation balanced-accuracy threshold, else three or more when the three-writer gain
exceeds the two-writer one by a validation-fitted margin, else two; each word's posterior of
belonging to the main writer comes from the VB fit of that many writers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from wrmil_core.bags.tensors import BagTensors
from wrmil_core.detectors.base import MILModel, words_to_windows
from wrmil_core.detectors.diarization import diarize, log_evidence_one
from wrmil_core.detectors.distance import distance_scores
from wrmil_core.detectors.scattered import scattered_batch
from wrmil_core.detectors.segment_scan import segment_scan_batch
from wrmil_core.detectors.two_covariance import TwoCovariance, contiguous_batch, fit_two_covariance
from wrmil_core.errors import WrmilInputError
from wrmil_core.mil.fusion import Fusion, cross_fitted_logits, fit_fusion, writer_folds
from wrmil_core.mil.two_covariance import CovarianceBuffers, genuine_words

FEATURES: tuple[str, ...] = ("segment_scan", "scattered", "distance", "two_covariance", "diarization_2",
                             "diarization_3")
MAX_GEOMETRIES = 4  # fusion slots: one per contaminated geometry of the validation bags
N_FOLDS = 5  # writer folds of the cross-fitting


@dataclass(frozen=True)
class FusedFeatures:
    """Every statistic of a batch of bags ``(B, F)`` and the VB fits behind the diarization ones."""

    values: torch.Tensor
    main_posterior: dict[int, torch.Tensor]  # writers -> (B, N) each word's posterior of the main writer
    word_evidence: torch.Tensor  # (B, N) log-odds of a word not being the main writer's (3-writer fit)


class FusedMIL(MILModel):
    """Logistic-regression fusion of the word-level statistics, one fusion per geometry, averaged as
    LRs (module docstring); window score = the largest 'not the main writer' log-odds of its words."""

    name = "fused"
    window_output = "logit"
    fitted = True
    whole_document = True
    default = True
    window_order_invariant = False

    def __init__(self, dim: int, shrinkage: float = 0.1, iterations: int = 20, window: int = 5) -> None:
        super().__init__(dim, shrinkage=shrinkage, iterations=iterations, window=window)
        self.shrinkage, self.iterations, self.window = float(shrinkage), int(iterations), int(window)
        self.cov = CovarianceBuffers(dim)
        f, g = len(FEATURES), MAX_GEOMETRIES
        self.register_buffer("feature_mean", torch.zeros(f, dtype=torch.float64))
        self.register_buffer("feature_scale", torch.ones(f, dtype=torch.float64))
        self.register_buffer("coef", torch.zeros(g, f, dtype=torch.float64))
        self.register_buffer("intercept", torch.zeros(g, dtype=torch.float64))
        # unfitted: one slot of zero weights (logit 0 for every bag), the others off
        self.register_buffer("log_weight", torch.tensor([0.0] + [-math.inf] * (g - 1), dtype=torch.float64))
        self.register_buffer("count_threshold", torch.tensor([0.0, math.inf], dtype=torch.float64))

    def features(self, x: torch.Tensor, cov: TwoCovariance | None = None) -> FusedFeatures:
        """The statistics of :data:`FEATURES` for bags ``x`` ``(B, W, T, D)`` (float64, outside autocast),
        with the held covariances or ``cov``."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            words = x.reshape(x.shape[0], -1, x.shape[-1]).float()
            cov = cov or self.cov.model()
            z = cov.project(words)
            one = log_evidence_one(z, cov.between)
            fits = {k: diarize(z, cov.between, k, self.iterations) for k in (2, 3) if words.shape[1] >= k}
            gains = [(fits[k].elbo - one) if k in fits else torch.zeros_like(one) for k in (2, 3)]
            values = torch.stack([
                segment_scan_batch(words).statistic.double(), scattered_batch(words).statistic.double(),
                distance_scores(rewindow(words, self.window))[0].double(),
                contiguous_batch(words, cov).statistic.double(), *gains], dim=1)
        posterior = {k: f.main_posterior() for k, f in fits.items()}
        last = posterior[max(posterior)] if posterior else torch.ones_like(z[..., 0])
        evidence = torch.log1p(-last.clamp(1e-6, 1 - 1e-6)) - torch.log(last.clamp(1e-6, 1 - 1e-6))
        return FusedFeatures(values=values, main_posterior=posterior, word_evidence=evidence)

    def fusion(self) -> Fusion:
        """The held fusion."""
        on = torch.isfinite(self.log_weight).cpu().numpy()
        return Fusion(mean=self.feature_mean.cpu().numpy(), scale=self.feature_scale.cpu().numpy(),
                      coef=self.coef.cpu().numpy()[on], intercept=self.intercept.cpu().numpy()[on],
                      log_weight=self.log_weight.cpu().numpy()[on], geometries=())

    def fused_logit(self, values: torch.Tensor) -> torch.Tensor:
        """The bag logit ``log mean_g LR_g`` of raw statistic rows ``(B, F)``."""
        return torch.as_tensor(self.fusion().logit(values.detach().cpu().numpy()), device=values.device)

    def forward(self, x: torch.Tensor, features: FusedFeatures | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(bag logit, window scores)`` of bags ``x``; ``features``: their :meth:`features` when
        already computed (``wrmil score`` computes them once for this and :meth:`writers`)."""
        f = self.features(x) if features is None else features
        return words_to_windows(x, self.fused_logit(f.values).float(), f.word_evidence.float())

    def fit(self, train: BagTensors, val: BagTensors) -> dict[str, Any]:
        """Fit covariances, fusion and count thresholds on ``val`` only (``train`` is unused: the
        embedding has seen its writers), cross-fitted over the validation writers: each val bag's
        statistics come from covariances fitted without its writer, and its returned logit
        (``val_logits``, what the evidence is calibrated on) from a fusion fitted without it."""
        label, geometry = val.label.numpy(), np.asarray(val.geometry)
        known = bool((val.base_writer >= 0).all())
        folds = writer_folds(val.base_writer if known else val.bag_id, N_FOLDS)
        values = self._out_of_fold_values(val, folds)
        fusion = fit_fusion(values, label, geometry)
        if len(fusion.geometries) > MAX_GEOMETRIES:
            raise WrmilInputError(f"fused: {len(fusion.geometries)} geometries {list(fusion.geometries)}; "
                                  f"at most {MAX_GEOMETRIES}")
        val_logits = cross_fitted_logits(values, label, geometry, folds, fusion)
        self.cov.set(fit_two_covariance(genuine_words(val), self.shrinkage))
        self._hold(fusion)
        self._fit_counts(values, val_logits, val)
        return {"fitted_on": "val bags, cross-fitted over " + ("writers" if known else "bags"),
                "folds": int(folds.max()) + 1, **fusion.describe(FEATURES), "val_logits": val_logits}

    def _out_of_fold_values(self, val: BagTensors, folds: np.ndarray) -> np.ndarray:
        """``(B, F)`` statistics of each val bag with covariances fitted on the other folds' genuine bags
        (all val bags' where the other folds hold fewer than two)."""
        values = np.zeros((len(val), len(FEATURES)))
        for k in np.unique(folds):
            held = np.flatnonzero(folds == k)
            rest = val.subset(np.flatnonzero(folds != k))
            cov = fit_two_covariance(genuine_words(rest if (rest.label == 0).sum() >= 2 else val), self.shrinkage)
            for i in range(0, len(held), 256):
                values[held[i:i + 256]] = self.features(val.x[held[i:i + 256]], cov).values.numpy()
        return values

    def _hold(self, fusion: Fusion) -> None:
        """Copy ``fusion`` into the buffers (unused slots off)."""
        g = len(fusion.geometries)
        self.feature_mean.copy_(torch.as_tensor(fusion.mean))
        self.feature_scale.copy_(torch.as_tensor(fusion.scale))
        self.coef.zero_()
        self.intercept.zero_()
        self.log_weight.fill_(-math.inf)
        self.coef[:g] = torch.as_tensor(fusion.coef)
        self.intercept[:g] = torch.as_tensor(fusion.intercept)
        self.log_weight[:g] = torch.as_tensor(fusion.log_weight)

    def _fit_counts(self, values: np.ndarray, logits: np.ndarray, val: BagTensors) -> None:
        """Thresholds of :meth:`writers`: balanced accuracy of one vs more writers on the (cross-fitted)
        fused logit, then of two vs three on the three-writer gain over two (none when val has no
        three-writer bags)."""
        label, writers = val.label.numpy(), np.asarray(val.n_writers)
        self.count_threshold[0] = balanced_threshold(logits, label == 1)
        contaminated = label == 1
        extra = values[:, 5] - values[:, 4]
        if (writers[contaminated] >= 3).any() and (writers[contaminated] == 2).any():
            self.count_threshold[1] = balanced_threshold(extra[contaminated], writers[contaminated] >= 3)

    @torch.no_grad()
    def writers(self, x: torch.Tensor, features: FusedFeatures | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(writer count (B,) in 1, 2, 3, main-writer posterior (B, N))`` of bags ``x`` (module docstring);
        ``features``: their :meth:`features` when already computed."""
        f = self.features(x) if features is None else features
        logit = self.fused_logit(f.values).cpu()
        extra = (f.values[:, 5] - f.values[:, 4]).cpu()
        thr = self.count_threshold.cpu()
        count = torch.where(logit < thr[0], 1, torch.where(extra > thr[1], 3, 2))
        post = torch.ones(f.word_evidence.shape, dtype=torch.float64)
        for k, p in f.main_posterior.items():
            post = torch.where((count == k)[:, None], p.cpu(), post)
        return count.numpy(), post.numpy()


def rewindow(words: torch.Tensor, size: int) -> torch.Tensor:
    """``(B, N, D)`` words as ``(B, N // size, size, D)`` windows in reading order (the last words of an
    uneven document fall in one more window ending at its last word): the window ``distance`` is the
    same whether the words come as bags of windows or as one whole document."""
    n = words.shape[1]
    if n < 2 * size:
        return words[:, :, None]  # too short for two windows: one word each
    starts = list(range(0, n - size + 1, size))
    if starts[-1] + size < n:
        starts.append(n - size)
    return torch.stack([words[:, s:s + size] for s in starts], dim=1)


def balanced_threshold(score: np.ndarray, positive: np.ndarray) -> float:
    """The threshold on ``score`` (positive above) with the best balanced accuracy."""
    cuts = np.unique(score)
    if cuts.size < 2 or positive.all() or not positive.any():
        return float(np.median(score)) if score.size else 0.0
    mids = (cuts[1:] + cuts[:-1]) / 2
    tpr = (score[positive][:, None] > mids).mean(axis=0)
    tnr = (score[~positive][:, None] <= mids).mean(axis=0)
    return float(mids[np.argmax(tpr + tnr)])


__all__ = ["FEATURES", "FusedFeatures", "FusedMIL", "balanced_threshold", "rewindow"]
