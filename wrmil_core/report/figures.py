"""The report's PNG figures: separability and detection by difficulty, ROC curves, example bags, and
the forensic section's Tippett plots and reliability diagrams (drawn by :mod:`wrmil_core.evidence.figures`)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from wrmil_core.bags.tensors import BagTensors
from wrmil_core.evidence.figures import Panel, plot_panels, reliability, tippett
from wrmil_core.evidence.scored import ModelScores
from wrmil_core.metrics import roc_auc, roc_points
from wrmil_core.plots import save_figure
from wrmil_core.report.evaluate import (
    THRESHOLD_LABELS,
    Evaluation,
    pct_label,
    ratio_mask,
    ratios_present,
)
from wrmil_core.report.forensic import ForensicEvaluation, geometry_of


def draw_figures(ev: Evaluation, results: dict[str, ModelScores], test: BagTensors, out_dir: Path,
                 seed: int) -> dict[str, Path]:
    """Write the three PNGs into ``out_dir``: ``{"main_plot", "roc_plot", "examples_plot"} -> path``."""
    return {
        "main_plot": plot_by_difficulty(ev, out_dir / "detection_by_difficulty.png"),
        "roc_plot": plot_roc(ev, results, test, out_dir / "roc_by_difficulty.png"),
        "examples_plot": plot_examples(ev, results, test, out_dir / "example_bags.png", seed),
    }


def plot_by_difficulty(ev: Evaluation, path: Path) -> Path:
    """Left: AUC vs genuine with its CI per difficulty; right: detection rate at the saved threshold."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    xs = [100 * r for r in ev.difficulties]
    thr_names = ev.threshold_names
    det_thr = "fpr_5" if "fpr_5" in thr_names else thr_names[0]
    markers, styles = "osD^vP*X", ["-", "--", "-.", ":"]
    # Nudge models apart on x so equal values (e.g. several at AUC 1.0) stay visible.
    span = 0.012 * (max(xs) - min(xs) if len(xs) > 1 else 10)
    for k, m in enumerate(ev.models):
        off = (k - (len(ev.models) - 1) / 2) * span
        style = dict(marker=markers[k % len(markers)], ls=styles[k % len(styles)], alpha=0.85, label=m)
        pts = [(100 * r.ratio + off, r) for r in ev.rows if r.model == m and r.ratio > 0]
        a = [(x, r.auc, r.auc_lo, r.auc_hi) for x, r in pts if r.auc is not None]
        if a:
            x, v, lo, hi = map(np.asarray, zip(*a))
            ax1.errorbar(x, v, yerr=[v - lo, hi - v], capsize=3, **style)
        d = [(x, r.flagged.get(det_thr)) for x, r in pts if r.flagged.get(det_thr) is not None]
        if d:
            ax2.plot(*zip(*d), **style)
    ax1.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax1.set(xlabel="contamination (% foreign)", ylabel="ROC AUC vs genuine (95% CI)", title="Separability",
            xticks=xs, ylim=(min([0.4] + [r.auc_lo - 0.03 for r in ev.rows if r.auc_lo is not None]), 1.02))
    ax2.set(xlabel="contamination (% foreign)", ylabel="detection rate",
            title=f"Detection at the {THRESHOLD_LABELS.get(det_thr, det_thr)} (fixed on val)", xticks=xs, ylim=(0, 1.02))
    for ax in (ax1, ax2):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "n/a (no contaminated bags)", ha="center", transform=ax.transAxes)
    return save_figure(fig, path)


def plot_roc(ev: Evaluation, results: dict[str, ModelScores], test: BagTensors, path: Path) -> Path:
    """One panel per difficulty: every model's ROC curve of genuine vs that difficulty."""
    if not ev.difficulties:
        return _placeholder("n/a (no contaminated bags)", path)
    y = test.label.numpy()
    n = len(ev.difficulties)
    cols = min(n, 4)
    nrows = int(math.ceil(n / cols))
    fig = Figure(figsize=(3.6 * cols, 3.5 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, cols)).ravel()
    for ax, r in zip(axes, ev.difficulties):
        sel = (y == 0) | ((y == 1) & ratio_mask(test.ratio, r))
        for m, s in results.items():
            probs = np.asarray(s.bag_probs)[sel]
            pts = roc_points(y[sel], probs)
            if pts is not None:
                ax.plot(*pts, label=f"{m} ({roc_auc(y[sel], probs):.2f})")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        ax.set(title=f"{pct_label(r)}% foreign vs genuine", xlabel="false-positive rate")
        if ax is axes[0] or cols == 1:
            ax.set_ylabel("detection rate")
        if ax.lines[:-1]:
            ax.legend(fontsize=7, loc="lower right")
        else:
            ax.text(0.5, 0.5, "n/a (no bags)", ha="center", transform=ax.transAxes)
    for ax in axes[n:]:
        ax.set_visible(False)
    return save_figure(fig, path)


