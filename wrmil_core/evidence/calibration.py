"""Score -> log10 likelihood ratio: PAV (or, when PAV has few steps, logistic) calibration bounded by ELUB, via ``lir``.

H1: the document was written by more than one writer (label 1); H2: by one writer (label 0; the
issue's H0). A detector's bag score is turned into log10 LR = log10 P(score | H1) / P(score | H2).

Why PAV + ELUB (both from ``lir``):

* ``lir.algorithms.isotonic_regression.IsotonicCalibrator`` (pool-adjacent-violators with the two
  classes weighted equally, so its log-odds are LRs whatever the 1:2 ratio of the bags) assumes
  nothing about the score's scale beyond "higher = more likely H1". The detectors' scores (a
  sigmoid of a smooth-max logit, a max cosine distance, a segment statistic) have no reason to be
  linear in log LR, which ``lir``'s logistic calibrator would assume. It is also the calibration
  ``lir`` uses for Cllr_min, so Cllr_cal reads as "what this very calibration left on the table".
* PAV's known weakness is extrapolation: at the ends of the fitting scores it gives LR 0 or
  infinity. ``lir.algorithms.bayeserror.ELUBBounder`` (Vergeer et al. 2016) caps the LLRs at the
  empirical lower and upper bounds that the validation set supports (never beyond
  +-log10(n + 1) for n bags of the other class).

The fit runs on validation bags only; the caller never passes test bags. The fitted step function
(sklearn's isotonic knots: scores and H1 posteriors at equal priors) and the bounds are plain
JSON; :meth:`Calibrator.log10_lr` applies them with ``np.interp`` exactly as ``lir`` does
(linear between knots, clipped to the fitted score range), so a saved calibrator reproduces
``lir``'s output bit for bit on its fitting data.

Why a smooth calibrator when PAV has few steps: PAV's map is a step function with one step per
pooled block of validation scores. With few validation bags (32 real pages) it has a handful of
levels, so the page log10 LR took only four values and two close scores could differ by a factor
of ten in LR. When the PAV map has fewer than :data:`MIN_PAV_LEVELS` distinct LLR levels,
:func:`fit_calibrator` uses ``lir``'s ``LogitCalibrator`` instead (logistic regression of the
label on the score, classes weighted equally, so its log-odds are LRs), with ELUB bounds fitted
on its own validation LLRs. The linear-in-log-LR assumption is the price; with so few bags PAV's
freedom is mostly noise anyway. The choice is by the step count, not by validation Cllr: PAV's
Cllr on its own fitting data is Cllr_min, so it always "wins" there. Both candidates' Cllr on the
validation bags are recorded (``cllr_val_pav``, ``cllr_val_logistic``) with the ``kind`` used.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from wrmil_core.errors import WrmilInputError

METHODS: dict[str, str] = {"pav": "pav+elub", "logistic": "logistic+elub"}  # kind -> method
METHOD = METHODS["pav"]
FORMAT_VERSION = 2  # 2 added kind, intercept/slope, pav_levels and cllr_val_*; a file without kind is PAV
# Fewest distinct LLR levels a PAV map needs to be kept. Neighbouring levels are about
# (upper - lower) / (levels - 1) apart: with ELUB bounds spanning 2 to 3 log10 units, 8 levels mean
# steps near 0.3-0.4 (a factor 2-2.5 in LR), fewer mean a factor 3 or more between close scores.
# On Gaussian scores (1:2 bags, shifts 1-3 sd) PAV has 2-5 levels on 32 bags, 5-11 on 180, 9-15 on 400.
MIN_PAV_LEVELS = 8


@dataclass(frozen=True)
class Calibrator:
    """A fitted score -> log10 LR map (see the module docstring). Plain data: JSON in, JSON out.

    ``kind`` "pav": ``x`` increasing score knots, ``p`` P(H1 | score) at equal priors at each knot;
    ``kind`` "logistic": log10 LR = ``intercept + slope * score`` (``x``, ``p`` empty).
    ``lower`` / ``upper``: ELUB bounds on log10 LR; ``n_h1`` / ``n_h2``: the validation bags
    (multi-writer / one-writer) it was fitted on; ``n_writers``: their writers, when known;
    ``pav_levels``: distinct LLR levels of the PAV candidate; ``cllr_val_pav`` /
    ``cllr_val_logistic``: each candidate's Cllr on the validation bags (None: not fitted).
    """

    x: tuple[float, ...]
    p: tuple[float, ...]
    lower: float
    upper: float
    n_h1: int
    n_h2: int
    n_writers: int | None = None
    method: str | None = None  # derived from kind; kept in the JSON for files older than kind
    kind: str = "pav"
    intercept: float = 0.0
    slope: float = 0.0
    pav_levels: int | None = None
    cllr_val_pav: float | None = None
    cllr_val_logistic: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in METHODS:
            raise WrmilInputError(f"calibrator kind {self.kind!r} is not one of {sorted(METHODS)}; "
                                  "refit the calibrator")
        if self.method is None:
            object.__setattr__(self, "method", METHODS[self.kind])  # frozen: set once, here
        if self.method != METHODS[self.kind]:
            raise WrmilInputError(f"calibrator method {self.method!r} is not {METHODS[self.kind]!r}; "
                                  "refit it with this wrmil")
        if self.kind == "pav" and (len(self.x) != len(self.p) or not self.x):
            raise WrmilInputError(f"calibrator knots: {len(self.x)} scores but {len(self.p)} probabilities; "
                                  "refit the calibrator (re-materialise mil_model)")
        if self.kind == "logistic" and not (math.isfinite(self.intercept) and math.isfinite(self.slope)
                                            and self.slope >= 0):
            raise WrmilInputError(f"logistic calibrator: intercept {self.intercept}, slope {self.slope} must be "
                                  "finite with slope >= 0; refit the calibrator")
        if not self.lower <= 0 <= self.upper:
            raise WrmilInputError(f"calibrator bounds [{self.lower}, {self.upper}] must enclose 0; refit the calibrator")

    def log10_lr(self, scores: np.ndarray | list[float] | float) -> np.ndarray:
        """log10 LR (H1: more than one writer vs H2: one writer) of each score, ELUB-bounded."""
        s = np.atleast_1d(np.asarray(scores, dtype=np.float64))
        if not np.isfinite(s).all():
            raise WrmilInputError("scores to calibrate must be finite numbers; a NaN/inf score means the detector "
                                  "failed on that bag")
        if self.kind == "logistic":
            return np.clip(self.intercept + self.slope * s, self.lower, self.upper)
        x, p = np.asarray(self.x), np.asarray(self.p)
        post = np.interp(np.clip(s, x[0], x[-1]), x, p)
        with np.errstate(divide="ignore"):
            llr = np.log10(post) - np.log10(1 - post)  # lir.util.probability_to_logodds
        return np.clip(llr, self.lower, self.upper)

    def describe(self) -> dict[str, Any]:
        """Which calibrator this is and how both candidates did on the validation bags (for reports)."""
        return {"kind": self.kind, "method": self.method, "pav_levels": self.pav_levels,
                "cllr_val_pav": self.cllr_val_pav, "cllr_val_logistic": self.cllr_val_logistic,
                "llr_bounds": [self.lower, self.upper]}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (floats survive ``json`` exactly)."""
        d = asdict(self)
        d.update(x=list(self.x), p=list(self.p), format_version=FORMAT_VERSION)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "calibrator") -> Calibrator:
        """Rebuild from :meth:`to_dict`'s output (a version-1 file, without ``kind``, is PAV);
        a missing key is refused naming ``where``."""
        kind = str(d.get("kind", "pav"))
        keys = ("lower", "upper", "n_h1", "n_h2") + (("intercept", "slope") if kind == "logistic" else ("x", "p"))
        missing = [k for k in keys if k not in d]
        if missing:
            raise WrmilInputError(f"{where} lacks {', '.join(missing)}; re-materialise mil_model to refit it")
        return cls(x=tuple(float(v) for v in d.get("x", ())), p=tuple(float(v) for v in d.get("p", ())),
                   lower=float(d["lower"]), upper=float(d["upper"]), n_h1=int(d["n_h1"]), n_h2=int(d["n_h2"]),
                   n_writers=_opt(d.get("n_writers"), int), method=str(d.get("method", METHODS.get(kind, METHOD))),
                   kind=kind, intercept=float(d.get("intercept", 0.0)), slope=float(d.get("slope", 0.0)),
                   pav_levels=_opt(d.get("pav_levels"), int), cllr_val_pav=_opt(d.get("cllr_val_pav"), float),
                   cllr_val_logistic=_opt(d.get("cllr_val_logistic"), float))


