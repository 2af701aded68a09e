"""Calibration per document length: ``<model_dir>/length_calibration.json``.

``calibration.json`` (:mod:`wrmil_core.evidence.store`) is fitted on validation *bags*, all of one
length. A questioned document has any length, and even a statistic whose one-writer distribution
is flat in the length (``segment_scan``) gets more evidence from a longer foreign passage, so its
LR drifts with the length; a max over sliding bags also flags genuine documents more readily as
they grow. So each detector is calibrated again per length bucket:

* documents of each length (25, 50, 100, 200 words) are cut from the VALIDATION writers' words
  (each writer's documents in reading order, :func:`wrmil_core.evidence.length.writer_sequences`;
  never test writers): genuine documents are DISJOINT runs of one writer's words, contaminated ones
  the same runs with a contiguous passage of 5, 10, 20 or 30 % of the words (the bags'
  contamination fractions) planted from another validation writer. Disjoint, because overlapping
  runs of a few writers' words would pass for many documents while repeating the same words: with
  8 validation writers, 200-word thresholds fitted on overlapping runs flagged 17.5 % of the test
  writers' genuine documents at the "5 %" threshold (``benchmarks/score_length.py``, demo);
* each detector scores them exactly as ``wrmil score`` does (:func:`wrmil_core.mil.documents.document_scorer`);
* a length with at least ``MIN_GENUINE`` genuine documents is calibrated on its own runs
  (``method: "runs"``): :func:`wrmil_core.evidence.fit_evidence` fits the calibrator (PAV + ELUB,
  or logistic when PAV has few steps) and the 1 % / 5 % false-positive thresholds on those scores;
* a length with fewer (but some) runs gets a PARAMETRIC calibration (``method: "parametric"``):
  one logistic regression of the label on the score, ln(words) and their product, fitted on the
  runs of every length that has any (classes weighted equally within each length), gives that
  length's log10 LR = a(L) + b(L) * score, ELUB-bounded on the length's own runs; its thresholds
  are still the empirical ones of its few genuine runs (``n_genuine_val`` says how few). Why: with
  one ~164-word document per validation writer (real handwriting: one page each), 8 writers give
  48 runs of 25 words, 24 of 50 and 8 of 100, too few for PAV at any length, yet together they
  show how the score's evidence changes with the length. A length with no run at all is not
  calibrated (the model would extrapolate); the nearest calibrated one stands for it.

``wrmil score`` (:mod:`wrmil_core.scoring.calibrated`) applies the calibrated length nearest to the document's
(:func:`nearest_length`), the bag calibration (``calibration.json``) standing for the bag's length
where no length calibration does, and says which one; a document shorter than the shortest
calibrated length gets that one with a warning.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from wrmil_core.errors import WrmilInputError
from wrmil_core.evidence.calibration import fit_pav, logistic_calibrator, pav_levels
from wrmil_core.evidence.decisions import fit_fpr_thresholds
from wrmil_core.evidence.metrics import cllr
from wrmil_core.evidence.length import LENGTHS, writer_sequences
from wrmil_core.evidence.store import DetectorEvidence, fit_evidence, read_calibration_json, write_json_atomic
from wrmil_core.mil.documents import SLIDING, WHOLE, document_scorer
from wrmil_core.mil.registry import load_mil_model, scores_whole
from wrmil_core.runtime import Log, speaker
from wrmil_core.schema import DEFAULT_RATIOS

LENGTH_CALIBRATION_FILE = "length_calibration.json"
FORMAT_VERSION = 2  # 2 added methods (runs | parametric per length) and parametric; a file without them is all runs
# Fewest disjoint genuine validation documents a length needs: the 5 %-FPR threshold then rests on at
# least 2.5 expected exceedances (a 1 % one on none: it admits no validation false positive at all).
MIN_GENUINE = 50
# Fewest lengths with runs the parametric model needs: from one length its ln(words) terms are not identified.
MIN_PARAMETRIC_LENGTHS = 2
RUNS, PARAMETRIC = "runs", "parametric"  # how a length was calibrated (``methods``)
LENGTH_FEATURES = ("score", "ln_words", "score*ln_words")  # the parametric model's terms, after its intercept


@dataclass(frozen=True)
class LengthModel:
    """The parametric model: ln odds(H1) = ``coef[0] + coef[1] s + coef[2] ln L + coef[3] s ln L``
    for score ``s`` at ``L`` words (classes weighted equally within each length, so odds are LRs),
    fitted on the runs of ``lengths``."""

    coef: tuple[float, float, float, float]
    lengths: tuple[int, ...]

    def at(self, length: int) -> tuple[float, float]:
        """``(intercept, slope)`` of log10 LR = intercept + slope * score at ``length`` words."""
        c0, c1, c2, c3 = self.coef
        ln_l = math.log(length)
        return (c0 + c2 * ln_l) / math.log(10), (c1 + c3 * ln_l) / math.log(10)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return {"model": "logistic", "terms": ["intercept", *LENGTH_FEATURES], "coef_ln_odds": list(self.coef),
                "fitted_on_lengths": list(self.lengths)}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str) -> LengthModel:
        """Rebuild from :meth:`to_dict`'s output."""
        coef = tuple(float(c) for c in d.get("coef_ln_odds", ()))
        if len(coef) != 4:
            raise WrmilInputError(f"{where}: the parametric length model needs 4 coefficients, got {len(coef)}; "
                                  "re-materialise mil_model")
        return cls(coef=coef, lengths=tuple(int(v) for v in d.get("fitted_on_lengths", ())))  # type: ignore[arg-type]


