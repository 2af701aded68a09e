"""The forensic section's words and tables: the few-data caution, the baseline verdict, Cllr tables.

Formats a :class:`~wrmil_core.report.forensic.ForensicEvaluation`; no number is computed here.
"""

from __future__ import annotations

from dataclasses import dataclass

from wrmil_core.report.evaluate import BASELINE
from wrmil_core.report.forensic import FEW_GENUINE, FEW_WRITERS, ForensicEvaluation, ForensicRow
from wrmil_core.report.tables import fmt, markdown_table

FORENSIC_HEADING = "Evidence in the forensic convention (calibrated log10 LR, thresholds fixed on validation)"
GROUP_HEADINGS = {"overall": "All test bags", "difficulty": "By difficulty (genuine bags vs that share of foreign words)",
                  "geometry": "By geometry (genuine bags vs contaminated bags of that geometry)"}


@dataclass(frozen=True)
class ForensicText:
    """Prose and Markdown tables of the forensic section."""

    caution: str  # the report's first line when the data are few, else ""
    intro: str
    comparison: str  # the learned models against the best training-free detector, in words
    tables: dict[str, str]  # group -> Markdown table
    calibration_table: str


def model_label(fe: ForensicEvaluation, model: str) -> str:
    """The model's name, marked when it is the seed baseline or the best training-free detector."""
    if model == BASELINE:
        return f"{model} (seed baseline)"
    if model == fe.comparison.baseline:
        return f"{model} (best training-free, by val)"
    return model


def caution(fe: ForensicEvaluation) -> str:
    """One line, when few writers or genuine bags stand behind the figures; else ''."""
    if not fe.few_data:
        return ""
    writers = "an unknown number of" if fe.n_writers is None else str(fe.n_writers)
    return (f"Few data: {writers} test writers and {fe.n_bags} test bags ({fe.n_genuine} genuine) stand behind "
            f"every figure below (under {FEW_WRITERS} writers or {FEW_GENUINE} genuine bags); read them as "
            "indicative, not as validated error rates.")


def intro(fe: ForensicEvaluation) -> str:
    """What the section's figures are and what stands behind them."""
    writers = "" if fe.n_writers is None else f" of {fe.n_writers} writers"
    skipped = (f" Left out (no calibration saved with the model): {', '.join(fe.uncalibrated)}."
               if fe.uncalibrated else "")
    return ("H1: more than one writer; H2: one writer. Each detector's bag score is turned into log10 LR by "
            "pool-adjacent-violators calibration bounded by ELUB (NFI's lir), fitted on the validation bags only; "
            "the 1% and 5% false-positive thresholds were fixed on the genuine validation bags and the false-positive "
            "rate is measured here on the genuine test bags. Cllr: 1 = uninformative, 0 = perfect; Cllr_min: after "
            "the best recalibration on these test bags (discrimination alone); Cllr_cal = Cllr - Cllr_min (cost of "
            "miscalibration). Misleading evidence: share of H1 bags with LR < 1, of H2 bags with LR > 1. "
            f"Test bags: {fe.n_bags}{writers} ({fe.n_genuine} genuine); each row gives the bags and writers behind "
            f"it.{skipped}")


def comparison(fe: ForensicEvaluation) -> str:
    """The learned models against the best training-free detector, in words."""
    c = fe.comparison
    if c.baseline is None:
        return "No training-free detector with a validation AUC was evaluated, so the learned models have no baseline here."
    base = fe.row(c.baseline)
    ref = f"{c.baseline} (best training-free detector by validation AUC {c.baseline_val_auc:.3f}; test Cllr " \
          f"{fmt(base.figures['cllr'] if base else None)})"
    if not c.beating and not c.not_beating:
        return f"Baseline for the learned models: {ref}; no learned model was evaluated."
    parts = [f"Baseline for the learned models: {ref}."]
    for m in c.not_beating:
        parts.append(f"{m} does not beat it on test (Cllr {fmt(_cllr(fe, m))}).")
    if c.beating:
        parts.append("Lower test Cllr than the baseline: " + ", ".join(f"{m} ({fmt(_cllr(fe, m))})" for m in c.beating) + ".")
    return " ".join(parts)


def _cllr(fe: ForensicEvaluation, model: str) -> float | None:
    row = fe.row(model)
    return row.figures["cllr"] if row else None


def group_table(fe: ForensicEvaluation, group: str) -> str:
    """Rows of one group (value, model, writers, bags, Cllr..., detection and test FPR at the val thresholds)."""
    keys = sorted({k for m in fe.models for k in fe.thresholds[m]}, key=lambda k: float(k.split("_")[1]))
    head = ["group", "model", "writers", "H1 bags", "H2 bags", "Cllr", "Cllr_min", "Cllr_cal",
            "misleading H1", "misleading H2"]
    head += [f"detection @ {k.split('_')[1]}% FPR" for k in keys] + [f"test FPR @ {k.split('_')[1]}%" for k in keys]
    rows = [r for r in fe.rows if r.group == group]
    order = list(dict.fromkeys(r.value for r in rows))
    body = [_cells(fe, r, keys) for v in order for r in rows if r.value == v]
    return markdown_table(head, body)


def _cells(fe: ForensicEvaluation, r: ForensicRow, keys: list[str]) -> list[str]:
    f = r.figures
    cells = [r.value, model_label(fe, r.model), "n/a" if r.n_writers is None else str(r.n_writers), str(r.n_h1),
             str(r.n_h2), fmt(f["cllr"]), fmt(f["cllr_min"]), fmt(f["cllr_cal"]), fmt(f["rme_h1"]), fmt(f["rme_h2"])]
    return cells + [fmt(r.detection.get(k)) for k in keys] + [fmt(r.fpr.get(k)) for k in keys]


def calibration_table(fe: ForensicEvaluation) -> str:
    """Per model: the validation bags and writers behind its calibration, the LLR bounds and thresholds."""
    head = ["model", "val H1 bags", "val H2 bags", "val writers", "calibrator (PAV levels)",
            "val Cllr PAV / logistic", "log10 LR bounds (ELUB)", "thresholds (val)"]
    body = []
    for m in fe.models:
        c = fe.calibration[m]
        thr = ", ".join(f"{k.split('_')[1]}% FPR: {v:.4g}" for k, v in fe.thresholds[m].items())
        body.append([model_label(fe, m), str(c["n_h1"]), str(c["n_h2"]),
                     "n/a" if c["n_writers"] is None else str(c["n_writers"]),
                     f"{c.get('kind', 'pav')} ({c.get('pav_levels') or 'n/a'})",
                     f"{fmt(c.get('cllr_val_pav'))} / {fmt(c.get('cllr_val_logistic'))}",
                     f"[{c['lower']:.2f}, {c['upper']:.2f}]", thr])
    return markdown_table(head, body)


def forensic_text(fe: ForensicEvaluation) -> ForensicText:
    """Every text of the forensic section."""
    groups = [g for g in GROUP_HEADINGS if any(r.group == g for r in fe.rows)]
    return ForensicText(caution=caution(fe), intro=intro(fe), comparison=comparison(fe),
                        tables={g: group_table(fe, g) for g in groups}, calibration_table=calibration_table(fe))
