"""Small run configs that exercise every stage of the real graph in about a minute on 2 CPU cores.

``FAULT_RUN`` is the demo preset with timm's tiny test network at a small input size. The
embedding trains for three short epochs (one checkpoint each, so a run killed after the first
one has something to resume), the MIL models for four short epochs each (long enough to be
killed mid-training).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ARCFACE_FAST: dict[str, Any] = {
    "backbone": "test_resnet", "emb_dim": 16, "hidden_dim": 32, "img_h": 32, "img_w": 96,
    "epochs": 3, "batch_size": 32, "max_train_images_per_epoch": 320, "patience": 0,
    "max_val_images": 120, "val_pairs": 1000, "val_queries": 60, "num_workers": 0,
}
MIL_FAST: dict[str, Any] = {"epochs": 4, "max_batches_per_epoch": 3}

FAULT_RUN: dict[str, Any] = {"ops": {"arcface_model": {"config": ARCFACE_FAST}, "mil_model": {"config": MIL_FAST}}}


def write_run_config(path: Path, config: dict[str, Any] = FAULT_RUN) -> Path:
    """Write ``config`` as a ``wrmil run --config`` file (JSON) and return its path."""
    path.write_text(json.dumps(config, indent=1))
    return path
