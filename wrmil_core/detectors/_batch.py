"""Shared plumbing of the word-level detectors: one document or a batch, always float32 outside autocast."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch

from wrmil_core.errors import WrmilInputError

T = TypeVar("T")


def as_batch(words: np.ndarray | torch.Tensor, min_words: int, what: str) -> torch.Tensor:
    """One document's ``(n, dim)`` word vectors as a ``(1, n, dim)`` float32 tensor.

    Refuses a non-2-D array, non-finite values and documents shorter than ``min_words``.
    """
    x = torch.as_tensor(np.asarray(words, dtype=np.float32) if not isinstance(words, torch.Tensor) else words)
    if x.ndim != 2:
        raise WrmilInputError(f"{what}: words must be an (n_words, dim) array, got shape {tuple(x.shape)}")
    if x.shape[0] < min_words:
        raise WrmilInputError(f"{what}: a document needs at least {min_words} words, got {x.shape[0]}")
    if not torch.isfinite(x).all():
        raise WrmilInputError(f"{what}: the word vectors hold NaN or infinite values")
    return x.float().unsqueeze(0)


def full_precision(fn: Callable[..., T]) -> Callable[..., T]:
    """Run ``fn(x, ...)`` in float32 outside autocast: the statistics subtract near-equal sums
    of unit vectors, which bf16 (about 3 digits) would drown."""

    def wrapper(x: torch.Tensor, *args, **kwargs) -> T:
        with torch.autocast(device_type=x.device.type, enabled=False):
            return fn(x.float(), *args, **kwargs)

    wrapper.__doc__, wrapper.__name__ = fn.__doc__, fn.__name__
    return wrapper
