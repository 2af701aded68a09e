"""The difficulty report: every model side by side, per contamination level, on the test bags.

``evaluate.py`` computes the numbers (typed rows, no drawing), ``forensic.py`` the forensic ones
(calibrated log10 LRs: Cllr, misleading evidence, detection at the validation 1%/5%-FPR
thresholds, per difficulty, geometry and overall), ``shortcuts.py`` those of the shortcut controls
(the distance detector and verification with the untrained network and raw pixels beside the
trained embedding), ``render.py`` and ``forensic_text.py`` write ``report.md``, ``report.html``
(self-contained, plots embedded) and ``report.json``, ``figures.py`` draws the PNGs.
:func:`build_report` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wrmil_core.bags.tensors import BagTensors
from wrmil_core.evidence.scored import ModelScores
from wrmil_core.report import render
from wrmil_core.report.evaluate import (
    DifficultyRow,
    Evaluation,
    OverallMetrics,
    check_beats_distance,
    evaluate_scores,
    pct_label,
)
from wrmil_core.report.figures import draw_figures, draw_forensic_figures
from wrmil_core.report.forensic import ForensicEvaluation, evaluate_forensic
from wrmil_core.mil.registry import default_detector
from wrmil_core.report.forensic import geometry_of
from wrmil_core.report.compare import CompareRow, compare_headline, evaluate_compare, plot_compare_tippett
from wrmil_core.report.length import LengthRow, evaluate_length, length_headline, plot_length
from wrmil_core.report.never_misleading import CellCheck, check_report, failing
from wrmil_core.report.shortcuts import ShortcutControls, evaluate_controls, gather_baseline_bags

TITLE = "wrmil: multi-writer detection by difficulty"


@dataclass(frozen=True)
class Report:
    """The built report: its numbers, summary sentence, per-difficulty table and where the files are.

    ``paths``: ``main_plot``, ``roc_plot``, ``examples_plot`` (PNGs), ``md``, ``html``, ``json``, and
    with calibrated models ``tippett_plot`` and ``reliability_plot``.
    """

    evaluation: Evaluation
    summary: str
    markdown_table: str  # the per-difficulty table
    paths: dict[str, Path]
    shortcuts: ShortcutControls | None = None
    shortcut_table: str = ""  # Markdown; empty without shortcut controls
    forensic: ForensicEvaluation | None = None
    length_rows: list[LengthRow] | None = None
    checks: list[CellCheck] | None = None  # the never-misleading check, per geometry x difficulty cell
    compare_rows: list[CompareRow] | None = None  # wrmil compare on the test writers, per words per side

    @property
    def best_model(self) -> str | None:
        return self.evaluation.best_model

    @property
    def headline_model(self) -> str | None:
        """The default detector when it was evaluated (what ``wrmil score`` uses), else the best model."""
        default = default_detector()
        return default if default in self.evaluation.models else self.best_model

    @property
    def failing_cells(self) -> list[CellCheck]:
        """The cells where the default detector fails the never-misleading check."""
        return failing(self.checks or [])

    @property
    def headline(self) -> dict[str, float]:
        """Flat numbers for asset metadata: the per-difficulty ones and the forensic ones."""
        checks = ({"never_misleading/cells": len(self.checks), "never_misleading/failing": len(self.failing_cells)}
                  if self.checks else {})
        return (self.evaluation.headline | (self.forensic.headline if self.forensic else {})
                | length_headline(self.length_rows or []) | compare_headline(self.compare_rows or []) | checks)

    @property
    def main_plot_png(self) -> Path:
        return self.paths["main_plot"]


def build_report(results: dict[str, ModelScores], test: BagTensors, out_dir: Path,
                 val_auc: dict[str, float] | None = None, n_boot: int = 1000, seed: int = 0,
                 title: str = TITLE, shortcuts: ShortcutControls | None = None,
                 writers: np.ndarray | None = None, length_rows: list[LengthRow] | None = None,
                 compare_rows: list[CompareRow] | None = None) -> Report:
    """Evaluate every model's test scores per difficulty and write report.html/.md/.json + PNGs.

    ``results`` as returned by :func:`wrmil_core.evidence.scored.score_saved_models`. The rows follow
    the contamination ratios present in ``test``; a figure without an answer (e.g. no genuine bags)
    is n/a. The best model is the one with the highest mean AUC over difficulties. ``shortcuts``
    (from :func:`evaluate_controls`) adds the shortcut-control section; the rest is the same with
    or without it. Models whose scores carry evidence (calibration fitted on val) get the
    forensic section, and with the default detector among ``results`` the never-misleading check
    (:mod:`.never_misleading`) opens the report; ``writers`` ((B,) or (B, k) writer ids per test bag, negative = none) gives
    the writer counts behind each figure. ``length_rows`` (from :func:`evaluate_length`) adds the
    detection-against-document-length section, ``compare_rows`` (from :func:`evaluate_compare`) the
    two-document comparison section.
    """
    ev = evaluate_scores(results, test, n_boot=n_boot, seed=seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = draw_figures(ev, results, test, out_dir, seed)
    fe = evaluate_forensic(results, test, writers, val_auc)
    checks = check_report({m: s.bag_probs for m, s in results.items()}, test.label.numpy(), geometry_of(test),
                          test.ratio, default_detector())
    if fe.models:
        paths |= draw_forensic_figures(fe, test, out_dir)
    if length_rows:
        paths["length_plot"] = plot_length(length_rows, out_dir / "detection_by_length.png")
    if compare_rows:
        paths["compare_tippett_plot"] = plot_compare_tippett(compare_rows, out_dir / "compare_tippett.png")
    text = render.report_text(ev, val_auc, title, shortcuts, fe, length_rows, checks, compare_rows)
    paths["md"] = render.write_markdown(text, paths, out_dir / "report.md")
    paths["html"] = render.write_html(text, paths, out_dir / "report.html")
    paths["json"] = render.write_json(ev, text, val_auc, out_dir / "report.json", shortcuts, fe, length_rows, checks,
                                      compare_rows)
    return Report(evaluation=ev, summary=text.summary, markdown_table=text.difficulty_table, paths=paths,
                  shortcuts=shortcuts, shortcut_table=text.shortcut_table, forensic=fe, length_rows=length_rows,
                  checks=checks, compare_rows=compare_rows)


__all__ = [
    "CompareRow",
    "DifficultyRow",
    "Evaluation",
    "ForensicEvaluation",
    "LengthRow",
    "OverallMetrics",
    "Report",
    "ShortcutControls",
    "build_report",
    "check_beats_distance",
    "evaluate_compare",
    "evaluate_controls",
    "evaluate_forensic",
    "evaluate_length",
    "evaluate_scores",
    "gather_baseline_bags",
    "pct_label",
]
