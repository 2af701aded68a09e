"""Ink mask -> connected components (scipy's 8-connected labelling) with their boxes, areas, ink
centroids and extents in the deskewed frame.

Boxes are ``x0, y0, x1, y1`` in page pixels with exclusive ends (``image[y0:y1, x0:x1]``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from wrmil_core.pages.skew import deskew

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)
FIELDS = ("x0", "y0", "x1", "y1", "area", "cx", "cy", "label")


@dataclass(frozen=True)
class Components:
    """Per-component arrays, one row per connected component of the ink mask."""

    x0: np.ndarray
    y0: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    area: np.ndarray
    cx: np.ndarray  # ink centroid
    cy: np.ndarray
    label: np.ndarray  # id in the label image (0 for a piece cut out of a component)

    def __len__(self) -> int:
        return len(self.area)

    @property
    def height(self) -> np.ndarray:
        return self.y1 - self.y0

    @property
    def width(self) -> np.ndarray:
        return self.x1 - self.x0

    def take(self, keep: np.ndarray) -> Components:
        """The components selected by a boolean mask or index array."""
        return Components(*(getattr(self, f)[keep] for f in FIELDS))

    @staticmethod
    def concat(parts: list[Components]) -> Components:
        """All components of ``parts``, in order."""
        return Components(*(np.concatenate([getattr(p, f) for p in parts]) for f in FIELDS))

    @staticmethod
    def from_pixels(pieces: list[tuple[np.ndarray, np.ndarray]]) -> Components:
        """Components (label 0) from the pixel coordinates ``(ys, xs)`` of each piece."""
        cols = [[int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1, len(ys), float(xs.mean()),
                 float(ys.mean()), 0] for ys, xs in pieces]
        arr = np.array(cols, dtype=np.float64).reshape(len(cols), 8)
        ints = [arr[:, i].astype(np.int64) for i in range(5)]
        return Components(*ints, arr[:, 5], arr[:, 6], arr[:, 7].astype(np.int64))


def find_components(mask: np.ndarray) -> tuple[Components, np.ndarray]:
    """Connected components of ``mask`` (8-connected, so diagonal pen strokes hold together), and
    the label image (component i is ``labels == i + 1``)."""
    labels, n = ndi.label(mask, structure=EIGHT_CONNECTED)
    if n == 0:
        return Components.from_pixels([]), labels
    ys, xs = np.nonzero(labels)
    lab = labels[ys, xs]
    area = np.bincount(lab, minlength=n + 1)[1:]
    cy = np.bincount(lab, weights=ys, minlength=n + 1)[1:] / area
    cx = np.bincount(lab, weights=xs, minlength=n + 1)[1:] / area
    slices = ndi.find_objects(labels)
    y0 = np.array([s[0].start for s in slices])
    y1 = np.array([s[0].stop for s in slices])
    x0 = np.array([s[1].start for s in slices])
    x1 = np.array([s[1].stop for s in slices])
    return Components(x0, y0, x1, y1, area, cx, cy, np.arange(1, n + 1)), labels


def pixels(comps: Components, i: int, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Page coordinates ``(ys, xs)`` of component ``i``'s ink."""
    y0, x0 = int(comps.y0[i]), int(comps.x0[i])
    ys, xs = np.nonzero(labels[y0:int(comps.y1[i]), x0:int(comps.x1[i])] == comps.label[i])
    return ys + y0, xs + x0


def deskewed_extent(comps: Components, angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Left and right ends of each component's box in the deskewed frame (over the box's corners;
    at a few degrees of skew this is within a pixel or two of the ink's own extent)."""
    xs = np.stack([comps.x0, comps.x1, comps.x0, comps.x1], axis=1).astype(np.float64)
    ys = np.stack([comps.y0, comps.y0, comps.y1, comps.y1], axis=1).astype(np.float64)
    xr, _ = deskew(xs, ys, angle_deg)
    # The box corners overstate the extent by about height x sin(angle); take the middle of the two
    # possible corners on each side, which is the ink's extent for a glyph of uniform width.
    return (xr.min(axis=1) + np.sort(xr, axis=1)[:, 1]) / 2, (xr.max(axis=1) + np.sort(xr, axis=1)[:, 2]) / 2
