"""Calibration per document length: ``<model_dir>/length_calibration.json``.

``calibration.json`` (:mod:`wrmil_core.evidence.store`) is fitted on validation *bags*, all of one
length. A questioned document has any length, and even a statistic whose one-writer distribution
is flat in the length (``segment_scan``) gets more evidence from a longer foreign passage, so its
LR drifts with the length; a max over sliding bags also flags genuine documents more readily as
they grow. So each detector is calibrated again per length bucket:

* documents of each length (25, 50, 100, 200 words) are cut from the VALIDATION writers' words
  (:func:`wrmil_core.evidence.length.make_length_docs`, never test writers): genuine runs of one
  writer's words, and the same runs with a contiguous passage of 5, 10, 20 or 30 % of the words
  (the bags' contamination fractions) planted from another validation writer;
* each detector scores them exactly as ``wrmil score`` does (:func:`.whole.document_scorer`);
* per length, :func:`wrmil_core.evidence.fit_evidence` fits the PAV + ELUB calibrator and the
  1 % / 5 % false-positive thresholds on those scores.

``wrmil score`` applies the bucket nearest to the document's length (on a log scale: 70 words is
nearer 50 than 100) and says which one; a document shorter than the shortest bucket gets that
bucket with a warning. Without the file it falls back to ``calibration.json`` (the bag length).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from wrmil_core.errors import WrmilInputError
from wrmil_core.evidence import DetectorEvidence, fit_evidence
from wrmil_core.evidence.length import LENGTHS, make_length_docs, writer_sequences
from wrmil_core.runtime import Log, speaker
from wrmil_core.schema import DEFAULT_RATIOS

LENGTH_CALIBRATION_FILE = "length_calibration.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class LengthCalibration:
    """One detector's evidence per document length (``buckets``: words -> evidence)."""

    model_name: str
    model_id: str
    scoring: str                              # "whole document" or "sliding bags" (.whole)
    buckets: dict[int, DetectorEvidence]
    fractions: tuple[float, ...]              # foreign fractions of the planted passages
    n_writers: int                            # validation writers the documents came from
    n_docs: dict[int, dict[str, int]]         # per length: {"h1": .., "h0": ..}

    def nearest(self, n_words: int) -> int:
        """The bucket nearest ``n_words`` on a log scale (ties: the shorter bucket)."""
        return min(sorted(self.buckets), key=lambda length: abs(math.log(max(n_words, 1) / length)))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return {"format_version": FORMAT_VERSION, "model_name": self.model_name, "model_id": self.model_id,
                "scoring": self.scoring, "split": "val", "fractions": list(self.fractions),
                "n_writers": self.n_writers, "n_docs": {str(k): v for k, v in self.n_docs.items()},
                "buckets": {str(k): e.to_dict() for k, e in sorted(self.buckets.items())}}

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
                   n_docs={int(k): {str(a): int(b) for a, b in v.items()} for k, v in d["n_docs"].items()})


def calibration_docs(emb: pl.DataFrame, length: int, fractions: tuple[float, ...] = DEFAULT_RATIOS,
                     per_writer: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """``(x (N, length, dim), labels (N,), n_writers)``: per foreign fraction, ``per_writer`` genuine and
    as many contaminated documents per writer of ``emb`` (see the module docstring)."""
    seqs, matrix = writer_sequences(emb)
    xs, ys, writers = [], [], set()
    for k, frac in enumerate(fractions):
        docs = make_length_docs(seqs, matrix, length, frac, per_writer, seed + 1000 * k)
        xs.append(docs.x)
        ys.append(docs.label)
        writers.update(docs.writer.tolist())
    return np.concatenate(xs), np.concatenate(ys).astype(int), len(writers)


def fit_length_calibration(model_dir: str | Path, val_emb: pl.DataFrame, lengths: tuple[int, ...] = LENGTHS,
                           fractions: tuple[float, ...] = DEFAULT_RATIOS, per_writer: int = 10, seed: int = 0,
                           device: str = "cpu") -> LengthCalibration | None:
    """Fit the saved model's evidence per length on validation writers' documents (module docstring).

    Lengths no validation writer has enough words for, or without both kinds of documents, are
    left out; None when no length is left.
    """
    from wrmil_core.mil.inference import load_mil_model
    from wrmil_core.scoring.whole import SLIDING, WHOLE, document_scorer, scores_whole

    model, cfg = load_mil_model(model_dir, device)
    name = str(cfg["model_name"])
    scorer = document_scorer(model, name, int(cfg["window_size"]), int(cfg["bag_size"]))
    buckets, n_docs, writers = {}, {}, 0
    for length in lengths:
        x, y, n_writers = calibration_docs(val_emb, length, fractions, per_writer, seed)
        if not ((y == 0).any() and (y == 1).any()):
            continue
        buckets[length] = fit_evidence(name, str(cfg.get("model_id", "")), scorer(x), y, n_writers=n_writers)
        n_docs[length] = {"h1": int(y.sum()), "h0": int((y == 0).sum())}
        writers = max(writers, n_writers)
    if not buckets:
        return None
    return LengthCalibration(model_name=name, model_id=str(cfg.get("model_id", "")),
                             scoring=WHOLE if scores_whole(name) else SLIDING, buckets=buckets,
                             fractions=tuple(fractions), n_writers=writers, n_docs=n_docs)


def save_length_calibration(calibration: LengthCalibration, model_dir: str | Path) -> Path:
    """Write ``<model_dir>/length_calibration.json`` atomically."""
    path = Path(model_dir) / LENGTH_CALIBRATION_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(calibration.to_dict(), indent=2, allow_nan=False))
    tmp.replace(path)
    return path


def load_length_calibration(model_dir: str | Path, model_id: str | None = None) -> LengthCalibration | None:
    """``<model_dir>/length_calibration.json`` (None when absent); a corrupt or stale one is refused."""
    path = Path(model_dir) / LENGTH_CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        calibration = LengthCalibration.from_dict(json.loads(path.read_text()), str(path))
    except (ValueError, TypeError, AttributeError) as e:  # JSONDecodeError is a ValueError
        if isinstance(e, WrmilInputError):
            raise
        raise WrmilInputError(f"{path} is not a valid length calibration ({e}); re-materialise mil_model") from e
    if model_id is not None and calibration.model_id != model_id:
        raise WrmilInputError(f"{path} calibrates model {calibration.model_id!r} but the model in {model_dir} is "
                              f"{model_id!r}: the calibration is stale; re-materialise mil_model")
    return calibration


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
        say(f"[{name}] length calibration ({calibration.scoring}) at {sorted(calibration.buckets)} words "
            f"on {calibration.n_writers} validation writers")
    return out


__all__ = ["LENGTH_CALIBRATION_FILE", "LengthCalibration", "calibration_docs", "fit_length_calibration",
           "fit_length_calibrations", "load_length_calibration", "save_length_calibration"]
