"""A run killed while it holds a slot of the ``training`` pool must not block every later run.

The processes killed here are real Dagster runs (``tests/support/pool_holder.py``, or a real
``wrmil run``) killed with SIGKILL, as the out-of-memory killer or a power cut would.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import psutil
import pytest
import yaml

from tests.conftest import PIPELINE_SYNTH
from tests.support import pool_holder
from tests.support.processes import assert_no_tailers, kill_all, kill_tree, tailers_under
from wrmil_assets.automation import EMBEDDING_STAGE, INGEST_STAGE, Stage, dead_run_sweeper
from wrmil_assets.resources import WrmilSettings
from wrmil_assets.run import ensure_dagster_home, run_stage, run_stages, stage_job
from wrmil_assets.run_health import end_processes, log_tailers, process_verdict, run_process, sweep_dead_runs

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``DAGSTER_HOME`` written by ``ensure_dagster_home`` (training pool limit 1)."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    return ensure_dagster_home()


def _holders(instance: dg.DagsterInstance, pool: str = pool_holder.POOL) -> list[str]:
    return [s.run_id for s in instance.event_log_storage.get_concurrency_info(pool).claimed_slots]


def _start_holder(home: Path, tmp_path: Path, *args: str) -> subprocess.Popen:
    log = open(tmp_path / "holder.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "tests.support.pool_holder", *args], cwd=REPO_ROOT,
                            env={**os.environ, "DAGSTER_HOME": str(home)}, stdout=log, stderr=subprocess.STDOUT)


def _wait_for_slot_claim(instance: dg.DagsterInstance, proc: subprocess.Popen, tmp_path: Path,
                         timeout_s: float = 240.0) -> str:
    """The run id of ``proc``'s run once it holds the pool slot."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        holders = _holders(instance)
        if holders:
            return holders[0]
        assert proc.poll() is None, (tmp_path / "holder.log").read_text()
        time.sleep(0.5)
    raise AssertionError(f"no slot claimed in {timeout_s} s:\n{(tmp_path / 'holder.log').read_text()}")


def _kill(proc: subprocess.Popen) -> None:
    """SIGKILL the run's process and everything it started (Dagster's log tailers and their watchers)."""
    kill_tree(proc)


def _wait_for_tailers(root: Path, n: int, timeout_s: float = 60.0) -> None:
    """Until ``n`` ``tail`` processes name a file under ``root`` (Dagster tails stdout and stderr)."""
    deadline = time.monotonic() + timeout_s
    while len(tailers_under(root)) < n:
        assert time.monotonic() < deadline, f"not {n} log tailers under {root}: {tailers_under(root)}"
        time.sleep(0.2)


def _kill_leaving_tailers(proc: subprocess.Popen) -> list[psutil.Process]:
    """SIGKILL the run's process and Dagster's orphan watchers but not their ``tail -F`` processes,
    as a kill that misses the tailers would: nothing of Dagster's is left to end them."""
    children = psutil.Process(proc.pid).children()
    tails = [c for c in children if c.name() == "tail"]
    kill_all([psutil.Process(proc.pid), *(c for c in children if c not in tails)])
    proc.wait()
    return tails


def _start_tail(path: Path) -> subprocess.Popen:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return subprocess.Popen([shutil.which("tail") or "/usr/bin/tail", "-F", "-c", "+0", str(path)],
                            stdout=subprocess.DEVNULL)


