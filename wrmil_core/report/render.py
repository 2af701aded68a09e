"""The report's text: summary sentence, Markdown tables, and the report.md / report.html / report.json files.

Everything here formats an :class:`~wrmil_core.report.evaluate.Evaluation`; no number is
computed. ``report.html`` is self-contained (plots embedded as data URIs); ``report.md`` links the
PNGs beside it.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

from wrmil_core.embedding.baselines import MIN_AUC_MARGIN
from wrmil_core.plots import png_data_uri
from wrmil_core.report import forensic_text
from wrmil_core.report.evaluate import (
    BASELINE,
    THRESHOLD_LABELS,
    Evaluation,
    pct_label,
)
from wrmil_core.report.forensic import ForensicEvaluation
from wrmil_core.report.forensic_text import FORENSIC_HEADING, GROUP_HEADINGS
from wrmil_core.report.compare import HEADING as COMPARE_HEADING
from wrmil_core.report.compare import CompareRow, compare_intro, compare_table
from wrmil_core.report.length import LengthRow, length_intro, length_table
from wrmil_core.report.never_misleading import MARGIN, CellCheck, check_lines, check_table
from wrmil_core.report.shortcuts import LABELS, ShortcutControls
from wrmil_core.report.tables import fmt, markdown_table

CSS = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
       "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}th,td{border:1px solid #ccc;padding:3px 8px;"
       "text-align:right}th{background:#f0f0f0}td:first-child,td:nth-child(2){text-align:left}img{max-width:100%}")
OVERALL_HEADING = "The original's metrics, reproduced (all test bags, at the max-F1 threshold)"
SHORTCUT_HEADING = "Shortcut controls: could the capture explain it?"
LENGTH_HEADING = "Detection against document length"
CHECK_HEADING = "Never misleading: the default detector in every geometry x difficulty cell"
CHECK_INTRO = ("An examiner does not know where foreign words sit. In every cell (the genuine test bags against "
               "the contaminated ones of one geometry and difficulty) the default detector, which `wrmil score` "
               f"uses, must have an AUC above 0.5 and at most {MARGIN} below the best single detector there.")


@dataclass(frozen=True)
class ReportText:
    """The report's prose and Markdown tables, shared by the Markdown and HTML files."""

    title: str
    summary: str
    intro: str
    pivot_table: str  # AUC per model x difficulty
    difficulty_table: str  # every figure per difficulty and model
    overall_table: str
    shortcut_intro: str = ""  # empty: no shortcut controls were evaluated
    shortcut_table: str = ""
    forensic: forensic_text.ForensicText | None = None  # None: no model carries a calibration
    length_intro: str = ""  # empty: no length curve was evaluated
    length_table: str = ""
    check_lines: tuple[str, ...] = ()  # the never-misleading verdict and failing cells: the first lines
    check_table: str = ""
    compare_intro: str = ""  # empty: the default detector has no comparison calibration
    compare_table: str = ""


def report_text(ev: Evaluation, val_auc: dict[str, float] | None, title: str,
                shortcuts: ShortcutControls | None = None, fe: ForensicEvaluation | None = None,
                length_rows: list[LengthRow] | None = None, checks: list[CellCheck] | None = None,
                compare_rows: list[CompareRow] | None = None) -> ReportText:
    """Summary, intro and tables of the report (and its shortcut-control and forensic sections when given)."""
    intro = (f"Test bags: {ev.n_test_bags} ({ev.n_genuine} genuine, {ev.n_contaminated} contaminated); "
             f"embedding model `{ev.embedding_model_id}`. "
             "Thresholds were fixed on the validation bags. \"Flagged\" is the false-positive rate on the 0% "
             "(genuine) rows and the detection rate on the others. Localisation is over contaminated bags: "
             "AUC of window scores against windows holding foreign words, and how often the top-scored window "
             f"holds one. AUC CIs: {ev.n_boot} stratified bootstrap resamples.")
    return ReportText(title=title, summary=summary(ev), intro=intro, pivot_table=pivot_table(ev),
                      difficulty_table=difficulty_table(ev), overall_table=overall_table(ev, val_auc),
                      shortcut_intro=shortcut_intro(shortcuts) if shortcuts else "",
                      shortcut_table=shortcut_table(shortcuts) if shortcuts else "",
                      forensic=forensic_text.forensic_text(fe) if fe is not None and fe.models else None,
                      length_intro=length_intro(length_rows) if length_rows else "",
                      length_table=length_table(length_rows) if length_rows else "",
                      check_lines=tuple(check_lines(checks or [])), check_table=check_table(checks) if checks else "",
                      compare_intro=compare_intro(compare_rows) if compare_rows else "",
                      compare_table=compare_table(compare_rows) if compare_rows else "")


