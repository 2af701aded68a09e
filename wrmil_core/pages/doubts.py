"""Reasons to doubt a page's segmentation, so that a person checks its overlay before using it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from wrmil_core.pages.config import SegmentConfig

if TYPE_CHECKING:
    from wrmil_core.pages.segment import PageSegmentation

TALL_FRAC = 2.5  # a word box taller than this x text height probably holds parts of two lines


def overlap_share(boxes: np.ndarray, frac: float) -> float:
    """Share of boxes (rows ``x0, y0, x1, y1``) that cover more than ``frac`` of a smaller-or-equal
    box, or are covered that much by one: the signature of words cut twice or lines merged."""
    n = len(boxes)
    if n < 2:
        return 0.0
    x0, y0, x1, y1 = (boxes[:, i][:, None] for i in range(4))
    iw = np.clip(np.minimum(x1, x1.T) - np.maximum(x0, x0.T), 0, None)
    ih = np.clip(np.minimum(y1, y1.T) - np.maximum(y0, y0.T), 0, None)
    area = ((x1 - x0) * (y1 - y0)).astype(np.float64)
    smaller = np.minimum(area, area.T)
    heavy = (iw * ih) > frac * np.maximum(smaller, 1.0)
    np.fill_diagonal(heavy, False)
    return float(heavy.any(axis=1).mean())


def doubts(seg: PageSegmentation, config: SegmentConfig, n_nontext: int = 0) -> list[str]:
    """Human-readable reasons to check ``seg`` by eye (empty list when nothing looks wrong)."""
    reasons = []
    n = seg.boxes.height
    if n < config.min_words:
        reasons.append(f"very few words ({n} < {config.min_words})")
    boxes = seg.boxes.select("x0", "y0", "x1", "y1").to_numpy()
    share = overlap_share(boxes, config.overlap_frac)
    if share > config.max_overlap_share:
        reasons.append(f"heavily overlapping boxes ({share:.0%} of words overlap another by > "
                       f"{config.overlap_frac:.0%})")
    if n:
        tall = int(((boxes[:, 3] - boxes[:, 1]) > TALL_FRAC * seg.text_height).sum())
        if tall > max(1, 0.05 * n):
            reasons.append(f"{tall} word boxes taller than {TALL_FRAC:g} text heights (lines touching?)")
    if abs(seg.skew_deg) >= config.max_skew_deg - config.skew_step_deg:
        reasons.append(f"skew {seg.skew_deg:+.1f} deg at the edge of the search range (+-{config.max_skew_deg:g}); "
                       "rotate the scan")
    if n_nontext:
        reasons.append(f"{n_nontext} large non-text component(s) (border, picture or a line through the text?)")
    return reasons
