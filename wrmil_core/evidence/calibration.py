"""Score -> log10 likelihood ratio: pool-adjacent-violators calibration bounded by ELUB, via NFI's ``lir``.

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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from wrmil_core.errors import WrmilInputError

METHOD = "pav+elub"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Calibrator:
    """A fitted score -> log10 LR map (see the module docstring). Plain data: JSON in, JSON out.

    ``x``: increasing score knots; ``p``: P(H1 | score) at equal priors at each knot;
    ``lower`` / ``upper``: ELUB bounds on log10 LR; ``n_h1`` / ``n_h2``: the validation bags
    (multi-writer / one-writer) it was fitted on; ``n_writers``: their writers, when known.
    """

    x: tuple[float, ...]
    p: tuple[float, ...]
    lower: float
    upper: float
    n_h1: int
    n_h2: int
    n_writers: int | None = None
    method: str = METHOD

    def __post_init__(self) -> None:
        if len(self.x) != len(self.p) or not self.x:
            raise WrmilInputError(f"calibrator knots: {len(self.x)} scores but {len(self.p)} probabilities; "
                                  "refit the calibrator (re-materialise mil_model)")
        if self.method != METHOD:
            raise WrmilInputError(f"calibrator method {self.method!r} is not {METHOD!r}; refit it with this wrmil")
        if not self.lower <= 0 <= self.upper:
            raise WrmilInputError(f"calibrator bounds [{self.lower}, {self.upper}] must enclose 0; refit the calibrator")

    def log10_lr(self, scores: np.ndarray | list[float] | float) -> np.ndarray:
        """log10 LR (H1: more than one writer vs H2: one writer) of each score, ELUB-bounded."""
        s = np.atleast_1d(np.asarray(scores, dtype=np.float64))
        if not np.isfinite(s).all():
            raise WrmilInputError("scores to calibrate must be finite numbers; a NaN/inf score means the detector "
                                  "failed on that bag")
        x, p = np.asarray(self.x), np.asarray(self.p)
        post = np.interp(np.clip(s, x[0], x[-1]), x, p)
        with np.errstate(divide="ignore"):
            llr = np.log10(post) - np.log10(1 - post)  # lir.util.probability_to_logodds
        return np.clip(llr, self.lower, self.upper)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (floats survive ``json`` exactly)."""
        d = asdict(self)
        d.update(x=list(self.x), p=list(self.p), format_version=FORMAT_VERSION)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "calibrator") -> Calibrator:
        """Rebuild from :meth:`to_dict`'s output; a missing key is refused naming ``where``."""
        keys = ("x", "p", "lower", "upper", "n_h1", "n_h2")
        missing = [k for k in keys if k not in d]
        if missing:
            raise WrmilInputError(f"{where} lacks {', '.join(missing)}; re-materialise mil_model to refit it")
        return cls(x=tuple(float(v) for v in d["x"]), p=tuple(float(v) for v in d["p"]), lower=float(d["lower"]),
                   upper=float(d["upper"]), n_h1=int(d["n_h1"]), n_h2=int(d["n_h2"]),
                   n_writers=None if d.get("n_writers") is None else int(d["n_writers"]),
                   method=str(d.get("method", METHOD)))


def fit_calibrator(val_scores: np.ndarray, val_labels: np.ndarray, n_writers: int | None = None) -> Calibrator:
    """Fit PAV + ELUB (``lir``) on validation scores and labels (1 = more than one writer).

    Needs both classes and finite scores. Pass validation bags only: the test bags must stay
    unseen for the report's Cllr and misleading-evidence rates to mean anything.
    """
    from lir.algorithms.bayeserror import ELUBBounder  # lir imports slowly (optuna); only when fitting
    from lir.algorithms.isotonic_regression import IsotonicCalibrator
    from lir.data.models import LLRData

    s, y = _check_fit_input(val_scores, val_labels)
    pav = IsotonicCalibrator().fit(s, y)
    llrs = pav.transform(s)
    bounder = ELUBBounder().fit(LLRData(features=llrs.copy(), labels=y))  # elub() edits its input in place
    ir = pav._ir  # lir's sklearn IsotonicRegression: its knots are the whole fitted map
    return Calibrator(x=tuple(map(float, ir._necessary_X_)), p=tuple(map(float, ir._necessary_y_)),
                      lower=float(bounder.lower_llr_bound), upper=float(bounder.upper_llr_bound),
                      n_h1=int(y.sum()), n_h2=int((y == 0).sum()), n_writers=n_writers)


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