def summary(ev: Evaluation) -> str:
    """One sentence: the best model and its AUC gain over the abmil baseline per difficulty."""
    best = ev.best_model
    if best is None:
        return "No model could be ranked: the test bags lack genuine or contaminated bags."
    if BASELINE not in ev.models:
        return f"Best model: {best} (mean AUC {ev.mean_auc[best]:.3f}); {BASELINE} was not evaluated."
    parts = [f"{k}%: {'n/a' if v is None else f'{v:+.3f}'}" for k, v in ev.gain_over_abmil.items()]
    return (f"Best model: {best} (mean AUC over difficulties {ev.mean_auc[best]:.3f} vs {BASELINE} "
            f"{fmt(ev.mean_auc[BASELINE])}). AUC gain over {BASELINE} by difficulty: " + ", ".join(parts) + ".")


def difficulty_table(ev: Evaluation) -> str:
    """Per difficulty (genuine first) and model: bags, foreign share, AUC [CI], flagged rates, localisation."""
    thr = [t for t in ev.threshold_names if t != "max_f1"]  # max-F1 only in the original's table
    head = ["difficulty", "model", "bags", "true foreign %", "AUC vs genuine [95% CI]"]
    head += [f"flagged @ {THRESHOLD_LABELS.get(t, t)}" for t in thr] + ["loc. AUC", "top-1 hit"]
    body = []
    for ratio in [0.0] + ev.difficulties:
        for r in (r for r in ev.rows if r.ratio == ratio):
            auc = "n/a" if r.auc is None else f"{r.auc:.3f} [{fmt(r.auc_lo)}, {fmt(r.auc_hi)}]"
            label = "0% (genuine: FPR)" if ratio == 0 else r.difficulty
            ff = "n/a" if r.foreign_frac is None else f"{100 * r.foreign_frac:.1f}"
            cells = [label, r.model, str(r.n_bags), ff, auc if ratio > 0 else "—"]
            cells += [fmt(r.flagged.get(t)) for t in thr]
            cells += [fmt(r.loc_auc) if ratio > 0 else "—", fmt(r.top1) if ratio > 0 else "—"]
            body.append(cells)
    return markdown_table(head, body)


def overall_table(ev: Evaluation, val_auc: dict[str, float] | None) -> str:
    """Per model: val AUC, test AUC [CI], F1, recall, precision, localisation over all test bags."""
    head = ["model", "val AUC", "test AUC [95% CI]", "F1", "recall", "precision", "loc. AUC", "top-1 hit"]
    body = []
    for name, o in ev.overall.items():
        auc = "n/a" if o.auc is None else f"{o.auc:.3f} [{fmt(o.auc_lo)}, {fmt(o.auc_hi)}]"
        body.append([name, fmt((val_auc or {}).get(name)), auc, fmt(o.f1), fmt(o.recall), fmt(o.precision),
                     fmt(o.loc_auc), fmt(o.top1)])
    return markdown_table(head, body)


def pivot_table(ev: Evaluation) -> str:
    """AUC per model (rows) and difficulty (columns), with the mean."""
    head = ["model"] + [f"AUC {pct_label(r)}%" for r in ev.difficulties] + ["mean"]
    return markdown_table(head, [[m] + [fmt(ev.auc_of(m, r)) for r in ev.difficulties] + [fmt(ev.mean_auc[m])]
                         for m in ev.models])


