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
from wrmil_core.detectors.two_covariance import contiguous_batch, fit_two_covariance
from wrmil_core.errors import WrmilInputError
from wrmil_core.mil.two_covariance import CovarianceBuffers, genuine_words

FEATURES: tuple[str, ...] = ("segment_scan", "scattered", "distance", "two_covariance", "diarization_2",
                             "diarization_3")
MAX_GEOMETRIES = 4  # fusion slots: one per contaminated geometry of the validation bags
_C = 1.0  # logistic-regression inverse regularisation on standardised features: few, correlated features


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

    def features(self, x: torch.Tensor) -> FusedFeatures:
        """The statistics of :data:`FEATURES` for bags ``x`` ``(B, W, T, D)`` (float64, outside autocast)."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            words = x.reshape(x.shape[0], -1, x.shape[-1]).float()
            cov = self.cov.model()
            z = cov.project(words)
            one = log_evidence_one(z, cov.between)
            fits = {k: diarize(z, cov.between, k, self.iterations) for k in (2, 3) if words.shape[1] >= k}
            gains = [(fits[k].elbo - one) if k in fits else torch.zeros_like(one) for k in (2, 3)]
            values = torch.stack([
                segment_scan_batch(words).statistic.double(), scattered_batch(words).statistic.double(),
                distance_scores(rewindow(words, self.window))[0].double(), contiguous_batch(words, cov).statistic.double(), *gains], dim=1)
        posterior = {k: f.main_posterior() for k, f in fits.items()}
        last = posterior[max(posterior)] if posterior else torch.ones_like(z[..., 0])
        evidence = torch.log1p(-last.clamp(1e-6, 1 - 1e-6)) - torch.log(last.clamp(1e-6, 1 - 1e-6))
        return FusedFeatures(values=values, main_posterior=posterior, word_evidence=evidence)

    def fused_logit(self, values: torch.Tensor) -> torch.Tensor:
        """``log mean_g LR_g`` of the feature rows ``(B, F)`` (raw statistics): the bag logit."""
        std = (signed_log(values) - self.feature_mean) / self.feature_scale
        per_geometry = std @ self.coef.T + self.intercept + self.log_weight  # (B, G); unused slots -inf
        return torch.logsumexp(per_geometry, dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return words_to_windows(x, self.fused_logit(f.values).float(), f.word_evidence.float())

    def fit(self, train: BagTensors, val: BagTensors) -> dict[str, Any]:
        """Fit covariances, fusion and count thresholds on ``val`` only (``train`` is unused: the
        embedding has seen its writers)."""
        self.cov.set(fit_two_covariance(genuine_words(val), self.shrinkage))
        values = torch.cat([self.features(val.x[i:i + 256]).values for i in range(0, len(val), 256)])
        info = self._fit_fusion(values.numpy(), val.label.numpy(), np.asarray(val.geometry))
        self._fit_counts(values, val)
        return info

    def _fit_fusion(self, values: np.ndarray, label: np.ndarray, geometry: np.ndarray) -> dict[str, Any]:
        """One logistic regression per contaminated geometry against the genuine bags (module docstring)."""
        from sklearn.linear_model import LogisticRegression  # imported here: only a fit needs it

        geometries = sorted(set(geometry[label == 1].tolist()))
        if not geometries or not (label == 0).any():
            raise WrmilInputError("fused: the validation bags need genuine and contaminated bags to fit the fusion; "
                                  "check bags_by_difficulty[val]")
        if len(geometries) > MAX_GEOMETRIES:
            raise WrmilInputError(f"fused: {len(geometries)} geometries {geometries}; at most {MAX_GEOMETRIES}")
        squashed = signed_log(values)
        mean, scale = squashed.mean(axis=0), squashed.std(axis=0) + 1e-9
        self.feature_mean.copy_(torch.as_tensor(mean))
        self.feature_scale.copy_(torch.as_tensor(scale))
        std, genuine = (squashed - mean) / scale, label == 0
        self.log_weight.fill_(-math.inf)
        info: dict[str, Any] = {"geometries": geometries, "features": list(FEATURES)}
        for slot, g in enumerate(geometries):
            rows = genuine | (geometry == g)
            lr = LogisticRegression(C=_C, max_iter=1000).fit(std[rows], label[rows])
            n1, n0 = int((label[rows] == 1).sum()), int(genuine.sum())
            self.coef[slot] = torch.as_tensor(lr.coef_[0])
            self.intercept[slot] = float(lr.intercept_[0]) - math.log(n1 / n0)  # log-odds -> log LR
            self.log_weight[slot] = -math.log(len(geometries))
            info[f"weights_{g}"] = dict(zip(FEATURES, np.round(lr.coef_[0], 4).tolist()))  # per standard deviation
        return info

    def _fit_counts(self, values: torch.Tensor, val: BagTensors) -> None:
        """Thresholds of :meth:`writers`: balanced accuracy of one vs more writers on the fused logit,
        then of two vs three on the three-writer gain over two (none when val has no three-writer bags)."""
        logit = self.fused_logit(values).numpy()
        label = val.label.numpy()
        self.count_threshold[0] = balanced_threshold(logit, label == 1)
        writers = np.asarray(val.n_writers)
        contaminated = label == 1
        extra = (values[:, 5] - values[:, 4]).numpy()
        if (writers[contaminated] >= 3).any() and (writers[contaminated] == 2).any():
            self.count_threshold[1] = balanced_threshold(extra[contaminated], writers[contaminated] >= 3)

    @torch.no_grad()
    def writers(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """``(writer count (B,) in 1, 2, 3, main-writer posterior (B, N))`` of bags ``x`` (module docstring)."""
        f = self.features(x)
        logit = self.fused_logit(f.values)
        extra = f.values[:, 5] - f.values[:, 4]
        count = torch.where(logit < self.count_threshold[0], 1, torch.where(extra > self.count_threshold[1], 3, 2))
        post = torch.ones_like(f.word_evidence, dtype=torch.float64)
        for k, p in f.main_posterior.items():
            post = torch.where((count == k)[:, None], p, post)
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


def signed_log(v: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """``sign(v) log(1 + |v|)``: the LR-like statistics grow with the evidence without bound, and a
    few huge values would otherwise set the fusion's scale (measured on the demo: +0.01 AUC overall)."""
    lib = torch if isinstance(v, torch.Tensor) else np
    return lib.sign(v) * lib.log1p(lib.abs(v))


def balanced_threshold(score: np.ndarray, positive: np.ndarray) -> float:
    """The threshold on ``score`` (positive above) with the best balanced accuracy."""
    cuts = np.unique(score)
    if cuts.size < 2 or positive.all() or not positive.any():
        return float(np.median(score)) if score.size else 0.0
    mids = (cuts[1:] + cuts[:-1]) / 2
    tpr = (score[positive][:, None] > mids).mean(axis=0)
    tnr = (score[~positive][:, None] <= mids).mean(axis=0)
    return float(mids[np.argmax(tpr + tnr)])


__all__ = ["FEATURES", "FusedFeatures", "FusedMIL", "balanced_threshold", "rewindow", "signed_log"]
