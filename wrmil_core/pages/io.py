"""Reading page scans, writing a page's crops, page map and overlay, and segmenting a folder.

Output layout under ``out_dir`` for a page named ``P``::

    P/0000.png, P/0001.png, ...   one crop per word, numbered in reading order
    P.parquet                     the page map: word_index, line, position, x0, y0, x1, y1, page, crop
    P.overlay.png                 the page with numbered word boxes, one colour per line
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image, UnidentifiedImageError

from wrmil_core.errors import WrmilInputError
from wrmil_core.imaging import grey_array, open_image, reduce_to, save_png
from wrmil_core.pages.config import DEFAULT, SegmentConfig
from wrmil_core.pages.overlay import draw_overlay
from wrmil_core.pages.segment import PageSegmentation, segment_page
from wrmil_core.runtime import Log, progress, speaker

PAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
CROP_NAME = re.compile(r"^\d{4,}\.png$")
# The segmenter's working resolution: an A4 page at 600 dpi (4961 x 7016 px, ~35 Mpx). Its thresholds
# scale with the text height, so a larger scan (up to wrmil_core.imaging.MAX_IMAGE_PIXELS) is shrunk
# by an integer factor to at most this while it is read: more pixels add memory and time, not words.
MAX_PAGE_PIXELS = 4961 * 7016


def read_page(path: str | Path, max_pixels: int = MAX_PAGE_PIXELS) -> np.ndarray:
    """A page scan as a uint8 grey array (dark ink on light paper); EXIF rotation applied, transparency
    flattened onto white, a scan over ``max_pixels`` shrunk by an integer factor to fit (word boxes and
    crops are then in the shrunk page's pixels). Unreadable files and images over the size limit of
    :mod:`wrmil_core.imaging` raise one :class:`WrmilInputError` line naming the file."""
    path = Path(path)
    try:
        with open_image(path) as im:
            return grey_array(reduce_to(im, max_pixels))
    except WrmilInputError:  # over the size limit: already one line naming the file and the fix
        raise
    except FileNotFoundError:
        raise WrmilInputError(f"{path}: no such file; give a page image ({', '.join(PAGE_SUFFIXES)})") from None
    except IsADirectoryError:
        raise WrmilInputError(f"{path}: is a folder, not a page image") from None
    except UnidentifiedImageError:
        raise WrmilInputError(f"{path}: not an image (unknown format); give a page scan as PNG, JPEG or TIFF") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise WrmilInputError(f"{path}: cannot read the image ({type(e).__name__}: {e}); "
                              "re-export or replace the file") from None


def _clear_old_crops(crop_dir: Path) -> None:
    """Remove the crops of an earlier cut, so that a re-run with fewer words leaves no stale ones."""
    for p in crop_dir.iterdir():
        if CROP_NAME.match(p.name):
            p.unlink()


def write_segmentation(seg: PageSegmentation, image: np.ndarray, out_dir: str | Path,
                       page_name: str) -> dict[str, Path]:
    """Write the crops, the page map (Parquet) and the overlay of one page; return their paths
    (keys ``crops`` (folder), ``page_map``, ``overlay``)."""
    out_dir = Path(out_dir)
    crop_dir = out_dir / page_name
    crop_dir.mkdir(parents=True, exist_ok=True)
    _clear_old_crops(crop_dir)
    names = [f"{i:04d}.png" for i in seg.boxes["word_index"].to_list()]
    for name, crop in zip(names, seg.crops(image)):
        save_png(Image.fromarray(crop), crop_dir / name)
    page_map = seg.boxes.with_columns(pl.lit(page_name).alias("page"),
                                      pl.Series("crop", [f"{page_name}/{n}" for n in names], dtype=pl.String))
    map_path = out_dir / f"{page_name}.parquet"
    tmp = map_path.with_suffix(".parquet.tmp")
    meta = {"skew_deg": f"{seg.skew_deg:.3f}", "text_height": f"{seg.text_height:.1f}",
            "doubtful": json.dumps(seg.doubtful)}
    page_map.write_parquet(tmp, metadata=meta)
    os.replace(tmp, map_path)
    overlay = out_dir / f"{page_name}.overlay.png"
    save_png(draw_overlay(image, seg.boxes), overlay)
    return {"crops": crop_dir, "page_map": map_path, "overlay": overlay}


@dataclass
class FolderSummary:
    """What :func:`segment_pages` did: per page the word count and doubts, and the pages it could not read."""

    out_dir: Path
    words: dict[str, int] = field(default_factory=dict)
    flagged: dict[str, list[str]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    paths: dict[str, dict[str, Path]] = field(default_factory=dict)

    @property
    def n_pages(self) -> int:
        return len(self.words)

    @property
    def n_flagged(self) -> int:
        return len(self.flagged)


def page_files(path: str | Path) -> list[Path]:
    """The page images to segment: ``path`` itself, or the images directly inside a folder (sorted)."""
    path = Path(path)
    if path.is_dir():
        pages = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in PAGE_SUFFIXES)
        if not pages:
            raise WrmilInputError(f"{path}: no page images in this folder ({', '.join(PAGE_SUFFIXES)})")
        return pages
    if not path.exists():
        raise WrmilInputError(f"{path}: no such file or folder")
    return [path]


def page_names(paths: list[Path]) -> list[str]:
    """Output names: the file stem, or the whole file name when two pages share a stem."""
    stems = [p.stem for p in paths]
    return [p.stem if stems.count(p.stem) == 1 else p.name.replace(".", "_") for p in paths]


def segment_pages(paths: list[str | Path] | str | Path, out_dir: str | Path,
                  config: SegmentConfig | None = None, log: Log = None) -> FolderSummary:
    """Segment every page (a list, one file or a folder) and write its outputs under ``out_dir``.

    A page that cannot be read or is not a page is recorded in ``failed`` and the others go on.
    """
    say = speaker(log)
    files = page_files(paths) if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    summary = FolderSummary(out_dir=Path(out_dir))
    for path, name in progress(list(zip(files, page_names(files))), desc="segmenting pages", unit="page"):
        try:
            image = read_page(path)
            seg = segment_page(image, config or DEFAULT, name=str(path))
        except WrmilInputError as e:
            summary.failed[name] = str(e)
            say(f"segment: {e}")
            continue
        summary.paths[name] = write_segmentation(seg, image, out_dir, name)
        summary.words[name] = seg.boxes.height
        if seg.doubtful:
            summary.flagged[name] = seg.doubtful
    say(f"segment: {summary.n_pages} page(s), {sum(summary.words.values())} words, {summary.n_flagged} flagged, "
        f"{len(summary.failed)} failed -> {summary.out_dir}")
    return summary
