"""The report's forensic numbers: calibrated log10 LRs on the test bags, per difficulty, per geometry, overall.

Every detector whose scores carry evidence (a calibrator and 1%/5%-FPR thresholds fitted on the
validation bags, see :mod:`wrmil_core.evidence`) gets, for each group of test bags (all bags;
the genuine bags with the contaminated bags of one difficulty; with those of one geometry):
Cllr, Cllr_min, Cllr_cal, the rates of misleading evidence for H1 and H2, and the detection rate
and measured false-positive rate at the validation thresholds. Each row carries the bags and
writers behind it. Nothing is drawn or written here.

The learned models are compared with the best training-free detector, chosen by validation AUC
(never by test); a learned model "beats" it when its test Cllr over all bags is lower.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from wrmil_core.bags.tensors import BagTensors
from wrmil_core.evidence import FIGURES, forensic_metrics, rates_at_thresholds
from wrmil_core.evidence.scored import ModelScores
from wrmil_core.mil.registry import is_training_free
from wrmil_core.report.evaluate import pct_label, ratio_mask

GENUINE_GEOMETRY = "none"
DEFAULT_GEOMETRY = "contiguous"  # bags tables written before the geometry column had only this one
FEW_WRITERS = 30  # fewer test writers than this: the report's first line says the figures are indicative
FEW_GENUINE = 100  # fewer genuine test bags cannot resolve a 1% false-positive rate


@dataclass(frozen=True)
class ForensicRow:
    """One detector on one group of test bags (``group``: overall / difficulty / geometry)."""

    model: str
    group: str
    value: str  # "all", "5%", "contiguous", ...
    n_h1: int  # contaminated bags (more than one writer)
    n_h2: int  # genuine bags (one writer)
    n_writers: int | None  # distinct writers in these bags (base and donor), None when unknown
    figures: dict[str, float | None]  # FIGURES
    detection: dict[str, float | None]  # threshold name -> detection rate on these H1 bags
    fpr: dict[str, float | None]  # threshold name -> false-positive rate measured on the genuine test bags

    def as_dict(self) -> dict[str, Any]:
        """The row as written to report.json."""
        return asdict(self)


@dataclass(frozen=True)
class BaselineComparison:
    """The learned models against the best training-free detector (by val AUC), on test Cllr and AUC."""

    baseline: str | None  # None: no training-free detector with a val AUC and evidence
    baseline_val_auc: float | None
    not_beating: list[str]  # learned models whose test Cllr is not lower than the baseline's
    beating: list[str]


@dataclass(frozen=True)
class ForensicEvaluation:
    """Every forensic number of the report."""

    models: list[str]  # those with evidence, in the order given
    uncalibrated: list[str]  # those without (left out of the section)
    thresholds: dict[str, dict[str, float]]  # model -> {"fpr_1": t, "fpr_5": t} (fixed on val)
    calibration: dict[str, dict[str, Any]]  # model -> n_h1, n_h2, n_writers, lower, upper (val)
    rows: list[ForensicRow]
    llrs: dict[str, np.ndarray]  # model -> test log10 LRs (for the figures; not in JSON)
    n_writers: int | None
    n_bags: int
    n_genuine: int
    comparison: BaselineComparison

    @property
    def few_data(self) -> bool:
        """Too few writers or genuine bags for the figures to be more than indicative."""
        return (self.n_writers is not None and self.n_writers < FEW_WRITERS) or self.n_genuine < FEW_GENUINE

    def row(self, model: str, group: str = "overall", value: str = "all") -> ForensicRow | None:
        """The row of ``model`` for one group, None when absent."""
        return next((r for r in self.rows if (r.model, r.group, r.value) == (model, group, value)), None)

    @property
    def headline(self) -> dict[str, float]:
        """Flat ``model/forensic_<figure>[_<group value>]`` numbers for asset metadata (n/a left out)."""
        out: dict[str, float] = {}
        for r in self.rows:
            tag = "" if r.group == "overall" else "_" + r.value.rstrip("%")
            vals = {**r.figures, **{f"det_at_{k}": v for k, v in r.detection.items()}}
            if r.group == "overall":
                vals |= {f"test_fpr_at_{k}": v for k, v in r.fpr.items()}
            out.update({f"{r.model}/forensic_{k}{tag}": float(v) for k, v in vals.items() if v is not None})
        return out

    def as_dict(self) -> dict[str, Any]:
        """The section as written to report.json (LLRs left out)."""
        return {"models": self.models, "uncalibrated": self.uncalibrated, "thresholds": self.thresholds,
                "calibration": self.calibration, "rows": [r.as_dict() for r in self.rows],
                "n_writers": self.n_writers, "n_bags": self.n_bags, "n_genuine": self.n_genuine,
                "few_data": self.few_data, "comparison": asdict(self.comparison), "headline": self.headline}


def geometry_of(test: BagTensors) -> np.ndarray:
    """Each test bag's contamination geometry; a bag table without one is all contiguous."""
    geo = getattr(test, "geometry", None)
    y = test.label.numpy()
    if geo is None:
        return np.where(y == 1, DEFAULT_GEOMETRY, GENUINE_GEOMETRY).astype(object)
    return np.asarray(geo, dtype=object)


