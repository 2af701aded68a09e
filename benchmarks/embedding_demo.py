"""The embedding stage on the synthetic demo set: val verification AUC and wall time of a preset.

    .venv/bin/python benchmarks/embedding_demo.py [--root /tmp/wrmil_demo] [--preset demo] [--set FIELD=VALUE ...]

Generates the synthetic ``demo`` set (seed 0, 40 writers) into ``--root`` when it is not there,
splits its writers as the pipeline does (60/20/20, seed 0: 24 train, 8 val writers), fits the
embedding with ``--preset`` and the ``--set`` overrides exactly as ``arcface_model`` would
(``fit_embedding``, no resume: the preset's method, a trained network, the frozen pretrained features
or the classical embedding), and prints one JSON line: the model's val verification AUC / EER / top-1
as the pipeline embeds (on the preset's ``max_val_images`` val words; fused and content-normalised
where the preset says so), for a network also its own best epoch's val AUC (``network_val_auc``), the
untrained network's and raw pixels' AUC and the val AUC per epoch, the fitting's wall time, and the
load average before and after (the machine may be shared: wall times only compare at similar load).
Nothing is downloaded.
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
from wrmil_core.embedding.fit import fit_embedding
from wrmil_core.embedding.infer import embedding_matrix
from wrmil_core.embedding.models import embed_words


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
        fitted = fit_embedding(cfg, train, val, a.out or tmp, resume=False, log=lambda m: print(m, flush=True))
        seconds = round(time.perf_counter() - t0, 1)
        figures = _val_figures(fitted.model_dir, val, cfg)
    r = fitted.train_result
    network = {} if r is None else {
        "network_val_auc": r.val_metrics["auc"], "untrained_auc": r.baseline_metrics["auc"],
        "pixels_auc": r.pixel_metrics["auc"], "imagenet_auc": r.pretrained_metrics.get("auc"),
        "val_auc_per_epoch": [round(h["val_auc"], 4) for h in r.history], "best_epoch": r.best_epoch}
    print(json.dumps({
        "preset": a.preset, "method": cfg.method, "set": overrides, **figures, **network, "seconds": seconds,
        "load_before": load_before, "load_after": os.getloadavg(), "n_train_writers": train["writer"].n_unique(),
        "n_val_writers": val["writer"].n_unique()}))


def _val_figures(model_dir: Path, val: pl.DataFrame, cfg: EmbeddingConfig) -> dict[str, float]:
    """Val AUC / EER / top-1 of the model as the pipeline embeds, on the preset's val subset."""
    words = stratified_subset(val.sort("word_id"), cfg.max_val_images, cfg.seed)
    table = embed_words(model_dir, words, device="cpu")
    m = evaluate_embeddings(embedding_matrix(table), table["writer"].to_numpy(), cfg.val_pairs, cfg.val_queries,
                            cfg.seed)
    return {"val_auc": m["auc"], "val_eer": m["eer"], "val_top1": m["top1"], "n_val_words_evaluated": m["n_images"]}


if __name__ == "__main__":
    main()
