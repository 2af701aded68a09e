"""Two-process DDP training on CPU (gloo), launched by torchrun through ``-m wrmil_core.embedding``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from tests.support.embedding import TINY_CONFIG, make_split
from wrmil_core.embedding.infer import check_embeddings
from wrmil_core.embedding.models import embed_words


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_process_gloo(tmp_path: Path) -> None:
    train, val = make_split(tmp_path / "img")
    words = pl.concat([train, val])
    words.write_parquet(tmp_path / "words.parquet")
    splits = pl.DataFrame({"writer": words["writer"].unique().sort()}).with_columns(
        split=pl.when(pl.col("writer") >= 100).then(pl.lit("val")).otherwise(pl.lit("train")))
    splits.write_parquet(tmp_path / "splits.parquet")
    (tmp_path / "cfg.json").write_text(json.dumps(TINY_CONFIG.to_dict()))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={free_port()}", "-m", "wrmil_core.embedding", "--words", str(tmp_path / "words.parquet"),
           "--splits", str(tmp_path / "splits.parquet"), "--out", str(out), "--config", str(tmp_path / "cfg.json")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "x 16 x 2 process(es)" in proc.stdout  # per-process batch, two ranks
    assert "DDP: all 2 replicas hold identical weights" in proc.stdout
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["world"] == 2 and state["steps_per_epoch"] == 96 // 2 // 16
    result = json.loads(proc.stdout[proc.stdout.index("{\n"):])
    assert (out / "model" / "model.safetensors").is_file() and result["epochs_run"] == 2
    emb = embed_words(out / "model", val, device="cpu")
    assert check_embeddings(emb, 16)[0] and emb["model_id"][0] == result["model_id"]


def test_old_module_spelling_still_runs_the_cli() -> None:
    """``python -m wrmil_core.embedding.train`` (the older, documented spelling) reaches the same CLI."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    proc = subprocess.run([sys.executable, "-m", "wrmil_core.embedding.train", "--help"], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage: python -m wrmil_core.embedding" in proc.stdout and "--no-resume" in proc.stdout
