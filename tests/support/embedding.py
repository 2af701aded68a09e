"""Small word-image fixtures for the embedding tests (helpers only; no tests in this module).

Each writer draws random "words" of strokes with a personal slant, stroke width, ink darkness and
letter width, so writers differ systematically (learnable) while every image differs.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image, ImageDraw

from wrmil_assets.resources import WrmilSettings
from wrmil_core.embedding.config import EmbeddingConfig

# A fast configuration for tests: timm's tiny test network at a small input size.
TINY_CONFIG = EmbeddingConfig(
    backbone="test_resnet", img_h=32, img_w=96, emb_dim=16, hidden_dim=32, epochs=2, batch_size=16,
    lr=1e-3, max_lr=1e-2, s=16.0, m=0.3, patience=3, num_workers=0, cpu_threads=1, device="cpu", max_val_images=None,
    val_pairs=2000, val_queries=200,
)


def draw_word(rng: np.random.Generator, writer: int, height: int = 40) -> Image.Image:
    """One grayscale word crop in ``writer``'s style."""
    slant = (writer % 5 - 2) * 0.25
    width_px = 1 + writer % 3
    ink = 20 + 40 * (writer % 4)
    letter_w = 9 + 3 * (writer % 4)
    n_letters = int(rng.integers(2, 7))
    w = n_letters * letter_w + 16
    img = Image.new("L", (w, height), 250)
    d = ImageDraw.Draw(img)
    x = 8.0
    for _ in range(n_letters):
        pts = []
        for t in np.linspace(0, 1, 6):
            y = height / 2 + (height / 3) * math.sin(2 * math.pi * t * (1 + writer % 2) + rng.normal(0, 0.3))
            px = x + t * letter_w + slant * (height / 2 - y)
            pts.append((px, y))
        d.line(pts, fill=ink, width=width_px)
        x += letter_w
    return img


def make_words(root: Path, n_writers: int = 4, per_writer: int = 24, seed: int = 0, writer_offset: int = 0,
               word_id_offset: int = 0) -> pl.DataFrame:
    """Write PNGs under ``root`` and return a ``words`` table for them."""
    rng = np.random.default_rng(seed)
    rows = []
    for wi in range(n_writers):
        writer = wi + writer_offset
        d = root / str(writer)
        d.mkdir(parents=True, exist_ok=True)
        for k in range(per_writer):
            p = d / f"w{k}.png"
            draw_word(rng, writer).save(p)
            rows.append(dict(word_id=word_id_offset + len(rows), writer=writer, doc_id=f"{writer}_s{k // 12}",
                             position=k % 12, path=str(p), text="x", repetition=k // 12, session=k // 12))
    return pl.DataFrame(rows).with_columns(
        pl.col("word_id").cast(pl.Int64), pl.col("writer").cast(pl.Int64),
        pl.col("position").cast(pl.Int32), pl.col("repetition").cast(pl.Int32), pl.col("session").cast(pl.Int32),
    )


def make_split(root: Path, n_train: int = 4, n_val: int = 3, per_writer: int = 24) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Disjoint train and val writer tables."""
    train = make_words(root, n_train, per_writer, seed=1)
    val = make_words(root, n_val, per_writer, seed=2, writer_offset=100, word_id_offset=10_000)
    return train, val


def split_assets(tmp: Path) -> tuple[WrmilSettings, Path, pl.DataFrame]:
    """Settings over a tiny word set (4 train, 3 val writers) under ``tmp`` with ``raw_words`` and
    ``writer_split`` already in its IO dir, as the upstream assets would leave them: ``(settings,
    io_dir, val words)``, so a test can materialise ``arcface_model`` alone."""
    train, val = make_split(tmp / "words")
    settings = WrmilSettings(data_root=str(tmp / "words"), artifact_dir=str(tmp / "artifacts"), device="cpu")
    io = Path(settings.artifact_dir) / "assets"
    io.mkdir(parents=True)
    pl.concat([train, val]).write_parquet(io / "raw_words.parquet")
    pl.DataFrame({"writer": [*train["writer"].unique().sort(), *val["writer"].unique().sort()],
                  "split": ["train"] * 4 + ["val"] * 3}).write_parquet(io / "writer_split.parquet")
    return settings, io, val
