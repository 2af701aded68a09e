"""Glyph outlines from the Hershey vector stroke fonts (PyPI ``Hershey-Fonts``), as numpy arrays.

Only single-stroke ("simplex") faces are used, because a pen draws one line per stroke; the
duplex/triplex faces would look like doubled strokes. Coordinates are Hershey font units: y
grows downwards, the baseline is at y=9, the cap line at y=-12 and descenders reach y=16..21.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from HersheyFonts import HersheyFonts

# Script (joined) and print hands; a writer draws most letters from one face and some from another.
SCRIPT_FONTS = ("scripts", "cursive")
PRINT_FONTS = ("futural", "rowmans")
FONTS = SCRIPT_FONTS + PRINT_FONTS
# Printable ASCII, the characters every face above covers.
CHARSET = "".join(chr(c) for c in range(33, 127))
BASELINE = 9.0
CAP_LINE = -12.0
DESCENDER = 16.0
# Maximum distance between consecutive points after densifying, in font units; fine enough that
# smooth shape warps and tremor bend a stroke instead of only moving its Hershey vertices.
STEP = 1.0


@dataclass(frozen=True, eq=False)
class Glyph:
    """One character of one face: all strokes concatenated, x relative to the left side bearing."""

    points: np.ndarray  # (n, 2) float64, densified stroke points
    stroke_starts: np.ndarray  # (s,) int64 index of each stroke's first point in ``points``
    advance: float  # horizontal advance (Hershey right - left side)
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 of the ink, for shape-warp coordinates


def char_index(char: str) -> int:
    """Index of ``char`` in :data:`CHARSET`; raises ``KeyError`` for characters the fonts lack."""
    i = ord(char) - 33
    if len(char) != 1 or not 0 <= i < len(CHARSET):
        raise KeyError(char)
    return i


def _densify(stroke: list[tuple[int, int]]) -> np.ndarray:
    """Resample a Hershey polyline every ~STEP units and round its corners a little, as a pen
    moving continuously would (the font's integer grid makes curves visibly polygonal)."""
    pts = np.asarray(stroke, dtype=np.float64)
    if len(pts) < 2:
        return pts
    out = [pts[:1]]
    for a, b in zip(pts[:-1], pts[1:]):
        n = max(1, int(np.ceil(np.hypot(*(b - a)) / STEP)))
        t = np.arange(1, n + 1, dtype=np.float64)[:, None] / n
        out.append(a + (b - a) * t)
    d = np.concatenate(out)
    for _ in range(2):  # [1, 2, 1] smoothing, end points fixed
        if len(d) > 2:
            d[1:-1] = (d[:-2] + 2 * d[1:-1] + d[2:]) / 4
    return d


@lru_cache(maxsize=None)
def font_glyphs(font: str) -> dict[str, Glyph]:
    """All glyphs of a Hershey face, densified, cached per process."""
    hf = HersheyFonts()
    hf.load_default_font(font)
    glyphs: dict[str, Glyph] = {}
    for ch, g in hf.all_glyphs.items():
        if ch not in CHARSET:
            continue
        strokes = [_densify([(x - g.left_offset, y) for x, y in s]) for s in g.strokes if len(s) > 0]
        strokes = [s for s in strokes if len(s)]
        if not strokes:
            continue
        starts = np.cumsum([0] + [len(s) for s in strokes[:-1]]).astype(np.int64)
        pts = np.concatenate(strokes)
        (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
        glyphs[ch] = Glyph(pts, starts, float(g.char_width), (float(x0), float(y0), float(x1), float(y1)))
    missing = [c for c in CHARSET if c not in glyphs]
    if missing:  # the faces above cover all of printable ASCII; guard against a changed package
        raise RuntimeError(f"Hershey font {font!r} lacks glyphs for {''.join(missing)!r}")
    return glyphs
