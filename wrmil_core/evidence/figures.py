"""Forensic figures of log10 LRs: Tippett plots and reliability (PAV) diagrams, one panel per detector.

Tippett: for each hypothesis the share of LRs at or above each value of log10 LR (H2, one writer,
in black; H1, more than one writer, one curve per group such as a difficulty). Where the H1 curves
sit far right and the H2 curve far left, the evidence is strong; the heights at 0 are the rates of
misleading evidence for H2 and one minus those for H1.

Reliability: ``lir.plotting.pav``: the reported log10 LR (x) against the log10 LR after the best
monotone recalibration of these very LRs (y, pool-adjacent-violators). A calibrated system lies
on the diagonal; above it the LRs understate the evidence, below it they overstate it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
from matplotlib.figure import Figure

from wrmil_core.plots import save_figure


class Panel(NamedTuple):
    """One detector's test LLRs: ``h2`` (genuine) and named groups of ``h1`` (contaminated); the
    comparison names its own hypotheses (``h2_label``, ``xlabel``)."""

    title: str
    h2: np.ndarray
    h1: dict[str, np.ndarray]
    h2_label: str = "H2: one writer"
    xlabel: str = "log$_{10}$ LR (H1: >1 writer vs H2: 1 writer)"


def tippett(ax, panel: Panel) -> None:
    """Draw one Tippett panel: share of LRs >= x for H2 and for each H1 group."""
    groups = [(panel.h2_label + _n(panel.h2), panel.h2, dict(color="black", lw=2))]
    styles = ["-", "--", "-.", ":"]
    groups += [(f"H1 {name}" + _n(v), v, dict(ls=styles[k % len(styles)]))
               for k, (name, v) in enumerate(panel.h1.items())]
    allv = np.concatenate([np.asarray(v, dtype=float) for _, v, _ in groups] + [np.zeros(1)])
    grid = np.linspace(allv.min() - 0.2, allv.max() + 0.2, 400)
    for label, v, style in groups:
        v = np.sort(np.asarray(v, dtype=float))
        if v.size:
            ax.plot(grid, 1 - np.searchsorted(v, grid, side="left") / v.size, label=label, **style)
    ax.axvline(0, color="grey", lw=0.8, ls="--")
    ax.set(title=panel.title, xlabel=panel.xlabel,
           ylabel="share of LRs >= x", ylim=(-0.02, 1.02))
    ax.legend(fontsize=6)


def reliability(ax, panel: Panel) -> None:
    """Draw one reliability panel with ``lir.plotting.pav`` (n/a text when a class is missing)."""
    h1 = np.concatenate([np.asarray(v, dtype=float) for v in panel.h1.values()] + [np.zeros(0)])
    h2 = np.asarray(panel.h2, dtype=float)
    ax.set_title(panel.title)
    if not (h1.size and h2.size):
        ax.text(0.5, 0.5, "n/a (needs both classes)", ha="center", transform=ax.transAxes)
        return
    from lir.data.models import LLRData
    from lir.plotting import pav

    llrs = np.concatenate([h2, h1])
    labels = np.concatenate([np.zeros(h2.size, int), np.ones(h1.size, int)])
    pav(LLRData(features=llrs, labels=labels), ax=ax)
    ax.legend(fontsize=6)


def plot_panels(panels: list[Panel], draw, path: Path, suptitle: str) -> Path:
    """One panel per detector (``draw``: :func:`tippett` or :func:`reliability`), in a grid, as a PNG."""
    n = max(1, len(panels))
    cols = min(n, 3)
    rows = int(math.ceil(n / cols))
    fig = Figure(figsize=(4.4 * cols, 3.8 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, panel in zip(axes, panels):
        draw(ax, panel)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(suptitle, fontsize=10)
    return save_figure(fig, path)


def _n(v: np.ndarray) -> str:
    return f" (n={np.asarray(v).size})"