def test_log_tailers_finds_and_ends_only_a_runs_compute_log_tails(tmp_path: Path) -> None:
    """Real ``tail -F`` processes: the one following a run's compute log is found and ended; one of
    another directory and one of a non-run capture (a sensor tick's log) are left alone."""
    root = tmp_path / "storage"
    run_tail = _start_tail(root / "run-1" / "compute_logs" / "abcdefgh.out")
    tick_tail = _start_tail(root / "sensor-origin" / "sensor" / "tick.out")
    other_tail = _start_tail(tmp_path / "elsewhere" / "run-1" / "compute_logs" / "abcdefgh.out")
    try:
        found = log_tailers(root.resolve())
        assert {run_id: [p.pid for p in procs] for run_id, procs in found.items()} == {"run-1": [run_tail.pid]}
        assert end_processes(found["run-1"]) == [run_tail.pid]
        # ended: by its SIGTERM, or by the SIGKILL that follows when a loaded machine is slow to let it go
        assert run_tail.wait(timeout=10) in (-signal.SIGTERM, -signal.SIGKILL)
        assert tick_tail.poll() is None and other_tail.poll() is None
        assert log_tailers(root.resolve()) == {}
    finally:
        for tail in (run_tail, tick_tail, other_tail):
            tail.kill()
            tail.wait()


def test_process_verdicts() -> None:
    me = os.getpid()
    assert process_verdict(me, recorded_at=time.time()) == "alive"
    # the same pid recorded long before this process existed: a later process reusing the pid
    assert process_verdict(me, recorded_at=0.0) == "dead"
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert process_verdict(child.pid, recorded_at=time.time()) == "dead"