def shortcut_table(sc: ShortcutControls) -> str:
    """Per embedding: verification AUC [CI], EER, top-1 and mAP; distance-detector AUC [CI] per difficulty, mean."""
    head = ["embedding", "verification AUC [95% CI]", "EER", "top-1", "mAP"]
    head += [f"distance AUC {pct_label(r)}% [95% CI]" for r in sc.difficulties] + ["distance mean AUC"]
    body = []
    for e in sc.embeddings:
        q = sc.verification[e]
        cells = [LABELS.get(e, e), _with_ci(q.get("auc"), q.get("auc_lo"), q.get("auc_hi")), fmt(q.get("eer")),
                 fmt(q.get("top1")), fmt(q.get("map"))]
        cells += [_with_ci(r.auc, r.auc_lo, r.auc_hi) for r in sc.detection if r.embedding == e]
        body.append(cells + [fmt(sc.mean_detection_auc(e))])
    return markdown_table(head, body)


def shortcut_intro(sc: ShortcutControls) -> str:
    """What the shortcut controls are, how many writers and words stand behind them, and the verdict."""
    q = sc.verification[sc.embeddings[0]]
    text = ("The same test words and bags with the trained embedding and with embeddings that learned nothing "
            "about handwriting: the untrained network (same architecture, seed and input, initial weights) and "
            "raw pixels (the network's input image averaged to 16x64, centred). Verification: word pairs of the "
            f"{q['n_writers']} test writers ({q['n_images']} words, {q['n_pairs']} pairs, {q['n_queries']} retrieval "
            f"queries), {_writer_ci_note(q['n_boot'])}. Distance: the training-free detector, "
            f"AUC of genuine vs contaminated bags, CIs from {sc.n_boot} bag resamples. ")
    if "pixels" not in sc.embeddings:
        return text
    m = sc.margin_over("pixels")
    ver, det = m["verification_auc"], m["distance_mean_auc"]
    figures = f"verification AUC {fmt(ver)}, mean distance AUC {fmt(det)}"
    if ver is None or det is None:
        return text + f"Trained embedding minus raw pixels: {figures}."
    if min(ver, det) < MIN_AUC_MARGIN:
        return text + (f"The trained embedding does not beat raw pixels by {MIN_AUC_MARGIN} AUC (trained minus raw "
                       f"pixels: {figures}): a capture or scanner shortcut (paper, ink tone, letterboxing, each "
                       "writer's pages scanned apart) could explain much of the detection.")
    return text + f"The trained embedding beats raw pixels by {figures}."


def _writer_ci_note(n_boot: int) -> str:
    return f"CIs from {n_boot} resamples of the writers" if n_boot else "no CIs: fewer than 3 writers"


def _with_ci(v: float | None, lo: float | None, hi: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f} [{fmt(lo)}, {fmt(hi)}]"


Block = tuple[str, object]
"""One piece of the report: ``("h1" | "h2" | "h3" | "p" | "b", text)``, ``("table", markdown)``,
``("img", (alt, path))``. Markdown and HTML render the same blocks, so they never drift apart."""


def report_blocks(text: ReportText, plots: dict[str, Path]) -> list[Block]:
    """The report in order: the never-misleading verdict and failing cells, few-data caution, title,
    summary, the never-misleading table, forensic section,
    length curve, two-document comparison, per-difficulty detection, the original's metrics, shortcut
    controls, plots."""
    fx = text.forensic
    blocks: list[Block] = [("b", line) for line in text.check_lines]
    blocks += [("b", fx.caution)] if fx is not None and fx.caution else []
    blocks += [("h1", text.title), ("b", text.summary), ("p", text.intro)]
    if text.check_table:
        blocks += [("h2", CHECK_HEADING), ("p", CHECK_INTRO), ("table", text.check_table)]
    if fx is not None:
        blocks += [("h2", FORENSIC_HEADING), ("p", fx.intro), ("b", fx.comparison)]
        for group, table in fx.tables.items():
            blocks += [("h3", GROUP_HEADINGS[group]), ("table", table)]
        blocks += [("h3", "Calibration (fitted on validation)"), ("table", fx.calibration_table)]
        blocks += [("img", ("Tippett plots", plots["tippett_plot"])), ("img", ("reliability", plots["reliability_plot"]))]
    if text.length_table:
        blocks += [("h2", LENGTH_HEADING), ("p", text.length_intro), ("table", text.length_table),
                   ("img", ("detection by document length", plots["length_plot"]))]
    if text.compare_table:
        blocks += [("h2", COMPARE_HEADING), ("p", text.compare_intro), ("table", text.compare_table),
                   ("img", ("comparison Tippett plots", plots["compare_tippett_plot"]))]
    blocks += [("h2", "AUC by difficulty"), ("table", text.pivot_table),
               ("img", ("detection by difficulty", plots["main_plot"])),
               ("h2", "Per difficulty"), ("table", text.difficulty_table),
               ("h2", OVERALL_HEADING), ("table", text.overall_table)]
    if text.shortcut_table:
        blocks += [("h2", SHORTCUT_HEADING), ("p", text.shortcut_intro), ("table", text.shortcut_table)]
    return blocks + [("h2", "Plots"), ("h3", "ROC curves"), ("img", ("ROC by difficulty", plots["roc_plot"])),
                     ("h3", "Example bags"), ("img", ("example bags", plots["examples_plot"]))]


