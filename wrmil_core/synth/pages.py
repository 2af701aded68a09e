"""Synthetic handwritten pages with known word boxes: the generator's words set on lines.

A page is written by one synthetic writer (:mod:`wrmil_core.synth.style`), word by word with
:func:`~wrmil_core.synth.render.render_word`, on blank or ruled paper: lines of uneven spacing,
words of uneven gaps and a little vertical jitter, a left margin that wanders. The finished
sheet is rotated by a random skew (a scan placed a little askew) and gets scanner artefacts:
uneven illumination, blur, grain and dust specks. The truth is each word's ink box after the
rotation, in reading order, so a segmenter is scored on what a person would box.

A *mixed-writer* page has a passage (consecutive words) written by a second writer; its truth
says which words are foreign (for scoring demos).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from scipy import ndimage as ndi
from skimage.transform import EuclideanTransform, warp

from wrmil_core import presets
from wrmil_core.errors import WrmilInputError
from wrmil_core.synth.render import render_word
from wrmil_core.synth.style import WriterStyle, sample_writer_style, session_style

SALT_PAGE = 0x9A6E
# A word gap is at least this x the widest gap inside either neighbour: readers (and the CSAFE
# writers' pages) separate words by gaps clearly wider than the letter gaps around them.
GAP_OVER_INNER = 2.0
INK_LEVEL = 160  # a word-image pixel darker than this is ink for the truth box
# Public-domain texts: CSAFE's London letter prompt and the opening of L. Frank Baum's
# "The Wonderful Wizard of Oz" (1900), the WOZ prompt's source.
PAGE_TEXT = (
    "Our London business is good, but Vienna and Berlin are quiet. Mr. D. Lloyd has gone to Switzerland "
    "and I hope for good news. He will be there for a week at 1496 Zermott St. and then goes to Turin and "
    "Rome and will join Col. Parry and arrive at Athens, Greece, Nov. 27th or Dec. 2nd. Letters there "
    "should be addressed: King James Blvd. 3580. We expect Charles E. Fuller Tuesday. Dr. L. McQuaid and "
    "Robert Unger, Esq., left on the 'Y.X.' Express tonight. "
    "Dorothy lived in the midst of the great Kansas prairies, with Uncle Henry, who was a farmer, and Aunt "
    "Em, who was the farmer's wife. Their house was small, for the lumber to build it had to be carried by "
    "wagon many miles. There were four walls, a floor and a roof, which made one room; and this room "
    "contained a rusty looking cookstove, a cupboard for the dishes, a table, three or four chairs, and "
    "the beds. Uncle Henry and Aunt Em had a big bed in one corner, and Dorothy a little bed in another "
    "corner. There was no garret at all, and no cellar except a small hole dug in the ground, called a "
    "cyclone cellar, where the family could go in case one of those great whirlwinds arose, mighty enough "
    "to crush any building in its path."
)
TRUTH_COLUMNS = ("word_index", "line", "position", "x0", "y0", "x1", "y1", "text", "writer", "foreign")


@dataclass(frozen=True)
class PageConfig:
    """Geometry and scan quality of a synthetic page (pixels; the A4 preset is 300 dpi).

    word_height: nominal word-crop height passed to ``render_word`` (ink x-height is about a fifth).
    line_pitch, pitch_jitter: mean distance between lines (x word_height) and its relative spread.
    word_gap: mean gap between the ink of neighbouring words (x word_height), spread a fifth of it, at least 0.6 of it.
    max_skew_deg: the page is rotated by a uniform angle in +-max_skew_deg.
    noise: scale of the scanner artefacts (0 = clean white paper).
    ruled: draw grey rules under the lines.
    """

    width: int = 2480
    height: int = 3508
    word_height: int = 110
    margin: int = 220
    line_pitch: float = 1.15
    pitch_jitter: float = 0.12
    word_gap: float = 0.35
    max_skew_deg: float = 3.0
    noise: float = 1.0
    ruled: bool = False

    def __post_init__(self) -> None:
        if self.word_height < 16 or self.width < 4 * self.word_height or self.height < 4 * self.word_height:
            raise WrmilInputError(f"PageConfig: a {self.width}x{self.height} page cannot hold words of height "
                                  f"{self.word_height}; use word_height >= 16 and a page at least 4 words high "
                                  "and wide")
        if not 0 <= self.margin < min(self.width, self.height) / 3:
            raise WrmilInputError(f"PageConfig.margin={self.margin!r}: must be >= 0 and under a third of the page")
        if self.line_pitch <= 0.5 or self.word_gap <= 0 or self.pitch_jitter < 0 or self.noise < 0:
            raise WrmilInputError("PageConfig: need line_pitch > 0.5, word_gap > 0, pitch_jitter >= 0, noise >= 0")
        if not 0 <= self.max_skew_deg <= 10:
            raise WrmilInputError(f"PageConfig.max_skew_deg={self.max_skew_deg!r}: use 0..10 degrees")


A4 = PageConfig()
# A small page for tests: ~60 words, well under a second to make and to segment.
SMALL = PageConfig(width=900, height=1000, word_height=44, margin=60)
PAGE_PRESETS: dict[str, PageConfig] = {"a4": A4, "small": SMALL}


def page_preset(name: str, **overrides: Any) -> PageConfig:
    """A named page preset with field overrides, e.g. ``page_preset("small", ruled=True)``."""
    return presets.preset(PAGE_PRESETS, name, **overrides)


@dataclass
class SynthPage:
    """A synthetic page: the grey image (uint8) and the true word boxes in reading order.

    truth columns: word_index, line, position, x0, y0, x1, y1 (ink box, ends exclusive), text,
    writer, foreign (written by the second writer).
    """

    image: np.ndarray
    truth: pl.DataFrame
    skew_deg: float


@dataclass
class _Placed:
    text: str
    writer: int
    line: int
    ys: np.ndarray  # ink pixel coordinates on the unrotated sheet
    xs: np.ndarray


def writer_hand(writer: int, seed: int = 0, session: int = 0) -> WriterStyle:
    """The style ``writer`` of synthetic data set ``seed`` writes with in ``session``."""
    return session_style(sample_writer_style(writer, seed), session, seed)


def page_words(n: int, text: str = PAGE_TEXT) -> list[str]:
    """The first ``n`` words of ``text``, repeated as often as needed."""
    words = text.split()
    if not words:
        raise WrmilInputError("synthetic page: the text has no words")
    return [words[i % len(words)] for i in range(n)]


def _word_ink(text: str, style: WriterStyle, rng: np.random.Generator, height: int) -> np.ndarray:
    """Darkness (0 paper .. 1 black) of one rendered word, cropped to its ink."""
    dark = (255.0 - np.asarray(render_word(text, style, rng, height=height), dtype=np.float32)) / 255.0
    rows = np.flatnonzero((dark > 1 - INK_LEVEL / 255).any(axis=1))
    cols = np.flatnonzero((dark > 1 - INK_LEVEL / 255).any(axis=0))
    return dark[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _widest_inner_gap(ink: np.ndarray) -> int:
    """Widest run of blank columns inside a word's ink (between its letters)."""
    blank = (ink > 1 - INK_LEVEL / 255).sum(axis=0) == 0
    if not blank.any():
        return 0
    edges = np.diff(np.concatenate([[0], blank.astype(np.int8), [0]]))
    return int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max())


