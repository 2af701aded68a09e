"""Input pipeline: aspect-preserving pad vs squash, augmentation, corrupt files, samplers."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import torch
from PIL import Image

from wrmil_core.embedding.config import EmbeddingConfig
from wrmil_core.embedding.data import (ShardedEpochSampler, WordImageDataset, WordTransform, collate_skip, make_loader,
                                       resize_pad, stratified_subset)


def ink_box(img: np.ndarray, thresh: int = 128) -> tuple[int, int]:
    """(height, width) of the dark-pixel bounding box."""
    ys, xs = np.nonzero(img < thresh)
    return int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1)


def word_image(w: int = 120, h: int = 40, bg: int = 230) -> Image.Image:
    """A dark block of w x h inside a 2 px ``bg`` margin."""
    img = Image.new("L", (w + 4, h + 4), bg)
    img.paste(0, (2, 2, w + 2, h + 2))
    return img


def test_pad_keeps_aspect_ratio_and_squash_does_not() -> None:
    src = word_image(120, 40)  # ink aspect 3:1
    pad = np.asarray(WordTransform(EmbeddingConfig(img_h=64, img_w=256, resize_mode="pad", augment=False), train=False)(src))[0]
    squash = np.asarray(WordTransform(EmbeddingConfig(img_h=64, img_w=256, resize_mode="squash"), train=False)(src))[0]
    assert pad.shape == squash.shape == (64, 256)
    h, w = ink_box(pad)
    assert abs(w / h - 3.0) < 0.15
    hs, ws = ink_box(squash)
    assert ws / hs > 3.5  # stretched to the 4:1 canvas
    # Padding uses the image's own background, not black or white.
    assert pad[0, 0] == 230 and pad[-1, -1] == 230


def test_resize_pad_fits_long_words_by_width() -> None:
    out = np.asarray(resize_pad(word_image(600, 30, bg=255).convert("L"), 64, 256, 255))
    h, w = ink_box(out)
    assert w >= 250 and h < 20


def test_augmentation_only_in_training() -> None:
    cfg = EmbeddingConfig(img_h=32, img_w=96)
    src = word_image(60, 20)
    torch.manual_seed(0)
    train = WordTransform(cfg, train=True)
    a, b = train(src), train(src)
    assert a.dtype == torch.uint8 and a.shape == (1, 32, 96)
    assert not torch.equal(a, b)
    ev = WordTransform(cfg, train=False)
    assert torch.equal(ev(src), ev(src))
    assert not WordTransform(replace(cfg, augment=False), train=True).augment


def test_corrupt_images_are_skipped_and_reported(tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    word_image().save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    ds = WordImageDataset([str(good), str(bad), str(tmp_path / "missing.png"), str(good)], [0, 1, 2, 3],
                          WordTransform(EmbeddingConfig(img_h=32, img_w=96), train=False))
    assert ds[1][0] is None and "bad.png" in ds[1][3]
    batch = collate_skip([ds[i] for i in range(4)])
    assert batch["x"].shape == (2, 1, 32, 96)
    assert batch["y"].tolist() == [0, 3] and batch["idx"].tolist() == [0, 3]
    assert [i for i, _ in batch["skipped"]] == [1, 2]
    assert collate_skip([ds[1]])["x"] is None
    batches = list(make_loader(ds, batch_size=3, num_workers=0))
    assert sum(len(b["skipped"]) for b in batches) == 2 and sum(len(b["y"]) for b in batches) == 2


def test_sharded_sampler_splits_disjointly_and_caps() -> None:
    shards = [list(ShardedEpochSampler(103, rank=r, world=2, per_epoch=60, seed=3)) for r in range(2)]
    assert [len(s) for s in shards] == [30, 30]
    assert not set(shards[0]) & set(shards[1])
    s = ShardedEpochSampler(50, seed=1)
    e0 = list(s)
    assert sorted(e0) == list(range(50)) and list(s) == e0  # deterministic
    s.set_epoch(1)
    assert list(s) != e0


def test_stratified_subset_balances_writers() -> None:
    words = pl.DataFrame({"word_id": range(100), "writer": [0] * 70 + [1] * 20 + [2] * 10})
    sub = stratified_subset(words, 30, seed=0)
    assert sub.group_by("writer").len().sort("writer")["len"].to_list() == [10, 10, 10]
    assert sub.equals(stratified_subset(words, 30, seed=0))
    assert stratified_subset(words, None).height == 100
