"""Render one handwritten word image from a writer style and a per-sample random generator.

Pipeline: per letter, take the Hershey glyph of the writer's allograph, apply the writer's
fixed letter distortion plus a fresh small per-sample distortion, and place it on a cursor
with the writer's spacing habits; then add tremor, a wavy sloping baseline, width, slant and
tilt for the whole word, scale to pixels and draw the strokes with Pillow at 2x (downsampled
with a box filter for anti-aliased edges). The crop is like an OCR word box: tight around the
ink horizontally, and vertically at least the writer's cap-to-descender band, plus margins.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from wrmil_core.errors import WrmilInputError
from wrmil_core.synth.glyphs import BASELINE, CAP_LINE, CHARSET, DESCENDER, font_glyphs
from wrmil_core.synth.style import WriterStyle

NOMINAL_HEIGHT = 56  # crop height the style's pixel parameters (stroke width) refer to
UNITS_PER_HEIGHT = 40.0  # font units spanned by the nominal crop height (cap-to-descender + margins)
SUPERSAMPLE = 2
# Unit-variance low-pass filter for tremor: a wobble over a few font units, not pixel jitter.
_SMOOTH = np.exp(-0.5 * (np.arange(-6, 7) / 2.5) ** 2)
_SMOOTH /= np.sqrt((_SMOOTH**2).sum())


def _check_text(text: str) -> None:
    if not text:
        raise WrmilInputError("render_word: empty word text; pass at least one printable ASCII character")
    bad = sorted({ch for ch in text if ch not in CHARSET})
    if bad:
        raise WrmilInputError(
            f"render_word: word {text!r} contains characters the Hershey stroke fonts cannot draw: {bad!r}; "
            "use printable ASCII without spaces (one word per image)"
        )


def _warp(p: np.ndarray, box: tuple[float, float, float, float], field: np.ndarray) -> np.ndarray:
    """Smooth displacement sum_k a_k sin(2 pi (f_k . uv) + phase_k), uv = point in the glyph box.

    Written with broadcasting rather than ``@``: these matrices are tiny, and BLAS worker
    threads in every process cost more (in system time) than the arithmetic.
    """
    x0, y0, x1, y1 = box
    u = ((p[:, 0] - x0) / max(x1 - x0, 4.0))[:, None]
    v = ((p[:, 1] - y0) / max(y1 - y0, 4.0))[:, None]
    sines = np.sin(2 * np.pi * (u * field[:, 2] + v * field[:, 3]) + field[:, 4])  # (n, K)
    return np.column_stack([(sines * field[:, 0]).sum(1), (sines * field[:, 1]).sum(1)])


def _layout(text: str, style: WriterStyle, rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    """Letter-level placement in font units; returns all points and the start index of every stroke."""
    v = style.variability
    spacing = style.spacing + rng.normal(0.0, 1.0 * v)
    pieces: list[np.ndarray] = []
    starts: list[int] = []
    n = 0
    cursor = 0.0
    for ch in text:
        ci = ord(ch) - 33
        font = style.alt_font if rng.random() < style.alt_prob[ci] else style.base_font
        g = font_glyphs(font)[ch]
        x0, y0, x1, y1 = g.box
        centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        a = style.letter_affine[ci] + rng.normal(0.0, 0.035 * v, size=(2, 2))
        dx, dy = g.points[:, 0] - centre[0], g.points[:, 1] - centre[1]
        q = np.column_stack([a[0, 0] * dx + a[0, 1] * dy, a[1, 0] * dx + a[1, 1] * dy]) + centre
        q += style.letter_offset[ci] + rng.normal(0.0, 0.35 * v, size=2)
        q += _warp(g.points, g.box, style.letter_field[ci])
        # Per-sample shape noise: a fresh, weaker warp of the same kind as the personal one.
        sample_field = np.column_stack(
            [
                rng.normal(0.0, 0.35 * v, size=(2, 2)),
                rng.uniform(0.4, 1.8, size=(2, 2)),
                rng.uniform(0.0, 2 * np.pi, size=2),
            ]
        )
        q += _warp(g.points, g.box, sample_field)
        q[:, 0] += cursor
        pieces.append(q)
        starts.extend(int(s) + n for s in g.stroke_starts)
        n += len(q)
        advance = g.advance * style.letter_affine[ci][0, 0]
        cursor += advance + spacing + style.letter_gap[ci] + rng.normal(0.0, 0.8 * v)
    return np.concatenate(pieces), starts


def render_word(
    text: str, style: WriterStyle, rng: np.random.Generator, *, height: int = NOMINAL_HEIGHT
) -> Image.Image:
    """Draw ``text`` in ``style`` as a grayscale ('L') word crop, dark ink on white.

    ``rng`` supplies all per-sample variation (two calls with generators in the same state give
    identical images). ``height`` is the nominal crop height in pixels; actual heights vary
    with the writer's size, the sample and the word's ascenders/descenders.
    """
    _check_text(text)
    v = style.variability
    pts, starts = _layout(text, style, rng)

    # Tremor: low-pass noise along the pen path (the path is sampled about every font unit).
    noise = rng.normal(0.0, 1.0, size=(len(pts) + len(_SMOOTH) - 1, 2))
    tremor = np.column_stack([np.convolve(noise[:, k], _SMOOTH, mode="valid") for k in range(2)])
    pts = pts + style.tremor * tremor

    # Word-level geometry: wavy, sloping baseline, width, slant about the baseline, tilt.
    x, y = pts[:, 0], pts[:, 1]
    phase = rng.uniform(0.0, 2 * np.pi)
    y = y + style.baseline_amp * np.sin(2 * np.pi * x / style.baseline_period + phase)
    y = y + rng.normal(0.0, 0.025 * v) * x
    x = x * style.aspect * np.exp(rng.normal(0.0, 0.1 * v))
    x = x + (style.slant + rng.normal(0.0, 0.1 * v)) * (BASELINE - y)
    tilt = np.deg2rad(style.word_tilt + rng.normal(0.0, 1.5 * v))
    c, s = np.cos(tilt), np.sin(tilt)
    yb = y - BASELINE
    x, y = c * x + s * yb, -s * x + c * yb + BASELINE

    ss = SUPERSAMPLE
    scale = height / UNITS_PER_HEIGHT * style.size * np.exp(rng.normal(0.0, 0.1 * v)) * ss
    pen = style.stroke_width + rng.normal(0.0, 0.3 * v)
    width_px = max(1.0, pen * height / NOMINAL_HEIGHT * style.size)
    ink = int(np.clip(style.ink + rng.normal(0.0, 18.0 * v), 0.0, 120.0))
    margins = rng.uniform([2.0, 2.0, 2.0, 2.0], [8.0, 8.0, 6.0, 6.0]) * ss  # left, right, top, bottom

    px = np.column_stack([x, y]) * scale
    pad = width_px * ss / 2 + 1
    left = px[:, 0].min() - pad - margins[0]
    right = px[:, 0].max() + pad + margins[1]
    top = min(px[:, 1].min() - pad, CAP_LINE * scale) - margins[2]
    bottom = max(px[:, 1].max() + pad, DESCENDER * scale) + margins[3]
    # Canvas size a multiple of the supersampling factor so reduce() keeps every pixel.
    w = int(np.ceil((right - left) / ss)) * ss
    h = int(np.ceil((bottom - top) / ss)) * ss
    px -= (left, top)

    img = Image.new("L", (w, h), 255)
    draw = ImageDraw.Draw(img)
    bounds = starts[1:] + [len(px)]
    stroke_w = width_px * ss * np.exp(rng.normal(0.0, 0.08, size=len(starts)))  # pressure per stroke
    # Wide polylines leave notches at sharp turns; Pillow's joint="curve" fills every vertex
    # (2-3x slower), so round only the vertices that turn by more than ~25 degrees.
    seg_dir = np.diff(px, axis=0)
    ang = np.arctan2(seg_dir[:, 1], seg_dir[:, 0])
    turn = np.abs((np.diff(ang) + np.pi) % (2 * np.pi) - np.pi)
    sharp = np.zeros(len(px), dtype=bool)
    sharp[1:-1] = turn > 0.45
    for a, b, sw in zip(starts, bounds, stroke_w):
        seg = px[a:b]
        r = sw / 2
        if len(seg) > 1:
            draw.line([(float(x), float(y)) for x, y in seg], fill=ink, width=max(1, int(round(sw))))
        # Round pen tips (Pillow's wide lines end square) and sharp corners.
        dots = np.concatenate([seg[np.flatnonzero(sharp[a:b])], seg[[0, -1]]])
        for ex, ey in dots.tolist():
            draw.ellipse((ex - r, ey - r, ex + r, ey + r), fill=ink)
    return img.reduce(ss)
