"""The report's numbers: per model and per difficulty, on the test bags. Nothing is drawn or written here.

Difficulties are the contamination ratios present in the test bags (0% = the genuine bags). Per
model and difficulty: ROC AUC of genuine vs that difficulty with a stratified bootstrap 95% CI, the
share of bags flagged at each threshold saved with the model (false-positive rate on the genuine
row, detection rate on the others) and localisation (AUC of window scores against the true foreign
windows, top-1 hit rate). Per model overall: the original's F1/recall/precision/AUC. The best model
has the highest mean AUC over the difficulties.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from wrmil_core.bags.tensors import BagTensors
from wrmil_core.evidence.scored import ModelScores
from wrmil_core.metrics import (
    bootstrap_auc_ci,
    classification_metrics,
    localisation,
    rates_at_threshold,
    roc_auc,
)
from wrmil_core.mil.registry import is_training_free

BASELINE = "abmil"
THRESHOLD_LABELS = {"max_f1": "max-F1 threshold", "fpr_5": "5%-FPR threshold"}
"""Thresholds saved with a model, in display order (others follow by name)."""


def pct_label(ratio: float) -> str:
    """0.05 -> '5', 0.125 -> '12.5' (used in headline keys and tables)."""
    return f"{ratio * 100:.6g}"


def ratio_mask(ratio: np.ndarray, r: float) -> np.ndarray:
    """Bags whose contamination ratio is ``r``."""
    return np.isclose(ratio, r, rtol=0, atol=1e-9)


def difficulties_of(test: BagTensors) -> list[float]:
    """The contamination ratios present in the test bags, ascending (genuine bags excluded)."""
    return ratios_present(test.ratio)


def ratios_present(ratio: np.ndarray) -> list[float]:
    """The distinct contamination ratios above 0 in ``ratio``, ascending."""
    return sorted({round(float(r), 9) for r in np.unique(ratio) if r > 0})


@dataclass(frozen=True)
class DifficultyRow:
    """One model at one difficulty (``ratio`` 0: the genuine bags, where AUC and localisation are n/a)."""

    model: str
    ratio: float
    n_bags: int
    foreign_frac: float | None  # mean share of foreign words in these bags
    auc: float | None  # genuine vs these bags
    auc_lo: float | None
    auc_hi: float | None
    loc_auc: float | None
    top1: float | None
    flagged: dict[str, float | None]  # threshold name -> FPR (genuine row) or detection rate

    @property
    def difficulty(self) -> str:
        """'0%', '5%', '12.5%', ..."""
        return f"{pct_label(self.ratio)}%"

    def as_dict(self) -> dict[str, Any]:
        """The row as written to report.json (``flagged_<threshold>`` keys)."""
        d = {"model": self.model, "difficulty": self.difficulty, "ratio": self.ratio, "n_bags": self.n_bags,
             "foreign_frac": self.foreign_frac, "auc": self.auc, "auc_lo": self.auc_lo, "auc_hi": self.auc_hi,
             "loc_auc": self.loc_auc, "top1": self.top1}
        return d | {f"flagged_{t}": v for t, v in self.flagged.items()}


@dataclass(frozen=True)
class OverallMetrics:
    """One model on all test bags: the original's figures at the max-F1 threshold, AUC CI, localisation."""

    f1: float | None
    recall: float | None
    precision: float | None
    auc: float | None
    auc_lo: float | None
    auc_hi: float | None
    loc_auc: float | None
    top1: float | None

    def as_dict(self) -> dict[str, float | None]:
        """The figures as written to report.json."""
        return asdict(self)