@dataclass(frozen=True)
class LengthCalibration:
    """One detector's evidence per document length (``buckets``: words -> evidence)."""

    model_name: str
    model_id: str
    scoring: str                              # "whole document" or "sliding bags" (mil.documents)
    buckets: dict[int, DetectorEvidence]
    fractions: tuple[float, ...]              # foreign fractions of the planted passages
    n_writers: int                            # validation writers the documents came from
    n_docs: dict[int, dict[str, int]]         # per length: {"h1": .., "h0": ..}
    methods: dict[int, str] = field(default_factory=dict)  # per length: "runs" or "parametric" (absent: runs)
    parametric: LengthModel | None = None     # the model behind the parametric lengths

    def method(self, length: int) -> str:
        """How ``length`` was calibrated: "runs" (its own documents) or "parametric"."""
        return self.methods.get(length, RUNS)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return {"format_version": FORMAT_VERSION, "model_name": self.model_name, "model_id": self.model_id,
                "scoring": self.scoring, "split": "val", "fractions": list(self.fractions),
                "n_writers": self.n_writers, "n_docs": {str(k): v for k, v in self.n_docs.items()},
                "buckets": {str(k): e.to_dict() for k, e in sorted(self.buckets.items())},
                "methods": {str(k): self.method(k) for k in sorted(self.buckets)},
                "parametric": None if self.parametric is None else self.parametric.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str) -> LengthCalibration:
        """Rebuild from :meth:`to_dict`'s output; a missing key is refused naming ``where``."""
        missing = [k for k in ("model_name", "model_id", "scoring", "buckets", "fractions", "n_writers", "n_docs")
                   if k not in d]
        if missing or not d.get("buckets"):
            raise WrmilInputError(f"{where} lacks {', '.join(missing) or 'buckets'}; re-materialise mil_model")
        return cls(model_name=str(d["model_name"]), model_id=str(d["model_id"]), scoring=str(d["scoring"]),
                   buckets={int(k): DetectorEvidence.from_dict(v, where) for k, v in d["buckets"].items()},
                   fractions=tuple(float(f) for f in d["fractions"]), n_writers=int(d["n_writers"]),
                   n_docs={int(k): {str(a): int(b) for a, b in v.items()} for k, v in d["n_docs"].items()},
                   methods={int(k): _method(v, where) for k, v in (d.get("methods") or {}).items()},
                   parametric=None if d.get("parametric") is None else LengthModel.from_dict(d["parametric"], where))


def _method(value: Any, where: str) -> str:
    """A saved per-length method, refused unless "runs" or "parametric"."""
    if value not in (RUNS, PARAMETRIC):
        raise WrmilInputError(f"{where}: length method {value!r} is not {RUNS!r} or {PARAMETRIC!r}; "
                              "re-materialise mil_model")
    return str(value)


