"""The default detector against every word-level one over writer folds: AUC per cell, the
never-misleading check, calibrated evidence (Cllr, false-positive rates) and the writer count.

For each fold folder (its ``val.parquet`` and ``test.parquet`` embedding tables: those of
``wrmil run --job writer_cv`` under ``<artifact_dir>/cv/fold_*/*/embeddings``, or the ones
``benchmarks/frozen_real.py --save-embeddings`` writes), bags are built from the val and the test
writers with a bags preset (default ``demo``: 50-word bags of every geometry), each detector is
fitted where it fits anything (``two_covariance``, ``fused``: on the val bags only), its calibrator
(lir) and 1 %/5 % thresholds are fitted on the val bags, and the test bags get log10 LRs. Test figures
pool every fold's test bags (each writer tested once):

    .venv/bin/python benchmarks/evidence_cv.py <artifact_dir>/cv/fold_*/*/embeddings
    .venv/bin/python benchmarks/frozen_real.py /tmp/ahawp --metadata-csv metadata.csv --save-embeddings /tmp/ahawp_cv
    .venv/bin/python benchmarks/evidence_cv.py /tmp/ahawp_cv/fold_*

Prints the AUC of every detector per geometry x ratio, the cells where the default fails the
report's never-misleading check, Cllr / Cllr_min / Cllr_cal and detection / false-positive rates at
the val thresholds per geometry, and how often the default's writer count is right per geometry
and ratio.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from wrmil_core.bags.build import build_bags
from wrmil_core.bags.config import preset as bag_preset
from wrmil_core.bags.tensors import BagTensors, gather_bags
from wrmil_core.detectors.run import score_bags
from wrmil_core.evidence import fit_evidence, forensic_metrics
from wrmil_core.metrics import roc_auc
from wrmil_core.mil.registry import MODEL_NAMES, build_mil_model, default_detector, detector_class
from wrmil_core.report.never_misleading import check_cells, failing

# every detector not learned by gradient steps: distance, segment_scan, scattered, two_covariance, fused
MODELS = tuple(n for n in MODEL_NAMES if detector_class(n).fitted or not detector_class(n).trainable)


@dataclass
class FoldResult:
    """One fold's test bags and, per detector, its test scores, log10 LRs and flags at the val thresholds."""

    test: BagTensors
    scores: dict[str, np.ndarray]
    llr: dict[str, np.ndarray]
    flags: dict[str, np.ndarray]  # (B, 2): at the 1 % and 5 % val thresholds
    writers: np.ndarray  # the default's writer count per test bag


def _bags(folder: Path, split: str, cfg) -> tuple[BagTensors, int]:
    emb = pl.read_parquet(folder / f"{split}.parquet")
    return gather_bags(build_bags(emb, split, cfg).bags, emb), emb["writer"].n_unique()


def run_fold(folder: Path, cfg, default: str) -> FoldResult:
    """Fit every detector's state and evidence on the fold's val bags; score its test bags."""
    (val, n_val), (test, _) = _bags(folder, "val", cfg), _bags(folder, "test", cfg)
    out = FoldResult(test, {}, {}, {}, np.zeros(0))
    for name in MODELS:
        model = build_mil_model(name, val.x.shape[-1])
        cross = model.fit(val, val).get("val_logits") if model.fitted else None  # as mil_model's training does
        val_scores = score_bags(model, val)[0] if cross is None else 1 / (1 + np.exp(-cross))
        ev = fit_evidence(name, "cv", val_scores, val.label.numpy(), n_writers=n_val)
        s = score_bags(model, test)[0]
        out.scores[name], out.llr[name] = s, ev.log10_lr(s)
        out.flags[name] = np.stack([s >= ev.thresholds[k] for k in ("fpr_1", "fpr_5")], axis=1)
        if name == default:
            out.writers = np.concatenate([model.writers(test.x[i:i + 256])[0] for i in range(0, len(test), 256)])
    print(f"[{folder}] {n_val} val writers, {len(test)} test bags", flush=True)
    return out


def pooled(folds: list[FoldResult], field: str, name: str) -> np.ndarray:
    """One detector's ``field`` over every fold's test bags."""
    return np.concatenate([getattr(f, field)[name] for f in folds])


