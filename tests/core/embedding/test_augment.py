"""Capture-shortcut augmentation: opt-in, training only, seeded, varies capture while keeping the ink."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tests.support.embedding import draw_word
from wrmil_core.embedding.augment import ShortcutAugment, _elastic, _thickness
from wrmil_core.embedding.config import PRESETS, EmbeddingConfig
from wrmil_core.embedding.data import WordImageDataset, WordTransform, make_loader

CFG = EmbeddingConfig(img_h=48, img_w=160, shortcut_augment=True)


def word() -> Image.Image:
    return draw_word(np.random.default_rng(3), writer=2, height=48)


def test_off_by_default_and_in_the_existing_presets() -> None:
    assert EmbeddingConfig().shortcut_augment is False
    assert not any(PRESETS[p].shortcut_augment for p in ("demo", "paper"))
    assert WordTransform(EmbeddingConfig(), train=True).shortcuts is None


def test_training_images_only() -> None:
    plain = WordTransform(replace(CFG, shortcut_augment=False), train=False)
    ev = WordTransform(CFG, train=False)
    assert ev.shortcuts is None and torch.equal(ev(word()), plain(word()))
    assert WordTransform(CFG, train=True).shortcuts is not None


def test_deterministic_for_a_seed() -> None:
    t = WordTransform(CFG, train=True)

    def draws(seed: int) -> list[torch.Tensor]:
        torch.manual_seed(seed)
        return [t(word()) for _ in range(6)]

    a, b, c = draws(5), draws(5), draws(6)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    assert a[0].dtype == torch.uint8 and a[0].shape == (1, 48, 160)


def test_loader_workers_replay_the_same_augmentation(tmp_path: Path) -> None:
    path = tmp_path / "w.png"
    word().save(path)
    ds = WordImageDataset([str(path)] * 8, None, WordTransform(CFG, train=True))
    runs = [torch.cat([b["x"] for b in make_loader(ds, 4, num_workers=1, seed=11)]) for _ in range(2)]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0][0], runs[0][1])  # each image drew its own augmentation


def test_capture_varies_but_the_handwriting_stays() -> None:
    base = WordTransform(replace(CFG, augment=False, shortcut_augment=False), train=True)(word())[0].float()
    t = WordTransform(replace(CFG, augment=False), train=True)
    torch.manual_seed(0)
    outs = [t(word())[0].float() for _ in range(40)]
    paper = base > 200
    ink = base < 120
    paper_levels = np.array([o[paper].mean().item() for o in outs])
    contrast = np.array([(o[paper].mean() - o[ink].mean()).item() for o in outs])
    assert np.ptp(paper_levels) > 30 and np.ptp(contrast) > 40  # paper tone and ink contrast vary a lot
    # ... while the word is still where it was: ink stays darker than paper in (nearly) every draw.
    assert np.mean(contrast > 20) > 0.9


def test_thickness_and_elastic_steps() -> None:
    x = WordTransform(replace(CFG, shortcut_augment=False), train=False)(word()).float() / 255
    torch.manual_seed(1)
    variants = [_thickness(x) for _ in range(20)]
    ink = (1 - x).sum().item()  # ink mass: darker and wider strokes weigh more
    mass = [(1 - v).sum().item() for v in variants]
    assert min(mass) < 0.9 * ink and max(mass) > 1.1 * ink  # thinner and thicker strokes both occur
    warped = _elastic(x)
    assert warped.shape == x.shape and not torch.equal(warped, x)
    assert abs(warped.mean().item() - x.mean().item()) < 0.02  # a warp moves ink, it does not add or remove it
    assert isinstance(ShortcutAugment()(torch.full((1, 8, 16), 200, dtype=torch.uint8)), torch.Tensor)