@dataclass(frozen=True)
class Evaluation:
    """Every number of the report."""

    models: list[str]
    difficulties: list[float]
    threshold_names: list[str]
    thresholds: dict[str, dict[str, float]]
    rows: list[DifficultyRow]  # per model: the genuine row, then one per difficulty
    overall: dict[str, OverallMetrics]
    mean_auc: dict[str, float | None]  # over the difficulties
    best_model: str | None
    gain_over_abmil: dict[str, float | None]  # pct label -> best model's AUC minus abmil's
    n_boot: int
    n_test_bags: int
    n_genuine: int
    n_contaminated: int
    embedding_model_id: str

    def auc_of(self, model: str, ratio: float) -> float | None:
        """AUC of ``model`` at difficulty ``ratio`` (None when n/a or absent)."""
        return _auc_of(self.rows, model, ratio)

    @property
    def headline(self) -> dict[str, float]:
        """Flat ``model/figure_difficulty`` numbers for asset metadata and report.json (n/a left out)."""
        out: dict[str, float] = {}
        for row in self.rows:
            m = row.model
            flagged = {t: row.flagged[t] for t in self.threshold_names if row.flagged.get(t) is not None}
            if row.ratio == 0:  # the genuine row: false-positive rate at each threshold
                out.update({f"{m}/fpr_at_{t}": float(v) for t, v in flagged.items()})
                continue
            tag = pct_label(row.ratio)
            for key in ("auc", "auc_lo", "auc_hi", "loc_auc", "top1"):
                if getattr(row, key) is not None:
                    out[f"{m}/{key}_{tag}"] = float(getattr(row, key))
            out.update({f"{m}/det_at_{t}_{tag}": float(v) for t, v in flagged.items()})
        for m, o in self.overall.items():
            for key in ("auc", "f1", "recall", "precision"):
                if getattr(o, key) is not None:
                    out[f"{m}/overall_{key}"] = float(getattr(o, key))
            if self.mean_auc[m] is not None:
                out[f"{m}/mean_auc"] = float(self.mean_auc[m])  # type: ignore[arg-type]
        if self.best_model is not None:
            out["best/mean_auc"] = float(self.mean_auc[self.best_model])  # type: ignore[arg-type]
            out.update({f"best/gain_over_abmil_{k}": float(v) for k, v in self.gain_over_abmil.items() if v is not None})
        return out


def check_scores(results: dict[str, ModelScores], test: BagTensors) -> None:
    """Refuse an empty result set, scores of other bags (shape) and models without thresholds."""
    if not results:
        raise ValueError("build_report needs at least one model's scores")
    n, w = len(test), test.window_foreign.shape[1]
    for name, s in results.items():
        if np.shape(s.bag_probs) != (n,) or np.shape(s.window_scores) != (n, w):
            raise ValueError(f"scores of model {name!r} have shapes {np.shape(s.bag_probs)}, {np.shape(s.window_scores)}; "
                             f"expected ({n},) and ({n}, {w}) for the test bags")
        if not s.thresholds:
            raise ValueError(f"model {name!r} has no saved thresholds")


def evaluate_scores(results: dict[str, ModelScores], test: BagTensors, n_boot: int = 1000, seed: int = 0) -> Evaluation:
    """Every number of the report from each model's test scores (see the module docstring)."""
    check_scores(results, test)
    models, difficulties = list(results), difficulties_of(test)
    rows: list[DifficultyRow] = []
    overall: dict[str, OverallMetrics] = {}
    for name, scores in results.items():
        rows += _model_rows(name, scores, test, difficulties, n_boot, seed)
        overall[name] = _overall(scores, test, n_boot, seed)
    means = {m: _mean_auc(rows, m) for m in models}
    ranked = [m for m in models if means[m] is not None]
    best = max(ranked, key=lambda m: means[m]) if ranked else None  # type: ignore[arg-type, return-value]
    gain: dict[str, float | None] = {}
    for r in difficulties:
        b, a = (_auc_of(rows, best, r) if best else None), _auc_of(rows, BASELINE, r)
        gain[pct_label(r)] = None if (a is None or b is None) else b - a
    return Evaluation(models=models, difficulties=difficulties, threshold_names=_threshold_names(results),
                      thresholds={m: dict(s.thresholds) for m, s in results.items()}, rows=rows, overall=overall,
                      mean_auc=means, best_model=best, gain_over_abmil=gain, n_boot=n_boot, n_test_bags=len(test),
                      n_genuine=int((test.label == 0).sum()), n_contaminated=int((test.label == 1).sum()),
                      embedding_model_id=test.model_id)


