"""Page image -> word boxes in reading order (the page map), with reasons to doubt the result.

Steps: refuse what holds no ink -> binarise (:mod:`.binarize`) -> estimate the skew (:mod:`.skew`)
-> remove ruled lines (:mod:`.rules`) -> connected components (:mod:`.components`) -> sort them into
noise (specks, rule fragments), marks (dots, punctuation), glyphs and non-text -> text lines from
the glyphs (:mod:`.lines`), glyphs joining two lines cut apart (:mod:`.touching`) -> words from the
gaps within each line (:mod:`.words`), stray full stops joined to their word -> marks join their
nearest word -> word boxes, numbered line by line (top to bottom) and left to right (right to left
with ``right_to_left``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from wrmil_core.errors import WrmilInputError
from wrmil_core.pages.binarize import binarize, dark_share, grey_percentiles
from wrmil_core.pages.components import Components, find_components
from wrmil_core.pages.config import DEFAULT, SegmentConfig
from wrmil_core.pages.doubts import doubts
from wrmil_core.pages.lines import core_height, find_lines, nearest_line
from wrmil_core.pages.rules import remove_rules
from wrmil_core.pages.skew import deskew, estimate_skew
from wrmil_core.pages.touching import split_touching
from wrmil_core.pages.words import absorb_narrow, absorb_punctuation, attach_marks, split_words

BOX_COLUMNS = ("word_index", "line", "position", "x0", "y0", "x1", "y1")
BOX_SCHEMA = {c: pl.Int64 for c in BOX_COLUMNS}
PUNCT_FRAC = 0.4  # glyphs smaller than this x text height, alone and low in a line, are punctuation
FLAT_FRAC = 0.12  # a component at most this x text height high and 3x as wide is a line fragment
# What the segmenter accepts is decided by content, not by the image's size (an examiner's questioned
# document may be a crop of a few lines, 160-300 px high):
MIN_TEXT_WORDS = 2  # one word box is a word crop or a signature (to score); any line of text has two words
MIN_TEXT_HEIGHT_PX = 6  # typical glyph (text height) under this: letters are blobs of a few pixels (a
#   thumbnail); a 300-dpi scan of handwriting has glyphs 25-100 px high, so no real scan comes near it
CROP_SIDE_PX = 300  # a shorter side under this: a crop of a passage, where a word may fill most of the
#   height, so only a part as tall as the image counts as non-text (a page: a quarter of its height)


@dataclass
class PageSegmentation:
    """The words found on a page.

    boxes: the page map, one row per word in reading order: ``word_index`` (0..n-1), ``line``
        (0 = first line read), ``position`` (in its line), and the box ``x0, y0, x1, y1`` in page
        pixels, ends exclusive (the word is ``image[y0:y1, x0:x1]``).
    doubtful: reasons to check this page by eye (empty when the cut looks sound).
    skew_deg: the estimated page skew; text_height: the typical glyph height (px) most thresholds scale
        with; core_height: the lines' x-height band (px), the unit of the word-gap threshold;
        n_rules: ruled lines removed; n_touching: components cut apart because they joined two lines.
    """

    boxes: pl.DataFrame
    doubtful: list[str] = field(default_factory=list)
    skew_deg: float = 0.0
    text_height: float = 0.0
    core_height: float = 0.0
    n_rules: int = 0
    n_touching: int = 0
    crop_margin: int = DEFAULT.crop_margin

    def crops(self, image: np.ndarray) -> list[np.ndarray]:
        """One crop of ``image`` per word, in reading order, with ``crop_margin`` pixels around the box."""
        h, w = image.shape[:2]
        m = self.crop_margin
        return [image[max(0, y0 - m):min(h, y1 + m), max(0, x0 - m):min(w, x1 + m)]
                for x0, y0, x1, y1 in self.boxes.select("x0", "y0", "x1", "y1").iter_rows()]


def check_page(image: np.ndarray, config: SegmentConfig, name: str = "page") -> None:
    """Refuse what holds no handwriting on paper: a wrong array, a blank image, a mostly dark one.
    Size alone refuses nothing: a crop of one line is as much a questioned document as a page."""
    if image.ndim != 2 or image.dtype != np.uint8:
        raise WrmilInputError(f"{name}: expected a 2-D uint8 grey image, got {image.dtype} of shape {image.shape}; "
                              "read pages with wrmil_core.pages.read_page")
    lo, hi = grey_percentiles(image, [0.5, 99.5])
    if hi - lo < 16:
        raise WrmilInputError(f"{name}: the image is empty ({_size(image)}, grey levels {int(lo)}-{int(hi)}: "
                              "no ink on it); give a scan or crop of the handwriting")
    dark = dark_share(image)
    if dark > config.max_ink_fraction:
        raise WrmilInputError(f"{name}: {dark:.0%} of the image ({_size(image)}) is dark, not handwriting on "
                              "paper (dark ink on light paper expected: a negative, black borders, or a thumbnail "
                              "whose writing blurs into grey?); invert negatives, crop away black borders, give "
                              "the scan at 300 dpi or more")


def check_text(seg: PageSegmentation, image: np.ndarray, name: str = "page") -> None:
    """Refuse a questioned document whose cut found no text: fewer than :data:`MIN_TEXT_WORDS` words
    (a word crop, a signature). Not applied by :func:`segment_page` itself: a data root's page with
    one word is flagged doubtful, as before, not refused."""
    n = seg.boxes.height
    if n < MIN_TEXT_WORDS:
        raise WrmilInputError(f"{name}: {_size(image)} holds {n} word, not a line of text (a word crop or a "
                              f"signature?); give the passage in question, at least one line of "
                              f"{MIN_TEXT_WORDS} or more words")


def _size(image: np.ndarray) -> str:
    """``'WxH px'`` of an image array."""
    return f"{image.shape[1]}x{image.shape[0]} px"


def _text_height(comps: Components, page_side: int) -> float:
    """Ink-weighted median height of the components: the height of a typical glyph (a letter in print,
    a word in cursive). Weighting by ink makes the many tiny specks of a noisy scan irrelevant; parts
    taller than a quarter of the page (borders, pictures; on a crop: as tall as the crop) are left out."""
    ok = (comps.height >= 3) & (comps.height < (page_side / 4 if page_side >= CROP_SIDE_PX else page_side))
    if not ok.any():
        return 0.0
    h, w = comps.height[ok], comps.area[ok].astype(np.float64)
    order = np.argsort(h)
    cum = np.cumsum(w[order])
    return float(h[order][np.searchsorted(cum, cum[-1] / 2)])


def _classify(comps: Components, th: float, config: SegmentConfig, page_w: int) -> np.ndarray:
    """0 noise (specks, and dashes of a faint ruled line the rule finder missed: flat, a few pen
    widths high at most), 1 mark, 2 glyph, 3 non-text (borders, pictures)."""
    kind = np.full(len(comps), 2, dtype=np.int8)
    kind[(comps.height < config.mark_frac * th) & (comps.width < config.mark_frac * th)] = 1
    kind[comps.area < (config.speck_frac * th) ** 2] = 0
    flat = (comps.height <= max(2.0, FLAT_FRAC * th)) & (comps.width > 3 * comps.height)
    kind[flat] = 0
    huge = (comps.height > 4 * th) | (comps.width > 0.8 * page_w)
    kind[huge] = 3
    return kind


def segment_page(image: np.ndarray, config: SegmentConfig | None = None, name: str = "page") -> PageSegmentation:
    """Cut a grey page (uint8, dark ink on light paper) into words in reading order.

    Any size of image is accepted (a page, a crop of a passage, one line); what is refused is by
    content, each as one :class:`WrmilInputError` line naming ``name``: a blank or mostly dark
    image, specks only, writing under :data:`MIN_TEXT_HEIGHT_PX` (a thumbnail). A page with very few
    words is cut and flagged doubtful; a questioned document must also pass :func:`check_text`.
    """
    config = config or DEFAULT
    check_page(image, config, name)
    mask = binarize(image, config)
    ys, xs = np.nonzero(mask)
    bin_px = max(1.0, min(image.shape) / 1200)
    angle = estimate_skew(ys, xs, config.max_skew_deg, config.skew_step_deg, bin_px)
    ys, xs, n_rules = remove_rules(mask, image, ys, xs, angle, config.rule_coverage)
    comps, labels = find_components(mask, angle, ink=(ys, xs))
    th = _text_height(comps, min(image.shape))
    if th < MIN_TEXT_HEIGHT_PX:
        found = f"the ink marks are {th:.0f} px high" if th > 0 else "specks or ruled lines only"
        raise WrmilInputError(f"{name}: no handwriting found in {_size(image)}: {found}, under the "
                              f"{MIN_TEXT_HEIGHT_PX} px letters need (a thumbnail?); give the scan or a crop of it "
                              "at 300 dpi or more")
    kind = _classify(comps, th, config, image.shape[1])
    glyphs, marks = comps.take(kind == 2), comps.take(kind == 1)
    if len(glyphs) == 0:
        raise WrmilInputError(f"{name}: no handwriting found in {_size(image)}: only specks and lines; "
                              "give a scan or crop of the handwriting")
    core = core_height(ys, xs, angle, th, config.min_line_gap_frac)
    glyphs, line, n_cut = _lines(glyphs, labels, angle, th, core, config)
    boxes = _word_boxes(glyphs, line, marks, angle, th, core, config)
    seg = PageSegmentation(boxes=boxes, skew_deg=angle, text_height=th, core_height=core,
                           n_rules=n_rules, n_touching=n_cut, crop_margin=config.crop_margin)
    seg.doubtful = doubts(seg, config, n_nontext=int((kind == 3).sum()))
    return seg


def _lines(glyphs: Components, labels: np.ndarray, angle: float, th: float, core: float,
           config: SegmentConfig) -> tuple[Components, np.ndarray, int]:
    """Text lines of the glyphs, after cutting apart glyphs that join two lines; returns the
    (possibly cut) glyphs, their line numbers and how many glyphs were cut."""
    cxr, cyr = deskew(glyphs.cx, glyphs.cy, angle)
    line, fits = find_lines(cxr, cyr, glyphs.area.astype(np.float64), th, config.line_sigma_frac,
                            config.min_line_gap_frac)
    glyphs, n_cut = split_touching(glyphs, labels, angle, fits, core)
    if n_cut:
        cxr, cyr = deskew(glyphs.cx, glyphs.cy, angle)
        line = nearest_line(cxr, cyr, fits)
    return glyphs, line, n_cut


def _word_boxes(glyphs: Components, line: np.ndarray, marks: Components, angle: float, th: float, core: float,
                config: SegmentConfig) -> pl.DataFrame:
    """Group each line's glyphs into words, add the marks, and number the words in reading order."""
    cxr, cyr = deskew(glyphs.cx, glyphs.cy, angle)
    word = split_words(glyphs.sx0, glyphs.sx1, line, core, config)
    word = absorb_punctuation(line, word, np.maximum(glyphs.width, glyphs.height), cyr, PUNCT_FRAC * th,
                              config.right_to_left, sx=(glyphs.sx0, glyphs.sx1))
    if config.min_word_width_frac > 0:
        word = absorb_narrow(line, word, (glyphs.sx0, glyphs.sx1), config.min_word_width_frac * core)
    owner = attach_marks(marks, glyphs, config.attach_frac * th)
    keep = owner >= 0
    frame = pl.DataFrame({
        "line": np.concatenate([line, line[owner[keep]]]),
        "word": np.concatenate([word, word[owner[keep]]]),
        "xr": np.concatenate([cxr, cxr[owner[keep]]]),
        "x0": np.concatenate([glyphs.x0, marks.x0[keep]]), "y0": np.concatenate([glyphs.y0, marks.y0[keep]]),
        "x1": np.concatenate([glyphs.x1, marks.x1[keep]]), "y1": np.concatenate([glyphs.y1, marks.y1[keep]]),
    })
    words = (frame.group_by("line", "word")
             .agg(pl.col("x0").min(), pl.col("y0").min(), pl.col("x1").max(), pl.col("y1").max(),
                  pl.col("xr").mean().alias("xr"))
             .sort("line", "xr", descending=[False, config.right_to_left]))
    words = words.with_columns(pl.int_range(pl.len()).over("line").alias("position"))
    words = words.with_row_index("word_index")
    return words.select(BOX_COLUMNS).cast(BOX_SCHEMA)
