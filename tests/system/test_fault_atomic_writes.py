"""Every artifact write is atomic: a writer killed with SIGKILL mid-write leaves the old artifact intact.

A real writer process (the project's Parquet IO manager inside ``dagster.materialize``, and
``wrmil_core.artifacts.save_model``) first writes a small artifact, then starts replacing it with
a large one (hundreds of MB, so the write takes long enough to be caught). As soon as anything in
the target directory changes (a temporary file appears, or the artifact itself is touched), the
process group gets SIGKILL. The old artifact must still be there, byte for byte, and load.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from tests.support.processes import wait_until
from tests.support.ui import REPO_ROOT, group_alive

pytestmark = pytest.mark.slow

# ~320 MB of incompressible float64 / float32: long enough a write to kill half-way.
BIG_ROWS = 40_000_000
BIG_TENSOR = 80_000_000
SMALL = 1_000
WRITE_TIMEOUT_S = 240

PARQUET_WRITER = """
import sys
import dagster as dg
import numpy as np
import polars as pl
from wrmil_assets.definitions import build_resources
from wrmil_assets.resources import WrmilSettings

artifact_dir, n = sys.argv[1], int(sys.argv[2])

@dg.asset(io_manager_key="parquet_io")
def big_table() -> pl.DataFrame:
    return pl.DataFrame({"x": np.random.default_rng(n).random(n)})

io = build_resources(WrmilSettings(data_root=artifact_dir, artifact_dir=artifact_dir))["parquet_io"]
with dg.DagsterInstance.ephemeral() as instance:
    assert dg.materialize([big_table], resources={"parquet_io": io}, instance=instance).success
"""

MODEL_WRITER = """
import sys
import torch
from wrmil_core.artifacts import save_model

directory, n = sys.argv[1], int(sys.argv[2])
save_model(directory, {"w": torch.rand(n, generator=torch.Generator().manual_seed(n))}, {"n": n})
"""


def _writer(script: str, target: str, n: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, target, str(n)], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def _write(script: str, target: Path, n: int) -> None:
    p = _writer(script, str(target), n)
    out, _ = p.communicate(timeout=WRITE_TIMEOUT_S)
    assert p.returncode == 0, out.decode(errors="replace")[-4000:]


def _listing(directory: Path) -> dict[str, tuple[int, int]]:
    """``name -> (size, mtime)`` of the files in ``directory`` (a file renamed away meanwhile is left out)."""
    out = {}
    for f in directory.iterdir() if directory.is_dir() else ():
        try:
            st = f.stat()
        except FileNotFoundError:
            continue
        out[f.name] = (st.st_size, st.st_mtime_ns)
    return out


def _kill_mid_write(script: str, target: Path, n: int, watch: Path) -> list[str]:
    """Start a writer of ``n`` items; SIGKILL its group as soon as anything in ``watch`` changes.

    Returns the names of the files that had appeared or changed at the kill: the write under way
    (a temporary file for an atomic writer, the artifact itself for one that writes in place).
    """
    before = _listing(watch)
    p = _writer(script, str(target), n)
    touched: list[str] = []

    def writing() -> bool:
        now = _listing(watch)
        touched[:] = [name for name, st in now.items() if before.get(name) != st]
        return bool(touched)

    try:
        t0 = time.monotonic()
        while not writing():
            if p.poll() is not None:
                raise AssertionError(f"the writer finished before it could be killed mid-write "
                                     f"(rc {p.returncode}):\n{p.stdout.read().decode(errors='replace')[-4000:]}")
            if time.monotonic() - t0 > WRITE_TIMEOUT_S:
                raise TimeoutError(f"nothing was written in {watch} within {WRITE_TIMEOUT_S} s")
            time.sleep(0.002)
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(timeout=30)
        wait_until(lambda: not group_alive(p.pid), "the killed writer's process group to end", 30)
        p.stdout.close()
    assert p.returncode == -signal.SIGKILL, f"the writer ended with {p.returncode}, not by SIGKILL"
    return touched


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_parquet_io_manager_killed_mid_write_keeps_the_old_table(tmp_path):
    art = tmp_path / "artifacts"
    final = art / "assets" / "big_table.parquet"
    _write(PARQUET_WRITER, art, SMALL)
    old = _sha(final)

    touched = _kill_mid_write(PARQUET_WRITER, art, BIG_ROWS, final.parent)
    assert _sha(final) == old, f"{final} changed although its writer was killed mid-write (touched: {touched})"
    table = pl.read_parquet(final)
    assert table.height == SMALL and table.columns == ["x"]


def test_save_model_killed_mid_write_keeps_the_old_model(tmp_path):
    from wrmil_core.artifacts import CONFIG_FILE, WEIGHTS_FILE, load_model, weights_id

    model_dir = tmp_path / "model"
    _write(MODEL_WRITER, model_dir, SMALL)
    old = {f: _sha(model_dir / f) for f in (WEIGHTS_FILE, CONFIG_FILE)}

    touched = _kill_mid_write(MODEL_WRITER, model_dir, BIG_TENSOR, model_dir)
    assert {f: _sha(model_dir / f) for f in old} == old, \
        f"the old model changed when its writer was killed mid-write (touched: {touched})"
    state, config = load_model(model_dir)
    assert state["w"].numel() == SMALL and config["n"] == SMALL
    assert weights_id(state) == config["model_id"], "weights and config.json are from different writes"