def write_markdown(text: ReportText, plots: dict[str, Path], path: Path) -> Path:
    """report.md: the blocks as Markdown, linking the PNGs (which sit beside it)."""
    heads = {"h1": "# ", "h2": "## ", "h3": "### "}
    out = []
    for kind, v in report_blocks(text, plots):
        if kind == "img":
            alt, p = v  # type: ignore[misc]
            out.append(f"![{alt}]({Path(p).name})")
        else:
            out.append(heads.get(kind, "") + (f"**{v}**" if kind == "b" else str(v)))
    path.write_text("\n\n".join(out + [""]))
    return path


def _html_table(md: str) -> str:
    """A Markdown table (as written by :func:`_table`) as an HTML table."""
    lines = [ln for ln in md.splitlines() if ln.strip()]
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
    head, body = cells[0], cells[2:]
    out = ["<table><thead><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head) + "</tr></thead><tbody>"]
    out += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body]
    return "".join(out) + "</tbody></table>"


def _html_block(kind: str, v: object) -> str:
    if kind == "table":
        return _html_table(str(v))
    if kind == "img":
        alt, p = v  # type: ignore[misc]
        return f"<img alt='{html.escape(alt)}' src='{png_data_uri(p)}'>"
    if kind == "b":
        return f"<p><b>{html.escape(str(v))}</b></p>"
    return f"<{kind}>{html.escape(str(v))}</{kind}>"


def write_html(text: ReportText, plots: dict[str, Path], path: Path) -> Path:
    """report.html: the same blocks as report.md, self-contained (plots embedded)."""
    body = "".join(_html_block(k, v) for k, v in report_blocks(text, plots))
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(text.title)}</title>"
                    f"<style>{CSS}</style></head><body>{body}</body></html>")
    return path


def write_json(ev: Evaluation, text: ReportText, val_auc: dict[str, float] | None, path: Path,
               shortcuts: ShortcutControls | None = None, fe: ForensicEvaluation | None = None,
               length_rows: list[LengthRow] | None = None, checks: list[CellCheck] | None = None,
               compare_rows: list[CompareRow] | None = None) -> Path:
    """report.json: every number (strict JSON: n/a is null, never NaN)."""
    doc = {"title": text.title, "summary": text.summary, "best_model": ev.best_model,
           "gain_over_abmil": ev.gain_over_abmil, "mean_auc": ev.mean_auc, "difficulties": ev.difficulties,
           "n_test_bags": ev.n_test_bags, "n_genuine": ev.n_genuine, "n_contaminated": ev.n_contaminated,
           "embedding_model_id": ev.embedding_model_id, "thresholds": ev.thresholds, "val_auc": val_auc,
           "rows": [r.as_dict() for r in ev.rows], "overall": {m: o.as_dict() for m, o in ev.overall.items()},
           "headline": ev.headline, "n_boot": ev.n_boot}
    if shortcuts is not None:
        doc["shortcut_controls"] = shortcuts.as_dict()
    if fe is not None:
        doc["forensic"] = fe.as_dict() | {"caution": text.forensic.caution if text.forensic else "",
                                         "comparison_text": text.forensic.comparison if text.forensic else ""}
    if length_rows:
        doc["length_curve"] = [r.as_dict() for r in length_rows]
    if compare_rows:
        doc["comparison"] = [r.as_dict() for r in compare_rows]
    if checks:
        doc["never_misleading"] = {"lines": list(text.check_lines), "cells": [c.as_dict() for c in checks]}
    path.write_text(json.dumps(doc, indent=2, allow_nan=False))
    return path