def _model_rows(name: str, scores: ModelScores, test: BagTensors, difficulties: list[float], n_boot: int,
                seed: int) -> list[DifficultyRow]:
    """The genuine row, then one row per difficulty, of one model."""
    y = test.label.numpy().astype(int)
    wf = test.window_foreign.numpy().astype(bool)
    probs = np.asarray(scores.bag_probs, dtype=np.float64)
    ws = np.asarray(scores.window_scores, dtype=np.float64)
    genuine = y == 0
    rows = [DifficultyRow(
        model=name, ratio=0.0, n_bags=int(genuine.sum()), foreign_frac=0.0 if genuine.any() else None,
        auc=None, auc_lo=None, auc_hi=None, loc_auc=None, top1=None,
        flagged={t: rates_at_threshold(y[genuine], probs[genuine], v)["fpr"] for t, v in scores.thresholds.items()})]
    for r in difficulties:
        cont = (y == 1) & ratio_mask(test.ratio, r)
        sel = genuine | cont
        ci = bootstrap_auc_ci(y[sel], probs[sel], n_boot=n_boot, seed=seed)
        loc = localisation(ws[cont], wf[cont], y[cont])
        rows.append(DifficultyRow(
            model=name, ratio=r, n_bags=int(cont.sum()),
            foreign_frac=float(test.foreign_word_frac[cont].mean()) if cont.any() else None,
            auc=roc_auc(y[sel], probs[sel]), auc_lo=ci[0] if ci else None, auc_hi=ci[1] if ci else None,
            loc_auc=loc["auc"], top1=loc["top1"],
            flagged={t: rates_at_threshold(y[cont], probs[cont], v)["detection_rate"]
                     for t, v in scores.thresholds.items()}))
    return rows


def _overall(scores: ModelScores, test: BagTensors, n_boot: int, seed: int) -> OverallMetrics:
    """One model on all test bags, at its max-F1 threshold (else its first saved one)."""
    y = test.label.numpy().astype(int)
    probs = np.asarray(scores.bag_probs, dtype=np.float64)
    main_thr = scores.thresholds.get("max_f1", next(iter(scores.thresholds.values())))
    cls = classification_metrics(y, probs, main_thr)
    ci = bootstrap_auc_ci(y, probs, n_boot=n_boot, seed=seed)
    loc = localisation(np.asarray(scores.window_scores, dtype=np.float64), test.window_foreign.numpy().astype(bool), y)
    return OverallMetrics(f1=cls["f1"], recall=cls["recall"], precision=cls["precision"], auc=cls["auc"],
                          auc_lo=ci[0] if ci else None, auc_hi=ci[1] if ci else None,
                          loc_auc=loc["auc"], top1=loc["top1"])


def _mean_auc(rows: list[DifficultyRow], model: str) -> float | None:
    """Mean AUC of ``model`` over the difficulties where it is defined."""
    vals = [r.auc for r in rows if r.model == model and r.ratio > 0 and r.auc is not None]
    return float(np.mean(vals)) if vals else None


def _auc_of(rows: list[DifficultyRow], model: str, ratio: float) -> float | None:
    return next((r.auc for r in rows if r.model == model and r.ratio == ratio), None)


def _threshold_names(results: dict[str, ModelScores]) -> list[str]:
    """Every threshold name saved with some model, known ones first in display order."""
    names: list[str] = []
    for s in results.values():
        names += [t for t in s.thresholds if t not in names]
    order = list(THRESHOLD_LABELS)
    return sorted(names, key=lambda t: (order.index(t) if t in order else len(order), t))


def check_beats_distance(val_auc: dict[str, float], baseline: str = "distance",
                         min_gain: float = 0.0) -> tuple[bool, dict[str, float | str]]:
    """Does some learned model's val AUC beat the training-free ``baseline`` (``distance``, or the
    best training-free detector as the asset passes it) by more than ``min_gain``? Other
    training-free detectors are not "learned". Returns ``(passed, metadata)`` for an asset check
    (warn when not passed).

    Passes vacuously (with a note) when the baseline or every learned model is missing.
    """
    md: dict[str, float | str] = {f"val_auc/{m}": float(v) for m, v in val_auc.items()}
    learned = {m: v for m, v in val_auc.items() if m != baseline and not is_training_free(m)}
    if baseline not in val_auc or not learned:
        md["note"] = f"nothing to compare: need '{baseline}' and at least one learned model"
        return True, md
    best = max(learned, key=learned.__getitem__)
    gain = learned[best] - val_auc[baseline]
    md.update({"baseline": baseline, "baseline_val_auc": float(val_auc[baseline]), "best_learned_model": best,
               "best_learned_val_auc": float(learned[best]), "gain_over_baseline": float(gain),
               "models_not_beating_baseline": ", ".join(m for m, v in learned.items() if v <= val_auc[baseline] + min_gain)
               or "none"})
    return gain > min_gain, md