def auc_table(folds: list[FoldResult], y: np.ndarray, geometry: np.ndarray, ratio: np.ndarray) -> pl.DataFrame:
    """AUC per detector (rows) and geometry x ratio cell (columns), all folds pooled."""
    cells = sorted({(g, r) for g, r in zip(geometry[y == 1], ratio[y == 1])})
    rows = []
    for name in MODELS:
        s = pooled(folds, "scores", name)
        row: dict[str, object] = {"model": name}
        for g, r in cells:
            keep = (y == 0) | ((geometry == g) & (ratio == r))
            row[f"{g} {r:.0%}"] = roc_auc(y[keep], s[keep])
        row["all"] = roc_auc(y, s)
        rows.append(row)
    return pl.DataFrame(rows)


def evidence_rows(folds: list[FoldResult], y: np.ndarray, geometry: np.ndarray) -> pl.DataFrame:
    """Cllr, Cllr_min, Cllr_cal and rates at the val thresholds per detector and geometry."""
    rows = []
    for name in MODELS:
        llr, flags = pooled(folds, "llr", name), pooled(folds, "flags", name)
        for g in ["all", *sorted(set(geometry[y == 1]))]:
            keep = (y == 0) | ((geometry == g) if g != "all" else (y == 1))
            m = forensic_metrics(llr[keep], y[keep])
            gen = y[keep] == 0
            rows.append({"model": name, "geometry": g, "H1 bags": int((~gen).sum()), "H2 bags": int(gen.sum()),
                         **{k: m[k] for k in ("cllr", "cllr_min", "cllr_cal")},
                         "det@1%": flags[keep][~gen, 0].mean(), "det@5%": flags[keep][~gen, 1].mean(),
                         "FPR@1%": flags[keep][gen, 0].mean(), "FPR@5%": flags[keep][gen, 1].mean()})
    return pl.DataFrame(rows)


def count_rows(folds: list[FoldResult], geometry: np.ndarray, ratio: np.ndarray) -> pl.DataFrame:
    """How often the default's writer count is right, per geometry and ratio."""
    truth = np.concatenate([f.test.n_writers for f in folds])
    guess = np.concatenate([f.writers for f in folds])
    rows = []
    for g in sorted(set(geometry)):
        for r in sorted(set(ratio[geometry == g])):
            keep = (geometry == g) & (ratio == r)
            rows.append({"geometry": g, "ratio": f"{r:.0%}", "writers": int(truth[keep][0]), "bags": int(keep.sum()),
                         "count right": float((guess[keep] == truth[keep]).mean()),
                         **{f"said {k}": int((guess[keep] == k).sum()) for k in (1, 2, 3)}})
    return pl.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", type=Path, nargs="+", help="each fold's embeddings folder (val.parquet, test.parquet)")
    ap.add_argument("--bags-preset", default="demo")
    args = ap.parse_args()
    cfg, default = bag_preset(args.bags_preset), default_detector()
    folds = [run_fold(f, cfg, default) for f in args.folders]
    writers = sum(pl.read_parquet(f / "test.parquet")["writer"].n_unique() for f in args.folders)
    y = np.concatenate([f.test.label.numpy() for f in folds])
    geometry = np.concatenate([f.test.geometry for f in folds])
    ratio = np.concatenate([f.test.ratio for f in folds])
    print(f"\n{len(folds)} folds, {writers} test writers, {len(y)} test bags of {cfg.bag_size * cfg.window_size} words; "
          f"fits and calibration on each fold's val writers only; default detector: {default}")
    cells = check_cells({m: pooled(folds, "scores", m) for m in MODELS}, y, geometry, ratio, default)
    bad = failing(cells)
    print(f"never-misleading check: {len(cells) - len(bad)} of {len(cells)} cells pass"
          + "".join(f"\n  FAILS {c.describe()}" for c in bad))
    with pl.Config(tbl_rows=100, tbl_cols=30, float_precision=3, tbl_width_chars=250):
        print(auc_table(folds, y, geometry, ratio))
        print(evidence_rows(folds, y, geometry))
        print(count_rows(folds, geometry, ratio))


if __name__ == "__main__":
    main()
