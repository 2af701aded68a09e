"""The embedding stage on the synthetic demo set: val verification AUC and wall time of a preset.

    .venv/bin/python benchmarks/embedding_demo.py [--root /tmp/wrmil_demo] [--preset demo] [--set FIELD=VALUE ...]

Generates the synthetic ``demo`` set (seed 0, 40 writers) into ``--root`` when it is not there,
splits its writers as the pipeline does (60/20/20, seed 0: 24 train, 8 val writers), trains the
embedding with ``--preset`` and the ``--set`` overrides exactly as ``arcface_model`` would (no
resume), and prints one JSON line: val verification AUC / EER of the best epoch (on the preset's
``max_val_images`` val words), the untrained network's and raw pixels' AUC, the val AUC per epoch,
the training's wall time, and the load average before and after (the machine may be shared:
wall times only compare at similar load). With ``--set classical_weight=W`` it adds the fused
model's val AUC, EER and top-1 (``fusion.py``; ``val_auc`` stays the network part's). Nothing is
downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import polars as pl

from embedding_real import (
    parse_sets,  # sibling script: python puts benchmarks/ on sys.path
)

from wrmil_core import synth
from wrmil_core.data.ingest import ingest
from wrmil_core.data.split import split_writers, words_of_split
from wrmil_core.embedding.config import EmbeddingConfig, preset
from wrmil_core.embedding.data import stratified_subset
from wrmil_core.embedding.evaluate import evaluate_embeddings
from wrmil_core.embedding.infer import embedding_matrix
from wrmil_core.embedding.models import embed_words
from wrmil_core.embedding.train import train_embedding


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(Path(tempfile.gettempdir()) / "wrmil_demo"), help="synthetic demo set")
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="EmbeddingConfig overrides (JSON values)")
    ap.add_argument("--out", help="training directory (default: a temporary one)")
    a = ap.parse_args()
    cfg_synth = synth.preset("demo")
    if not synth.dataset_exists(a.root, cfg_synth):
        synth.generate_dataset(a.root, cfg_synth, log=print)
    words = ingest(a.root, metadata_csv=synth.METADATA_FILE, reps_per_session=cfg_synth.reps_per_session).words
    splits = split_writers(words["writer"].unique().sort().to_list(), seed=0)
    train, val = words_of_split(words, splits, "train"), words_of_split(words, splits, "val")
    overrides = parse_sets(a.set)
    cfg = preset(a.preset, device="cpu", **overrides)
    load_before, t0 = os.getloadavg(), time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        r = train_embedding(train, val, cfg, a.out or tmp, resume=False, log=lambda m: print(m, flush=True))
        fused = _fused_val(r.model_dir, val, cfg) if cfg.classical_weight > 0 else {}
    print(json.dumps({
        "preset": a.preset, "set": overrides, "val_auc": r.val_metrics["auc"], "val_eer": r.val_metrics["eer"], **fused,
        "untrained_auc": r.baseline_metrics["auc"], "pixels_auc": r.pixel_metrics["auc"],
        "val_auc_per_epoch": [round(h["val_auc"], 4) for h in r.history], "best_epoch": r.best_epoch,
        "seconds": round(time.perf_counter() - t0, 1), "load_before": load_before, "load_after": os.getloadavg(),
        "n_train_writers": train["writer"].n_unique(), "n_val_writers": val["writer"].n_unique(),
        "n_val_words_evaluated": int(r.val_metrics.get("n_images", 0))}))


def _fused_val(model_dir: Path, val: pl.DataFrame, cfg: EmbeddingConfig) -> dict[str, float]:
    """Val AUC / EER of the fused model (``classical_weight`` > 0) on the words training validated
    on; ``val_auc`` above is its network part's, the best epoch's."""
    words = stratified_subset(val.sort("word_id"), cfg.max_val_images, cfg.seed)
    table = embed_words(model_dir, words, device="cpu")
    m = evaluate_embeddings(embedding_matrix(table), table["writer"].to_numpy(), cfg.val_pairs, cfg.val_queries,
                            cfg.seed)
    return {"fused_val_auc": m["auc"], "fused_val_eer": m["eer"], "fused_val_top1": m["top1"]}


if __name__ == "__main__":
    main()
