"""Calibration of the two-document comparison: ``<fused model_dir>/compare_calibration.json``.

``wrmil compare`` asks whether a questioned document was written by the writer of known writings.
Its score is the two-covariance same-writer log LR of the two word sets
(:func:`wrmil_core.detectors.two_covariance.same_writer_llr`) in the default detector's fitted
frame. That LR rests on Gaussian assumptions the embedding only roughly meets, so it is calibrated
like every other score here, on VALIDATION writers only (never test writers):

* each validation writer's words in reading order (:func:`wrmil_core.evidence.length.writer_sequences`)
  are cut into DISJOINT runs of ``n`` words: the "documents". Pairs are always of two disjoint
  documents, never of words, since a document's words share a page, a pen and a day;
* same-writer pairs: two runs of one writer (every pair of its runs, at most
  ``MAX_SAME`` of them drawn at random); different-writer pairs: runs
  of two writers, drawn at random (``DIFF_PER_SAME`` per same-writer pair);
* per ``n`` in :data:`COMPARE_WORDS` a calibrator (:func:`wrmil_core.evidence.fit_calibrator`:
  PAV + ELUB, or logistic with few PAV levels) maps the raw LLR to log10 LR of H1 "same writer"
  against H2 "different writers".

``wrmil compare`` applies the calibration of the ``n`` nearest (log scale) to the pair's effective
words per side, the harmonic mean ``2 nQ nK / (nQ + nK)``: the difference of two set means has the
variance of two equal sides of that size, so 50 questioned words against 1000 known ones count as
about 95 per side, not 50 or 1000.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from wrmil_core.detectors.two_covariance import TwoCovariance, same_writer_llr_sums
from wrmil_core.errors import WrmilInputError
from wrmil_core.evidence.calibration import Calibrator, fit_calibrator
from wrmil_core.evidence.length import writer_sequences
from wrmil_core.evidence.length_calibration import nearest_length
from wrmil_core.evidence.store import read_calibration_json, write_json_atomic
from wrmil_core.runtime import Log, speaker

COMPARE_CALIBRATION_FILE = "compare_calibration.json"
COMPARE_MODEL = "fused"  # the detector whose fitted two-covariance frame the comparison uses
COMPARE_WORDS: tuple[int, ...] = (10, 25, 50)  # words per side of the calibration pairs
DIFF_PER_SAME = 4  # different-writer pairs drawn per same-writer pair (they are plentiful, and cheap)
MAX_SAME = 2000  # same-writer pairs kept per size (drawn at random): enough for PAV, bounded cost
MIN_WRITERS = 2  # different-writer pairs need two writers with a run each
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ComparePairs:
    """Scored pairs of disjoint runs of ``n`` words: ``llr`` (natural log, same vs different writer),
    ``same`` (1: one writer), ``writers`` (P, 2) the writers behind each side."""

    n: int
    llr: np.ndarray
    same: np.ndarray
    writers: np.ndarray

    @property
    def n_writers(self) -> int:
        """Distinct writers behind the pairs."""
        return int(np.unique(self.writers).size)


@dataclass(frozen=True)
class CompareCalibration:
    """The comparison's calibrators per words per side (``buckets``), fitted on validation pairs."""

    model_name: str
    model_id: str
    buckets: dict[int, Calibrator]
    n_pairs: dict[int, dict[str, int]]  # per n: {"same": .., "different": ..}
    n_writers: int

    def nearest(self, n_q: int, n_k: int) -> int:
        """The calibrated words per side nearest (log scale) the pair's effective size (module docstring)."""
        return nearest_length(self.buckets, effective_words(n_q, n_k))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return {"format_version": FORMAT_VERSION, "model_name": self.model_name, "model_id": self.model_id,
                "split": "val", "hypotheses": {"H1": "same writer", "H2": "different writers"},
                "n_writers": self.n_writers, "n_pairs": {str(k): v for k, v in sorted(self.n_pairs.items())},
                "buckets": {str(k): c.to_dict() for k, c in sorted(self.buckets.items())}}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str) -> CompareCalibration:
        """Rebuild from :meth:`to_dict`'s output; a missing key is refused naming ``where``."""
        missing = [k for k in ("model_name", "model_id", "buckets", "n_pairs", "n_writers") if k not in d]
        if missing or not d.get("buckets"):
            raise WrmilInputError(f"{where} lacks {', '.join(missing) or 'buckets'}; re-materialise mil_model")
        return cls(model_name=str(d["model_name"]), model_id=str(d["model_id"]),
                   buckets={int(k): Calibrator.from_dict(v, where) for k, v in d["buckets"].items()},
                   n_pairs={int(k): {str(a): int(b) for a, b in v.items()} for k, v in d["n_pairs"].items()},
                   n_writers=int(d["n_writers"]))