def calibration_docs(emb: pl.DataFrame, length: int, fractions: tuple[float, ...] = DEFAULT_RATIOS,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """``(x (N, length, dim), labels (N,), n_writers)``: every writer's words in reading order cut into
    DISJOINT runs of ``length`` words (genuine documents), and each run once per foreign fraction
    with a contiguous passage of ``max(1, round(fraction * length))`` words at a random place
    replaced by a random run of another writer's words (contaminated documents)."""
    seqs, matrix = writer_sequences(emb)
    rng = np.random.default_rng([seed, length])
    runs, labels, writers = [], [], set()
    for w, seq in seqs.items():
        n_runs = seq.size // length
        offset = int(rng.integers(seq.size - n_runs * length + 1)) if n_runs else 0
        for k in range(n_runs):
            doc = seq[offset + k * length:offset + (k + 1) * length]
            runs.append(doc)
            labels.append(0)
            writers.add(w)
            for frac in fractions:
                planted = _plant(rng, doc, seqs, w, max(1, round(frac * length)))
                if planted is not None:
                    runs.append(planted)
                    labels.append(1)
    if not runs:
        return np.zeros((0, length, matrix.shape[1]), np.float32), np.zeros(0, int), 0
    return matrix[np.stack(runs)], np.asarray(labels, dtype=int), len(writers)


def _plant(rng: np.random.Generator, doc: np.ndarray, seqs: Mapping[int, np.ndarray], host: int,
           m: int) -> np.ndarray | None:
    """``doc`` (word rows) with ``m`` consecutive words replaced by a run of another writer's words
    (None when no other writer has ``m`` words)."""
    donors = [w for w, r in seqs.items() if w != host and r.size >= m]
    if not donors:
        return None
    donor = seqs[donors[int(rng.integers(len(donors)))]]
    p, q = int(rng.integers(doc.size - m + 1)), int(rng.integers(donor.size - m + 1))
    planted = doc.copy()
    planted[p:p + m] = donor[q:q + m]
    return planted


def fit_length_calibration(model_dir: str | Path, val_emb: pl.DataFrame, lengths: tuple[int, ...] = LENGTHS,
                           fractions: tuple[float, ...] = DEFAULT_RATIOS, min_genuine: int = MIN_GENUINE,
                           seed: int = 0, device: str = "cpu") -> LengthCalibration | None:
    """Fit the saved model's evidence per length on validation writers' documents (module docstring).

    A length with at least ``min_genuine`` disjoint genuine documents is fitted on them ("runs"),
    one with fewer gets the parametric model ("parametric"), one with none is left out; None when
    no length is left.
    """
    model, cfg = load_mil_model(model_dir, device)
    name, model_id = str(cfg["model_name"]), str(cfg.get("model_id", ""))
    scorer = document_scorer(model, name, int(cfg["window_size"]), int(cfg["bag_size"]))
    data = {}  # length -> (scores, labels, n_writers), lengths with both kinds of document only
    for length in lengths:
        x, y, n_writers = calibration_docs(val_emb, length, fractions, seed)
        if (y == 0).any() and (y == 1).any():
            data[length] = (np.asarray(scorer(x), dtype=np.float64), y, n_writers)
    few = [length for length, (_, y, _) in data.items() if (y == 0).sum() < min_genuine]
    length_model = fit_length_model({k: v[:2] for k, v in data.items()}) if few else None
    buckets, methods = {}, {}
    for length, (s, y, n_writers) in data.items():
        if length not in few:
            buckets[length], methods[length] = fit_evidence(name, model_id, s, y, n_writers=n_writers), RUNS
        elif length_model is not None:
            evidence = parametric_evidence(name, model_id, length_model, length, s, y, n_writers)
            if evidence is not None:  # None: the model's slope is negative at this length
                buckets[length], methods[length] = evidence, PARAMETRIC
    if not buckets:
        return None
    n_docs = {k: {"h1": int(data[k][1].sum()), "h0": int((data[k][1] == 0).sum())} for k in buckets}
    return LengthCalibration(model_name=name, model_id=model_id, scoring=WHOLE if scores_whole(name) else SLIDING,
                             buckets=buckets, fractions=tuple(fractions),
                             n_writers=max(data[k][2] for k in buckets), n_docs=n_docs, methods=methods,
                             parametric=length_model if PARAMETRIC in methods.values() else None)


def fit_length_model(data: Mapping[int, tuple[np.ndarray, np.ndarray]]) -> LengthModel | None:
    """The parametric model (:class:`LengthModel`) on ``{length: (scores, labels)}``; None with fewer
    than ``MIN_PARAMETRIC_LENGTHS`` lengths.

    sklearn's logistic regression on standardised terms (its default L2 penalty then means the same
    whatever the score scale, and keeps separable documents from giving infinite slopes), weighted so
    that within each length both classes weigh alike; coefficients mapped back to the raw terms.
    """
    from sklearn.linear_model import LogisticRegression

    if len(data) < MIN_PARAMETRIC_LENGTHS:
        return None
    s = np.concatenate([np.asarray(v[0], dtype=np.float64) for v in data.values()])
    y = np.concatenate([np.asarray(v[1]).astype(int) for v in data.values()])
    ln_l = np.concatenate([np.full(len(v[1]), math.log(k)) for k, v in data.items()])
    weight = np.concatenate([_balanced_weights(np.asarray(v[1]).astype(int)) for v in data.values()])
    terms = np.column_stack([s, ln_l, s * ln_l])
    mu, sd = terms.mean(axis=0), terms.std(axis=0)
    sd[sd == 0] = 1.0  # a constant term (every score alike) has no slope to scale
    fit = LogisticRegression().fit((terms - mu) / sd, y, sample_weight=weight)
    b = fit.coef_.ravel() / sd
    coef = (float(fit.intercept_[0] - b @ mu), *map(float, b))
    return LengthModel(coef=coef, lengths=tuple(sorted(data)))  # type: ignore[arg-type]


def _balanced_weights(y: np.ndarray) -> np.ndarray:
    """Per document, ``n / (2 n_class)``: both classes of one length weigh ``n / 2`` in all."""
    n1 = int(y.sum())
    return np.where(y == 1, len(y) / (2 * n1), len(y) / (2 * (len(y) - n1)))


def parametric_evidence(name: str, model_id: str, length_model: LengthModel, length: int, scores: np.ndarray,
                        labels: np.ndarray, n_writers: int) -> DetectorEvidence | None:
    """The parametric model's calibrator at ``length`` (ELUB on this length's runs), with the PAV
    candidate's levels and both val Cllr for the record, and the runs' empirical thresholds; None
    when the model's slope at ``length`` is negative (no monotone calibration to give)."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels).astype(int)
    intercept, slope = length_model.at(length)
    calibrator = logistic_calibrator(intercept, slope, s, y, n_writers)
    if calibrator is None:
        return None
    pav = fit_pav(s, y, n_writers)
    calibrator = replace(calibrator, pav_levels=pav_levels(pav), cllr_val_pav=cllr(pav.log10_lr(s), y),
                         cllr_val_logistic=cllr(calibrator.log10_lr(s), y))
    return DetectorEvidence(model_name=name, model_id=model_id, calibrator=calibrator,
                            thresholds=fit_fpr_thresholds(y, s), n_genuine_val=int((y == 0).sum()))


def nearest_length(lengths: Iterable[int], n_words: float) -> int:
    """The length nearest ``n_words`` on a log scale (70 words is nearer 50 than 100; ties: the shorter)."""
    return min(sorted(lengths), key=lambda length: abs(math.log(max(n_words, 1) / length)))


def save_length_calibration(calibration: LengthCalibration, model_dir: str | Path) -> Path:
    """Write ``<model_dir>/length_calibration.json`` atomically."""
    return write_json_atomic(Path(model_dir) / LENGTH_CALIBRATION_FILE, calibration.to_dict())


def load_length_calibration(model_dir: str | Path, model_id: str | None = None) -> LengthCalibration | None:
    """``<model_dir>/length_calibration.json`` (None when absent); a corrupt or stale one is refused."""
    path = Path(model_dir) / LENGTH_CALIBRATION_FILE
    if not path.is_file():
        return None
    return read_calibration_json(path, LengthCalibration.from_dict, model_id, "length calibration")


def fit_length_calibrations(model_dirs: Mapping[str, str | Path], val_emb: pl.DataFrame, device: str = "cpu",
                            log: Log = None, **kwargs: Any) -> dict[str, Path]:
    """Fit and save the length calibration of every saved model on the validation embeddings."""
    say, out = speaker(log), {}
    for name, directory in model_dirs.items():
        calibration = fit_length_calibration(directory, val_emb, device=device, **kwargs)
        if calibration is None:
            say(f"[{name}] no length calibration: the validation writers have too few words for any length")
            continue
        out[name] = save_length_calibration(calibration, directory)
        at = ", ".join(f"{k} ({calibration.method(k)})" for k in sorted(calibration.buckets))
        say(f"[{name}] length calibration ({calibration.scoring}) at {at} words on {calibration.n_writers} "
            f"validation writers" + _parametric_note(calibration))
    return out


def _parametric_note(calibration: LengthCalibration) -> str:
    """Why some lengths are parametric, for the log line ('' when none is)."""
    if calibration.parametric is None:
        return ""
    return (f"; parametric = fewer than {MIN_GENUINE} genuine runs there: logistic of label on score, ln(words) and "
            f"their product fitted on the runs of {list(calibration.parametric.lengths)} words")


__all__ = ["LENGTH_CALIBRATION_FILE", "MIN_GENUINE", "MIN_PARAMETRIC_LENGTHS", "PARAMETRIC", "RUNS",
           "LengthCalibration", "LengthModel", "calibration_docs", "fit_length_calibration", "fit_length_calibrations",
           "fit_length_model", "load_length_calibration", "nearest_length", "parametric_evidence",
           "save_length_calibration"]