def evaluate_forensic(results: dict[str, ModelScores], test: BagTensors, writers: np.ndarray | None = None,
                      val_auc: dict[str, float] | None = None) -> ForensicEvaluation:
    """The forensic numbers (module docstring). ``writers``: (B,) or (B, k) writer ids per test bag
    (base and donor; negative = none), for the writer counts; None leaves them unknown."""
    evidence = {m: s.evidence for m, s in results.items() if s.evidence is not None}
    y = test.label.numpy().astype(int)
    groups = _groups(test)
    rows, llrs = [], {}
    for m, ev in evidence.items():
        probs = np.asarray(results[m].bag_probs, dtype=np.float64)
        llrs[m] = ev.log10_lr(probs)
        rows += [_row(m, group, value, llrs[m][sel], probs[sel], y[sel], ev.thresholds, _count_writers(writers, sel))
                 for group, value, sel in groups]
    calib = {m: {"n_h1": ev.calibrator.n_h1, "n_h2": ev.calibrator.n_h2, "n_writers": ev.calibrator.n_writers,
                 "lower": ev.calibrator.lower, "upper": ev.calibrator.upper, "n_genuine_val": ev.n_genuine_val,
                 "kind": ev.calibrator.kind, "pav_levels": ev.calibrator.pav_levels,
                 "cllr_val_pav": ev.calibrator.cllr_val_pav, "cllr_val_logistic": ev.calibrator.cllr_val_logistic}
             for m, ev in evidence.items()}
    models = list(evidence)
    return ForensicEvaluation(
        models=models, uncalibrated=[m for m in results if m not in evidence],
        thresholds={m: dict(ev.thresholds) for m, ev in evidence.items()}, calibration=calib, rows=rows, llrs=llrs,
        n_writers=_count_writers(writers, np.ones(len(y), bool)), n_bags=len(y), n_genuine=int((y == 0).sum()),
        comparison=compare_with_training_free(rows, models, val_auc or {}))


def _groups(test: BagTensors) -> list[tuple[str, str, np.ndarray]]:
    """``(group, value, mask)``: all bags, then genuine + each difficulty, then genuine + each geometry."""
    y = test.label.numpy()
    genuine = y == 0
    geo = geometry_of(test)
    out = [("overall", "all", np.ones(len(y), bool))]
    ratios = sorted({round(float(r), 9) for r in np.unique(test.ratio) if r > 0})
    out += [("difficulty", f"{pct_label(r)}%", genuine | ((y == 1) & ratio_mask(test.ratio, r))) for r in ratios]
    out += [("geometry", str(g), genuine | ((y == 1) & (geo == g))) for g in sorted(set(geo[y == 1].tolist()))]
    return out


def _row(model: str, group: str, value: str, llrs: np.ndarray, probs: np.ndarray, y: np.ndarray,
         thresholds: dict[str, float], n_writers: int | None) -> ForensicRow:
    rates = rates_at_thresholds(y, probs, thresholds)
    return ForensicRow(model=model, group=group, value=value, n_h1=int((y == 1).sum()), n_h2=int((y == 0).sum()),
                       n_writers=n_writers, figures=forensic_metrics(llrs, y),
                       detection={k: r["detection_rate"] for k, r in rates.items()},
                       fpr={k: r["fpr"] for k, r in rates.items()})


def _count_writers(writers: np.ndarray | None, sel: np.ndarray) -> int | None:
    if writers is None:
        return None
    w = np.asarray(writers)[sel]
    return int(np.unique(w[w >= 0]).size)


def best_training_free(val_auc: dict[str, float | None]) -> str | None:
    """The training-free detector with the highest val AUC (None when none was evaluated)."""
    free = [m for m, v in val_auc.items() if is_training_free(m) and v is not None]
    return max(free, key=lambda m: val_auc[m]) if free else None  # type: ignore[arg-type, return-value]


def compare_with_training_free(rows: list[ForensicRow], models: list[str],
                               val_auc: dict[str, float]) -> BaselineComparison:
    """Pick the training-free detector with the best val AUC; split the learned ones by test Cllr."""
    base = best_training_free({m: val_auc.get(m) for m in models})
    if base is None:
        return BaselineComparison(baseline=None, baseline_val_auc=None, not_beating=[], beating=[])
    cllr = {r.model: r.figures["cllr"] for r in rows if r.group == "overall"}
    learned = [m for m in models if not is_training_free(m) and cllr.get(m) is not None]
    ref = cllr.get(base)
    beating = [m for m in learned if ref is not None and cllr[m] < ref]  # type: ignore[operator]
    return BaselineComparison(baseline=base, baseline_val_auc=float(val_auc[base]),
                              not_beating=[m for m in learned if m not in beating], beating=beating)


__all__ = ["FIGURES", "BaselineComparison", "ForensicEvaluation", "ForensicRow", "best_training_free",
           "evaluate_forensic", "geometry_of"]
