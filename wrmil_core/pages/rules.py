"""Ruled lines: found in the grey page, removed from the ink mask before components are cut.

A ruled line is faint (it often binarises as a dashed line) but it runs across the whole text
width, while text covers only part of any row. So the test is made on the grey page itself: in
evenly spaced columns (deskewed, so a rule stays in one row), a row is a rule row when it is
darker than the paper around it in at least ``coverage`` of the columns (a text row, even of
dense cursive, stays near half). The paper's level is the median grey of each column in blocks of
rows (illumination varies across the page), and "darker" means by more than the noise
(``NOISE_SIGMAS`` robust standard deviations, at least ``MIN_CONTRAST``).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage as ndi

from wrmil_core.pages.skew import deskew

PAPER_BLOCK = 64  # rows over which the paper's grey is taken as constant
N_COLUMNS = 96  # sampled columns: enough for a stable share, a few hundred thousand pixels on A4
NOISE_SIGMAS = 4.0
MIN_CONTRAST = 10.0  # grey levels
INK_RULE_CONTRAST = 2 * MIN_CONTRAST  # grey levels between a rule and the ink, to restore ink on it
CROSS_REACH = 5  # rows above and below a cleared rule pixel searched for a crossing stroke


def _local_paper(grid: np.ndarray) -> np.ndarray:
    """The paper's grey at every cell of ``grid`` (rows x sampled columns): the median of its block
    of ``PAPER_BLOCK`` rows in that column (text is a minority of any column; light varies slowly)."""
    n = grid.shape[0]
    pad = (-n) % PAPER_BLOCK
    blocks = np.pad(grid, ((0, pad), (0, 0)), constant_values=np.nan).reshape(-1, PAPER_BLOCK, grid.shape[1])
    with warnings.catch_warnings():  # blocks outside the rotated page are all NaN: the column's median then
        warnings.simplefilter("ignore", RuntimeWarning)
        paper = np.nanmedian(blocks, axis=1)
    paper = np.where(np.isnan(paper), np.nanmedian(grid, axis=0)[None, :], paper)
    return np.repeat(paper, PAPER_BLOCK, axis=0)[:n]


def rule_rows(gray: np.ndarray, angle_deg: float, x_range: tuple[float, float], coverage: float) -> np.ndarray:
    """Deskewed row coordinates (``rint(y')``, see :func:`wrmil_core.pages.skew.deskew`) of ruled lines."""
    h, _ = gray.shape
    cols = np.linspace(x_range[0], x_range[1], N_COLUMNS).astype(np.int64)
    ys = np.arange(h, dtype=np.float64)
    _, yr = deskew(np.broadcast_to(cols[None, :], (h, len(cols))).astype(np.float64), ys[:, None], angle_deg)
    rows = np.rint(yr).astype(np.int64)
    base = int(rows.min())
    grid = np.full((int(rows.max()) - base + 1, len(cols)), np.nan, dtype=np.float32)
    grid[rows - base, np.arange(len(cols))[None, :]] = gray[:, cols]
    dark = np.nan_to_num(_local_paper(grid) - grid, nan=0.0)
    # A thin rule straddles neighbouring rows along its length: take each column's darkest of three rows.
    dark = ndi.maximum_filter1d(dark, 3, axis=0)
    spread = 1.4826 * float(np.median(np.abs(dark - np.median(dark))))
    contrast = max(MIN_CONTRAST, NOISE_SIGMAS * spread)
    return np.flatnonzero((dark > contrast).mean(axis=1) >= coverage) + base


def remove_rules(mask: np.ndarray, gray: np.ndarray, ys: np.ndarray, xs: np.ndarray,
                 angle_deg: float, coverage: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Clear, in place, the mask's ink on ruled lines (``ys, xs``: the ink pixels); return the ink
    pixels left and the number of rules. Letters crossing a rule lose only the rule's few rows."""
    if len(ys) == 0:
        return ys, xs, 0
    lo, hi = np.percentile(xs, [1, 99])
    found = rule_rows(gray, angle_deg, (float(lo), float(hi)), coverage)
    if len(found) == 0:
        return ys, xs, 0
    _, yr = deskew(xs.astype(np.float64), ys.astype(np.float64), angle_deg)
    rows = np.rint(yr).astype(np.int64)
    base = min(int(rows.min()), int(found.min())) - 2
    flag = np.zeros(max(int(rows.max()), int(found.max())) - base + 3, dtype=bool)
    flag[found - base] = True
    n_rules = int(np.count_nonzero(np.diff(np.concatenate([[0], flag.astype(np.int8)])) == 1))
    # Only the rows found (with the three-row band of the test, they already cover a thin rule's
    # edges): clearing more would cut the letters sitting on the rule (measured: worse words).
    hit = flag[rows - base]
    mask[ys[hit], xs[hit]] = False
    keep = _crossing(mask, ys[hit], xs[hit]) | _ink_on_rule(gray, ys, xs, hit)
    mask[ys[hit][keep], xs[hit][keep]] = True
    hit[np.flatnonzero(hit)[keep]] = False
    return ys[~hit], xs[~hit], n_rules


def _crossing(mask: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Which cleared rule pixels lie on a stroke crossing the rule: ink within ``CROSS_REACH`` rows
    both above and below in the same column (a descender through the rule keeps its pixels, a
    letter sitting on the rule lets it go)."""
    h = mask.shape[0]
    above = np.zeros(len(ys), dtype=bool)
    below = np.zeros(len(ys), dtype=bool)
    for k in range(1, CROSS_REACH + 1):
        above |= mask[np.clip(ys - k, 0, h - 1), xs] & (ys - k >= 0)
        below |= mask[np.clip(ys + k, 0, h - 1), xs] & (ys + k < h)
    return above & below


def _ink_on_rule(gray: np.ndarray, ys: np.ndarray, xs: np.ndarray, hit: np.ndarray) -> np.ndarray:
    """Which cleared rule pixels (``hit`` of the ink pixels ``ys, xs``) are pen strokes written along
    the rule (a joining stroke on the baseline): darker than the rule's own grey, nearer the ink's.
    Only when the rule is clearly fainter than the ink (printed rules are light grey or blue); for a
    rule as dark as the pen, none (the two cannot be told apart by grey level)."""
    rule_px, ink_px = gray[ys[hit], xs[hit]].astype(np.float64), gray[ys[~hit], xs[~hit]].astype(np.float64)
    if len(rule_px) == 0 or len(ink_px) == 0:
        return np.zeros(len(rule_px), dtype=bool)
    rule_grey, ink_grey = float(np.median(rule_px)), float(np.median(ink_px))
    if rule_grey - ink_grey < INK_RULE_CONTRAST:
        return np.zeros(len(rule_px), dtype=bool)
    return rule_px < (rule_grey + ink_grey) / 2
