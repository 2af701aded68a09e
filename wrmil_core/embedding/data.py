"""Input pipeline: word image -> fixed-size uint8 tensor, a Dataset over the words table, loaders.

Images travel as uint8 (1, H, W) tensors (a quarter of float32's bytes through worker shared
memory and host->GPU copies); the network normalises them itself (``EmbeddingNet.forward``).
A word image that cannot be read comes back as ``None`` and the collate function drops it and
reports its index, so one corrupt file never crashes an epoch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import polars as pl
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision.transforms import InterpolationMode, RandomAffine

from wrmil_core.embedding.augment import ShortcutAugment
from wrmil_core.embedding.config import EmbeddingConfig
from wrmil_core.errors import WrmilInputError
from wrmil_core.imaging import open_image

# The original augmentation: RandomAffine(degrees=7, translate=(0.05, 0.05), scale=(0.95, 1.05), shear=10).
AFFINE = dict(degrees=(-7.0, 7.0), translate=(0.05, 0.05), scale_ranges=(0.95, 1.05), shears=(-10.0, 10.0))


def background_value(img: Image.Image) -> int:
    """Median of the border pixels of a grayscale image: the paper colour to pad and fill with."""
    a = np.asarray(img)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    return int(np.median(border))


def resize_pad(img: Image.Image, h: int, w: int, fill: int) -> Image.Image:
    """Scale to fit inside h x w keeping the aspect ratio, centre on a ``fill`` canvas."""
    iw, ih = img.size
    scale = min(h / ih, w / iw)
    nw, nh = max(1, min(w, round(iw * scale))), max(1, min(h, round(ih * scale)))
    canvas = Image.new("L", (w, h), fill)
    canvas.paste(img.resize((nw, nh), Image.Resampling.BILINEAR), ((w - nw) // 2, (h - nh) // 2))
    return canvas


class WordTransform:
    """PIL image -> uint8 tensor (1, img_h, img_w): grayscale, resize (pad or squash), optional
    RandomAffine (training only), with padding and affine fill in the image's own background colour
    (the original filled the affine corners with black on white paper), then the opt-in
    :class:`ShortcutAugment` (training only, ``config.shortcut_augment``)."""

    def __init__(self, config: EmbeddingConfig, train: bool):
        self.h, self.w, self.mode = config.img_h, config.img_w, config.resize_mode
        self.augment = train and config.augment
        self.shortcuts = ShortcutAugment() if train and config.shortcut_augment else None

    def __call__(self, img: Image.Image) -> torch.Tensor:
        img = img.convert("L")
        bg = background_value(img)
        if self.mode == "pad":
            img = resize_pad(img, self.h, self.w, bg)
        else:
            img = img.resize((self.w, self.h), Image.Resampling.BILINEAR)
        if self.augment:
            angle, translate, scale, shear = RandomAffine.get_params(img_size=[self.w, self.h], **AFFINE)
            img = TF.affine(img, angle, list(translate), scale, list(shear),
                            interpolation=InterpolationMode.BILINEAR, fill=bg)
        if self.shortcuts is not None:
            return self.shortcuts(TF.pil_to_tensor(img))
        return TF.pil_to_tensor(img)


class WordImageDataset(Dataset):
    """Items ``(uint8 image or None, label, row index, error message)`` over image paths."""

    def __init__(self, paths: Sequence[str], labels: Sequence[int] | np.ndarray | None, transform: WordTransform):
        self.paths = list(paths)
        self.labels = np.zeros(len(self.paths), dtype=np.int64) if labels is None else np.asarray(labels, np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor | None, int, int, str]:
        try:
            with open_image(self.paths[i]) as im:
                x = self.transform(im)
            return x, int(self.labels[i]), i, ""
        except Exception as e:  # unreadable/truncated/not an image: skipped and counted by the caller
            return None, int(self.labels[i]), i, f"{self.paths[i]}: {type(e).__name__}: {e}"


def collate_skip(batch: list[tuple[Any, int, int, str]]) -> dict[str, Any]:
    """Stack the readable items; ``skipped`` lists ``(row index, error)`` of the unreadable ones."""
    ok = [b for b in batch if b[0] is not None]
    return {
        "x": torch.stack([b[0] for b in ok]) if ok else None,
        "y": torch.tensor([b[1] for b in ok], dtype=torch.long),
        "idx": torch.tensor([b[2] for b in ok], dtype=torch.long),
        "skipped": [(b[2], b[3]) for b in batch if b[0] is None],
    }


class ShardedEpochSampler(Sampler[int]):
    """``DistributedSampler`` semantics (a fresh permutation from ``seed + epoch``, an equal shard per
    rank, tail dropped) plus an optional cap on the images drawn per epoch, which
    ``DistributedSampler`` cannot do. With ``world=1`` it is a seeded shuffle."""

    def __init__(self, n: int, rank: int = 0, world: int = 1, per_epoch: int | None = None, seed: int = 0):
        self.n, self.rank, self.world, self.seed, self.epoch = n, rank, world, seed, 0
        self.per_rank = min(n, per_epoch or n) // world

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        perm = torch.randperm(self.n, generator=g)[: self.per_rank * self.world]
        return iter(perm[self.rank :: self.world].tolist())

    def __len__(self) -> int:
        return self.per_rank


def pk_shape(batch_size: int, words_per_writer: int, n_writers: int) -> tuple[int, int]:
    """(P writers, K words each) of a writer-balanced batch of about ``batch_size`` images.

    P = batch_size // K; with fewer writers than that, every writer is in each batch and K grows
    to fill it (P = n_writers, K = batch_size // n_writers), so a small data set keeps its batch size.
    """
    if n_writers < 2:
        raise WrmilInputError(f"writer-balanced batches need at least 2 training writers, got {n_writers}")
    p = batch_size // words_per_writer
    if p > n_writers:
        return n_writers, batch_size // n_writers
    return p, words_per_writer


class WriterBatchSampler(Sampler[list[int]]):
    """Writer-balanced P x K batches: each batch holds ``P`` distinct writers with ``K`` words each.

    Writers are visited in fresh seeded permutations one after another, and each writer's words in
    its own seeded permutations, so over an epoch every writer appears about equally often and
    every word before any repeats (a writer with fewer than K words repeats some within a batch).
    An epoch has ``per_epoch // (P * K)`` batches (``per_epoch`` None: all images). Under DDP
    (``world`` > 1) the global list of batches is dealt out to the ranks, equal counts, tail
    dropped, as in ``ShardedEpochSampler``; ``set_epoch`` reseeds from ``(seed, epoch)``.
    """

    def __init__(self, labels: Sequence[int] | np.ndarray, p: int, k: int, rank: int = 0, world: int = 1,
                 per_epoch: int | None = None, seed: int = 0):
        self.labels = np.asarray(labels, dtype=np.int64)
        self.p, self.k, self.rank, self.world, self.seed, self.epoch = p, k, rank, world, seed, 0
        self.by_writer = [np.flatnonzero(self.labels == w) for w in np.unique(self.labels)]
        if p > len(self.by_writer):
            raise WrmilInputError(f"P={p} writers per batch but only {len(self.by_writer)} training writers")
        n = min(len(self.labels), per_epoch or len(self.labels))
        self.per_rank = n // (p * k) // world

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        queues = [rng.permutation(ix) for ix in self.by_writer]
        cursor = np.zeros(len(queues), dtype=np.int64)
        writers = _cycle_permutations(rng, len(queues))
        batches = []
        for _ in range(self.per_rank * self.world):
            chosen: list[int] = []
            while len(chosen) < self.p:  # P distinct writers (the seam of two permutations may repeat one)
                w = next(writers)
                if w not in chosen:
                    chosen.append(w)
            batch = []
            for w in chosen:
                q = queues[w]
                batch.extend(q[(cursor[w] + np.arange(self.k)) % len(q)].tolist())
                cursor[w] += self.k
            batches.append(batch)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches()[self.rank :: self.world][: self.per_rank])

    def __len__(self) -> int:
        return self.per_rank


def _cycle_permutations(rng: np.random.Generator, n: int) -> Iterator[int]:
    """0..n-1 in one fresh permutation after another, forever."""
    while True:
        yield from (int(i) for i in rng.permutation(n))


def make_loader(dataset: Dataset, batch_size: int, num_workers: int, sampler: Sampler | None = None,
                drop_last: bool = False, pin_memory: bool = False, seed: int = 0) -> DataLoader:
    """Batched loader with worker processes; sequential order when no sampler is given."""
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, shuffle=False, num_workers=num_workers,
        collate_fn=collate_skip, drop_last=drop_last, pin_memory=pin_memory,
        # Not persistent: workers draw their augmentation seed from ``generator`` at each epoch start,
        # which the training loop reseeds per epoch so a resumed run replays the same augmentation.
        prefetch_factor=4 if num_workers > 0 else None,
        generator=torch.Generator().manual_seed(seed),  # seeds the workers' augmentation RNG
    )


def make_batch_loader(dataset: Dataset, batch_sampler: Sampler[list[int]], num_workers: int,
                      pin_memory: bool = False, seed: int = 0) -> DataLoader:
    """Loader whose batches come from ``batch_sampler`` (e.g. :class:`WriterBatchSampler`); as
    :func:`make_loader` otherwise."""
    return DataLoader(
        dataset, batch_sampler=batch_sampler, num_workers=num_workers, collate_fn=collate_skip,
        pin_memory=pin_memory, prefetch_factor=4 if num_workers > 0 else None,
        generator=torch.Generator().manual_seed(seed),
    )


def stratified_subset(words: pl.DataFrame, max_n: int | None, seed: int = 0) -> pl.DataFrame:
    """At most ``max_n`` rows with (nearly) equal counts per writer, chosen reproducibly from ``seed``."""
    if max_n is None or words.height <= max_n:
        return words
    n_writers = words["writer"].n_unique()
    quota = max(1, max_n // n_writers)
    rng = np.random.default_rng(seed)
    return (
        words.with_columns(_key=pl.Series(rng.permutation(words.height)))
        .with_columns(_rank=pl.col("_key").rank("ordinal").over("writer"))
        .filter(pl.col("_rank") <= quota)
        .drop("_key", "_rank")
        .sort("word_id")
    )
