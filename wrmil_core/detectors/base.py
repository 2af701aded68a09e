"""The base class of every bag model, trained or not, and what each declares about itself.

Every model takes a bag tensor ``x`` of shape ``(B, n_win, n_words, dim)`` and returns
``(bag_logit (B,), window_scores (B, n_win))``; a higher window score means "more likely foreign".
The facts other modules need about a detector are class attributes here, read by name through the
registry (:func:`wrmil_core.mil.registry.detector_class`), never kept in name lists elsewhere:

``trainable``               learned weights (``False``: a training-free statistic)
``fitted``                  its state is fitted in closed form by :meth:`MILModel.fit` (on validation
                            bags), not by gradient steps; such a model is ``trainable`` too
``whole_document``          scores a document as one word sequence of any length (its one-writer
                            statistic does not grow with the length); else by sliding bags
``default``                 the detector ``wrmil score`` prefers (and the report's fallback headline)
``window_order_invariant``  the bag logit does not depend on the order of the windows
``window_output``           what the window scores are: ``"logit"`` when the bag logit is a (smooth)
                            max of them, ``"attention"`` when they are softmax attention weights;
                            document scoring maps them to the bag-probability scale accordingly

It lives at the detectors level because the training-free detectors are bag models too and sit
below the learned ones (:mod:`wrmil_core.mil`).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, get_args

import torch
from torch import nn

from wrmil_core.bags.tensors import BagTensors

WindowOutput = Literal["logit", "attention"]
WINDOW_OUTPUTS: tuple[str, ...] = get_args(WindowOutput)


class MILModel(nn.Module):
    """Common base: ``name``, ``dim``, constructor ``hparams`` (saved to JSON) and the class facts
    of the module docstring (every subclass must declare ``window_output``)."""

    name: ClassVar[str] = ""
    trainable: ClassVar[bool] = True
    fitted: ClassVar[bool] = False
    whole_document: ClassVar[bool] = False
    default: ClassVar[bool] = False
    window_order_invariant: ClassVar[bool] = True
    window_output: ClassVar[WindowOutput]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse a model class that does not say what its window scores are: a silent default
        would put a new model in the wrong branch of document scoring."""
        super().__init_subclass__(**kwargs)
        declared = getattr(cls, "window_output", None)
        if declared not in WINDOW_OUTPUTS:
            raise TypeError(f"MIL model class {cls.__name__} must declare window_output as one of "
                            f"{WINDOW_OUTPUTS} (a logit pooled by a max, or an attention weight), got {declared!r}")

    def __init__(self, dim: int, **hparams: Any) -> None:
        super().__init__()
        self.dim = int(dim)
        self.hparams = dict(hparams)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def fit(self, train: BagTensors, val: BagTensors) -> dict[str, Any]:
        """Fit a ``fitted`` model's state in closed form; returns what to record about the fit, and
        under ``val_logits`` (optional) each val bag's logit from a fit that did not see it, which
        thresholds and calibration then use instead of the val bags' in-sample scores."""
        raise NotImplementedError(f"{type(self).__name__} is not fitted in closed form (fitted = False)")


def words_to_windows(x: torch.Tensor, statistic: torch.Tensor,
                     evidence: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(bag logit, window scores)`` of a word-level detector on bags ``x``: its statistic, and per
    window the largest evidence of its words (``evidence`` is ``(B, n_win * n_words)``).

    The word-level detectors read a bag's windows, flattened, as its word sequence (``word`` mode's
    non-overlapping windows are exactly the bag's span in reading order).
    """
    b, w, t, _ = x.shape
    return statistic.to(x.dtype), evidence.reshape(b, w, t).amax(dim=-1).to(x.dtype)


__all__ = ["WINDOW_OUTPUTS", "MILModel", "WindowOutput", "words_to_windows"]
