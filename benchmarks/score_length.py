"""``wrmil score``'s length handling, measured on a materialised pipeline's models and embeddings.

For each calibrated MIL model of ``<artifact-dir>`` (``mil/<name>/calibration.json``) and each
document length (25, 50, 100, 200 words), documents are cut from the writers' concatenated words
(:func:`wrmil_core.evidence.length_calibration.calibration_docs`: disjoint genuine runs, and the same
runs with a contiguous 20 % passage from another writer of the same split) and scored the way
``wrmil score`` scores them (:func:`wrmil_core.mil.documents.document_scorer`). Printed per model
and length:

* the false-positive rate on genuine VALIDATION-writer documents at the bag thresholds of
  ``calibration.json`` (is the statistic length-stable?);
* the same on genuine TEST-writer documents, at the bag thresholds and at the thresholds of the
  length calibration fitted here on the validation writers (what ``wrmil score`` now applies);
* the test AUC, and the mean test log10 LR of genuine and contaminated documents under the length
  calibration.

    .venv/bin/python benchmarks/score_length.py --artifact-dir data/artifacts
    .venv/bin/python benchmarks/score_length.py --artifact-dir data/artifacts --models segment_scan distance
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl

from wrmil_core.evidence import load_evidence
from wrmil_core.evidence.length import LENGTHS
from wrmil_core.evidence.length_calibration import calibration_docs, fit_length_calibration
from wrmil_core.metrics import roc_auc
from wrmil_core.mil.documents import document_scorer
from wrmil_core.mil.registry import load_mil_model


def _rate(scores: np.ndarray, threshold: float) -> float:
    return float((scores >= threshold).mean()) if scores.size else float("nan")


def measure(model_dir: Path, val: pl.DataFrame, test: pl.DataFrame) -> list[dict]:
    """One row per length for the model in ``model_dir`` (see the module docstring)."""
    model, cfg = load_mil_model(model_dir)
    name = str(cfg["model_name"])
    scorer = document_scorer(model, name, int(cfg["window_size"]), int(cfg["bag_size"]))
    bag = load_evidence(model_dir, cfg.get("model_id")).thresholds
    by_length = fit_length_calibration(model_dir, val)
    rows = []
    for length in LENGTHS:
        vx, vy, v_writers = calibration_docs(val, length, (0.2,), seed=100)
        tx, ty, t_writers = calibration_docs(test, length, (0.2,), seed=200)
        v0, t_s = scorer(vx[vy == 0]), scorer(tx)
        t0, t1 = t_s[ty == 0], t_s[ty == 1]
        row = {"model": name, "words": length, "val_writers": v_writers, "test_writers": t_writers,
               "val_genuine": int(v0.size), "test_genuine": int(t0.size), "fpr5_val_bagthr": _rate(v0, bag["fpr_5"]),
               "fpr5_test_bagthr": _rate(t0, bag["fpr_5"]), "auc_test": roc_auc(ty, t_s)}
        if by_length is not None and length in by_length.buckets:
            ev = by_length.buckets[length]
            row.update(fpr5_test_lenthr=_rate(t0, ev.thresholds["fpr_5"]), fpr1_test_lenthr=_rate(t0, ev.thresholds["fpr_1"]),
                       det5_test_lenthr=_rate(t1, ev.thresholds["fpr_5"]),
                       llr_genuine=float(ev.log10_lr(t0).mean()) if t0.size else float("nan"),
                       llr_mixed=float(ev.log10_lr(t1).mean()) if t1.size else float("nan"))
        rows.append(row)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--artifact-dir", required=True, type=Path)
    p.add_argument("--models", nargs="*", help="MIL model names (default: every one with calibration.json)")
    args = p.parse_args()
    emb = args.artifact_dir / "assets" / "word_embeddings"
    val, test = pl.read_parquet(emb / "val.parquet"), pl.read_parquet(emb / "test.parquet")
    names = args.models or sorted(d.name for d in (args.artifact_dir / "mil").iterdir()
                                  if (d / "calibration.json").is_file())
    rows = [r for n in names for r in measure(args.artifact_dir / "mil" / n, val, test)]
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=250, float_precision=3):
        print(pl.DataFrame(rows))


if __name__ == "__main__":
    main()
