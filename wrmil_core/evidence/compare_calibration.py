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
* every pair is scored CROSS-FITTED (:func:`cross_fitted_pairs`): in a two-covariance frame fitted
  without its two writers (the others' disjoint runs of ``GROUP_WORDS`` words as one-writer groups).
  The saved frame was fitted on every validation writer, so scoring their own pairs in it would
  flatter same-writer pairs; test writers are unseen by it, and so is a pair's writers by its frame.
  Leaving two writers out of every frame (a same-writer pair's own and a random other) keeps the
  frames alike for both kinds of pair. With per-size calibrators this took test Cllr at 10/25/50
  words per side from 0.636/0.686/0.730 (in-sample) to 0.499/0.396/0.519 on AHAWP folds (82 test
  writers), and from 0.569/0.438/0.362 to 0.485/0.352/0.290 on the demo (8 test writers). Writer
  folds (five) instead did as well on AHAWP but worse on the demo's 8 validation writers
  (0.800/0.620/0.348): two writers per fold give few different-writer pairs;
* per ``n`` in :data:`COMPARE_WORDS` a calibrator maps the raw LLR to log10 LR of H1 "same writer"
  against H2 "different writers": with at least ``MIN_SAME`` same-writer pairs, fitted on that size's
  pairs (:func:`wrmil_core.evidence.fit_calibrator`: PAV + ELUB, or logistic with few PAV levels;
  ``method`` "pairs"); with fewer, the PARAMETRIC model of every size's pairs
  (:func:`wrmil_core.evidence.length_calibration.fit_length_model`: logistic in LLR, ln(words) and
  their product), ELUB-bounded on that size's pairs (``method`` "parametric"). Writers with about 100
  words give only one or two disjoint 50-word documents each, too few same-writer pairs on their own
  (AHAWP, 13 validation writers per fold: 0.519 -> 0.427 at 50 words).

``wrmil compare`` applies the calibration of the ``n`` nearest (log scale) to the pair's effective
words per side, the harmonic mean ``2 nQ nK / (nQ + nK)``: the difference of two set means has the
variance of two equal sides of that size, so 50 questioned words against 1000 known ones count as
about 95 per side, not 50 or 1000.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from wrmil_core.detectors.two_covariance import TwoCovariance, fit_two_covariance, same_writer_llr_sums
from wrmil_core.errors import WrmilInputError
from wrmil_core.evidence.calibration import Calibrator, fit_calibrator, logistic_calibrator
from wrmil_core.evidence.length import writer_sequences
from wrmil_core.evidence.length_calibration import fit_length_model, nearest_length
from wrmil_core.evidence.store import read_calibration_json, write_json_atomic
from wrmil_core.mil.fusion import writer_folds
from wrmil_core.runtime import Log, speaker

COMPARE_CALIBRATION_FILE = "compare_calibration.json"
COMPARE_MODEL = "fused"  # the detector whose fitted two-covariance frame the comparison uses
COMPARE_WORDS: tuple[int, ...] = (10, 25, 50)  # words per side of the calibration pairs
DIFF_PER_SAME = 4  # different-writer pairs drawn per same-writer pair (they are plentiful, and cheap)
MAX_SAME = 2000  # same-writer pairs kept per size (drawn at random): enough for PAV, bounded cost
MIN_WRITERS = 2  # different-writer pairs need two writers with a run each
MIN_SAME = 50  # fewest same-writer pairs a size is calibrated on alone; fewer: the parametric model
GROUP_WORDS = 50  # words per one-writer group of a cross-fitted frame (the fused detector's bag length)
MAX_PARTS = 16  # writer parts of the cross-fitting: one writer each up to this many, then groups of writers
PAIRS, PARAMETRIC = "pairs", "parametric"  # how a size was calibrated (``methods``)
FORMAT_VERSION = 2  # 2 added methods, cross_fitted and the parametric model; version 1 is all pairs, in-sample


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
    methods: dict[int, str] = field(default_factory=dict)  # per n: "pairs" or "parametric" (absent: pairs)
    cross_fitted: bool = False  # pairs scored in frames fitted without their writers (module docstring)

    def nearest(self, n_q: int, n_k: int) -> int:
        """The calibrated words per side nearest (log scale) the pair's effective size (module docstring)."""
        return nearest_length(self.buckets, effective_words(n_q, n_k))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return {"format_version": FORMAT_VERSION, "model_name": self.model_name, "model_id": self.model_id,
                "split": "val", "hypotheses": {"H1": "same writer", "H2": "different writers"},
                "n_writers": self.n_writers, "n_pairs": {str(k): v for k, v in sorted(self.n_pairs.items())},
                "cross_fitted": self.cross_fitted, "methods": {str(k): v for k, v in sorted(self.methods.items())},
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
                   n_writers=int(d["n_writers"]), methods={int(k): str(v) for k, v in d.get("methods", {}).items()},
                   cross_fitted=bool(d.get("cross_fitted", False)))

    def method(self, n: int) -> str:
        """How size ``n`` was calibrated: "pairs" (its own pairs) or "parametric"."""
        return self.methods.get(n, PAIRS)


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
    return ComparePairs(n=n, llr=_pair_llrs(model, matrix, runs, pairs), same=same, writers=writers[pairs])


def _pair_llrs(model: TwoCovariance, matrix: np.ndarray, runs: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """The same-writer LLR in ``model``'s frame of each pair of runs (``pairs`` (P, 2) rows of ``runs``
    (R, n) word indices into ``matrix``); each run used is projected once."""
    used, where = np.unique(pairs, return_inverse=True)
    sums = model.project(torch.from_numpy(matrix[runs[used]])).sum(dim=1)  # each run's summed frame vector
    sums = sums[torch.from_numpy(where.reshape(pairs.shape))]
    n = runs.shape[1]
    return same_writer_llr_sums(n, sums[:, 0], n, sums[:, 1], model.between.double()).numpy().astype(np.float64)


def frame_of(emb: pl.DataFrame, shrinkage: float = 0.1) -> TwoCovariance | None:
    """A two-covariance frame fitted on ``emb``'s writers' disjoint runs of ``GROUP_WORDS`` words (one-writer
    groups); None with fewer than two such runs."""
    runs, _, matrix = disjoint_runs(emb, GROUP_WORDS)
    return fit_two_covariance(torch.from_numpy(matrix[runs]), shrinkage) if len(runs) >= 2 else None


def cross_fitted_pairs(emb: pl.DataFrame, n: int, shrinkage: float = 0.1, seed: int = 0) -> ComparePairs | None:
    """The pairs of :func:`score_pairs`, each scored in a frame fitted without two writer parts (one
    writer each, up to ``MAX_PARTS`` writers): a different-writer pair's two, a same-writer pair's own
    and one drawn at random, so that every frame is fitted on as many writers; None with fewer than
    four writers (a frame would rest on one writer)."""
    runs, writers, matrix = disjoint_runs(emb, n)
    groups, group_writers, _ = disjoint_runs(emb, GROUP_WORDS)
    unique = np.unique(writers)
    if unique.size < 4 or len(groups) < 2:
        return None
    part = dict(zip(unique.tolist(), writer_folds(unique, MAX_PARTS, seed).tolist()))
    pairs, same = pair_indices(writers, seed)
    left_out = np.vectorize(part.get, otypes=[np.int64])(writers[pairs])
    rng = np.random.default_rng(seed)
    n_parts = max(part.values()) + 1
    for i in np.flatnonzero(left_out[:, 0] == left_out[:, 1]):  # a same-writer pair: its part and one other
        left_out[i, 1] = (left_out[i, 0] + rng.integers(1, n_parts)) % n_parts
    left_out.sort(axis=1)
    group_part = np.vectorize(part.get, otypes=[np.int64])(group_writers)
    llr = np.zeros(len(pairs))
    for a, b in np.unique(left_out, axis=0):
        kept = groups[(group_part != a) & (group_part != b)]
        if len(kept) < 2:
            return None
        sel = (left_out[:, 0] == a) & (left_out[:, 1] == b)
        llr[sel] = _pair_llrs(fit_two_covariance(torch.from_numpy(matrix[kept]), shrinkage), matrix, runs, pairs[sel])
    return ComparePairs(n=n, llr=llr, same=same, writers=writers[pairs])


def fit_compare_calibration(model_name: str, model_id: str, model: TwoCovariance, val_emb: pl.DataFrame,
                            sizes: tuple[int, ...] = COMPARE_WORDS, seed: int = 0,
                            shrinkage: float = 0.1) -> CompareCalibration | None:
    """Calibrators per words per side on the validation writers' pairs (module docstring): cross-fitted
    (:func:`cross_fitted_pairs`), or scored in ``model``'s frame where the writers are too few to
    cross-fit; a size without both kinds of pair is left out; None when none is left."""
    pairs, cross_fitted = {}, True
    for n in sizes:
        p = cross_fitted_pairs(val_emb, n, shrinkage, seed)
        cross_fitted &= p is not None
        p = p if p is not None else score_pairs(val_emb, model, n, seed)
        if p.n_writers >= MIN_WRITERS and p.same.any() and (p.same == 0).any():
            pairs[n] = p
    if not pairs:
        return None
    buckets, methods = _calibrators(pairs)
    return CompareCalibration(
        model_name=model_name, model_id=model_id, buckets=buckets, methods=methods, cross_fitted=cross_fitted,
        n_pairs={n: {"same": int(p.same.sum()), "different": int((p.same == 0).sum())} for n, p in pairs.items()},
        n_writers=int(np.unique(np.concatenate([p.writers.ravel() for p in pairs.values()])).size))


def _calibrators(pairs: dict[int, ComparePairs]) -> tuple[dict[int, Calibrator], dict[int, str]]:
    """Per size: its own pairs' calibrator with ``MIN_SAME`` same-writer pairs, else the parametric
    model's (when at least two sizes give it and its slope there is positive)."""
    buckets, methods = {}, {}
    parametric = fit_length_model({n: (p.llr, p.same) for n, p in pairs.items()})
    for n, p in pairs.items():
        fitted = None
        if p.same.sum() < MIN_SAME and parametric is not None:
            fitted = logistic_calibrator(*parametric.at(n), p.llr, p.same, p.n_writers)
        buckets[n] = fitted or fit_calibrator(p.llr, p.same, n_writers=p.n_writers)
        methods[n] = PARAMETRIC if fitted else PAIRS
    return buckets, methods


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
        calibration = fit_compare_calibration(name, str(cfg.get("model_id", "")), cov.model(), val_emb,
                                              shrinkage=float(getattr(model, "shrinkage", 0.1)))
        if calibration is None:
            say(f"[{name}] no comparison calibration: fewer than {MIN_WRITERS} validation writers have "
                f"{min(COMPARE_WORDS)} words")
            continue
        out[name] = save_compare_calibration(calibration, directory)
        say(f"[{name}] comparison calibration at {sorted(calibration.buckets)} words per side on "
            f"{calibration.n_writers} validation writers ({_how(calibration)})")
    return out


def _how(calibration: CompareCalibration) -> str:
    """How the calibration was fitted, in words, for the log."""
    parametric = [n for n in sorted(calibration.buckets) if calibration.method(n) == PARAMETRIC]
    return (("cross-fitted, two writers left out of each frame" if calibration.cross_fitted else "in the saved frame: too few writers "
             "to cross-fit") + (f"; parametric at {parametric} words" if parametric else ""))


__all__ = ["COMPARE_CALIBRATION_FILE", "COMPARE_MODEL", "COMPARE_WORDS", "CompareCalibration", "ComparePairs",
           "cross_fitted_pairs", "disjoint_runs", "frame_of",
           "effective_words", "fit_compare_calibration", "fit_compare_calibrations", "load_compare_calibration",
           "pair_indices", "save_compare_calibration", "score_pairs"]
