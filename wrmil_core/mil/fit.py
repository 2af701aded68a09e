"""Every detector fitted on a train/val split of bags: the one call ``mil_model`` and the writer-fold
CV (:mod:`wrmil_core.cv.fold`) both make, so CV measures the detectors ``wrmil run`` saves.

:func:`fit_detectors` gathers the train and val bags, trains every detector of the config with its
bag evidence fitted on val (``train_all``, recording how many writers the val bags hold), then fits
each detector's calibration per document length on the validation writers' words
(``<model_dir>/length_calibration.json``, :mod:`wrmil_core.scoring.length_calibration`; never test
writers), which ``wrmil score`` applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from wrmil_core.bags.tensors import BagTensors, gather_bags
from wrmil_core.mil.config import MILConfig
from wrmil_core.mil.train import MILResult, train_all
from wrmil_core.runtime import Log
from wrmil_core.scoring.length_calibration import fit_length_calibrations


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


def fit_detectors(train_bags: pl.DataFrame, train_emb: pl.DataFrame, val_bags: pl.DataFrame, val_emb: pl.DataFrame,
                  config: MILConfig, out_dir: str | Path, *, device: str = "cpu", log: Log = None) -> FittedDetectors:
    """Train every detector of ``config`` into ``out_dir/<name>/`` on the train bags (early stopping,
    thresholds and bag evidence on the val bags), then calibrate each per document length on ``val_emb``
    (module docstring). ``*_emb``: the word embeddings the bags' words are gathered from."""
    train, val = gather_bags(train_bags, train_emb), gather_bags(val_bags, val_emb)
    val_writers = n_bag_writers(val_bags)
    results = train_all(None, train, val, config, Path(out_dir), log=log, val_writers=val_writers)
    lengths = fit_length_calibrations({n: r.model_dir for n, r in results.items()}, val_emb, device=device, log=log)
    return FittedDetectors(results, train, val, val_writers, lengths)


__all__ = ["FittedDetectors", "bag_writers", "fit_detectors", "n_bag_writers"]
