"""The segmenter's hyper-parameters: one frozen, validated dataclass and its presets.

Every length is relative to the page's own text height (``text_height``: the area-weighted median
height of the ink components, i.e. the typical letter or connected-word height), so one preset
works at 150, 300 or 600 dpi.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wrmil_core import presets
from wrmil_core.errors import WrmilInputError

BINARIZE_METHODS = ("sauvola", "otsu")


@dataclass(frozen=True)
class SegmentConfig:
    """How a page image is cut into words.

    binarize: ``sauvola`` (local threshold, robust to uneven lighting) or ``otsu`` (one global threshold).
    sauvola_window, sauvola_k: Sauvola's window (px at the page's resolution) and sensitivity.
    max_threshold_pixels: Sauvola runs on a block-averaged copy of at most this many pixels (speed;
        the threshold surface is smooth, the comparison stays at full resolution).
    blur_sigma: Gaussian smoothing (px) before thresholding, against scanner noise.
    max_skew_deg: skew search range (+-degrees); skew_step_deg: the fine step of that search.
    rule_coverage: a deskewed row darker than the paper in this share of the columns across the text
        is a ruled line (removed before the components are cut).
    mark_frac: components smaller than this x text height in both directions are marks (i-dots,
        punctuation, specks); they join the nearest word within ``attach_frac`` x text height or are dropped.
    speck_frac: components with area below (speck_frac x text height)^2 are noise.
    line_sigma_frac, min_line_gap_frac: smoothing of the row profile and the least distance between
        two text lines, both x text height.
    gap_min_frac, gap_max_frac, gap_default_frac: bounds on the word-gap threshold and its value when
        a page has too few gaps, x core height (the lines' x-height band); the threshold itself is
        the valley of the density of the page's (and each line's) log gaps between the bounds.
    gap_bandwidth: the kernel width of that density, in log units (0.15: gaps within ~15% blur together).
    min_line_gaps: a line with at least this many gaps gets its own threshold (blended with the page's);
        0 (the default): every line uses the page's.
    line_prior: each line's own threshold from a two-class mixture of its log gaps, with the page's two
        classes as a prior worth this many gaps of each (0: every line uses the page's threshold).
    relative_gap: in a line with three or more word gaps, a gap under this x their median is no word gap
        (0 switches the rule off).
    min_word_width_frac: a "word" whose ink is narrower than this x core height is a fragment (a
        lone stroke, a letter written apart: Arabic's alif, a ruling's stub) and joins the nearer word
        beside it in its line (0 switches the rule off).
    right_to_left: reading order right to left within a line (Arabic, Hebrew).
    min_words: fewer words flag the page as doubtful; overlap_frac: boxes covering more than this share
        of a smaller box overlap heavily; max_overlap_share: share of such boxes that flags the page.
    max_ink_fraction: an image darker than this share is not a page scan. (No size is refused: see
        the content rules of :mod:`wrmil_core.pages.segment`.)
    crop_margin: pixels of page added around each word box in its crop.
    """

    binarize: str = "sauvola"
    sauvola_window: int = 31
    sauvola_k: float = 0.1
    max_threshold_pixels: int = 2_500_000
    blur_sigma: float = 1.0
    max_skew_deg: float = 5.0
    skew_step_deg: float = 0.05
    rule_coverage: float = 0.8
    mark_frac: float = 0.25
    attach_frac: float = 0.6
    speck_frac: float = 0.03
    line_sigma_frac: float = 0.2
    min_line_gap_frac: float = 0.45
    gap_min_frac: float = 0.35
    gap_max_frac: float = 0.9
    gap_default_frac: float = 0.55
    gap_bandwidth: float = 0.15
    min_line_gaps: int = 0
    line_prior: float = 3.0
    relative_gap: float = 0.5
    min_word_width_frac: float = 0.8
    right_to_left: bool = False
    min_words: int = 5
    overlap_frac: float = 0.5
    max_overlap_share: float = 0.1
    max_ink_fraction: float = 0.5
    crop_margin: int = 4

    def __post_init__(self) -> None:
        if self.binarize not in BINARIZE_METHODS:
            raise WrmilInputError(f"SegmentConfig.binarize={self.binarize!r}: choose one of {BINARIZE_METHODS}")
        if self.sauvola_window < 3 or self.sauvola_window % 2 == 0:
            raise WrmilInputError(f"SegmentConfig.sauvola_window={self.sauvola_window!r}: use an odd integer >= 3")
        if not 0.0 < self.max_skew_deg <= 20.0 or not 0.0 < self.skew_step_deg <= 1.0:
            raise WrmilInputError("SegmentConfig.max_skew_deg must be in (0, 20] and skew_step_deg in (0, 1]")
        fractions = ("rule_coverage", "mark_frac", "speck_frac", "overlap_frac", "max_overlap_share",
                     "max_ink_fraction")
        for name in fractions:
            if not 0.0 < getattr(self, name) <= 1.0:
                raise WrmilInputError(f"SegmentConfig.{name}={getattr(self, name)!r}: must be in (0, 1]")
        if self.min_word_width_frac < 0:
            raise WrmilInputError(f"SegmentConfig.min_word_width_frac={self.min_word_width_frac!r}: must be >= 0")
        if not 0.0 <= self.relative_gap < 1.0:
            raise WrmilInputError(f"SegmentConfig.relative_gap={self.relative_gap!r}: must be in [0, 1)")
        for name in ("attach_frac", "line_sigma_frac", "min_line_gap_frac", "gap_min_frac", "blur_sigma"):
            if getattr(self, name) < 0:
                raise WrmilInputError(f"SegmentConfig.{name}={getattr(self, name)!r}: must be >= 0")
        if not 0 < self.gap_min_frac <= self.gap_default_frac <= self.gap_max_frac:
            raise WrmilInputError("SegmentConfig: need 0 < gap_min_frac <= gap_default_frac <= gap_max_frac")
        if not 0.0 < self.gap_bandwidth <= 2.0:
            raise WrmilInputError(f"SegmentConfig.gap_bandwidth={self.gap_bandwidth!r}: must be in (0, 2]")
        if self.line_prior < 0:
            raise WrmilInputError(f"SegmentConfig.line_prior={self.line_prior!r}: must be >= 0")
        if self.min_line_gaps < 0:
            raise WrmilInputError(f"SegmentConfig.min_line_gaps={self.min_line_gaps!r}: must be >= 0")
        for name in ("min_words", "max_threshold_pixels"):
            if getattr(self, name) < 1:
                raise WrmilInputError(f"SegmentConfig.{name}={getattr(self, name)!r}: must be an integer >= 1")
        if self.crop_margin < 0:
            raise WrmilInputError(f"SegmentConfig.crop_margin={self.crop_margin!r}: must be >= 0")


DEFAULT = SegmentConfig()
# Clean, evenly lit scans (a flatbed at 300 dpi): one global threshold is faster and as good.
CLEAN = SegmentConfig(binarize="otsu", blur_sigma=0.5)
RTL = SegmentConfig(right_to_left=True)
PRESETS: dict[str, SegmentConfig] = {"default": DEFAULT, "clean": CLEAN, "rtl": RTL}


def preset(name: str, **overrides: Any) -> SegmentConfig:
    """A named segmenter preset with field overrides, e.g. ``preset("default", right_to_left=True)``."""
    return presets.preset(PRESETS, name, **overrides)
