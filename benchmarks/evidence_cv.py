"""Calibrated evidence of the training-free detectors over writer folds: Cllr and false-positive rates.

For each fold of ``wrmil run --job writer_cv`` (its ``embeddings/val.parquet`` and
``embeddings/test.parquet``: the fold's own trained embedding), bags are built from the val and the
test writers, every training-free detector scores them, its calibrator (lir PAV + ELUB) and 1 %/5 %
thresholds are fitted on the val bags only, and the test bags get log10 LRs. The test figures pool
every fold's test bags (each writer tested once):

    .venv/bin/python benchmarks/evidence_cv.py <artifact_dir>/cv/fold_*/*/embeddings
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl

from wrmil_core.bags.build import build_bags
from wrmil_core.bags.config import preset as bag_preset
from wrmil_core.bags.tensors import BagTensors, gather_bags
from wrmil_core.detectors.run import score_bags
from wrmil_core.evidence import fit_evidence, forensic_metrics
from wrmil_core.mil.registry import MODEL_NAMES, build_mil_model, is_training_free

MODELS = tuple(n for n in MODEL_NAMES if is_training_free(n))  # distance, segment_scan, scattered


def _bags(folder: Path, split: str, cfg) -> tuple[BagTensors, int]:
    emb = pl.read_parquet(folder / f"{split}.parquet")
    return gather_bags(build_bags(emb, split, cfg).bags, emb), emb["writer"].n_unique()


def fold_llrs(folder: Path, cfg) -> dict[str, tuple[np.ndarray, ...]]:
    """Per model: test labels, geometry, log10 LR and flags at the val 1 %/5 % thresholds of one fold."""
    (val, n_val), (test, _) = _bags(folder, "val", cfg), _bags(folder, "test", cfg)
    out = {}
    for name in MODELS:
        model = build_mil_model(name, val.x.shape[-1])
        ev = fit_evidence(name, "cv", score_bags(model, val)[0], val.label.numpy(), n_writers=n_val)
        s = score_bags(model, test)[0]
        flags = np.stack([s >= ev.thresholds[k] for k in ("fpr_1", "fpr_5")], axis=1)
        out[name] = (test.label.numpy(), test.geometry, ev.log10_lr(s), flags)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", type=Path, nargs="+", help="each fold's embeddings folder (val.parquet, test.parquet)")
    ap.add_argument("--bags-preset", default="demo")
    args = ap.parse_args()
    cfg = bag_preset(args.bags_preset)
    per_fold = [fold_llrs(f, cfg) for f in args.folders]
    writers = sum(pl.read_parquet(f / "test.parquet")["writer"].n_unique() for f in args.folders)
    rows = []
    for name in MODELS:
        y, geometry, llr, flags = (np.concatenate([fold[name][i] for fold in per_fold]) for i in range(4))
        for g in ("all", "contiguous", "scattered"):
            keep = (y == 0) | ((geometry == g) if g != "all" else (y == 1))
            m = forensic_metrics(llr[keep], y[keep])
            gen = y[keep] == 0
            rows.append({"model": name, "geometry": g, "H1 bags": int((~gen).sum()), "H2 bags": int(gen.sum()),
                         **{k: m[k] for k in ("cllr", "cllr_min", "cllr_cal", "rme_h1", "rme_h2")},
                         "det@1%": flags[keep][~gen, 0].mean(), "det@5%": flags[keep][~gen, 1].mean(),
                         "FPR@1%": flags[keep][gen, 0].mean(), "FPR@5%": flags[keep][gen, 1].mean()})
    print(f"{len(args.folders)} folds, {writers} test writers in all; calibration fitted on each fold's val writers")
    with pl.Config(tbl_rows=100, tbl_cols=20, float_precision=3, tbl_width_chars=200):
        print(pl.DataFrame(rows))


if __name__ == "__main__":
    main()
