"""``wrmil compare`` over writer folds: Cllr / Cllr_min of the calibrated same-writer log10 LR on the
test writers' pairs of disjoint documents, at 10, 25 and 50 words per side.

For each fold folder (``val.parquet`` and ``test.parquet`` embedding tables, as for
``benchmarks/evidence_cv.py``): the two-covariance model is fitted on the val writers' disjoint
50-word runs (one-writer groups, like the fused detector's genuine val bags), the comparison's
calibrators on the val writers' pairs (:mod:`wrmil_core.evidence.compare_calibration`); the test
writers' pairs of disjoint runs are then scored and calibrated. Test figures pool every fold's pairs:

    .venv/bin/python benchmarks/compare_cv.py /tmp/ahawp_cv/fold_*
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl
import torch

from wrmil_core.detectors.two_covariance import fit_two_covariance
from wrmil_core.evidence.compare_calibration import COMPARE_WORDS, disjoint_runs, fit_compare_calibration, score_pairs
from wrmil_core.evidence.metrics import cllr, cllr_min

GROUP_WORDS = 50  # words per one-writer group of the covariance fit (the fused detector's bag length)


def run_fold(folder: Path) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per words per side: the fold's test pairs' calibrated log10 LRs, labels (1 = same writer) and writers."""
    val, test = pl.read_parquet(folder / "val.parquet"), pl.read_parquet(folder / "test.parquet")
    runs, _, matrix = disjoint_runs(val, GROUP_WORDS)
    cov = fit_two_covariance(torch.from_numpy(matrix[runs]).double())
    cal = fit_compare_calibration("fused", "cv", cov, val)
    out = {}
    for n in COMPARE_WORDS:
        if cal is None or n not in cal.buckets:
            continue
        p = score_pairs(test, cov, n)
        if p.same.any() and (p.same == 0).any():
            out[n] = (cal.buckets[n].log10_lr(p.llr), p.same, p.writers)
    print(f"[{folder}] {val['writer'].n_unique()} val / {test['writer'].n_unique()} test writers, "
          f"{runs.shape[0]} val groups of {GROUP_WORDS}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", type=Path, nargs="+", help="each fold's embeddings folder (val.parquet, test.parquet)")
    args = ap.parse_args()
    folds = [run_fold(f) for f in args.folders]
    print("| words per side | same / different pairs | test writers | Cllr | Cllr_min |\n|---|---|---|---|---|")
    for n in COMPARE_WORDS:
        got = [f[n] for f in folds if n in f]
        if not got:
            print(f"| {n} | no pairs | | | |")
            continue
        llr, y, w = (np.concatenate([g[i] for g in got]) for i in range(3))
        print(f"| {n} | {int(y.sum())} / {int((y == 0).sum())} | {np.unique(w).size} | {cllr(llr, y):.3f} | "
              f"{cllr_min(llr, y):.3f} |")


if __name__ == "__main__":
    main()
