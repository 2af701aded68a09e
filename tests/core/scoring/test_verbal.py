"""The verbal scale of a likelihood ratio: ``wrmil_core.scoring.verbal`` against the ENFSI (2015)
table, written out by hand at and around every band boundary."""

from __future__ import annotations

import math

import pytest

from wrmil_core.scoring.verbal import format_lr, verbal_label

H1, H0 = "more than one writer", "one writer"

# (LR, expected words): each band includes its lower bound (LR 10 is already "moderate").
BY_HAND = [
    (1.5, f"weak or limited support for {H1}"),
    (9.99, f"weak or limited support for {H1}"),
    (10, f"moderate support for {H1}"),
    (99, f"moderate support for {H1}"),
    (100, f"moderately strong support for {H1}"),
    (999, f"moderately strong support for {H1}"),
    (1_000, f"strong support for {H1}"),
    (9_999, f"strong support for {H1}"),
    (10_000, f"very strong support for {H1}"),
    (999_999, f"very strong support for {H1}"),
    (1_000_000, f"extremely strong support for {H1}"),
    (1e9, f"extremely strong support for {H1}"),
    (1 / 1.5, f"weak or limited support for {H0}"),
    (1 / 10, f"moderate support for {H0}"),
    (1 / 150, f"moderately strong support for {H0}"),
    (1 / 1_000, f"strong support for {H0}"),
    (1 / 20_000, f"very strong support for {H0}"),
    (1 / 1_000_000, f"extremely strong support for {H0}"),
    (1, "no support for either proposition (LR = 1)"),
]


@pytest.mark.parametrize(("lr", "words"), BY_HAND)
def test_verbal_label_matches_the_enfsi_table(lr: float, words: str) -> None:
    # log10 of the exact powers of ten is exact in floating point, so the boundaries are tested as written
    assert verbal_label(math.log10(lr)) == words


def test_verbal_label_refuses_non_finite() -> None:
    with pytest.raises(ValueError, match="finite"):
        verbal_label(float("inf"))


def test_format_lr() -> None:
    assert format_lr(2.0) == "LR about 100"
    assert format_lr(-1.0) == "LR about 1/10"
    assert format_lr(3.30103) == "LR about 2,000"
    assert format_lr(7.5) == "LR 10^7.50"
