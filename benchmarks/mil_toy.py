"""MIL models side by side on the toy generator, per difficulty (unseen writers in val and test).

    .venv/bin/python benchmarks/mil_toy.py                       # defaults below, ~1-2 min on 2 CPUs
    .venv/bin/python benchmarks/mil_toy.py --separation 0.8 --mode instance --seeds 0 1 2

Trains every model with the ``demo`` preset on toy bags (word-level contamination by default:
5% of 50 words = 2-3 words, i.e. 1-2 of 10 windows touched), evaluates on a writer-disjoint test set
and prints the test AUC per difficulty (mean over seeds) plus the report path of the last seed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from wrmil_core.evidence.scored import score_saved_models
from wrmil_core.mil import DEFAULT_MODELS, make_toy_bags, preset, train_all
from wrmil_core.report import build_report, pct_label


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    ap.add_argument("--n-genuine", type=int, nargs=3, default=[400, 200, 200], metavar=("TRAIN", "VAL", "TEST"))
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--separation", type=float, default=0.6, help="writer signal / per-word noise (lower = harder)")
    ap.add_argument("--mode", choices=["word", "instance"], default="word")
    ap.add_argument("--n-writers", type=int, default=60)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--max-lr", type=float, default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--hparams", type=json.loads, default={}, help='e.g. \'{"set_transformer": {"inputs": "both"}}\'')
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("data/benchmarks/mil_toy"))
    args = ap.parse_args()

    over = {k: v for k, v in dict(max_lr=args.max_lr, epochs=args.epochs).items() if v is not None}
    aucs: dict[str, list[dict[float, float | None]]] = {m: [] for m in args.models}
    difficulties: set[float] = set()
    secs: dict[str, list[float]] = {m: [] for m in args.models}
    for seed in args.seeds:
        kw = dict(dim=args.dim, separation=args.separation, mode=args.mode, n_writers=args.n_writers)
        # Three writer-disjoint splits (each call draws its own writers).
        train, val, test = (make_toy_bags(n, seed=100 * seed + k, **kw) for k, n in enumerate(args.n_genuine))
        cfg = preset(args.preset, seed=seed, tensorboard=False, hparams=args.hparams,
                               num_threads=args.threads, **over)
        out = args.out / f"seed{seed}"
        t0 = time.perf_counter()
        results = train_all(args.models, train, val, cfg, out)
        train_s = time.perf_counter() - t0
        scores, val_auc = score_saved_models({m: r.model_dir for m, r in results.items()}, test)
        rep = build_report(scores, test, out / "report", val_auc=val_auc)
        print(f"seed {seed}: trained in {train_s:.1f} s; best {rep.best_model}; report {rep.paths['html']}")
        difficulties.update(rep.evaluation.difficulties)
        for m in args.models:
            aucs[m].append({r: rep.evaluation.auc_of(m, r) for r in rep.evaluation.difficulties})
            secs[m].append(results[m].train_seconds)

    print(f"\ntest AUC (genuine vs each difficulty), mean over seeds {args.seeds}; toy dim={args.dim} "
          f"separation={args.separation} mode={args.mode}, preset {args.preset} {over or ''}")
    cols = sorted(difficulties)
    head = ["model"] + [f"{pct_label(r)}%" for r in cols] + ["mean", "train s"]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for m in args.models:
        a = np.array([[np.nan if row.get(r) is None else row[r] for r in cols] for row in aucs[m]], dtype=float)
        col = np.nanmean(a, axis=0)
        cells = [f"{v:.3f}" for v in col] + [f"{np.nanmean(col):.3f}", f"{np.mean(secs[m]):.1f}"]
        print("| " + " | ".join([m] + cells) + " |")


if __name__ == "__main__":
    main()
