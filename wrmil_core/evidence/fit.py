"""Every detector fitted on a train/val split of bags: the one call ``mil_model`` and the writer-fold
CV (:mod:`wrmil_core.cv.fold`) both make, so CV measures the detectors ``wrmil run`` saves.

:func:`fit_detectors` gathers the train and val bags, trains every detector of the config
(:func:`wrmil_core.mil.train.train_all`), fits each one's bag evidence on the val scores training
returned (:func:`attach_evidence`: calibrator and 1%/5%-FPR thresholds, ``<model_dir>/calibration.json``,
recording how many writers the val bags hold), then each detector's calibration per document length
on the validation writers' words (``<model_dir>/length_calibration.json``,
:mod:`wrmil_core.evidence.length_calibration`; never test writers), which ``wrmil score`` applies,
and the fused detector's two-document comparison calibration (``compare_calibration.json``,
:mod:`wrmil_core.evidence.compare_calibration`), which ``wrmil compare`` applies.
The evidence is fitted here, not in the training loop, because :mod:`wrmil_core.mil` sits below
evidence and never imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from wrmil_core.bags.tensors import BagTensors, gather_bags
from wrmil_core.errors import WrmilInputError
from wrmil_core.evidence.compare_calibration import fit_compare_calibrations
from wrmil_core.evidence.length_calibration import fit_length_calibrations
from wrmil_core.evidence.calibration import Calibrator
from wrmil_core.evidence.store import fit_evidence, save_evidence
from wrmil_core.mil.config import MILConfig
from wrmil_core.mil.train import MILResult, train_all
from wrmil_core.runtime import Log, speaker


def bag_writers(bags: pl.DataFrame) -> np.ndarray | None:
    """(B, k) base and donor writers of each bag (-1: none; k = 3 with a ``donor_writer_2`` column,
    the second donor of a two_donors bag), for the writer counts; None without them."""
    cols = [c for c in ("base_writer", "donor_writer", "donor_writer_2") if c in bags.columns]
    if not cols:
        return None
    return np.stack([bags[c].cast(pl.Int64).fill_null(-1).to_numpy() for c in cols], axis=1)


def n_bag_writers(bags: pl.DataFrame) -> int | None:
    """Distinct writers (base and donors) in a bag table; None without writer columns."""
    w = bag_writers(bags)
    return None if w is None else int(np.unique(w[w >= 0]).size)


@dataclass(frozen=True)
class FittedDetectors:
    """What :func:`fit_detectors` trained: each detector's result, the gathered train and val bags, the
    val bags' writer count and the length calibrations written (detector -> file; a detector is absent
    when the validation writers have too few words for any length)."""

    results: dict[str, MILResult]
    train: BagTensors
    val: BagTensors
    val_writers: int | None
    length_calibrations: dict[str, Path] = field(default_factory=dict)


def attach_evidence(result: MILResult, val_labels: np.ndarray, val_writers: int | None = None,
                    log: Log = None) -> MILResult:
    """Fit ``result``'s evidence on the val scores training returned (``val_labels``: the val bags'
    labels; ``val_writers``: how many writers they hold, recorded with it), save it as
    ``<model_dir>/calibration.json`` and set ``result.evidence``; returns ``result``."""
    if result.val_probs is None:
        raise WrmilInputError(f"[{result.name}] training returned no val scores to fit the evidence on")
    evidence = fit_evidence(result.name, result.model_id, result.val_probs, np.asarray(val_labels),
                            n_writers=val_writers)
    save_evidence(evidence, result.model_dir)
    result.evidence = evidence
    c = evidence.calibrator
    speaker(log)(f"[{result.name}] evidence: LLR bounds [{c.lower:.2f}, {c.upper:.2f}] ({c.kind} calibrator), "
                 f"thresholds {evidence.thresholds}")
    return result


def train_with_evidence(names: Sequence[str] | None, train: BagTensors, val: BagTensors, config: MILConfig,
                        out_dir: Path, log: Log = None, val_writers: int | None = None) -> dict[str, MILResult]:
    """:func:`~wrmil_core.mil.train.train_all`, then every detector's evidence on its val scores."""
    results = train_all(names, train, val, config, out_dir, log)
    labels = val.label.numpy()
    return {n: attach_evidence(r, labels, val_writers, log) for n, r in results.items()}


def fit_detectors(train_bags: pl.DataFrame, train_emb: pl.DataFrame, val_bags: pl.DataFrame, val_emb: pl.DataFrame,
                  config: MILConfig, out_dir: str | Path, *, device: str = "cpu", log: Log = None) -> FittedDetectors:
    """Train every detector of ``config`` into ``out_dir/<name>/`` on the train bags (early stopping,
    thresholds and bag evidence on the val bags), then calibrate each per document length on ``val_emb``
    (module docstring). ``*_emb``: the word embeddings the bags' words are gathered from."""
    train, val = gather_bags(train_bags, train_emb), gather_bags(val_bags, val_emb)
    val_writers = n_bag_writers(val_bags)
    results = train_with_evidence(None, train, val, config, Path(out_dir), log=log, val_writers=val_writers)
    dirs = {n: Path(r.model_dir) for n, r in results.items()}
    lengths = fit_length_calibrations(dirs, val_emb, device=device, log=log)
    fit_compare_calibrations(dirs, val_emb, device=device, log=log)  # wrmil compare's, for the fused detector
    return FittedDetectors(results, train, val, val_writers, lengths)


def results_metadata(results: dict[str, MILResult]) -> dict[str, int | float | str]:
    """Flat summary of :func:`train_all` results for asset metadata (val AUC, epochs, seconds, LLR bounds)."""
    md: dict[str, int | float | str] = {}
    for name, r in results.items():
        if r.val_auc is not None:
            md[f"{name}/val_auc"] = r.val_auc
        md[f"{name}/best_epoch"] = r.best_epoch
        md[f"{name}/train_seconds"] = round(r.train_seconds, 2)
        md[f"{name}/model_id"] = r.model_id
        if r.evidence is not None:  # the LLR range the val bags support, and the FPR thresholds
            md[f"{name}/llr_lower"] = r.evidence.calibrator.lower
            md[f"{name}/llr_upper"] = r.evidence.calibrator.upper
            md.update({f"{name}/calibrator_{k}": v for k, v in _calibrator_metadata(r.evidence.calibrator).items()})
            md.update({f"{name}/threshold_{k}": v for k, v in r.evidence.thresholds.items()})
    return md


def _calibrator_metadata(calibrator: Calibrator) -> dict[str, int | float | str]:
    """Which calibrator (``kind``), PAV's levels and both candidates' val Cllr ("n/a" where not fitted)."""
    d = calibrator.describe()
    return {k: "n/a" if d[k] is None else d[k] for k in ("kind", "pav_levels", "cllr_val_pav", "cllr_val_logistic")}


__all__ = ["FittedDetectors", "attach_evidence", "bag_writers", "fit_detectors", "n_bag_writers", "results_metadata",
           "train_with_evidence"]
