"""``wrmil compare`` over writer folds: Cllr / Cllr_min of the calibrated same-writer log10 LR on the
test writers' pairs of disjoint documents, at 10, 25 and 50 words per side.

For each fold folder (``val.parquet`` and ``test.parquet`` embedding tables, as for
``benchmarks/evidence_cv.py``): the two-covariance model is fitted on the val writers' disjoint
50-word runs (one-writer groups, like the fused detector's genuine val bags), the comparison's
calibrators on the val writers' cross-fitted pairs (:mod:`wrmil_core.evidence.compare_calibration`); the test
writers' pairs of disjoint runs are then scored and calibrated. Test figures pool every fold's pairs:

    .venv/bin/python benchmarks/compare_cv.py /tmp/ahawp_cv/fold_*
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl

from wrmil_core.evidence.compare_calibration import COMPARE_WORDS, GROUP_WORDS, fit_compare_calibration, frame_of
from wrmil_core.evidence.metrics import cllr, cllr_min
from wrmil_core.report.compare import CompareRow, compare_rows


def run_fold(folder: Path) -> dict[int, CompareRow]:
    """Per words per side: the fold's test pairs, calibrated on its val writers (the report's rows)."""
    val, test = pl.read_parquet(folder / "val.parquet"), pl.read_parquet(folder / "test.parquet")
    cov = frame_of(val)
    cal = fit_compare_calibration("fused", "cv", cov, val)
    how = "none" if cal is None else ", ".join(f"{n}: {cal.method(n)}" for n in sorted(cal.buckets))
    print(f"[{folder}] {val['writer'].n_unique()} val / {test['writer'].n_unique()} test writers; calibration "
          f"cross-fitted: {cal is not None and cal.cross_fitted}; per size {how}", flush=True)
    return {} if cal is None else {r.words: r for r in compare_rows(cal, cov, test)}


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
        llr, y = np.concatenate([r.log10_lr for r in got]), np.concatenate([r.same for r in got])
        writers = sum(r.n_writers for r in got)  # the folds' test writers are disjoint
        print(f"| {n} | {int(y.sum())} / {int((y == 0).sum())} | {writers} | {cllr(llr, y):.3f} | "
              f"{cllr_min(llr, y):.3f} |")


if __name__ == "__main__":
    main()