def _opt(value: Any, cast: type) -> Any:
    """``cast(value)``, None staying None."""
    return None if value is None else cast(value)


def fit_calibrator(val_scores: np.ndarray, val_labels: np.ndarray, n_writers: int | None = None,
                   min_pav_levels: int = MIN_PAV_LEVELS) -> Calibrator:
    """Fit PAV + ELUB (``lir``) on validation scores and labels (1 = more than one writer); use the
    logistic candidate instead when PAV has fewer than ``min_pav_levels`` LLR levels (module docstring).

    Needs both classes and finite scores. Pass validation bags only: the test bags must stay
    unseen for the report's Cllr and misleading-evidence rates to mean anything.
    """
    from wrmil_core.evidence.metrics import cllr

    s, y = _check_fit_input(val_scores, val_labels)
    pav = fit_pav(s, y, n_writers)
    logistic = fit_logistic(s, y, n_writers)
    levels = pav_levels(pav)
    chosen = logistic if levels < min_pav_levels and logistic is not None else pav
    return replace(chosen, pav_levels=levels, cllr_val_pav=cllr(pav.log10_lr(s), y),
                   cllr_val_logistic=None if logistic is None else cllr(logistic.log10_lr(s), y))


def fit_pav(s: np.ndarray, y: np.ndarray, n_writers: int | None = None) -> Calibrator:
    """``lir``'s PAV (``IsotonicCalibrator``) with ELUB bounds, as a plain :class:`Calibrator`."""
    from lir.algorithms.isotonic_regression import IsotonicCalibrator  # lir imports slowly (optuna)

    pav = IsotonicCalibrator().fit(s, y)
    lower, upper = elub_bounds(pav.transform(s), y)
    ir = pav._ir  # lir's sklearn IsotonicRegression: its knots are the whole fitted map
    return Calibrator(x=tuple(map(float, ir._necessary_X_)), p=tuple(map(float, ir._necessary_y_)), lower=lower,
                      upper=upper, n_h1=int(y.sum()), n_h2=int((y == 0).sum()), n_writers=n_writers)


