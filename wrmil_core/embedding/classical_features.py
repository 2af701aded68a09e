"""Hand-crafted writer features of one word image (scikit-image), no training involved.

The word is normalised to a fixed height (aspect kept) and binarised with Otsu's threshold, so ink
tone, paper colour and scanner contrast -- the capture shortcuts -- never reach the features. From
the ink shape alone it computes the classic allograph-free writer descriptors (Bulacu & Schomaker,
PAMI 2007):

* contour-hinge: joint distribution of the directions of the two contour legs leaving each contour
  point (curvature and slant together), on contours resampled to unit arc length;
* edge direction: distribution of contour directions at a short and a long leg (slant, roundness);
* LBP: uniform local binary patterns of the ink mask, counted near the ink (local stroke shape);
* run lengths: horizontal and vertical ink runs (stroke width) and background runs between strokes
  (letter spacing, loop size), relative to the normalised height.

Each block is an L1-normalised histogram; :func:`word_features` returns their square roots
(Hellinger map, so Euclidean distance approximates the Bhattacharyya distance) concatenated, each
block weighted to unit norm so that no block dominates by its bin count.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from skimage.feature import local_binary_pattern
from skimage.filters import threshold_otsu
from skimage.measure import find_contours
from scipy.ndimage import binary_dilation
from skimage.morphology import disk

#: Block names in the order of the feature vector.
BLOCKS = ("hinge", "direction", "lbp", "runs")


def block_sizes(hinge_bins: int, direction_bins: int, lbp_points: int, run_bins: int) -> dict[str, int]:
    """Length of each block of the feature vector."""
    return {"hinge": hinge_bins * hinge_bins, "direction": 2 * direction_bins,
            "lbp": 2 * (lbp_points + 2), "runs": 3 * run_bins}


def ink_mask(img: Image.Image, height: int) -> np.ndarray:
    """Boolean ink mask of the word scaled to ``height`` rows (aspect kept); ink = darker than Otsu's
    threshold, or lighter when the border (the paper) is the dark side."""
    g = img.convert("L")
    w = max(1, round(g.width * height / max(1, g.height)))
    a = np.asarray(g.resize((w, height), Image.Resampling.BILINEAR), dtype=np.float32)
    if a.max() - a.min() < 1:  # blank image: no ink
        return np.zeros(a.shape, bool)
    t = threshold_otsu(a)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    return a > t if np.median(border) <= t else a <= t


def _resample(contour: np.ndarray, step: float = 1.0) -> np.ndarray:
    """Points every ``step`` pixels of arc length along a polyline."""
    seg = np.sqrt((np.diff(contour, axis=0) ** 2).sum(1))
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] < step:
        return contour[:1]
    t = np.arange(0.0, s[-1], step)
    return np.stack([np.interp(t, s, contour[:, 0]), np.interp(t, s, contour[:, 1])], axis=1)


def _angles(v: np.ndarray) -> np.ndarray:
    """Direction of (row, col) vectors in [0, 2 pi), counter-clockwise from the x axis, y up."""
    return np.mod(np.arctan2(-v[:, 0], v[:, 1]), 2 * np.pi)


def contour_histograms(ink: np.ndarray, hinge_bins: int, hinge_leg: int, direction_bins: int) -> np.ndarray:
    """Contour-hinge (hinge_bins^2) and edge-direction histograms at legs ``hinge_leg`` and
    ``2 * hinge_leg`` (2 x direction_bins), each L1-normalised."""
    hinge = np.zeros((hinge_bins, hinge_bins))
    dirs = np.zeros((2, direction_bins))
    padded = np.pad(ink.astype(np.float32), 1)  # closes contours that touch the border
    for c in find_contours(padded, 0.5):
        p = _resample(c)
        n = len(p)
        if n <= 2 * hinge_leg:
            continue
        idx = np.arange(n)
        fwd = _angles(p[(idx + hinge_leg) % n] - p)
        bwd = _angles(p[(idx - hinge_leg) % n] - p)
        hb = (np.array([fwd, bwd]) * hinge_bins / (2 * np.pi)).astype(int) % hinge_bins
        np.add.at(hinge, (hb[0], hb[1]), 1.0)
        for k, leg in enumerate((hinge_leg, 2 * hinge_leg)):
            if n > leg:
                d = _angles(p[(idx + leg) % n] - p)
                np.add.at(dirs[k], (d * direction_bins / (2 * np.pi)).astype(int) % direction_bins, 1.0)
    return np.concatenate([_l1(hinge.ravel()), _l1(dirs[0]), _l1(dirs[1])])


def lbp_histograms(ink: np.ndarray, points: int) -> np.ndarray:
    """Uniform LBP of the ink mask at radius 1 and 2 (``points`` neighbours, ``points + 2`` codes
    each), counted on pixels within the radius of the ink."""
    img = ink.astype(np.uint8) * 255
    out = []
    for r in (1, 2):
        codes = local_binary_pattern(img, points, r, method="uniform").astype(int)
        near = binary_dilation(ink, structure=disk(r))
        out.append(_l1(np.bincount(codes[near], minlength=points + 2)[: points + 2].astype(float)))
    return np.concatenate(out)


def _runs(mask: np.ndarray) -> np.ndarray:
    """Lengths of the runs of True along the rows of ``mask``."""
    m = np.pad(mask.astype(np.int8), ((0, 0), (1, 1)))
    d = np.diff(m, axis=1)
    starts, ends = np.nonzero(d == 1), np.nonzero(d == -1)
    return ends[1] - starts[1]


def run_histograms(ink: np.ndarray, run_bins: int) -> np.ndarray:
    """Histograms (``run_bins`` each) of horizontal and vertical ink runs and horizontal background
    runs enclosed by ink, lengths in pixels of the normalised word, the last bin open-ended."""
    rows = ink[ink.any(1)]
    cols = ink[:, ink.any(0)]
    gaps = np.zeros(0, int)
    if rows.size:  # background runs between the first and last ink pixel of each row
        left = np.argmax(rows, 1)
        right = rows.shape[1] - np.argmax(rows[:, ::-1], 1)
        col = np.arange(rows.shape[1])[None, :]
        inside = (col >= left[:, None]) & (col < right[:, None])
        gaps = _runs(inside & ~rows)
    out = []
    for runs in (_runs(rows), _runs(cols.T), gaps):
        out.append(_l1(np.bincount(np.minimum(runs, run_bins) - 1, minlength=run_bins)[:run_bins].astype(float)
                       if runs.size else np.zeros(run_bins)))
    return np.concatenate(out)


def word_features(img: Image.Image, height: int = 64, hinge_bins: int = 12, hinge_leg: int = 4,
                  direction_bins: int = 16, lbp_points: int = 8, run_bins: int = 16) -> np.ndarray:
    """Hellinger-mapped, block-weighted writer feature vector (float32) of one word image."""
    ink = ink_mask(img, height)
    contour = contour_histograms(ink, hinge_bins, hinge_leg, direction_bins)
    blocks = [contour[: hinge_bins**2], contour[hinge_bins**2 :], lbp_histograms(ink, lbp_points),
              run_histograms(ink, run_bins)]
    # sqrt of an L1-normalised histogram has unit L2 norm; divide by the number of histograms in
    # the block so every block weighs the same.
    parts = [np.sqrt(b) / np.sqrt(max(1.0, round(float(b.sum())))) for b in blocks]
    return np.concatenate(parts).astype(np.float32)


def _l1(h: np.ndarray) -> np.ndarray:
    s = h.sum()
    return h / s if s > 0 else h
