"""The verbal equivalent of a likelihood ratio, on a documented standard scale.

Scale: ENFSI Guideline for Evaluative Reporting in Forensic Science (European Network of Forensic
Science Institutes, 2015), section 2.4 / Table 1, the verbal equivalents of an LR:

    LR 1 - 10                 weak or limited support
    LR 10 - 100               moderate support
    LR 100 - 1,000            moderately strong support
    LR 1,000 - 10,000         strong support
    LR 10,000 - 1,000,000     very strong support
    LR above 1,000,000        extremely strong support

for the proposition in the numerator; an LR below 1 is read the same way as 1/LR in support of the
other proposition. Here H1 is "more than one writer", H0 "one writer". Each band includes its lower
bound (LR exactly 10 is "moderate support"); LR exactly 1 supports neither.
"""

from __future__ import annotations

import math

H1 = "more than one writer"
H0 = "one writer"
SCALE_SOURCE = "ENFSI Guideline for Evaluative Reporting in Forensic Science (2015), verbal equivalents of the LR"

# (lower bound of log10 LR, words): each band runs from its bound up to the next one's.
BANDS: tuple[tuple[float, str], ...] = (
    (0.0, "weak or limited support"),
    (1.0, "moderate support"),
    (2.0, "moderately strong support"),
    (3.0, "strong support"),
    (4.0, "very strong support"),
    (6.0, "extremely strong support"),
)


def strength(abs_log10_lr: float) -> str:
    """The band of ``|log10 LR|`` (``abs_log10_lr >= 0``), e.g. 1.0 -> 'moderate support'."""
    words = BANDS[0][1]
    for bound, label in BANDS:
        if abs_log10_lr >= bound:
            words = label
    return words


def verbal_label(log10_lr: float) -> str:
    """The verbal equivalent of ``log10_lr`` for H1 (more than one writer) vs H0 (one writer), e.g.
    ``2.5 -> 'moderately strong support for more than one writer'``, ``-1.0 -> 'moderate support for
    one writer'``, ``0 -> 'no support for either proposition (LR = 1)'``."""
    if not math.isfinite(log10_lr):
        raise ValueError(f"log10 LR must be finite, got {log10_lr}")
    if log10_lr == 0.0:
        return "no support for either proposition (LR = 1)"
    return f"{strength(abs(log10_lr))} for {H1 if log10_lr > 0 else H0}"


def format_lr(log10_lr: float) -> str:
    """The LR itself in plain numbers for a headline: ``LR about 204``, ``LR about 1/10``; beyond a
    million either way in powers of ten only (``LR 10^7.50``)."""
    if abs(log10_lr) >= 6:
        return f"LR 10^{log10_lr:.2f}"
    lr = 10.0 ** abs(log10_lr)
    plain = f"{lr:,.0f}" if lr >= 100 else f"{lr:.3g}"
    return f"LR about {plain if log10_lr >= 0 else '1/' + plain}"


__all__ = ["BANDS", "H0", "H1", "SCALE_SOURCE", "format_lr", "strength", "verbal_label"]
