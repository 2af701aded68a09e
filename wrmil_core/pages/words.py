"""Words from the gaps within a line, and the attachment of marks (dots, punctuation) to words.

Within a line, components whose deskewed x ranges overlap form one cluster (a letter and its
neighbour leaning over it). The gaps between successive clusters are of two kinds: between the
letters of a word, and between words. The threshold between them comes from the data: the
valley of the density of the page's log gaps (a kernel density), searched within
[gap_min_frac, gap_max_frac] x the core height; then each line's own, from a two-Gaussian mixture
of its log gaps with the page's two classes as the prior (:func:`word_threshold`); and a gap far
narrower than the line's median word gap stays inside its word (``relative_gap``).
The core height (the height of the lines' dense x-height band,
:func:`wrmil_core.pages.lines.core_height`) is the unit, so that a line of tightly joined cursive
words or of widely spaced print letters still splits sensibly. On synthetic pages of 14 writers,
gaps inside words stay under 0.55 core heights for 95% of them and gaps between words over 0.57
for 95%.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.spatial import cKDTree

from wrmil_core.pages.components import Components
from wrmil_core.pages.config import SegmentConfig

KDE_BIN = 0.01  # histogram bin of the gap density, in log units (1%)
FLOOR = 0.5  # gaps under this x the page threshold are letter gaps for sure: left out of the mixture
EM_ROUNDS = 3  # EM steps of a line's mixture (from the page's classes it settles in a few)


def _cluster_gaps(x0: np.ndarray, x1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order of the components by left edge, and the gap before each of them (-inf where it overlaps)."""
    order = np.argsort(x0, kind="stable")
    reach = np.maximum.accumulate(x1[order])
    gaps = np.full(len(order), -np.inf)
    gaps[1:] = x0[order][1:] - reach[:-1]
    return order, gaps


def _valley(gaps: np.ndarray, lo: float, hi: float, bandwidth: float) -> float | None:
    """The least dense gap in [lo, hi] under a Gaussian kernel density of the log gaps (a binned
    KDE: a fine histogram smoothed by scipy's ``gaussian_filter1d``); the middle of the flat bottom
    when the valley is empty over a stretch. None with too few gaps to estimate a density."""
    g = np.log(gaps[gaps > 0])
    if len(g) < 4 or np.ptp(g) < 1e-6:
        return None
    pad = 4 * bandwidth
    edges = np.arange(math.log(lo) - pad, math.log(hi) + pad + KDE_BIN, KDE_BIN)
    hist, _ = np.histogram(g, bins=edges)
    density = gaussian_filter1d(hist.astype(np.float64), bandwidth / KDE_BIN, mode="constant")
    centres = (edges[:-1] + edges[1:]) / 2
    inside = (centres >= math.log(lo)) & (centres <= math.log(hi))
    if not inside.any():  # the bounds leave no room: their (geometric) middle
        return math.sqrt(lo * hi)
    d, grid = density[inside], centres[inside]
    bottom = grid[d <= d.min() + 0.02 * (density.max() - d.min())]
    return float(math.exp(np.median(bottom)))


def _page_classes(gaps: np.ndarray, t: float) -> tuple[float, float, float, float] | None:
    """The page's two gap classes split at its threshold ``t``, on log gaps over ``FLOOR`` x t: means
    of the letter and word gaps, their pooled variance and the share of word gaps (None: a class
    with under two gaps)."""
    z = np.log(gaps[gaps > FLOOR * t])
    a, b = z[z <= math.log(t)], z[z > math.log(t)]
    if len(a) < 2 or len(b) < 2:
        return None
    var = float(np.concatenate([a - a.mean(), b - b.mean()]).var())
    return float(a.mean()), float(b.mean()), max(var, 1e-4), len(b) / len(z)