def _paste(sheet: np.ndarray, ink: np.ndarray, top: int, left: int) -> tuple[np.ndarray, np.ndarray]:
    """Darken ``sheet`` with ``ink`` at (top, left), clipped to the sheet; return the ink pixels' (ys, xs)."""
    h, w = sheet.shape
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(h, top + ink.shape[0]), min(w, left + ink.shape[1])
    part = ink[y0 - top:y1 - top, x0 - left:x1 - left]
    np.maximum(sheet[y0:y1, x0:x1], part, out=sheet[y0:y1, x0:x1])
    ys, xs = np.nonzero(part > 1 - INK_LEVEL / 255)
    return ys + y0, xs + x0


def _line_tops(config: PageConfig, rng: np.random.Generator) -> list[float]:
    """Centre heights of the text lines on the unrotated sheet (even on ruled paper)."""
    pitch = config.line_pitch * config.word_height
    jitter = 0.0 if config.ruled else config.pitch_jitter
    y, out = config.margin + 0.6 * pitch, []
    while y + 0.6 * config.word_height < config.height - config.margin:
        out.append(y)
        y += pitch * max(0.6, 1.0 + rng.normal(0.0, jitter))
    return out


def _write_lines(config: PageConfig, sheet: np.ndarray, hands: list[WriterStyle], writer_of: list[int],
                 words: list[str], centres: list[float], rng: np.random.Generator, seed: int) -> list[_Placed]:
    """Write ``words`` on the lines centred at ``centres`` of ``sheet`` until the page is full;
    return what was placed."""
    wh = config.word_height
    placed: list[_Placed] = []
    i = 0
    for line, centre in enumerate(centres):
        x = config.margin + rng.uniform(0.0, 0.3 * wh)
        position, prev_inner = 0, 0
        while i < len(words):
            hand = hands[writer_of[i]]
            ink = _word_ink(words[i], hand, np.random.default_rng([SALT_PAGE, seed, hand.writer_id, i]), wh)
            inner = _widest_inner_gap(ink)
            if position:
                # Word gaps vary, but stay clearly wider than the gaps inside the two words (else a
                # reader, too, would see one word).
                gap = max(0.6 * config.word_gap, rng.normal(config.word_gap, config.word_gap / 5)) * wh
                x += max(gap, GAP_OVER_INNER * max(inner, prev_inner))
                if x + ink.shape[1] > config.width - config.margin:
                    break
            cy = float((ink.sum(axis=1) * np.arange(ink.shape[0])).sum() / max(ink.sum(), 1e-6))
            top = round(centre + rng.normal(0.0, 0.03 * wh) - cy)
            ys, xs = _paste(sheet, ink, top, round(x))
            placed.append(_Placed(words[i], writer_of[i], line, ys, xs))
            x += ink.shape[1]
            prev_inner = inner
            position += 1
            i += 1
    return placed


