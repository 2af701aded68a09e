"""The difficulty report: every model side by side, per contamination level, on the test bags.

``evaluate.py`` computes the numbers (typed rows, no drawing), ``shortcuts.py`` those of the
shortcut controls (the distance detector and verification with the untrained network and raw
pixels beside the trained embedding), ``render.py`` writes ``report.md``, ``report.html``
(self-contained, plots embedded) and ``report.json``, ``figures.py`` draws the PNGs.
:func:`build_report` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wrmil_core.bags.tensors import BagTensors
from wrmil_core.mil.inference import ModelScores
from wrmil_core.mil.report import render
from wrmil_core.mil.report.evaluate import (
    DifficultyRow,
    Evaluation,
    OverallMetrics,
    check_beats_distance,
    evaluate_scores,
    pct_label,
)
from wrmil_core.mil.report.figures import draw_figures
from wrmil_core.mil.report.shortcuts import ShortcutControls, evaluate_controls, gather_baseline_bags

TITLE = "wrmil: multi-writer detection by difficulty"


@dataclass(frozen=True)
class Report:
    """The built report: its numbers, summary sentence, per-difficulty table and where the files are.

    ``paths``: ``main_plot``, ``roc_plot``, ``examples_plot`` (PNGs), ``md``, ``html``, ``json``.
    """

    evaluation: Evaluation
    summary: str
    markdown_table: str  # the per-difficulty table
    paths: dict[str, Path]
    shortcuts: ShortcutControls | None = None
    shortcut_table: str = ""  # Markdown; empty without shortcut controls

    @property
    def best_model(self) -> str | None:
        return self.evaluation.best_model

    @property
    def headline(self) -> dict[str, float]:
        return self.evaluation.headline

    @property
    def main_plot_png(self) -> Path:
        return self.paths["main_plot"]


def build_report(results: dict[str, ModelScores], test: BagTensors, out_dir: Path,
                 val_auc: dict[str, float] | None = None, n_boot: int = 1000, seed: int = 0,
                 title: str = TITLE, shortcuts: ShortcutControls | None = None) -> Report:
    """Evaluate every model's test scores per difficulty and write report.html/.md/.json + PNGs.

    ``results`` as returned by :func:`wrmil_core.mil.inference.score_saved_models`. The rows follow
    the contamination ratios present in ``test``; a figure without an answer (e.g. no genuine bags)
    is n/a. The best model is the one with the highest mean AUC over difficulties. ``shortcuts``
    (from :func:`evaluate_controls`) adds the shortcut-control section; the rest is the same with
    or without it.
    """
    ev = evaluate_scores(results, test, n_boot=n_boot, seed=seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = draw_figures(ev, results, test, out_dir, seed)
    text = render.report_text(ev, val_auc, title, shortcuts)
    paths["md"] = render.write_markdown(text, paths, out_dir / "report.md")
    paths["html"] = render.write_html(text, paths, out_dir / "report.html")
    paths["json"] = render.write_json(ev, text, val_auc, out_dir / "report.json", shortcuts)
    return Report(evaluation=ev, summary=text.summary, markdown_table=text.difficulty_table, paths=paths,
                  shortcuts=shortcuts, shortcut_table=text.shortcut_table)


__all__ = [
    "DifficultyRow",
    "Evaluation",
    "OverallMetrics",
    "Report",
    "ShortcutControls",
    "build_report",
    "check_beats_distance",
    "evaluate_controls",
    "evaluate_scores",
    "gather_baseline_bags",
    "pct_label",
]
