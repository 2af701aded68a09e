"""Content fingerprints of the raw metadata, and whether a file is still being written."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from pathlib import Path

PARTIAL_SUFFIXES: tuple[str, ...] = (".tmp", ".part", ".partial", ".crdownload")


def metadata_fingerprint(metadata_path: str | Path) -> str:
    """sha256 (hex) of the metadata CSV's bytes.

    Content only, so a copy of the same CSV (other mtime, other directory) has the same
    fingerprint; a data-change sensor compares this string between ticks. Image files are not
    hashed (351k files would be too slow); a changed image set is expected to change the CSV.
    """
    h = hashlib.sha256()
    with open(metadata_path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_partially_written(metadata_path: str | Path, *, interval: float = 0.25) -> bool:
    """Heuristic: True if the metadata CSV looks like it is still being written.

    True when a sibling ``<name>.tmp``/``.part``/``.partial``/``.crdownload`` exists, or when the
    file's size or mtime changes between two ``stat`` calls ``interval`` seconds apart. A missing
    file returns False (nothing is being written; the caller decides what absence means).
    Sensors should skip the tick when this returns True and look again on the next one.
    """
    p = Path(metadata_path)
    if any(p.with_name(p.name + s).exists() for s in PARTIAL_SUFFIXES):
        return True
    try:
        a = p.stat()
        time.sleep(interval)
        b = p.stat()
    except FileNotFoundError:
        return False
    return (a.st_size, a.st_mtime_ns) != (b.st_size, b.st_mtime_ns)


def _stats(files: Sequence[Path]) -> list[tuple[str, int, int]]:
    """``(path, size, mtime_ns)`` of each file; a file gone in between counts as size -1."""
    out = []
    for f in files:
        try:
            st = f.stat()
            out.append((str(f), st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((str(f), -1, 0))
    return out


def files_fingerprint(root: str | Path, files: Sequence[Path]) -> str:
    """sha256 (hex) of each file's path relative to ``root``, size and mtime, in the order given.

    For data that is too large to hash on every sensor tick (page scans): a page added, removed,
    renamed or rewritten changes it; a moved copy of the same root does not.
    """
    root = Path(root)
    h = hashlib.sha256()
    for path, size, mtime in _stats(files):
        h.update(f"{os.path.relpath(path, root)}\t{size}\t{mtime}\n".encode())
    return h.hexdigest()


def tree_partially_written(root: str | Path, files: Sequence[Path], *, interval: float = 0.25) -> bool:
    """Heuristic: True if a copy into ``root`` looks unfinished: a file under it ends in
    ``.tmp``/``.part``/``.partial``/``.crdownload``, or the size or mtime of one of ``files``
    changes between two looks ``interval`` seconds apart."""
    if any(p.name.endswith(PARTIAL_SUFFIXES) for p in Path(root).rglob("*")):
        return True
    before = _stats(files)
    time.sleep(interval)
    return _stats(files) != before