def _baseline_offset(placed: list[_Placed], centres: list[float]) -> float:
    """Where the writing sits below its line centre: the lower edge of the dense x-height band
    (the deepest row still holding half the peak ink, over all words)."""
    offsets = np.concatenate([np.rint(p.ys - centres[p.line]).astype(np.int64) for p in placed])
    base = int(offsets.min())
    profile = np.bincount(offsets - base)
    peak = int(np.argmax(profile))
    below = np.flatnonzero(profile[peak:] < profile[peak] / 2)
    return float(base + peak + (below[0] if len(below) else 0))


def _rules(config: PageConfig, sheet: np.ndarray, first: float, rng: np.random.Generator) -> None:
    """Grey ruled lines at every line pitch from ``first`` down the sheet, across its width."""
    pitch = config.line_pitch * config.word_height
    thick = max(1, config.word_height // 45)
    level = float(rng.uniform(0.25, 0.4))
    x0, x1 = int(0.03 * config.width), int(0.97 * config.width)
    y = first
    while y < config.height - thick:
        r = round(y)
        np.maximum(sheet[r:r + thick, x0:x1], level, out=sheet[r:r + thick, x0:x1])
        y += pitch


def _rotate(sheet: np.ndarray, angle_deg: float) -> tuple[np.ndarray, EuclideanTransform]:
    """The sheet rotated by ``angle_deg`` about its centre (text lines then run along
    ``y = c + tan(angle) x``), and the transform from sheet to page coordinates."""
    h, w = sheet.shape
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    tform = (EuclideanTransform(translation=-centre) + EuclideanTransform(rotation=np.deg2rad(angle_deg))
             + EuclideanTransform(translation=centre))
    if angle_deg == 0:
        return sheet, tform
    return warp(sheet, tform.inverse, order=1, mode="constant", cval=0.0, preserve_range=True), tform


def _scan(dark: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Paper and scanner: uneven illumination, blur, grain and dust specks on a darkness map."""
    h, w = dark.shape
    if noise > 0:
        dark = ndi.gaussian_filter(dark, 0.6 * noise)
    paper = np.full((h, w), 240.0, dtype=np.float32)
    if noise > 0:
        coarse = rng.normal(0.0, 1.0, size=(h // 64 + 2, w // 64 + 2))
        shade = ndi.zoom(ndi.gaussian_filter(coarse, 1.5), 64, order=1)[:h, :w]
        ramp = (np.linspace(-1.0, 1.0, w)[None, :] * rng.uniform(-1, 1)
                + np.linspace(-1.0, 1.0, h)[:, None] * rng.uniform(-1, 1))
        paper += (12 * noise * ramp + 40 * noise * shade).astype(np.float32)
    img = paper * (1.0 - dark)
    if noise > 0:
        img += rng.normal(0.0, 5.0 * noise, size=(h, w)).astype(np.float32)
        n_specks = int(noise * h * w / 40_000)
        sy, sx = rng.integers(0, h - 2, n_specks), rng.integers(0, w - 2, n_specks)
        for dy in (0, 1):
            for dx in (0, 1):
                keep = rng.random(n_specks) < 0.6
                img[sy[keep] + dy, sx[keep] + dx] *= 0.4
    return np.clip(img, 0, 255).astype(np.uint8)


def _truth(placed: list[_Placed], tform: EuclideanTransform, shape: tuple[int, int],
           foreign_writer: int | None) -> pl.DataFrame:
    h, w = shape
    rows = []
    position = 0
    for i, p in enumerate(placed):
        position = 0 if i == 0 or placed[i - 1].line != p.line else position + 1
        pts = tform(np.column_stack([p.xs, p.ys]).astype(np.float64))
        x0, y0 = np.floor(pts.min(axis=0)).astype(int)
        x1, y1 = np.floor(pts.max(axis=0)).astype(int) + 1
        rows.append((i, p.line, position, max(0, x0), max(0, y0), min(w, x1), min(h, y1), p.text, p.writer,
                     foreign_writer is not None and p.writer == foreign_writer))
    schema = dict(zip(TRUTH_COLUMNS, (pl.Int64,) * 7 + (pl.String, pl.Int64, pl.Boolean)))
    return pl.DataFrame(rows, schema=schema, orient="row")


def make_page(config: PageConfig = A4, writer: int = 0, *, seed: int = 0, synth_seed: int = 0, session: int = 0,
              text: str = PAGE_TEXT, foreign_writer: int | None = None,
              foreign_words: range | None = None, skew_deg: float | None = None,
              n_words: int | None = None) -> SynthPage:
    """A synthetic page by ``writer`` (of synthetic set ``synth_seed``), laid out and scanned with
    randomness from ``seed``; words ``foreign_words`` (indices in reading order) are written by
    ``foreign_writer``. The skew is drawn in +-``config.max_skew_deg`` unless ``skew_deg`` fixes it.
    ``n_words`` words of ``text`` (repeated as needed) are written, or as many as fit when None.
    Deterministic for its arguments."""
    if (foreign_writer is None) != (foreign_words is None):
        raise WrmilInputError("make_page: give foreign_writer and foreign_words together")
    rng = np.random.default_rng([SALT_PAGE, seed, writer])
    hands = [writer_hand(writer, synth_seed, session)]
    max_words = int(config.width * config.height / config.word_height ** 2)  # more than ever fit
    writer_of = [0] * max_words
    if foreign_writer is not None and foreign_words is not None:
        hands.append(writer_hand(foreign_writer, synth_seed, session))
        for i in foreign_words:
            if 0 <= i < max_words:
                writer_of[i] = 1
    sheet = np.zeros((config.height, config.width), dtype=np.float32)
    centres = _line_tops(config, rng)
    words = page_words(max_words if n_words is None else min(n_words, max_words), text)
    placed = _write_lines(config, sheet, hands, writer_of, words, centres, rng, seed)
    if config.ruled and placed:
        # Ruled paper: the rules run under the writing's baseline (lines are evenly spaced then).
        _rules(config, sheet, centres[0] + _baseline_offset(placed, centres), rng)
    for p in placed:
        p.writer = hands[p.writer].writer_id
    drawn = float(rng.uniform(-config.max_skew_deg, config.max_skew_deg))
    angle = drawn if skew_deg is None else float(skew_deg)
    rotated, tform = _rotate(sheet, angle)
    image = _scan(rotated, config.noise, rng)
    return SynthPage(image=image, truth=_truth(placed, tform, image.shape, foreign_writer), skew_deg=angle)


def mixed_writer_page(config: PageConfig = A4, writer: int = 0, foreign_writer: int = 1, *, start: int = 40,
                      n_foreign: int = 25, seed: int = 0, synth_seed: int = 0, session: int = 0) -> SynthPage:
    """``writer``'s page with a passage of ``n_foreign`` consecutive words, from word ``start`` on,
    written in by ``foreign_writer``; ``truth["foreign"]`` marks that passage."""
    if writer == foreign_writer:
        raise WrmilInputError(f"mixed_writer_page: foreign_writer={foreign_writer} is the page's own writer")
    return make_page(config, writer, seed=seed, synth_seed=synth_seed, session=session,
                     foreign_writer=foreign_writer, foreign_words=range(start, start + n_foreign))