def _line_threshold(gaps: np.ndarray, t: float, page: tuple[float, float, float, float], prior: float) -> float:
    """The line's threshold from a two-Gaussian mixture of its log gaps (over ``FLOOR`` x the page
    threshold ``t``), fitted by EM with the page's classes as the prior (MAP: ``prior`` pseudo-gaps of
    each page class), so a line of few gaps stays near the page; where the posteriors cross."""
    z = np.log(gaps[gaps > FLOOR * t])
    mu0, mu1, var, w1 = page
    m0, m1, w = mu0, mu1, w1
    for _ in range(EM_ROUNDS):
        l0, l1 = (1 - w) * np.exp(-(z - m0) ** 2 / (2 * var)), w * np.exp(-(z - m1) ** 2 / (2 * var))
        p1 = l1 / (l0 + l1 + 1e-300)
        n1, n0 = float(p1.sum()), float((1 - p1).sum())
        m1 = (float((p1 * z).sum()) + prior * mu1) / (n1 + prior)
        m0 = (float(((1 - p1) * z).sum()) + prior * mu0) / (n0 + prior)
        w = (n1 + prior * w1) / (len(z) + prior)
    if m1 - m0 < 1e-6:
        return t
    cross = (m0 + m1) / 2 + var * math.log((1 - w) / w) / (m1 - m0)
    return float(np.clip(math.exp(cross), t / 2, 2 * t))


def word_threshold(line_gaps: list[np.ndarray], scale: float, config: SegmentConfig) -> list[float]:
    """The gap threshold (px) of each line. The page's: the valley of its gap density within
    [gap_min_frac, gap_max_frac] x ``scale`` (``gap_default_frac`` x scale when the page has too few
    gaps). Each line's (``line_prior`` > 0): a two-class mixture of its own log gaps with the page's
    classes as the prior (:func:`_line_threshold`): word spacing varies from line to line in real
    writing (on 20 synthetic A4 pages, 10,735 gaps: 261 gaps misread by the page's threshold alone, about
    210 with the lines' own). Optionally (``min_line_gaps`` > 0)
    blended with the line's own valley instead (on synthetic A4 pages a line's few gaps moved that
    threshold more by chance than by the line's spacing).

    A valley, not Otsu, for the page: on a cursive page nearly every gap is a word gap, and Otsu
    would split those in two; the density's low point between the bounds sits below them all.
    """
    lo, hi = config.gap_min_frac * scale, config.gap_max_frac * scale
    bw = config.gap_bandwidth
    every = np.concatenate(line_gaps) if line_gaps else np.zeros(0)
    page = _valley(every, lo, hi, bw)
    page = page if page is not None else config.gap_default_frac * scale
    classes = _page_classes(every, page) if config.line_prior > 0 else None
    out = []
    for g in line_gaps:
        own = _valley(g, lo, hi, bw) if 0 < config.min_line_gaps <= len(g) else None
        if classes is not None and (g > FLOOR * page).any():
            out.append(_line_threshold(g, page, classes, config.line_prior))
        else:
            out.append(math.sqrt(page * own) if own is not None else page)
    return out


def split_words(x0r: np.ndarray, x1r: np.ndarray, line: np.ndarray, x_height: float,
                config: SegmentConfig) -> np.ndarray:
    """Word number within its line (left to right in the deskewed frame) of every component."""
    word = np.zeros(len(line), dtype=np.int64)
    members = [np.flatnonzero(line == i) for i in range(int(line.max()) + 1)] if len(line) else []
    parts = [_cluster_gaps(x0r[m], x1r[m]) for m in members]
    thresholds = word_threshold([gaps[np.isfinite(gaps)] for _, gaps in parts], x_height, config)
    for m, (order, gaps), t in zip(members, parts, thresholds):
        breaks = gaps > t
        if config.relative_gap > 0 and breaks.sum() >= 3:
            # A gap far narrower than this line's usual word gap is inside a word (a capital
            # written apart, a widely spaced word), even when it passed the page's threshold.
            breaks &= gaps >= config.relative_gap * float(np.median(gaps[breaks]))
        word[m[order]] = np.cumsum(breaks)
    return word


