"""Page scans -> word crops in reading order: binarisation (``binarize``), skew (``skew``), connected
components and ruled lines (``components``), text lines (``lines``), words and marks (``words``), the
whole cut (``segment``), doubts (``doubts``), files (``io``) and the overlay picture (``overlay``).

Typical use::

    image = read_page("page.png")
    seg = segment_page(image)                  # seg.boxes: the page map, seg.doubtful: reasons to check
    write_segmentation(seg, image, "out", "page")
"""

from wrmil_core.pages.config import PRESETS, SegmentConfig, preset
from wrmil_core.pages.io import (
    FolderSummary,
    page_files,
    page_names,
    read_page,
    segment_pages,
    write_segmentation,
)
from wrmil_core.pages.overlay import draw_overlay
from wrmil_core.pages.segment import BOX_COLUMNS, PageSegmentation, check_text, segment_page

__all__ = [
    "BOX_COLUMNS",
    "PRESETS",
    "FolderSummary",
    "PageSegmentation",
    "SegmentConfig",
    "check_text",
    "draw_overlay",
    "page_files",
    "page_names",
    "preset",
    "read_page",
    "segment_page",
    "segment_pages",
    "write_segmentation",
]
