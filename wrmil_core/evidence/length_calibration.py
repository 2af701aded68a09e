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
* a length needs at least ``MIN_GENUINE`` genuine documents, else it is not calibrated;
* each detector scores them exactly as ``wrmil score`` does (:func:`wrmil_core.mil.documents.document_scorer`);
* per length, :func:`wrmil_core.evidence.store.fit_evidence` fits the PAV + ELUB calibrator and the
  1 % / 5 % false-positive thresholds on those scores.

``wrmil score`` (:mod:`wrmil_core.scoring.calibrated`) applies the calibrated length nearest to the document's
(:func:`nearest_length`), the bag calibration (``calibration.json``) standing for the bag's length
where no length calibration does, and says which one; a document shorter than the shortest
calibrated length gets that one with a warning.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from wrmil_core.errors import WrmilInputError
from wrmil_core.evidence.length import LENGTHS, writer_sequences
from wrmil_core.evidence.store import DetectorEvidence, fit_evidence, read_calibration_json
from wrmil_core.mil.documents import SLIDING, WHOLE, document_scorer
from wrmil_core.mil.registry import load_mil_model, scores_whole
from wrmil_core.runtime import Log, speaker
from wrmil_core.schema import DEFAULT_RATIOS

LENGTH_CALIBRATION_FILE = "length_calibration.json"
FORMAT_VERSION = 1
# Fewest disjoint genuine validation documents a length needs: the 5 %-FPR threshold then rests on at
# least 2.5 expected exceedances (a 1 % one on none: it admits no validation false positive at all).
MIN_GENUINE = 50


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

    A length whose disjoint genuine documents number fewer than ``min_genuine`` is left out;
    None when no length is left.
    """
    model, cfg = load_mil_model(model_dir, device)
    name = str(cfg["model_name"])
    scorer = document_scorer(model, name, int(cfg["window_size"]), int(cfg["bag_size"]))
    buckets, n_docs, writers = {}, {}, 0
    for length in lengths:
        x, y, n_writers = calibration_docs(val_emb, length, fractions, seed)
        if (y == 0).sum() < min_genuine or not (y == 1).any():
            continue
        buckets[length] = fit_evidence(name, str(cfg.get("model_id", "")), scorer(x), y, n_writers=n_writers)
        n_docs[length] = {"h1": int(y.sum()), "h0": int((y == 0).sum())}
        writers = max(writers, n_writers)
    if not buckets:
        return None
    return LengthCalibration(model_name=name, model_id=str(cfg.get("model_id", "")),
                             scoring=WHOLE if scores_whole(name) else SLIDING, buckets=buckets,
                             fractions=tuple(fractions), n_writers=writers, n_docs=n_docs)


def nearest_length(lengths: Iterable[int], n_words: int) -> int:
    """The length nearest ``n_words`` on a log scale (70 words is nearer 50 than 100; ties: the shorter)."""
    return min(sorted(lengths), key=lambda length: abs(math.log(max(n_words, 1) / length)))


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
        say(f"[{name}] length calibration ({calibration.scoring}) at {sorted(calibration.buckets)} words "
            f"on {calibration.n_writers} validation writers")
    return out


__all__ = ["LENGTH_CALIBRATION_FILE", "MIN_GENUINE", "LengthCalibration", "calibration_docs", "fit_length_calibration",
           "fit_length_calibrations", "load_length_calibration", "nearest_length", "save_length_calibration"]
