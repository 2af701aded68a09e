"""Page skew from the projection profile, and the deskewed frame the line finder works in.

The skew is the angle whose row profile of the ink is the most peaked (largest sum of squared
bin counts): text lines, and ruled lines, pile their ink into few rows only when the rows run
along them. Instead of rotating the image for every candidate angle, the ink pixels' coordinates
are sheared, which is exact for the row index and costs one ``bincount`` per angle. A coarse
search over the whole range is refined around its best angle.

Convention: a text line runs along ``y = c + tan(angle) * x`` (image coordinates, y down), and
the deskewed coordinates are the rotation by ``-angle`` about the origin, in which that line is
horizontal.
"""

from __future__ import annotations

import numpy as np

MAX_POINTS = 60_000  # ink pixels sampled for the search: plenty for a stable profile, fast on A4


def deskew(x: np.ndarray, y: np.ndarray, angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates ``(x', y')`` in the deskewed frame (rotation by ``-angle`` about the origin)."""
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a), np.sin(a)
    return x * c + y * s, y * c - x * s


def _peakedness(x: np.ndarray, y: np.ndarray, angles: np.ndarray, bin_px: float) -> np.ndarray:
    scores = np.empty(len(angles))
    for i, a in enumerate(angles):
        rows = y - x * np.tan(np.deg2rad(a))
        counts = np.bincount(((rows - rows.min()) / bin_px).astype(np.int64))
        scores[i] = float(np.dot(counts, counts))
    return scores


def estimate_skew(ys: np.ndarray, xs: np.ndarray, max_deg: float, step_deg: float, bin_px: float,
                  seed: int = 0) -> float:
    """Skew angle in degrees (see the module docstring) from ink pixel coordinates ``ys, xs``."""
    if len(ys) < 10:
        return 0.0
    if len(ys) > MAX_POINTS:
        pick = np.random.default_rng(seed).choice(len(ys), MAX_POINTS, replace=False)
        ys, xs = ys[pick], xs[pick]
    y, x = ys.astype(np.float64), xs.astype(np.float64)
    coarse_step = max(step_deg, 0.25)
    coarse = np.arange(-max_deg, max_deg + 1e-9, coarse_step)
    best = float(coarse[int(np.argmax(_peakedness(x, y, coarse, bin_px)))])
    fine = np.arange(best - coarse_step, best + coarse_step + 1e-9, step_deg)
    fine = fine[np.abs(fine) <= max_deg + 1e-9]
    return float(fine[int(np.argmax(_peakedness(x, y, fine, bin_px)))])
