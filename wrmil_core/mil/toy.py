"""A toy generator of bags with a known writer structure, for tests and benchmarks.

Each writer is a random unit "style" centroid; a word embedding is ``normalize(separation * c_w + e)``
with ``e ~ N(0, I/dim)`` (so ``||e|| ~ 1``): ``separation`` is the writer signal over the per-word noise.
Each call draws its own writers from ``seed``, so bag sets from different seeds are writer-disjoint,
like the real train/val/test splits.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from wrmil_core.bags.tensors import BagTensors


def make_toy_bags(
    n_genuine: int,
    ratios: Sequence[float] = (0.05, 0.10, 0.20, 0.30),
    bag_size: int = 10,
    window_size: int = 5,
    dim: int = 16,
    separation: float = 1.5,
    seed: int = 0,
    n_contaminated_per_ratio: int | None = None,
    n_writers: int = 40,
    mode: str = "word",
    model_id: str = "toy",
    writer_seed: int | None = None,
    donors: str = "any",
) -> BagTensors:
    """Genuine and contaminated bags of toy word embeddings (L2-normalised, float32).

    ``mode="word"`` (the default, like the real word-level mixing): a bag is ``bag_size``
    non-overlapping windows of ``window_size`` words from one host writer; a contaminated bag has a
    contiguous passage of ``max(1, round(r * n_words))`` words replaced by a donor writer's words,
    so windows at the passage edges are partly foreign. ``mode="instance"`` is the original rule:
    ``max(1, int(bag_size * r))`` whole windows are replaced. By default the contaminated bags
    are twice the genuine ones (the 1:2 balance), split equally over ``ratios``.
    Writers are drawn from ``writer_seed`` when given (shared across calls), else from ``seed``.
    ``donors="any"``: any writer but the host donates (foreign only relative to the bag, as in the
    real data); ``donors="disjoint"``: hosts are the first half of the writers and donors the
    second half, so foreign windows are recognisable on their own (a problem ABMIL can learn when
    the writers are shared across splits).
    """
    if donors not in ("any", "disjoint"):
        raise ValueError(f"donors must be 'any' or 'disjoint', got {donors!r}")
    if mode not in ("word", "instance"):
        raise ValueError(f"mode must be 'word' or 'instance', got {mode!r}")
    if n_writers < 2:
        raise ValueError("n_writers must be at least 2 (a donor differs from the host)")
    rng = np.random.default_rng(seed)
    ratios = [float(r) for r in ratios]
    if n_contaminated_per_ratio is None:
        n_contaminated_per_ratio = (2 * n_genuine) // max(1, len(ratios))
    wrng = rng if writer_seed is None else np.random.default_rng(writer_seed)
    centroids = wrng.normal(size=(n_writers, dim))
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    n_words = bag_size * window_size

    def words(writer: int, n: int) -> np.ndarray:
        v = separation * centroids[writer] + rng.normal(scale=1.0 / np.sqrt(dim), size=(n, dim))
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    bag_ratios = [0.0] * n_genuine + [r for r in ratios for _ in range(n_contaminated_per_ratio)]
    xs, foreign_words = [], []
    for r in bag_ratios:
        n_hosts = n_writers if donors == "any" else n_writers // 2
        host = int(rng.integers(n_hosts))
        x = words(host, n_words)
        is_foreign = np.zeros(n_words, dtype=bool)
        if r > 0:
            donor = _draw_donor(rng, host, n_writers, donors)
            is_foreign = _foreign_words(rng, r, mode, bag_size, window_size)
            x[is_foreign] = words(donor, int(is_foreign.sum()))
        xs.append(x.reshape(bag_size, window_size, dim))
        foreign_words.append(is_foreign.reshape(bag_size, window_size))
    fw = np.stack(foreign_words) if xs else np.zeros((0, bag_size, window_size), dtype=bool)
    x_all = np.stack(xs) if xs else np.zeros((0, bag_size, window_size, dim))
    ratio_arr = np.asarray(bag_ratios, dtype=np.float64)
    return BagTensors(
        x=torch.from_numpy(x_all.astype(np.float32)),
        label=torch.from_numpy((ratio_arr > 0).astype(np.int64)),
        window_foreign=torch.from_numpy(fw.any(axis=2)),
        ratio=ratio_arr,
        foreign_word_frac=fw.reshape(len(bag_ratios), -1).mean(axis=1) if xs else np.zeros(0),
        bag_id=np.arange(len(bag_ratios), dtype=np.int64),
        model_id=model_id,
    )


def _draw_donor(rng: np.random.Generator, host: int, n_writers: int, donors: str) -> int:
    """Any writer but the host (``donors="any"``), else one of the second half of the writers."""
    if donors == "any":
        donor = int(rng.integers(n_writers - 1))
        return donor + (donor >= host)
    return int(rng.integers(n_writers // 2, n_writers))


def _foreign_words(rng: np.random.Generator, r: float, mode: str, bag_size: int, window_size: int) -> np.ndarray:
    """Which of the bag's words a donor writes: a contiguous passage (``word``) or whole windows (``instance``)."""
    n_words = bag_size * window_size
    is_foreign = np.zeros(n_words, dtype=bool)
    if mode == "word":
        k = min(n_words, max(1, int(round(r * n_words))))
        start = int(rng.integers(n_words - k + 1))
        is_foreign[start:start + k] = True
    else:
        k = min(bag_size, max(1, int(bag_size * r)))
        wins = rng.choice(bag_size, size=k, replace=False)
        is_foreign.reshape(bag_size, window_size)[wins] = True
    return is_foreign
