"""The two-covariance passage detector as a bag model: :mod:`wrmil_core.detectors.two_covariance`
with its covariances fitted in closed form on the validation bags' genuine (one-writer) bags.

Why validation and not training bags: the embedding was fitted on the training writers, whose words
it draws together more tightly than an unseen writer's; the within-writer spread of unseen writers
is what a questioned document shows. Test bags are never seen.
"""

from __future__ import annotations

from typing import Any

import torch

from wrmil_core.bags.tensors import BagTensors
from wrmil_core.detectors.base import MILModel, words_to_windows
from wrmil_core.detectors.two_covariance import TwoCovariance, contiguous_batch, fit_two_covariance
from wrmil_core.errors import WrmilInputError


def genuine_words(bags: BagTensors) -> torch.Tensor:
    """``(G, n, dim)``: the words of every genuine bag, one writer each, in reading order."""
    x = bags.x[torch.as_tensor(bags.label.numpy() == 0)]
    if x.shape[0] < 2:
        raise WrmilInputError(f"the validation bags hold {x.shape[0]} genuine bag(s); the two-covariance model "
                              "needs at least 2: build more validation bags (more validation writers or documents)")
    return x.reshape(x.shape[0], -1, x.shape[-1])


class CovarianceBuffers(torch.nn.Module):
    """A :class:`TwoCovariance` model held as buffers, so it is saved and loaded with the weights."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("transform", torch.eye(dim, dtype=torch.float64))
        self.register_buffer("between", torch.ones(dim, dtype=torch.float64))

    def set(self, model: TwoCovariance) -> None:
        """Hold ``model``'s fitted mean, transform and between-writer variances."""
        self.mean.copy_(model.mean)
        self.transform.copy_(model.transform)
        self.between.copy_(model.between)

    def model(self) -> TwoCovariance:
        """The held :class:`TwoCovariance`."""
        return TwoCovariance(mean=self.mean, transform=self.transform, between=self.between)


class TwoCovarianceMIL(MILModel):
    """Bag logit = log of the two-covariance LR of one foreign run averaged over every run of up to
    half the bag's words; window score = the largest evidence of its words. Fitted on validation."""

    name = "two_covariance"
    window_output = "logit"
    fitted = True
    whole_document = True
    window_order_invariant = False

    def __init__(self, dim: int, shrinkage: float = 0.1) -> None:
        super().__init__(dim, shrinkage=shrinkage)
        self.shrinkage = float(shrinkage)
        self.cov = CovarianceBuffers(dim)

    def fit(self, train: BagTensors, val: BagTensors) -> dict[str, Any]:
        """Fit the covariances on ``val``'s genuine bags (module docstring); ``train`` is unused."""
        self.cov.set(fit_two_covariance(genuine_words(val), self.shrinkage))
        return {"fitted_on": "val genuine bags", "genuine_bags": int((val.label == 0).sum())}

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = contiguous_batch(x.reshape(x.shape[0], -1, x.shape[-1]), self.cov.model())
        return words_to_windows(x, r.statistic, r.word_evidence)


__all__ = ["CovarianceBuffers", "TwoCovarianceMIL", "genuine_words"]
