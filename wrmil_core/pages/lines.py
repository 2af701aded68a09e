"""Text lines: clustering of the components' ink centroids in the deskewed frame.

1. Seed lines at the peaks of the area-weighted histogram of the centroids' deskewed heights,
   smoothed by a Gaussian (scipy), with peaks at least a minimum line gap apart. Centroids sit in
   the x-height band, so descenders that reach into the next line do not move them much.
2. Refine: fit each line's centre as a straight line over x (weighted least squares; a line may
   drift a little against the page's skew), give every component to the nearest fitted line, and
   repeat. Uneven spacing needs nothing special: each line has its own centre.
3. Merge lines whose centres lie closer than the minimum gap over their common x range, and
   number the lines top to bottom.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import find_peaks, peak_widths

from wrmil_core.pages.skew import deskew

REFINE_ROUNDS = 3


def _seed_centres(yr: np.ndarray, weight: np.ndarray, sigma: float, min_gap: float) -> np.ndarray:
    pad = int(3 * sigma) + 2
    base = yr.min() - pad
    hist = np.bincount(np.rint(yr - base).astype(np.int64), weights=weight,
                       minlength=int(np.ptp(yr)) + 2 * pad + 1)
    profile = gaussian_filter1d(hist, max(sigma, 0.5))
    peaks, _ = find_peaks(profile, distance=max(1, int(min_gap)), prominence=1e-3 * profile.max())
    if len(peaks) == 0:
        peaks = np.array([int(np.argmax(profile))])
    return peaks + base


def _fit(xr: np.ndarray, yr: np.ndarray, weight: np.ndarray, span_min: float) -> tuple[float, float]:
    """(intercept, slope) of the line's centre; flat when the line is short or has few components."""
    if len(xr) >= 3 and np.ptp(xr) > span_min:
        slope, intercept = np.polyfit(xr, yr, 1, w=np.sqrt(weight))
        if abs(slope) < 0.05:  # about 3 degrees beyond the page skew: anything steeper is not a line
            return float(intercept), float(slope)
    return float(np.average(yr, weights=weight)), 0.0


def nearest_line(xr: np.ndarray, yr: np.ndarray, fits: list[tuple[float, float]]) -> np.ndarray:
    """Index of the line whose centre is nearest to each point (deskewed coordinates)."""
    return np.argmin(np.abs(line_centres(fits, xr) - yr[:, None]), axis=1)


def _merge_close(xr: np.ndarray, line: np.ndarray, fits: list[tuple[float, float]], min_gap: float) -> np.ndarray:
    """Relabel so that lines closer than ``min_gap`` over their common x range become one."""
    ids = sorted(set(line.tolist()), key=lambda i: fits[i][0] + fits[i][1] * float(np.median(xr[line == i])))
    target = {ids[0]: ids[0]} if ids else {}
    for prev, cur in itertools.pairwise(ids):
        lo = max(xr[line == prev].min(), xr[line == cur].min())
        hi = min(xr[line == prev].max(), xr[line == cur].max())
        x = (lo + hi) / 2  # the middle of the common range, or of the gap between the two
        gap = (fits[cur][0] + fits[cur][1] * x) - (fits[prev][0] + fits[prev][1] * x)
        target[cur] = target[prev] if gap < min_gap else cur
    return np.array([target[i] for i in line.tolist()], dtype=np.int64)


def line_centres(fits: list[tuple[float, float]], xr: np.ndarray) -> np.ndarray:
    """Deskewed centre height of every line (columns) at each x in ``xr`` (rows)."""
    if not fits:
        return np.zeros((len(xr), 0))
    a = np.array([f[0] for f in fits])
    b = np.array([f[1] for f in fits])
    return a[None, :] + b[None, :] * np.asarray(xr, dtype=np.float64)[:, None]


def find_lines(xr: np.ndarray, yr: np.ndarray, weight: np.ndarray, text_height: float,
               sigma_frac: float, min_gap_frac: float) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Line number (0 = top) of every component, from deskewed centroids ``xr, yr`` and ink areas,
    and each line's centre as (intercept, slope) over deskewed x."""
    if len(yr) == 0:
        return np.zeros(0, dtype=np.int64), []
    min_gap = min_gap_frac * text_height
    centres = _seed_centres(yr, weight, sigma_frac * text_height, min_gap)
    fits = [(float(c), 0.0) for c in centres]
    line = nearest_line(xr, yr, fits)
    for _ in range(REFINE_ROUNDS):
        used = sorted(set(line.tolist()))
        fits = [_fit(xr[line == i], yr[line == i], weight[line == i], 2 * text_height) for i in used]
        line = nearest_line(xr, yr, fits)
    used = sorted(set(line.tolist()))
    remap = {old: new for new, old in enumerate(used)}
    line = np.array([remap[i] for i in line.tolist()], dtype=np.int64)
    fits = [fits[i] for i in used]
    line = _merge_close(xr, line, fits, min_gap)
    order = sorted(set(line.tolist()), key=lambda i: float(np.average(yr[line == i], weights=weight[line == i])))
    rank = {old: new for new, old in enumerate(order)}
    line = np.array([rank[i] for i in line.tolist()], dtype=np.int64)
    fits = [_fit(xr[line == i], yr[line == i], weight[line == i], 2 * text_height) for i in range(len(order))]
    return line, fits


def core_height(ys: np.ndarray, xs: np.ndarray, angle_deg: float, text_height: float, min_gap_frac: float) -> float:
    """Median full width at half maximum of the text lines' peaks in the deskewed row profile of
    the ink (scipy's ``peak_widths``): the height of the dense x-height band, the natural unit of
    letter and word spacing whatever the share of ascenders or the hand's connectedness."""
    if len(ys) == 0:
        return text_height
    _, yr = deskew(xs.astype(np.float64), ys.astype(np.float64), angle_deg)
    profile = gaussian_filter1d(np.bincount(np.rint(yr - yr.min()).astype(np.int64)).astype(np.float64), 1.0)
    peaks, _ = find_peaks(profile, distance=max(1, int(min_gap_frac * text_height)), prominence=0.05 * profile.max())
    if len(peaks) == 0:
        return text_height
    return float(np.median(peak_widths(profile, peaks, rel_height=0.5)[0]))
