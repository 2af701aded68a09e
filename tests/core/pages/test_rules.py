"""Ruled lines: removed from the ink mask, with the pen strokes written along them restored."""

from __future__ import annotations

import numpy as np

from wrmil_core.pages.rules import remove_rules

RULE_ROW = 200


def _page(rule_grey: int) -> tuple[np.ndarray, np.ndarray]:
    """A 400 x 600 grey page: a rule (2 rows, ``rule_grey``) across it; two dark letters sitting on it,
    joined by a stroke that runs along the rule; another letter further on. Returns (grey, ink mask)."""
    gray = np.full((400, 600), 230, dtype=np.uint8)
    gray[RULE_ROW:RULE_ROW + 2, 10:590] = rule_grey
    for x0, x1 in ((100, 130), (160, 190), (300, 330)):
        gray[170:RULE_ROW, x0:x1] = 30
    gray[RULE_ROW:RULE_ROW + 2, 130:160] = 30  # the joining stroke, on the rule
    return gray, gray < 200


def _ys_xs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.nonzero(mask)


def test_a_stroke_along_a_faint_rule_is_kept() -> None:
    gray, mask = _page(rule_grey=170)
    ys, xs, n = remove_rules(mask, gray, *_ys_xs(mask), 0.0, 0.8)
    assert n == 1
    assert mask[RULE_ROW:RULE_ROW + 2, 130:160].all()  # the letters stay joined
    assert not mask[RULE_ROW:RULE_ROW + 2, 200:290].any() and not mask[RULE_ROW:RULE_ROW + 2, 400:580].any()
    assert len(ys) == len(xs) == int(mask.sum())  # the ink pixels returned are the mask's


def test_a_rule_as_dark_as_the_ink_is_cleared_whole() -> None:
    gray, mask = _page(rule_grey=30)  # rule and stroke cannot be told apart by grey level
    remove_rules(mask, gray, *_ys_xs(mask), 0.0, 0.8)
    assert not mask[RULE_ROW:RULE_ROW + 2, 135:155].any()
    assert not mask[RULE_ROW:RULE_ROW + 2, 200:290].any()