def fit_logistic(s: np.ndarray, y: np.ndarray, n_writers: int | None = None) -> Calibrator | None:
    """``lir``'s ``LogitCalibrator`` (classes weighted equally) with ELUB bounds; None when the fitted
    slope is negative (higher scores favouring one writer: no monotone calibration to offer).

    The score is standardised first so that the logistic regression's L2 penalty (sklearn's
    default, which keeps separable validation bags from giving an infinite slope) means the same
    whatever the detector's score scale; the coefficients are mapped back to the raw score.
    """
    from lir.algorithms.logistic_regression import LogitCalibrator

    mu, sd = float(s.mean()), float(s.std())
    if sd == 0:  # every bag scored the same: the scores say nothing, LR 1
        intercept, slope = 0.0, 0.0
    else:
        logit = LogitCalibrator().fit((s - mu) / sd, y)._logit
        a, b = float(logit.intercept_[0]), float(logit.coef_.ravel()[0])
        intercept, slope = (a - b * mu / sd) / math.log(10), b / sd / math.log(10)  # ln -> log10, raw score
    return logistic_calibrator(intercept, slope, s, y, n_writers)


def logistic_calibrator(intercept: float, slope: float, s: np.ndarray, y: np.ndarray,
                        n_writers: int | None = None) -> Calibrator | None:
    """log10 LR = ``intercept + slope * score`` with ELUB bounds fitted on these scores' LLRs;
    None when ``slope`` is negative."""
    if slope < 0:
        return None
    lower, upper = elub_bounds(intercept + slope * s, y)
    return Calibrator(x=(), p=(), lower=lower, upper=upper, n_h1=int(y.sum()), n_h2=int((y == 0).sum()),
                      n_writers=n_writers, kind="logistic", intercept=intercept, slope=slope)


def elub_bounds(llrs: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``lir``'s ELUB (empirical lower and upper bound) log10 LRs of validation LLRs."""
    from lir.algorithms.bayeserror import ELUBBounder
    from lir.data.models import LLRData

    bounder = ELUBBounder().fit(LLRData(features=np.array(llrs, dtype=np.float64), labels=y))  # elub() edits in place
    return float(bounder.lower_llr_bound), float(bounder.upper_llr_bound)


def pav_levels(calibrator: Calibrator) -> int:
    """Distinct bounded LLR levels of a PAV map (at its knots): how many steps its LRs can take."""
    return int(np.unique(calibrator.log10_lr(np.asarray(calibrator.x))).size)


def _check_fit_input(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(int)
    if s.shape != y.shape:
        raise WrmilInputError(f"calibration: {s.size} scores but {y.size} labels")
    if not np.isin(y, (0, 1)).all() or not ((y == 0).any() and (y == 1).any()):
        raise WrmilInputError(f"calibration needs labels 0 and 1, both present (got {sorted(set(y.tolist()))}); "
                              "check the val split of bags_by_difficulty")
    if not np.isfinite(s).all():
        raise WrmilInputError(f"calibration: {int((~np.isfinite(s)).sum())} validation score(s) are NaN/inf; "
                              "the detector failed on those bags")
    return s, y