def plot_examples(ev: Evaluation, results: dict[str, ModelScores], test: BagTensors, path: Path, seed: int) -> Path:
    """Window scores of one random genuine bag and one bag per difficulty, foreign windows shaded."""
    picks = _example_bags(ev.difficulties, test, seed)
    wf = test.window_foreign.numpy()
    fig = Figure(figsize=(11, 2.4 * max(1, len(picks))), layout="constrained")
    axes = np.atleast_1d(fig.subplots(max(1, len(picks)), 1, squeeze=False)).ravel()
    n_win = wf.shape[1]
    width = 0.8 / max(1, len(ev.models))
    for ax, (r, i) in zip(axes, picks):
        for w in np.flatnonzero(wf[i]):
            ax.axvspan(w - 0.45, w + 0.45, color="tab:red", alpha=0.12, lw=0)
        for k, m in enumerate(ev.models):
            s = np.asarray(results[m].window_scores[i], dtype=np.float64)
            span = s.max() - s.min()
            s = (s - s.min()) / span if span > 0 else np.zeros_like(s)  # scales differ across models
            ax.bar(np.arange(n_win) - 0.4 + width * (k + 0.5), s, width=width, label=m)
        title = "genuine" if r == 0 else f"{pct_label(r)}% ({100 * test.foreign_word_frac[i]:.0f}% of words foreign)"
        ax.set_title(f"bag {int(test.bag_id[i])}: {title}", fontsize=9, loc="left")
        ax.set(ylabel="score (min-max)", xticks=range(n_win), ylim=(0, 1.05))
    fig.suptitle("Window scores of example test bags; red shading = windows holding foreign words", fontsize=10)
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize=8, ncol=len(ev.models), loc="outside lower center")
    axes[-1].set_xlabel("window")
    return save_figure(fig, path)


def _placeholder(message: str, path: Path) -> Path:
    fig = Figure(figsize=(3.6, 3.5), layout="constrained")
    ax = fig.subplots()
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", transform=ax.transAxes)
    return save_figure(fig, path)


def _example_bags(difficulties: list[float], test: BagTensors, seed: int) -> list[tuple[float, int]]:
    """``(ratio, bag index)``: a random genuine bag (if any), then one per difficulty that has bags."""
    rng = np.random.default_rng(seed)
    y = test.label.numpy()
    picks = []
    for r in difficulties:
        idx = np.flatnonzero((y == 1) & ratio_mask(test.ratio, r))
        if idx.size:
            picks.append((r, int(rng.choice(idx))))
    g = np.flatnonzero(y == 0)
    if g.size:
        picks.insert(0, (0.0, int(rng.choice(g))))
    return picks


def draw_forensic_figures(fe: ForensicEvaluation, test: BagTensors, out_dir: Path) -> dict[str, Path]:
    """Tippett plots and reliability diagrams of every calibrated detector's test LLRs (one panel each)."""
    panels = [_llr_panel(fe, m, test) for m in fe.models]
    return {
        "tippett_plot": plot_panels(panels, tippett, out_dir / "tippett.png",
                                    "Tippett: share of test LRs >= x (H2 genuine in black; H1 per difficulty)"),
        "reliability_plot": plot_panels(panels, reliability, out_dir / "reliability.png",
                                        "Reliability: reported log10 LR vs PAV-recalibrated on test (diagonal = calibrated)"),
    }


def _llr_panel(fe: ForensicEvaluation, model: str, test: BagTensors) -> Panel:
    """H2 = the genuine bags' LLRs; H1 grouped per difficulty (and geometry, when there are several)."""
    llr, y, geo = fe.llrs[model], test.label.numpy(), geometry_of(test)
    geometries = sorted(set(geo[y == 1].tolist()))
    h1 = {}
    for r in ratios_present(test.ratio):
        for g in geometries:
            sel = (y == 1) & ratio_mask(test.ratio, r) & (geo == g)
            if sel.any():
                h1[f"{pct_label(r)}%" + (f" {g}" if len(geometries) > 1 else "")] = llr[sel]
    return Panel(title=model, h2=llr[y == 0], h1=h1)
