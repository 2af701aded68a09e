"""What a detector needs to give evidence, saved beside its model: ``<model_dir>/calibration.json``.

:class:`DetectorEvidence` bundles the score -> log10 LR calibrator and the false-positive
thresholds, both fitted on the same validation bags, with the model id they belong to, so a
stale file (the model refitted, the calibration not) is refused on load. Plain JSON, never pickle.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from wrmil_core.errors import WrmilInputError
from wrmil_core.evidence.calibration import Calibrator, fit_calibrator
from wrmil_core.evidence.decisions import FPR_TARGETS, fit_fpr_thresholds

EVIDENCE_FILE = "calibration.json"
T = TypeVar("T")


@dataclass(frozen=True)
class DetectorEvidence:
    """One detector's calibrator and validation thresholds (``fpr_1``, ``fpr_5`` on its bag score)."""

    model_name: str
    model_id: str
    calibrator: Calibrator
    thresholds: dict[str, float]
    n_genuine_val: int  # genuine validation bags behind the thresholds

    def log10_lr(self, scores: np.ndarray) -> np.ndarray:
        """Shorthand for ``self.calibrator.log10_lr``."""
        return self.calibrator.log10_lr(scores)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return {"model_name": self.model_name, "model_id": self.model_id, "calibrator": self.calibrator.to_dict(),
                "thresholds": dict(self.thresholds), "n_genuine_val": self.n_genuine_val}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = EVIDENCE_FILE) -> DetectorEvidence:
        """Rebuild from :meth:`to_dict`'s output; a missing key is refused naming ``where``."""
        missing = [k for k in ("model_name", "model_id", "calibrator", "thresholds", "n_genuine_val") if k not in d]
        if missing:
            raise WrmilInputError(f"{where} lacks {', '.join(missing)}; re-materialise mil_model to refit it")
        return cls(model_name=str(d["model_name"]), model_id=str(d["model_id"]),
                   calibrator=Calibrator.from_dict(d["calibrator"], where),
                   thresholds={str(k): float(v) for k, v in d["thresholds"].items()},
                   n_genuine_val=int(d["n_genuine_val"]))


def fit_evidence(model_name: str, model_id: str, val_scores: np.ndarray, val_labels: np.ndarray,
                 n_writers: int | None = None, targets: tuple[float, ...] = FPR_TARGETS) -> DetectorEvidence:
    """Calibrator and false-positive thresholds of one detector, both fitted on its validation scores."""
    y = np.asarray(val_labels).ravel().astype(int)
    return DetectorEvidence(model_name=model_name, model_id=model_id,
                            calibrator=fit_calibrator(val_scores, y, n_writers),
                            thresholds=fit_fpr_thresholds(y, val_scores, targets), n_genuine_val=int((y == 0).sum()))


def write_json_atomic(path: Path, doc: dict[str, Any], sort_keys: bool = False) -> Path:
    """Write ``doc`` as strict JSON to ``path`` atomically (temporary name, then rename): a killed run
    never leaves a half-written calibration beside a model."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=sort_keys, allow_nan=False))
    tmp.replace(path)
    return path


def save_evidence(evidence: DetectorEvidence, model_dir: str | Path) -> Path:
    """Write ``<model_dir>/calibration.json`` atomically (:func:`write_json_atomic`)."""
    return write_json_atomic(Path(model_dir) / EVIDENCE_FILE, evidence.to_dict(), sort_keys=True)


def load_evidence(model_dir: str | Path, model_id: str | None = None) -> DetectorEvidence:
    """Read ``<model_dir>/calibration.json``; refuse a missing, corrupt or stale one (other ``model_id``)."""
    path = Path(model_dir) / EVIDENCE_FILE
    if not path.is_file():
        raise WrmilInputError(f"{path} is missing: the model has no calibration; re-materialise mil_model")
    return read_calibration_json(path, DetectorEvidence.from_dict, model_id, "calibration")


def read_calibration_json(path: Path, parse: Callable[[dict[str, Any], str], T], model_id: str | None, what: str) -> T:
    """One calibration file beside a model, parsed by ``parse(dict, where)``; a corrupt file or a stale one
    (fitted for another ``model_id``) is refused in one line saying to re-materialise mil_model."""
    try:
        calibration = parse(json.loads(path.read_text()), str(path))
    except WrmilInputError:
        raise
    except (ValueError, TypeError, AttributeError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise WrmilInputError(f"{path} is not a valid {what} ({e}); re-materialise mil_model") from e
    if model_id is not None and calibration.model_id != model_id:
        raise WrmilInputError(f"{path} calibrates model {calibration.model_id!r} but the model in {path.parent} is "
                              f"{model_id!r}: the calibration is stale; re-materialise mil_model")
    return calibration