def attach_marks(marks: Components, main: Components, reach: float, k: int = 8) -> np.ndarray:
    """Index of the main component each mark belongs to (nearest by box distance), or -1 when
    none lies within ``reach`` pixels (a speck of dirt away from the text)."""
    if len(marks) == 0 or len(main) == 0:
        return np.full(len(marks), -1, dtype=np.int64)
    tree = cKDTree(np.column_stack([main.cx, main.cy]))
    k = min(k, len(main))
    _, cand = tree.query(np.column_stack([marks.cx, marks.cy]), k=k)
    cand = cand.reshape(len(marks), k)
    dx = np.maximum(0, np.maximum(main.x0[cand] - marks.x1[:, None], marks.x0[:, None] - main.x1[cand]))
    dy = np.maximum(0, np.maximum(main.y0[cand] - marks.y1[:, None], marks.y0[:, None] - main.y1[cand]))
    dist = np.hypot(dx, dy)
    best = np.argmin(dist, axis=1)
    nearest = cand[np.arange(len(marks)), best]
    return np.where(dist[np.arange(len(marks)), best] <= reach, nearest, -1)


def absorb_punctuation(line: np.ndarray, word: np.ndarray, size: np.ndarray, cyr: np.ndarray, small: float,
                       right_to_left: bool = False, sx: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Join a "word" made only of small glyphs (larger side under ``small``) to a word beside it in its
    line: one sitting low (a full stop or comma written a little apart) to the word it follows in
    reading order (on its left, or its right for right-to-left scripts); any other (quotes, an
    apostrophe, a dash) to the nearer neighbour by the gap between their ink (``sx``: each glyph's
    deskewed left and right ink ends; without it, such marks stay alone). ``cyr``: deskewed heights."""
    word = word.copy()
    step = 1 if right_to_left else -1
    for ln in np.unique(line):
        in_line = line == ln
        centre = float(np.median(cyr[in_line]))
        present = set(word[in_line].tolist())
        for w in sorted(present):
            members = in_line & (word == w)
            if not (size[members] < small).all():
                continue
            if cyr[members].mean() > centre and (w + step) in present:
                word[members] = w + step
            elif sx is not None:
                word[members] = _nearer_word(word, in_line, members, w, present, sx)
    return word


def absorb_narrow(line: np.ndarray, word: np.ndarray, sx: tuple[np.ndarray, np.ndarray], min_width: float) -> np.ndarray:
    """Join every "word" whose ink is narrower than ``min_width`` (deskewed, ``sx``: each glyph's left
    and right ink ends) to the nearer word beside it in its line: a lone stroke or a letter written
    apart is a fragment of a word, and a crop of it says little about its writer."""
    word = word.copy()
    x0, x1 = sx
    for ln in np.unique(line):
        in_line = line == ln
        present = set(word[in_line].tolist())
        for w in sorted(present):
            members = in_line & (word == w)
            if len(present) > 1 and members.any() and x1[members].max() - x0[members].min() < min_width:
                word[members] = _nearer_word(word, in_line, members, w, present, sx)
    return word


def _nearer_word(word: np.ndarray, in_line: np.ndarray, members: np.ndarray, w: int, present: set[int],
                 sx: tuple[np.ndarray, np.ndarray]) -> int:
    """Of the words ``w - 1`` and ``w + 1`` in the line, the one whose ink is nearer word ``w``'s (``w``
    itself when it has neither)."""
    x0, x1 = sx
    gaps = {}
    # ``present`` was taken before this line's marks moved; a neighbour merged away since has no glyphs left
    left, right = in_line & (word == w - 1), in_line & (word == w + 1)
    if w - 1 in present and left.any():
        gaps[w - 1] = float(x0[members].min() - x1[left].max())
    if w + 1 in present and right.any():
        gaps[w + 1] = float(x0[right].min() - x1[members].max())
    return min(gaps, key=gaps.__getitem__) if gaps else w
