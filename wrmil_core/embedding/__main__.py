"""Train the writer-embedding network from the command line, in one process or under torchrun.

One process (CPU or one GPU)::

    python -m wrmil_core.embedding --words data/words.parquet --splits data/splits.parquet \\
        --out runs/embedding --preset demo [--set epochs=3 --set batch_size=32] [--no-resume]

Several GPUs (one process per GPU, torch DDP over NCCL; gloo on CPU)::

    torchrun --nproc_per_node=2 -m wrmil_core.embedding --words ... --splits ... \\
        --out runs/embedding --preset paper --set weights_file=/models/vit_base_patch16_224.safetensors

From Dagster (``arcface_model`` with ``launch.mode: torchrun`` or ``kubernetes``), the same command
runs with ``--pipes`` under ``python -m wrmil_core.embedding.launch`` (torchrun plus a one-line
failure summary); rank 0 then reports to Dagster through Pipes (``worker.py``).

Rank 0 prints one line per epoch (progress bars go to an interactive terminal's stderr) and, at
the end, a JSON summary: model id and directory, val / untrained / raw-pixel metrics, epochs run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

import polars as pl
from torch.distributed.elastic.multiprocessing.errors import record
from tqdm import tqdm

from wrmil_core.data.split import words_of_split
from wrmil_core.embedding.config import EmbeddingConfig, preset
from wrmil_core.embedding.train import train_embedding
from wrmil_core.embedding.worker import worker_hooks


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # bare strings such as backbone names


def _say(message: str) -> None:
    tqdm.write(message)  # above any progress bar, not through it
    sys.stdout.flush()  # torchrun pipes stdout; show each epoch as it ends


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m wrmil_core.embedding", description=__doc__.split("\n\n")[0])
    p.add_argument("--words", required=True, help="words table (Parquet, schema.WORD_COLUMNS)")
    p.add_argument("--splits", required=True, help="writer split table (Parquet: writer, split)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--preset", default="demo", help="embedding preset: demo | cpu | gpu | paper")
    p.add_argument("--config", help="JSON file of config fields applied over the preset (e.g. a saved config.json)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a config field")
    p.add_argument("--no-resume", action="store_true", help="start over even if a checkpoint exists")
    p.add_argument("--pipes", action="store_true",
                   help="report to Dagster through Pipes from rank 0 (set by wrmil_assets/training_launch.py; worker.py)")
    return p


@record  # under torchrun: this rank's exception goes to torchrun's error file (launch.py names it)
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see module docstring)."""
    p = _parser()
    a = p.parse_args(argv)
    overrides = {}
    for item in a.set:
        k, sep, v = item.partition("=")
        if not sep:
            p.error(f"--set expects FIELD=VALUE, got {item!r}")
        overrides[k] = _parse_value(v)
    if a.config:  # a saved config.json also holds metrics and the model id: keep only the fields
        names = {f.name for f in dataclasses.fields(EmbeddingConfig)}
        overrides = {**{k: v for k, v in json.loads(Path(a.config).read_text()).items() if k in names}, **overrides}
    config = preset(a.preset, **overrides)
    words, splits = pl.read_parquet(a.words), pl.read_parquet(a.splits)
    with worker_hooks(a.pipes, _say) as hooks:
        result = train_embedding(words_of_split(words, splits, "train"), words_of_split(words, splits, "val"), config,
                                 Path(a.out), resume=not a.no_resume, log=hooks.log, callbacks=hooks.callbacks)
        hooks.report_result(result.to_json())
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({"model_id": result.model_id, "model_dir": str(result.model_dir),
                          "val": result.val_metrics, "untrained": result.baseline_metrics,
                          "pixels": result.pixel_metrics, "epochs_run": result.epochs_run,
                          "seconds": round(result.seconds, 1)}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
