"""Test AUC of every saved detector per contamination geometry and difficulty, from a finished run.

The report's "AUC by difficulty" pools every geometry (a contiguous passage, scattered words, two donors);
this prints them apart, so you can see whether a detector gets stronger as the foreign text grows
for each kind of contamination. It reads the run's artifacts only (the test bags, the test word
embeddings and the saved models; nothing is trained):

    .venv/bin/python benchmarks/auc_by_geometry.py --artifact-dir data/artifacts
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import polars as pl

from wrmil_core.bags.tensors import gather_bags
from wrmil_core.evidence.scored import score_saved_models
from wrmil_core.metrics import roc_auc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--artifact-dir", type=Path, default=Path("data/artifacts"))
    args = ap.parse_args()
    assets = args.artifact_dir / "assets"
    emb = pl.read_parquet(assets / "word_embeddings" / "test.parquet")
    bags = gather_bags(pl.read_parquet(assets / "bags_by_difficulty" / "test.parquet"), emb)
    models = json.loads((assets / "mil_model.json").read_text())["models"]
    scores, _ = score_saved_models({n: m["model_dir"] for n, m in models.items()}, bags)
    y, geometry, ratio = bags.label.numpy(), bags.geometry, bags.ratio
    rows = []
    for name, s in scores.items():
        for g in sorted(set(geometry) - {"none"}):
            row: dict[str, object] = {"model": name, "geometry": g}
            for r in sorted(set(ratio[ratio > 0])):
                keep = (y == 0) | ((geometry == g) & (ratio == r))
                row[f"{r:.0%}"] = roc_auc(y[keep], s.bag_probs[keep])
            rows.append(row)
    one = (y == 1) & (geometry == geometry[y == 1][0]) & (ratio == ratio[y == 1].min())   # any one cell
    print(f"{emb['writer'].n_unique()} test writers, {int((y == 0).sum())} genuine bags, "
          f"{int(one.sum())} contaminated per geometry and difficulty")
    with pl.Config(tbl_rows=100, tbl_cols=20, float_precision=3):
        print(pl.DataFrame(rows))


if __name__ == "__main__":
    main()
