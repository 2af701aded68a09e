"""Ink mask -> connected components (scipy's 8-connected labelling) with their boxes, areas, ink
centroids and ink extents in the deskewed frame.

Boxes are ``x0, y0, x1, y1`` in page pixels with exclusive ends (``image[y0:y1, x0:x1]``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from wrmil_core.pages.skew import deskew

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)
FIELDS = ("x0", "y0", "x1", "y1", "area", "cx", "cy", "label", "sx0", "sx1")


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
    sx0: np.ndarray  # left and right end of the ink in the deskewed frame (pixel-exact, not the box's corners)
    sx1: np.ndarray

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
    def from_pixels(pieces: list[tuple[np.ndarray, np.ndarray]], angle: float = 0.0) -> Components:
        """Components (label 0) from the pixel coordinates ``(ys, xs)`` of each piece."""
        cols = []
        for ys, xs in pieces:
            ux, _ = deskew(xs.astype(np.float64), ys.astype(np.float64), angle)
            cols.append([int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1, len(ys), float(xs.mean()),
                         float(ys.mean()), 0, float(ux.min()), float(ux.max()) + 1])
        arr = np.array(cols, dtype=np.float64).reshape(len(cols), len(FIELDS))
        ints = [arr[:, i].astype(np.int64) for i in range(5)]
        return Components(*ints, arr[:, 5], arr[:, 6], arr[:, 7].astype(np.int64), arr[:, 8], arr[:, 9])


def find_components(mask: np.ndarray, angle: float = 0.0,
                    ink: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[Components, np.ndarray]:
    """Connected components of ``mask`` (8-connected, so diagonal pen strokes hold together), and
    the label image (component i is ``labels == i + 1``); ``angle`` sets the deskewed frame of the
    extents ``sx0, sx1``; ``ink``: the mask's pixels ``(ys, xs)`` when already known."""
    labels, n = ndi.label(mask, structure=EIGHT_CONNECTED)
    if n == 0:
        return Components.from_pixels([]), labels
    ys, xs = ink if ink is not None else np.nonzero(mask)
    lab = labels[ys, xs]
    area = np.bincount(lab, minlength=n + 1)[1:]
    cy = np.bincount(lab, weights=ys, minlength=n + 1)[1:] / area
    cx = np.bincount(lab, weights=xs, minlength=n + 1)[1:] / area
    slices = ndi.find_objects(labels)
    y0 = np.array([s[0].start for s in slices])
    y1 = np.array([s[0].stop for s in slices])
    x0 = np.array([s[1].start for s in slices])
    x1 = np.array([s[1].stop for s in slices])
    order = np.argsort(lab, kind="stable")
    ux, _ = deskew(xs[order].astype(np.float64), ys[order].astype(np.float64), angle)
    starts = np.concatenate([[0], np.cumsum(area)[:-1]])
    sx0, sx1 = np.minimum.reduceat(ux, starts), np.maximum.reduceat(ux, starts) + 1
    return Components(x0, y0, x1, y1, area, cx, cy, np.arange(1, n + 1), sx0, sx1), labels


def pixels(comps: Components, i: int, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Page coordinates ``(ys, xs)`` of component ``i``'s ink."""
    y0, x0 = int(comps.y0[i]), int(comps.x0[i])
    ys, xs = np.nonzero(labels[y0:int(comps.y1[i]), x0:int(comps.x1[i])] == comps.label[i])
    return ys + y0, xs + x0