def effective_words(n_q: int, n_k: int) -> float:
    """Words per side of the equal-sided pair as informative as ``n_q`` against ``n_k``: their harmonic mean."""
    if n_q < 1 or n_k < 1:
        raise WrmilInputError(f"comparison: each side needs at least one word, got {n_q} and {n_k}")
    return 2.0 * n_q * n_k / (n_q + n_k)


def disjoint_runs(emb: pl.DataFrame, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(runs (R, n) row indices, writers (R,), matrix (N, dim))``: each writer's words in reading
    order cut into disjoint runs of ``n`` words (a writer's leftover tail is dropped)."""
    seqs, matrix = writer_sequences(emb)
    runs, writers = [], []
    for w, seq in seqs.items():
        for k in range(seq.size // n):
            runs.append(seq[k * n:(k + 1) * n])
            writers.append(w)
    if not runs:
        return np.zeros((0, n), int), np.zeros(0, int), matrix
    return np.stack(runs), np.asarray(writers), matrix


def pair_indices(writers: np.ndarray, seed: int = 0, max_same: int = MAX_SAME) -> tuple[np.ndarray, np.ndarray]:
    """``(pairs (P, 2) run indices, same (P,))``: pairs of runs of one writer (all of them, or
    ``max_same`` drawn at random), then ``DIFF_PER_SAME`` times as many random pairs of runs of two writers."""
    rng = np.random.default_rng(seed)
    same = np.asarray([(i, j) for w in np.unique(writers) for i, j in _all_pairs(np.flatnonzero(writers == w))],
                      dtype=int).reshape(-1, 2)
    if len(same) > max_same:
        same = same[np.sort(rng.choice(len(same), max_same, replace=False))]
    n_diff = DIFF_PER_SAME * max(len(same), 1)
    drawn = rng.integers(len(writers), size=(4 * n_diff, 2)) if len(writers) else np.zeros((0, 2), int)
    diff = drawn[writers[drawn[:, 0]] != writers[drawn[:, 1]]][:n_diff] if len(writers) else drawn
    return np.concatenate([same, diff]), np.concatenate([np.ones(len(same), int), np.zeros(len(diff), int)])


def _all_pairs(idx: np.ndarray) -> list[tuple[int, int]]:
    """Every unordered pair of distinct entries of ``idx``."""
    return [(int(idx[a]), int(idx[b])) for a in range(idx.size) for b in range(a + 1, idx.size)]


def score_pairs(emb: pl.DataFrame, model: TwoCovariance, n: int, seed: int = 0) -> ComparePairs:
    """Same- and different-writer pairs of disjoint ``n``-word runs of ``emb``'s writers
    (:func:`pair_indices`), scored by the two-covariance same-writer LLR in ``model``'s frame."""
    runs, writers, matrix = disjoint_runs(emb, n)
    pairs, same = pair_indices(writers, seed)
    if not len(pairs):
        return ComparePairs(n=n, llr=np.zeros(0), same=same, writers=np.zeros((0, 2), int))
    sums = model.project(torch.from_numpy(matrix[runs])).sum(dim=1)  # (R, D): each run's summed frame vector
    llr = same_writer_llr_sums(n, sums[pairs[:, 0]], n, sums[pairs[:, 1]], model.between.double())
    return ComparePairs(n=n, llr=llr.numpy().astype(np.float64), same=same, writers=writers[pairs])


def fit_compare_calibration(model_name: str, model_id: str, model: TwoCovariance, val_emb: pl.DataFrame,
                            sizes: tuple[int, ...] = COMPARE_WORDS, seed: int = 0) -> CompareCalibration | None:
    """Calibrators per words per side on the validation writers' pairs (module docstring); a size
    without both kinds of pair is left out; None when none is left (fewer than two writers with runs)."""
    buckets, n_pairs, writers = {}, {}, set()
    for n in sizes:
        p = score_pairs(val_emb, model, n, seed)
        if p.n_writers < MIN_WRITERS or not (p.same.any() and (p.same == 0).any()):
            continue
        buckets[n] = fit_calibrator(p.llr, p.same, n_writers=p.n_writers)
        n_pairs[n] = {"same": int(p.same.sum()), "different": int((p.same == 0).sum())}
        writers.update(np.unique(p.writers).tolist())
    if not buckets:
        return None
    return CompareCalibration(model_name=model_name, model_id=model_id, buckets=buckets, n_pairs=n_pairs,
                              n_writers=len(writers))


def save_compare_calibration(calibration: CompareCalibration, model_dir: str | Path) -> Path:
    """Write ``<model_dir>/compare_calibration.json`` atomically (plain JSON)."""
    return write_json_atomic(Path(model_dir) / COMPARE_CALIBRATION_FILE, calibration.to_dict())


def load_compare_calibration(model_dir: str | Path, model_id: str | None = None) -> CompareCalibration:
    """``<model_dir>/compare_calibration.json``; a missing, corrupt or stale one is refused in one line."""
    path = Path(model_dir) / COMPARE_CALIBRATION_FILE
    if not path.is_file():
        raise WrmilInputError(f"{path} is missing: the model has no comparison calibration; use the default "
                              "detector (fused) of a mil_model materialised with this wrmil, or re-materialise mil_model")
    return read_calibration_json(path, CompareCalibration.from_dict, model_id, "comparison calibration")


def fit_compare_calibrations(model_dirs: dict[str, Path], val_emb: pl.DataFrame, device: str = "cpu",
                             log: Log = None) -> dict[str, Path]:
    """Fit and save the comparison calibration of every saved model that holds a two-covariance
    model (``model.cov``: the default ``fused`` detector) on the validation embeddings."""
    from wrmil_core.mil.registry import load_mil_model

    say, out = speaker(log), {}
    for name, directory in model_dirs.items():
        if name != COMPARE_MODEL:  # the comparison uses the default detector's frame only
            continue
        model, cfg = load_mil_model(directory, device)
        cov = getattr(model, "cov", None)
        if cov is None:
            raise WrmilInputError(f"[{name}] the model in {directory} holds no two-covariance model to compare with")
        calibration = fit_compare_calibration(name, str(cfg.get("model_id", "")), cov.model(), val_emb)
        if calibration is None:
            say(f"[{name}] no comparison calibration: fewer than {MIN_WRITERS} validation writers have "
                f"{min(COMPARE_WORDS)} words")
            continue
        out[name] = save_compare_calibration(calibration, directory)
        say(f"[{name}] comparison calibration at {sorted(calibration.buckets)} words per side on "
            f"{calibration.n_writers} validation writers")
    return out


__all__ = ["COMPARE_CALIBRATION_FILE", "COMPARE_MODEL", "COMPARE_WORDS", "CompareCalibration", "ComparePairs", "disjoint_runs",
           "effective_words", "fit_compare_calibration", "fit_compare_calibrations", "load_compare_calibration",
           "pair_indices", "save_compare_calibration", "score_pairs"]