def test_dagster_yaml_sets_pool_and_run_monitoring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    # a user's own file: kept, and only the missing sections are added
    (home / "dagster.yaml").write_text("# mine\ntelemetry:\n  enabled: true\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    ensure_dagster_home()
    text = (home / "dagster.yaml").read_text()
    cfg = yaml.safe_load(text)
    assert text.startswith("# mine\n") and cfg["telemetry"] == {"enabled": True}
    assert cfg["concurrency"] == {"pools": {"default_limit": 1}}
    assert cfg["run_monitoring"]["enabled"] is True
    assert cfg["run_monitoring"]["free_slots_after_run_end_seconds"] > 0
    ensure_dagster_home()
    assert (home / "dagster.yaml").read_text() == text  # idempotent
    with dg.DagsterInstance.get() as instance:  # Dagster accepts every section
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_start_timeout_seconds == 180


def test_a_run_waiting_for_a_killed_holder_names_it_then_completes(dagster_home: Path, tmp_path: Path) -> None:
    """A live holder is named while we wait; once it is killed, its run is failed, the slot freed,
    and the waiting run finishes."""
    with dg.DagsterInstance.get() as instance:
        holder = _start_holder(dagster_home, tmp_path)
        try:
            dead_run = _wait_for_slot_claim(instance, holder, tmp_path)
            lines: list[str] = []
            job = stage_job([pool_holder.follower], {}, Stage("follower", ("follower",)), ["follower"])
            outcome: dict[str, object] = {}

            def run() -> None:
                try:
                    outcome["run_id"] = run_stage(job, "follower", None, instance=instance, run_config={},
                                                  log=lines.append, poll_s=0.5)
                except Exception as e:  # noqa: BLE001 - reported by the assertion below
                    outcome["error"] = e

            thread = threading.Thread(target=run)
            thread.start()
            deadline = time.monotonic() + 120
            while not any("waits for a slot" in line for line in lines) and time.monotonic() < deadline:
                time.sleep(0.2)
            waiting = [line for line in lines if "waits for a slot" in line]
            assert waiting, lines
            assert dead_run[:8] in waiting[0] and "pool 'training'" in waiting[0] and "alive" in waiting[0]
            _kill(holder)
            thread.join(timeout=120)
        finally:
            if holder.poll() is None:
                _kill(holder)
        assert not thread.is_alive(), f"the follower still waits after its holder died: {lines}"
        assert "error" not in outcome, outcome
        assert instance.get_run_by_id(dead_run).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(outcome["run_id"]).status == dg.DagsterRunStatus.SUCCESS
        assert any("its process is gone" in line and dead_run[:8] in line for line in lines), lines
        assert _holders(instance) == []
    # the killed holder's log tailers are gone (the follower ran in this process: Dagster ends its own)
    assert_no_tailers(dagster_home / "storage" / dead_run)


def test_ui_sensor_leaves_live_runs_alone_and_frees_dead_ones(dagster_home: Path, tmp_path: Path) -> None:
    """The ``dead_run_sweeper`` sensor (what protects runs launched from the UI) does the sweep."""
    with dg.DagsterInstance.get() as instance:
        holder = _start_holder(dagster_home, tmp_path)
        tails: list[psutil.Process] = []
        try:
            run_id = _wait_for_slot_claim(instance, holder, tmp_path)
            _wait_for_tailers(dagster_home, 2)
            assert sweep_dead_runs(instance) == []  # a live run keeps its slot and its log tailers
            assert len(tailers_under(dagster_home)) == 2
            assert run_process(instance, instance.get_run_by_id(run_id)).pid == holder.pid
            assert _holders(instance) == [run_id]
            tails = _kill_leaving_tailers(holder)
            time.sleep(1.5)  # longer than Dagster's orphan watchers poll: they are gone, the tails stay
            assert len(tailers_under(dagster_home)) == 2
            skip = dead_run_sweeper(dg.build_sensor_context(instance=instance))
        finally:
            if holder.poll() is None:
                _kill(holder)
            kill_all(tails)  # the sweeper should have ended them; never leave them behind
        assert run_id[:8] in skip.skip_message and "marked failed" in skip.skip_message
        assert "2 compute-log tail process(es)" in skip.skip_message, skip.skip_message
        assert tailers_under(dagster_home) == []
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
        assert _holders(instance) == []
        assert sweep_dead_runs(instance) == []  # nothing left to do


@pytest.mark.slow
@pytest.mark.timeout(600)  # the old code waited forever here
def test_run_after_wrmil_run_killed_during_arcface_model(dagster_home: Path, tmp_path: Path, synth_root: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """``wrmil run`` killed with SIGKILL inside arcface_model, then the embedding stage again: it
    completes (on the old code it waited forever for the dead run's slot)."""
    artifacts = tmp_path / "artifacts"
    settings = WrmilSettings(data_root=str(synth_root), artifact_dir=str(artifacts),
                             reps_per_session=PIPELINE_SYNTH.reps_per_session, device="cpu")
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "WRMIL_ARTIFACT_DIR": str(artifacts),
           "WRMIL_REPS_PER_SESSION": str(PIPELINE_SYNTH.reps_per_session), "WRMIL_DEVICE": "cpu"}
    slow = tmp_path / "slow.yaml"  # long enough to be killed inside the step, not after it
    slow.write_text("ops: {arcface_model: {config: {epochs: 50, img_h: 32, img_w: 128, num_workers: 0}}}\n")
    quiet = lambda _m: None  # noqa: E731
    with dg.DagsterInstance.get() as instance:
        run_stages(settings, stages=[INGEST_STAGE], instance=instance, log=quiet)
        killed = subprocess.Popen([sys.executable, "-m", "wrmil_assets.cli", "run", "--data-root", str(synth_root),
                                   "--job", "retrain", "--config", str(slow)], cwd=REPO_ROOT, env=env,
                                  stdout=open(tmp_path / "holder.log", "wb"), stderr=subprocess.STDOUT)
        try:
            dead_run = _wait_for_slot_claim(instance, killed, tmp_path)
        finally:
            _kill(killed)
        fast = {"ops": {"arcface_model": {"config": {"epochs": 1, "img_h": 32, "img_w": 128, "batch_size": 32,
                                                     "max_val_images": 200, "val_pairs": 2000, "val_queries": 100,
                                                     "num_workers": 0}}}}
        run_stages(settings, run_config=fast, stages=[EMBEDDING_STAGE], instance=instance, log=quiet)
        assert instance.get_run_by_id(dead_run).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_latest_materialization_event(dg.AssetKey("arcface_model")) is not None
        assert _holders(instance) == []
    # the killed holder's log tailers are gone (the follower ran in this process: Dagster ends its own)
    assert_no_tailers(dagster_home / "storage" / dead_run)
