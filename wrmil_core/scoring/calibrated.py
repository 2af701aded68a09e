"""Which calibration a questioned document gets, and its evidence under it.

A MIL model directory holds ``calibration.json`` (validation bags, one length: the bag's
``bag_size * window_size`` words; :mod:`wrmil_core.evidence.store`) and, when the pipeline fitted
it, ``length_calibration.json`` (validation documents of 25 .. 200 words, :mod:`.length_calibration`).
The calibrated length nearest the document's is applied (the bags stand for their own length where
the length calibration has none). ``calibration.json`` is required in any case: a model
materialised before calibrated scoring is refused with one line saying what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wrmil_core.errors import WrmilInputError
from wrmil_core.evidence import EVIDENCE_FILE, DetectorEvidence, load_evidence
from wrmil_core.evidence.length_calibration import LENGTH_CALIBRATION_FILE, load_length_calibration, nearest_length

REMATERIALISE = "re-materialise mil_model (`wrmil run --job retrain_mil`)"


@dataclass(frozen=True)
class AppliedCalibration:
    """The evidence a document of ``n_words`` gets: the calibrator and the 1 % / 5 % FPR thresholds."""

    evidence: DetectorEvidence
    source: str            # "length" (length_calibration.json) or "bags" (calibration.json)
    length: int            # words per document (or bag) the calibration was fitted on
    file: str
    n_h1: int
    n_h0: int
    n_writers: int | None
    warning: str | None    # set when the document is outside the calibrated lengths (:func:`_outside`)
    length_method: str = "bags"  # "runs" / "parametric" (length_calibration.json) or "bags"

    def describe(self) -> dict[str, Any]:
        """What score.json records about the calibration used: where it comes from, how that length
        was calibrated (``length_method``) and which calibrator (``kind``, both candidates' val Cllr)."""
        c = self.evidence.calibrator.describe()
        return {"source": self.source, "file": self.file, "calibrated_length_words": self.length,
                "length_method": self.length_method, "fitted_on": "validation writers", "n_h1": self.n_h1,
                "n_h0": self.n_h0, "n_writers": self.n_writers, "llr_bounds": c["llr_bounds"], "kind": c["kind"],
                "pav_levels": c["pav_levels"], "cllr_val_pav": c["cllr_val_pav"],
                "cllr_val_logistic": c["cllr_val_logistic"], "warning": self.warning}

    def log10_lr(self, scores: np.ndarray | list[float] | float) -> np.ndarray:
        """log10 LR of raw scores (the detector's bag-score scale)."""
        return self.evidence.log10_lr(np.asarray(scores, dtype=np.float64))


def require_evidence(mil_dir: Path, model_id: str | None) -> DetectorEvidence:
    """``calibration.json`` of a MIL model, refused in one line when absent (an older materialisation)."""
    if not (mil_dir / EVIDENCE_FILE).is_file():
        raise WrmilInputError(f"MIL model {mil_dir} has no {EVIDENCE_FILE} (it was materialised before calibrated "
                              f"scoring); {REMATERIALISE}")
    return load_evidence(mil_dir, model_id)


def applied_calibration(mil_dir: Path, mil_config: dict[str, Any], n_words: int) -> AppliedCalibration:
    """The calibration for a document of ``n_words`` words: the nearest calibrated length, the
    validation bags standing for the bag length where the length calibration has none."""
    model_id = mil_config.get("model_id")
    bags = require_evidence(mil_dir, model_id)
    by_length = load_length_calibration(mil_dir, model_id)
    c = bags.calibrator
    options: dict[int, tuple[str, DetectorEvidence, str, int, int, int | None, str]] = {}
    if by_length is not None:
        for length, evidence in by_length.buckets.items():
            docs = by_length.n_docs[length]
            options[length] = ("length", evidence, LENGTH_CALIBRATION_FILE, docs["h1"], docs["h0"], by_length.n_writers,
                               by_length.method(length))
    bag_length = int(mil_config["bag_size"]) * int(mil_config["window_size"])
    options.setdefault(bag_length, ("bags", bags, EVIDENCE_FILE, c.n_h1, c.n_h2, c.n_writers, "bags"))
    length = nearest_length(options, n_words)
    source, evidence, file, n_h1, n_h0, n_writers, method = options[length]
    return AppliedCalibration(evidence, source, length, str(mil_dir / file), n_h1, n_h0, n_writers,
                              _outside(n_words, min(options), max(options)), method)


LONG_FACTOR = 2  # a document more than this many times the longest calibrated length is warned about


def _outside(n_words: int, shortest: int, longest: int) -> str | None:
    """A warning when the document is shorter than the shortest calibrated length, or more than
    ``LONG_FACTOR`` times the longest (nearest on a log scale would still pick the longest)."""
    if n_words < shortest:
        return (f"the document has {n_words} words, fewer than the shortest calibrated length ({shortest} words); "
                "its LR and decisions are extrapolated and less reliable")
    if n_words > LONG_FACTOR * longest:
        return (f"the document has {n_words} words, more than {LONG_FACTOR}x the longest calibrated length "
                f"({longest} words); its LR and decisions are extrapolated from that length")
    return None


__all__ = ["REMATERIALISE", "AppliedCalibration", "applied_calibration", "require_evidence"]
