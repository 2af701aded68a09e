"""Word grouping within a line: the gap threshold, the relative-gap rule, punctuation and marks."""

from __future__ import annotations

import numpy as np

from wrmil_core.pages import SegmentConfig
from wrmil_core.pages.components import Components
from wrmil_core.pages.words import (
    absorb_narrow,
    absorb_punctuation,
    attach_marks,
    split_words,
    word_threshold,
)


def _line(widths_and_gaps: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Left and right ends of glyphs laid out as width, gap, width, gap, ... on one line."""
    x, lefts, rights = 0.0, [], []
    for i, v in enumerate(widths_and_gaps):
        if i % 2 == 0:
            lefts.append(x)
            rights.append(x + v)
        x += v
    return np.array(lefts), np.array(rights)


def test_letter_and_word_gaps_are_told_apart() -> None:
    # core height 10: letter gaps 2-3 px, word gaps 12-16 px; the threshold falls between them
    lefts, rights = _line([8, 2, 8, 3, 8, 14, 8, 2, 8, 12, 8, 3, 8, 2, 8, 16, 8])
    word = split_words(lefts, rights, np.zeros(len(lefts), np.int64), 10.0, SegmentConfig())
    assert word.tolist() == [0, 0, 0, 1, 1, 2, 2, 2, 3]
    t = word_threshold([np.array([2, 3, 14, 2, 12, 3, 2, 16.0])], 10.0, SegmentConfig())[0]
    assert 3 < t < 12
    # overlapping glyphs (a letter leaning over its neighbour) form one cluster whatever the threshold
    word = split_words(np.array([0.0, 5, 40]), np.array([10.0, 20, 50]), np.zeros(3, np.int64), 10.0, SegmentConfig())
    assert word.tolist() == [0, 0, 1]


def test_relative_gap_keeps_a_word_whole() -> None:
    # word gaps of 20 px, and one gap of 8 px that passes the page threshold (0.35-0.9 x 10 px)
    lefts, rights = _line([10, 20, 10, 20, 10, 8, 10, 20, 10, 20, 10])
    line = np.zeros(len(lefts), np.int64)
    assert split_words(lefts, rights, line, 10.0, SegmentConfig(gap_min_frac=0.35, gap_default_frac=0.5,
                                                                 gap_max_frac=0.5, relative_gap=0.0,
                                                                 line_prior=0.0)).tolist() == [0, 1, 2, 3, 4, 5]
    merged = split_words(lefts, rights, line, 10.0, SegmentConfig(gap_min_frac=0.35, gap_default_frac=0.5,
                                                                  gap_max_frac=0.5, relative_gap=0.5,
                                                                  line_prior=0.0))
    assert merged.tolist() == [0, 1, 2, 2, 3, 4]


def test_full_stop_joins_the_word_before_it() -> None:
    line = np.zeros(4, np.int64)
    word = np.array([0, 0, 1, 2])  # "wo rd" "." "next": the stop is a word of its own after splitting
    size = np.array([30.0, 30, 5, 30])
    cyr = np.array([100.0, 100, 110, 100])  # the stop sits low
    assert absorb_punctuation(line, word, size, cyr, small=12).tolist() == [0, 0, 0, 2]
    assert absorb_punctuation(line, word, size, cyr, small=12, right_to_left=True).tolist() == [0, 0, 2, 2]
    high = cyr.copy()
    high[2] = 90  # an apostrophe-like mark above the centre stays alone
    assert absorb_punctuation(line, word, size, high, small=12).tolist() == word.tolist()


def test_marks_attach_to_the_nearest_glyph_within_reach() -> None:
    def comps(boxes: list[tuple[int, int, int, int]]) -> Components:
        b = np.array(boxes)
        cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
        return Components(b[:, 0], b[:, 1], b[:, 2], b[:, 3], np.ones(len(b), np.int64), cx, cy,
                          np.zeros(len(b), np.int64), b[:, 0].astype(float), b[:, 2].astype(float))

    main = comps([(0, 20, 10, 40), (50, 20, 60, 40)])
    marks = comps([(4, 10, 6, 12), (62, 38, 64, 40), (200, 200, 202, 202)])  # i-dot, comma, dust
    assert attach_marks(marks, main, reach=10).tolist() == [0, 1, -1]


def test_a_quote_mark_joins_the_nearer_word() -> None:
    line = np.zeros(4, np.int64)
    word = np.array([0, 1, 2, 3])  # "said" "'" "Yes" "no": an opening quote written apart, nearer "Yes"
    size = np.array([30.0, 6, 30, 30])
    cyr = np.array([100.0, 85, 100, 100])  # the quote sits high
    x0, x1 = np.array([0.0, 60, 70, 130]), np.array([40.0, 64, 110, 170])
    assert absorb_punctuation(line, word, size, cyr, small=12, sx=(x0, x1)).tolist() == [0, 2, 2, 3]
    x0[1], x1[1] = 44, 48  # a closing quote: nearer the word before it
    assert absorb_punctuation(line, word, size, cyr, small=12, sx=(x0, x1)).tolist() == [0, 0, 2, 3]
    alone = np.zeros(1, np.int64)  # a line of one mark has nothing to join
    assert absorb_punctuation(alone, alone, size[:1] / 10, cyr[:1], small=12, sx=(x0[:1], x1[:1])).tolist() == [0]


def _two_spacings() -> list[np.ndarray]:
    """Gaps (core height 10) of six lines: letter gaps 2-4 px and word gaps 9-11 px in five lines; the
    last written wider throughout, letter gaps 4-7.5 px (the widest pass the page's threshold) and
    word gaps 16-20 px."""
    rng = np.random.default_rng(0)
    lines = [np.concatenate([rng.uniform(2, 4, 30), rng.uniform(9, 11, 8)]) for _ in range(5)]
    lines.append(np.concatenate([rng.uniform(4, 7.5, 30), rng.uniform(16, 20, 8)]))
    return lines


def test_each_line_gets_its_own_threshold_from_its_gaps() -> None:
    lines = _two_spacings()
    page_only = word_threshold(lines, 10.0, SegmentConfig(line_prior=0, relative_gap=0))
    assert len(set(page_only)) == 1 and page_only[-1] < 7.5  # one threshold: the wide letter gaps split words
    own = word_threshold(lines, 10.0, SegmentConfig())
    assert 7.5 < own[-1] < 16.0  # the widely spaced line: all its letter gaps stay inside words
    assert all(4.0 < t < 9.0 for t in own[:5])  # the others keep a threshold between their classes


def test_a_line_of_few_gaps_stays_near_the_page_threshold() -> None:
    lines = _two_spacings()[:5] + [np.array([3.0, 8.0])]  # two gaps: too few to move the threshold far
    page = word_threshold(lines, 10.0, SegmentConfig(line_prior=0))[0]
    assert abs(word_threshold(lines, 10.0, SegmentConfig())[-1] / page - 1) < 0.35


def test_a_narrow_fragment_joins_the_nearer_word() -> None:
    """An alif written apart (4 px of ink against a core height of 20) joins the word it is nearer;
    a narrow word alone on its line, and a word as wide as the limit, stay as they are."""
    line = np.array([0, 0, 0, 0, 1])
    word = np.array([0, 1, 2, 3, 0])
    x0, x1 = np.array([0.0, 70, 80, 140, 0]), np.array([40.0, 74, 120, 200, 4])
    assert absorb_narrow(line, word, (x0, x1), min_width=16).tolist() == [0, 2, 2, 3, 0]
    x0[1], x1[1] = 44, 48  # nearer the word before it
    assert absorb_narrow(line, word, (x0, x1), min_width=16).tolist() == [0, 0, 2, 3, 0]
    x1[1] = 60  # 16 px wide: a word ("a", "I" in a wide hand), not a fragment
    assert absorb_narrow(line, word, (x0, x1), min_width=16).tolist() == word.tolist()
