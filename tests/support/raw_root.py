"""Tiny raw data roots in the original layout, for tests of any stage.

``make_raw_root(tmp_path)`` writes ``<root>/<writer>/<word>_<rep>.png`` (small grayscale PNGs
drawn with Pillow, a different pattern per writer/word/repetition) and ``<root>/naver_ocr.csv``
with ``image_path,label,detected_word,repetition``. Rows are written writer by writer,
repetition by repetition, word by word (the reading order), unless ``shuffle_rows`` permutes
whole repetitions (word order inside a repetition is kept, as ingest reads it from row order).
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

from PIL import Image, ImageDraw

HEADER = ("image_path", "label", "detected_word", "repetition")


def make_png(path: Path, seed: int, size: tuple[int, int] = (24, 12)) -> None:
    """A small grayscale PNG with a few strokes determined by ``seed``."""
    rng = random.Random(seed)
    im = Image.new("L", size, 255)
    d = ImageDraw.Draw(im)
    w, h = size
    for _ in range(3):
        d.line([(rng.randrange(w), rng.randrange(h)), (rng.randrange(w), rng.randrange(h))],
               fill=rng.randrange(0, 120), width=1 + rng.randrange(2))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)


def write_csv(path: Path, rows: list[dict[str, object]] | list[tuple],
              header: tuple[str, ...] = HEADER) -> Path:
    """Write metadata rows (dicts keyed by ``header`` or tuples in its order)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        wr = csv.writer(f)
        wr.writerow(header)
        for r in rows:
            wr.writerow([r[c] for c in header] if isinstance(r, dict) else list(r))
    return path


def read_rows(path: Path) -> list[dict[str, str]]:
    """The CSV's data rows as dicts (to mutate and rewrite with :func:`write_csv`)."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def make_raw_root(
    tmp_path: Path,
    n_writers: int = 4,
    n_reps: int = 4,
    words: tuple[str, ...] = ("a", "bb", "ccc", "dd", "e", "ff"),
    reps_per_session: int = 2,
    *,
    name: str = "raw",
    metadata_csv: str = "naver_ocr.csv",
    shuffle_rows: bool = False,
    seed: int = 0,
) -> Path:
    """Create ``tmp_path/name`` in the raw layout and return it (the data root).

    ``n_writers * n_reps * len(words)`` images; every writer copies ``words`` in each of
    ``n_reps`` repetitions, so with the defaults each document (writer x session of
    ``reps_per_session`` repetitions) holds ``reps_per_session * len(words)`` words.
    ``reps_per_session`` is not stored anywhere: pass the same value to ``ingest``.
    """
    root = tmp_path / name
    root.mkdir(parents=True, exist_ok=False)
    reps: list[list[tuple]] = []
    for w in range(n_writers):
        for r in range(n_reps):
            block = []
            for k, word in enumerate(words):
                rel = f"{w}/{word}_{r}.png"
                make_png(root / rel, seed=hash((seed, w, r, k)) & 0xFFFFFFFF)
                block.append((rel, w, word, r))
            reps.append(block)
    if shuffle_rows:
        random.Random(seed).shuffle(reps)
    write_csv(root / metadata_csv, [row for block in reps for row in block])
    return root
