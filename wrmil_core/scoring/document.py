"""A questioned document on disk -> its word images in reading order and its words table.

A questioned document is a folder of word images in reading order: natural file-name order
(``w2.png`` before ``w10.png``), or the order given by a CSV with columns ``image_path,order``
(paths relative to the folder). Every refusal is a ``WrmilInputError`` naming the folder, file or
CSV line and saying what to do.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import polars as pl

from wrmil_core.data.images import refuse_unreadable
from wrmil_core.errors import WrmilInputError

IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp"})


def natural_key(name: str) -> list[Any]:
    """Sort key that orders digit runs by value: ``w2`` < ``w10`` (case-insensitive text)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def list_document_images(path: str | Path, order_csv: str | Path | None = None) -> tuple[Path, list[Path]]:
    """The word images of a questioned document in reading order: ``(folder, [image paths])``.

    ``path`` is a folder (its image files in natural name order, hidden files and non-image files
    ignored) or a CSV file; ``order_csv`` (or a CSV ``path``) has columns ``image_path,order`` with
    paths relative to the folder (the CSV's own folder when ``path`` is the CSV). Refuses a
    missing folder, a CSV without those columns, a non-integer or repeated order, or a listed
    file that does not exist, naming the file and row.
    """
    path = Path(path).resolve()
    if order_csv is None and path.is_file() and path.suffix.lower() == ".csv":
        order_csv, path = path, path.parent
    folder = _check_folder(path)
    if order_csv is None:
        files = [p for p in folder.iterdir()
                 if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES]
        return folder, sorted(files, key=lambda p: natural_key(p.name))
    return folder, _read_order_csv(folder, Path(order_csv))


def _check_folder(path: Path) -> Path:
    """``path`` itself, refused unless it is an existing folder."""
    if not path.exists():
        raise WrmilInputError(f"questioned document {path} does not exist; give a folder of word images")
    if not path.is_dir():
        raise WrmilInputError(f"questioned document {path} is not a folder; give a folder of word images "
                              "(or a CSV with columns image_path,order)")
    return path


def _read_order_csv(folder: Path, csv_path: Path) -> list[Path]:
    """The images listed by an ``image_path,order`` CSV, sorted by ``order``."""
    if not csv_path.is_file():
        raise WrmilInputError(f"order CSV {csv_path} does not exist; give a file with columns image_path,order")
    with csv_path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        cols = [c.strip() for c in (reader.fieldnames or [])]
        if "image_path" not in cols or "order" not in cols:
            raise WrmilInputError(f"order CSV {csv_path} has columns {cols}; it needs image_path and order "
                                  "(image_path relative to the document folder, order an integer)")
        rows = [{(k or "").strip(): (v or "").strip() for k, v in r.items()} for r in reader]
    entries: list[tuple[int, Path]] = []
    seen: dict[int, int] = {}
    for line, r in enumerate(rows, start=2):  # line 1 is the header
        order = _order_of(csv_path, line, r["order"], seen)
        entries.append((order, _image_of(folder, csv_path, line, r["image_path"])))
    return [p for _, p in sorted(entries, key=lambda e: e[0])]


def _order_of(csv_path: Path, line: int, value: str, seen: dict[int, int]) -> int:
    """The integer ``order`` of one CSV line, refused when not an integer or already used."""
    try:
        order = int(value)
    except ValueError:
        raise WrmilInputError(f"order CSV {csv_path} line {line}: order {value!r} is not an integer") from None
    if order in seen:
        raise WrmilInputError(f"order CSV {csv_path} line {line}: order {order} repeats line {seen[order]}; "
                              "each word needs its own position")
    seen[order] = line
    return order


def _image_of(folder: Path, csv_path: Path, line: int, rel: str) -> Path:
    """The image one CSV line names, resolved against ``folder`` and refused when absent."""
    if not rel:
        raise WrmilInputError(f"order CSV {csv_path} line {line}: empty image_path")
    p = (folder / rel).resolve()
    if not p.is_file():
        raise WrmilInputError(f"order CSV {csv_path} line {line}: image {rel!r} not found "
                              f"(looked for {p}); paths are relative to {folder}")
    return p


def check_scorable(folder: Path, images: list[Path], window_size: int) -> None:
    """Refuse a document with fewer than two windows of words (scoring compares windows) or
    with images that cannot be read (listing the first few)."""
    n, ws = len(images), window_size
    if n < ws:
        raise WrmilInputError(f"questioned document {folder} has {n} word image(s), fewer than one window of "
                              f"{ws} words; scoring needs at least {2 * ws} words (two windows to compare). A folder "
                              "of page scans is a batch of documents: pass --batch")
    if n < 2 * ws:
        raise WrmilInputError(f"questioned document {folder} has {n} word images, only one window of {ws}; "
                              f"scoring compares windows, so it needs at least {2 * ws} words")
    refuse_unreadable(images, f"document {folder}")


def document_words(folder: Path, images: list[Path], doc_id: str | None = None) -> pl.DataFrame:
    """The words table (``wrmil_core/schema.py``) of a questioned document: writer -1, one doc id."""
    n = len(images)
    return pl.DataFrame({
        "word_id": pl.Series(range(n), dtype=pl.Int64),
        "writer": pl.Series([-1] * n, dtype=pl.Int64),
        "doc_id": pl.Series([doc_id or folder.name or "questioned"] * n, dtype=pl.Utf8),
        "position": pl.Series(range(n), dtype=pl.Int32),
        "path": pl.Series([str(p.resolve()) for p in images], dtype=pl.Utf8),
        "text": pl.Series([""] * n, dtype=pl.Utf8),
        "repetition": pl.Series([0] * n, dtype=pl.Int32),
        "session": pl.Series([-1] * n, dtype=pl.Int32),
    })


def relative_names(folder: Path, images: list[Path]) -> list[str]:
    """Image paths as shown in results: relative to the folder when inside it, else absolute."""
    return [str(p.relative_to(folder)) if p.is_relative_to(folder) else str(p) for p in images]
