"""The report's length section: every saved detector on test documents of 25 to 200 words.

The documents come from :mod:`wrmil_core.evidence.length`. A detector scores a document as
``wrmil score`` does today, by *sliding bags* of its training geometry over the document, the
document score being the maximum over the bags (thresholds were fitted on single bags, so this is
the length effect the issue points at: more bags, more chances to cross the threshold). A
training-free detector is also scored on the *whole document* as one bag (``<name> (whole)``):
the word-level statistics (``segment_scan``, ``scattered``) are built to keep their one-writer
distribution flat in the length, so their 5%-FPR threshold should hold at every length.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import polars as pl
from matplotlib.figure import Figure

from wrmil_core.bags.layout import document_windows, window_rows
from wrmil_core.detectors.base import MILModel
from wrmil_core.detectors.run import score_tensor
from wrmil_core.evidence.length import LENGTHS, LengthRow, length_curve
from wrmil_core.mil.documents import DocScorer, sliding_scorer
from wrmil_core.mil.registry import is_training_free, load_mil_model
from wrmil_core.plots import save_figure
from wrmil_core.report.tables import fmt, markdown_table

WHOLE = " (whole)"


def whole_scorer(model: MILModel, window_size: int) -> DocScorer:
    """Documents -> the bag probability of the whole document as one bag of all its windows."""
    def score(x: np.ndarray) -> np.ndarray:
        rows = window_rows(document_windows(x.shape[1], window_size), window_size)
        return score_tensor(model, x[:, rows])[0]
    return score


def saved_scorers(model_dirs: Mapping[str, str | Path], thresholds: Mapping[str, float],
                  device: str = "cpu") -> tuple[dict[str, DocScorer], dict[str, float]]:
    """Document scorers of every saved model (sliding; whole too when training-free), with the
    val 5%-FPR threshold of each (``thresholds``: model -> threshold; models without one are skipped)."""
    scorers, thr = {}, {}
    for name, directory in model_dirs.items():
        if name not in thresholds:
            continue
        model, cfg = load_mil_model(directory, device)
        scorers[name] = sliding_scorer(model, int(cfg["window_size"]), int(cfg["bag_size"]))
        thr[name] = thresholds[name]
        if is_training_free(name):
            scorers[name + WHOLE] = whole_scorer(model, int(cfg["window_size"]))
            thr[name + WHOLE] = thresholds[name]
    return scorers, thr


def evaluate_length(model_dirs: Mapping[str, str | Path], thresholds: Mapping[str, float], emb: pl.DataFrame,
                    lengths: tuple[int, ...] = LENGTHS, device: str = "cpu", **kwargs) -> list[LengthRow]:
    """The length curve of every saved model on the test embeddings ``emb`` (see the module docstring)."""
    scorers, thr = saved_scorers(model_dirs, thresholds, device)
    return length_curve(emb, scorers, thr, lengths, **kwargs)


def length_table(rows: list[LengthRow]) -> str:
    """Markdown: per detector and length, documents and writers, AUC, detection and FPR at the val 5% threshold."""
    head = ["model", "words", "writers", "H1 docs", "H2 docs", "AUC", "detection @ val 5%-FPR threshold",
            "test FPR @ that threshold"]
    body = [[r.model, str(r.length), str(r.n_writers), str(r.n_h1), str(r.n_h2), fmt(r.auc), fmt(r.detection),
             fmt(r.fpr)] for r in rows]
    return markdown_table(head, body)


def length_headline(rows: list[LengthRow]) -> dict[str, float]:
    """Flat ``<model>/length_<figure>_<words>`` numbers for asset metadata (n/a left out)."""
    out: dict[str, float] = {}
    for r in rows:
        key = r.model.replace(WHOLE, "_whole")
        for fig in ("auc", "detection", "fpr"):
            if getattr(r, fig) is not None:
                out[f"{key}/length_{fig}_{r.length}"] = float(getattr(r, fig))
    return out


def length_intro(rows: list[LengthRow]) -> str:
    """What the length section shows."""
    return ("Test documents of each length cut from the test writers' concatenated words, half with a contiguous "
            "passage of 20% of the words planted from another test writer. Every detector scores a document by "
            "sliding bags of its training geometry (the maximum over the bags, as `wrmil score` does); a "
            "training-free one also on the whole document as one bag (\"(whole)\"). The threshold is the "
            "detector's 5%-FPR threshold fixed on the validation bags; a false-positive rate that climbs with the "
            "length is the length effect of the maximum over more bags.")


def plot_length(rows: list[LengthRow], path: Path) -> Path:
    """Left: AUC against document length; right: detection (solid) and false-positive rate (dotted)."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    for k, m in enumerate(dict.fromkeys(r.model for r in rows)):
        mine = [r for r in rows if r.model == m]
        xs = [r.length for r in mine]
        color = f"C{k % 10}"
        ax1.plot(xs, [np.nan if r.auc is None else r.auc for r in mine], marker="o", color=color, label=m)
        ax2.plot(xs, [np.nan if r.detection is None else r.detection for r in mine], marker="o", color=color, label=m)
        ax2.plot(xs, [np.nan if r.fpr is None else r.fpr for r in mine], ls=":", marker="x", color=color)
    ax2.axhline(0.05, color="grey", lw=0.8, ls="--")
    lengths = sorted({r.length for r in rows})
    ax1.set(xlabel="document length (words)", ylabel="ROC AUC", title="Separability by length", xscale="log",
            xticks=lengths, xticklabels=[str(v) for v in lengths])
    ax2.set(xlabel="document length (words)", ylabel="rate", xscale="log", xticks=lengths,
            xticklabels=[str(v) for v in lengths], ylim=(0, 1.02),
            title="Detection (solid) and FPR (dotted) at the val 5%-FPR threshold")
    for ax in (ax1, ax2):
        ax.minorticks_off()  # the log axis would label 30, 40, 60 ... between the lengths
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return save_figure(fig, path)
