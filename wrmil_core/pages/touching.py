"""Components that join two text lines (a descender touching an ascender below) cut apart.

A component whose deskewed height covers the centres of two or more lines, with a good share of
its ink in the core band of each, cannot be one word.
Between each pair of covered centres it is cut at the row where it has the least ink (in the
deskewed frame): where a descender meets the letter below, the ink narrows to one or two stroke
crossings. Each piece then joins its own line.
"""

from __future__ import annotations

import itertools

import numpy as np

from wrmil_core.pages.components import Components, pixels
from wrmil_core.pages.lines import line_centres
from wrmil_core.pages.skew import deskew

EDGE = 0.25  # the cut stays this many core heights away from either line's centre
CORE_SHARE = 0.15  # share of a component's ink in a line's core band for it to count as written there


def spanning(comps: Components, angle: float, fits: list[tuple[float, float]], core: float) -> list[np.ndarray]:
    """For every component, the centres (deskewed y, sorted) of the lines it covers well inside its height."""
    ys = np.stack([comps.y0, comps.y0, comps.y1, comps.y1], axis=1).astype(np.float64)
    xs = np.stack([comps.x0, comps.x1, comps.x0, comps.x1], axis=1).astype(np.float64)
    _, yr = deskew(xs, ys, angle)
    cxr, _ = deskew(comps.cx, comps.cy, angle)
    centres = line_centres(fits, cxr)
    top, bottom = yr.min(axis=1) + EDGE * core, yr.max(axis=1) - EDGE * core
    return [np.sort(c[(c > t) & (c < b)]) for c, t, b in zip(centres, top, bottom)]


def _cut_rows(yr: np.ndarray, centres: np.ndarray, core: float) -> list[float]:
    """The least-ink row between each pair of neighbouring centres (middle of the emptiest stretch)."""
    cuts = []
    base = np.floor(yr.min())
    counts = np.bincount(np.floor(yr - base).astype(np.int64))
    for upper, lower in itertools.pairwise(centres):
        lo, hi = int(upper + EDGE * core - base), int(lower - EDGE * core - base)
        if hi <= lo:
            cuts.append((upper + lower) / 2)
            continue
        band = counts[lo:hi] if hi <= len(counts) else np.pad(counts[lo:], (0, hi - len(counts)))
        rows = np.flatnonzero(band == band.min())
        cuts.append(base + lo + float(np.median(rows)) + 0.5)
    return cuts


def split_touching(comps: Components, labels: np.ndarray, angle: float, fits: list[tuple[float, float]],
                   core: float) -> tuple[Components, int]:
    """``comps`` with every component covering several line centres replaced by its pieces; also
    the number of components cut."""
    covered = spanning(comps, angle, fits, core)
    cut = [i for i, c in enumerate(covered) if len(c) >= 2]
    if not cut:
        return comps, 0
    pieces: list[tuple[np.ndarray, np.ndarray]] = []
    done = []
    for i in cut:
        ys, xs = pixels(comps, i, labels)
        _, yr = deskew(xs.astype(np.float64), ys.astype(np.float64), angle)
        # A line whose core band holds little of the ink is only crossed by a long descender or
        # ascender, not written in by this component: no cut for it.
        centres = [c for c in covered[i] if np.count_nonzero(np.abs(yr - c) < core / 2) >= CORE_SHARE * len(yr)]
        if len(centres) < 2:
            continue
        part = np.searchsorted(np.array(_cut_rows(yr, np.array(centres), core)), yr)
        pieces.extend((ys[part == k], xs[part == k]) for k in np.unique(part))
        done.append(i)
    keep = np.ones(len(comps), dtype=bool)
    keep[done] = False
    return Components.concat([comps.take(keep), Components.from_pixels(pieces, angle)]), len(done)
