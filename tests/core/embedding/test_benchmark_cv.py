"""``benchmarks/embedding_real.py`` end to end on a tiny raw root: folds, training, baselines, pooled table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.raw_root import make_raw_root

ROOT = Path(__file__).resolve().parents[3]
# The cpu preset's recipe (frozen pretrained features + LDA, fused with the classical part, content
# offsets) on the smaller EfficientNet-Lite0 at a small input size.
TINY = {"backbone": "efficientnet_lite0", "weights": "efficientnet_lite0@imagenet", "img_h": 32, "img_w": 96,
        "frozen_pca_dim": 16, "frozen_lda_dim": 4, "max_val_images": None, "val_pairs": 500, "val_queries": 50,
        "num_workers": 0, "cpu_threads": 1, "device": "cpu"}


@pytest.mark.slow
def test_two_folds_pool_every_method(tmp_path: Path) -> None:
    root = make_raw_root(tmp_path, n_writers=10, n_reps=4)  # 24 words per writer
    cmd = [sys.executable, str(ROOT / "benchmarks" / "embedding_real.py"), str(root), "--folds", "5",
           "--max-folds", "2", "--preset", "cpu", "--out", str(tmp_path / "out")]
    cmd += [a for k, v in TINY.items() for a in ("--set", f"{k}={json.dumps(v)}")]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert res["methods"] == ["trained", "no_content", "unfused", "untrained", "imagenet", "raw_pixels", "classical",
                              "classical_lda"]
    assert res["folds_run"] == 2 and res["n_writers_total"] == 10
    for m in res["methods"]:  # 2 test writers per fold, pooled
        assert res[m]["n_writers"] == 4 and res[m]["n_images"] == 4 * 24 and len(res[m]["fold_auc"]) == 2
        assert 0 <= res[m]["auc"] <= 1
    assert res["config"]["method"] == "frozen" and res["config"]["content_prior"] > 0
    assert set(res["pair_kinds"]) == set(res["methods"])
    assert "verification AUC on pairs of the same word" in proc.stdout
    assert "4 test writers (96 words) of 10, pooled over 2 of 5 writer folds -- few writers" in proc.stdout

    baselines = subprocess.run(cmd[:3] + ["--no-train"], capture_output=True, text=True, timeout=600, env=env)
    assert baselines.returncode == 0, baselines.stderr[-3000:]
    assert "10 test writers (240 words) of 10, pooled over 5 of 5 writer folds" in baselines.stdout
    rows = baselines.stdout.split("\nmethod")[1].splitlines()[1:6]
    assert [r.split()[0] for r in rows] == ["untrained", "imagenet", "raw_pixels", "classical", "classical_lda"]
    assert "training minutes" not in baselines.stdout
