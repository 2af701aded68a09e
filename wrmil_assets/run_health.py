"""Runs whose process is gone: find them, mark them failed, free their concurrency slots.

A run killed by SIGKILL, the out-of-memory killer, a power cut or a closed laptop never reports its
end: Dagster keeps it STARTED, and the slot it claimed in a concurrency pool (``training``) stays
taken, so every later run waits for that slot forever. Dagster records each run's process id in
the run's first engine event with a ``pid`` ("Executing steps in process (pid: N)" for in-process
runs such as ``wrmil run``'s, "Started process for run (pid: N)" for runs the UI launches); a run
whose process no longer exists on this machine is dead. Everything here goes through Dagster's
own APIs (``report_run_failed``, ``free_concurrency_slots_for_run``), so the UI shows why.

A dead run may also leave behind the ``tail -F`` processes that Dagster's local compute log manager
starts to mirror each step's captured output (its orphan watchers end them, unless they died too):
the sweep ends every ``tail`` that names a compute-log file of a run that is over and whose process
is gone, and nothing else.

The instance is taken to live on this machine (``DAGSTER_HOME`` with its SQLite storage, as
``wrmil`` sets it up); runs that ``wrmil run`` launches also carry their host in a tag, and a run
from another host is never judged.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import dagster as dg
import psutil
from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager

HOST_TAG = "wrmil/host"
# A run in one of these states has a process that should be running it.
LIVE_STATUSES = (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING)
# A process created this long after Dagster recorded its pid is a later process reusing the pid.
PID_REUSE_SLACK_S = 2.0

# How long an ended log tailer may take to go after SIGTERM before it gets SIGKILL.
TAILER_GRACE_S = 3.0

Verdict = Literal["alive", "dead", "unknown"]
Say = Callable[[str], None]


@dataclass(frozen=True)
class RunProcess:
    """The process that runs (or ran) a Dagster run, as far as the instance recorded it."""

    run_id: str
    status: str
    pid: int | None
    host: str | None
    verdict: Verdict

    def describe(self) -> str:
        """``run 1a2b3c4d (STARTED, pid 123 on host h, alive)``."""
        where = f"pid {self.pid}" if self.pid is not None else "pid not recorded"
        if self.host:
            where += f" on host {self.host}"
        return f"run {self.run_id[:8]} ({self.status}, {where}, {self.verdict})"


def process_verdict(pid: int, recorded_at: float) -> Verdict:
    """Whether process ``pid``, recorded at time ``recorded_at`` (epoch s), still runs here."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return "dead"
        created = proc.create_time()
    except psutil.NoSuchProcess:
        return "dead"
    except psutil.AccessDenied:
        return "alive"  # it exists; another user's process is not ours to judge
    return "dead" if created > recorded_at + PID_REUSE_SLACK_S else "alive"


def _recorded_pid(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """The run's process id and when it was recorded: the first engine event carrying a ``pid``."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT,
                                           limit=50, ascending=True).records
    for record in records:
        event = record.event_log_entry.dagster_event
        data = event.engine_event_data if event is not None else None
        pid = data.metadata.get("pid") if data is not None else None
        if pid is not None:
            return int(pid.value), record.event_log_entry.timestamp
    return None


def run_process(instance: dg.DagsterInstance, run: dg.DagsterRun) -> RunProcess:
    """Where ``run`` runs and whether that process is alive (``unknown``: no pid, or another host)."""
    host = run.tags.get(HOST_TAG)
    recorded = _recorded_pid(instance, run.run_id)
    status = run.status.value
    if recorded is None:
        return RunProcess(run.run_id, status, None, host, "unknown")
    pid, at = recorded
    verdict: Verdict = "unknown" if host not in (None, socket.gethostname()) else process_verdict(pid, at)
    return RunProcess(run.run_id, status, pid, host, verdict)


def _pool_infos(instance: dg.DagsterInstance) -> dict:
    """Concurrency info of every pool the instance knows (empty when it has no pool limits)."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return {}
    return dict(storage.get_concurrency_infos(sorted(storage.get_concurrency_keys())))


def compute_log_root(instance: dg.DagsterInstance) -> Path | None:
    """The directory of the instance's local compute logs (``<root>/<run id>/compute_logs/...``);
    ``None`` for any other compute log manager (nothing of it is tailed on this machine)."""
    manager = instance.compute_log_manager
    if not isinstance(manager, LocalComputeLogManager):
        return None
    return Path(manager._base_dir).resolve()  # noqa: SLF001 - Dagster exposes no public accessor


def _tailed_paths(proc: psutil.Process) -> list[Path]:
    """The files a ``tail`` process follows (its non-option arguments); empty for any other process."""
    try:
        cmdline = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return []
    if not cmdline or os.path.basename(cmdline[0]) != "tail":
        return []
    return [Path(arg) for arg in cmdline[1:] if os.path.isabs(arg)]


def log_tailers(root: Path) -> dict[str, list[psutil.Process]]:
    """``run id -> tail processes`` following a compute-log file under ``root`` (by run directory)."""
    found: dict[str, list[psutil.Process]] = {}
    for proc in psutil.process_iter():
        for path in _tailed_paths(proc):
            # Compare resolved paths so ``/tmp`` vs ``/private/tmp``-style links never hide a tailer.
            resolved = Path(os.path.realpath(path))
            parts = resolved.relative_to(root).parts if root in resolved.parents else ()
            # A run's step logs lie in <run id>/compute_logs/; other captured logs (sensor ticks) do not.
            if len(parts) == 3 and parts[1] == "compute_logs":
                found.setdefault(parts[0], []).append(proc)
                break
    return found


def _gone(proc: psutil.Process) -> bool:
    """Whether ``proc`` has ended (a zombie has: only its parent's reaping is left)."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(procs: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Poll until every process in ``procs`` has ended or ``timeout_s`` passed; those still there."""
    deadline = time.monotonic() + timeout_s
    while (left := [p for p in procs if not _gone(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def end_processes(procs: list[psutil.Process], grace_s: float = TAILER_GRACE_S) -> list[int]:
    """SIGTERM ``procs``, SIGKILL those still there after ``grace_s``; the pids that have ended.

    ``psutil`` refuses to signal a process whose pid was reused since it was found."""
    mine: list[psutil.Process] = []
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
        except psutil.AccessDenied:
            continue  # another user's process: not ours to end
        mine.append(proc)
    for proc in _wait_gone(mine, grace_s):
        try:
            proc.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    still = {p.pid for p in _wait_gone(mine, grace_s)}
    return [p.pid for p in mine if p.pid not in still]


def end_dead_runs_log_tailers(instance: dg.DagsterInstance) -> list[str]:
    """End the ``tail`` processes left by runs that are over and whose process is gone; those of
    live runs, of a finished run whose process still runs, or of no known run are kept."""
    root = compute_log_root(instance)
    if root is None:
        return []
    notes: list[str] = []
    for run_id, procs in sorted(log_tailers(root).items()):
        run = instance.get_run_by_id(run_id)
        if run is None or not run.is_finished or run_process(instance, run).verdict != "dead":
            continue
        ended = end_processes(procs)
        if ended:
            notes.append(f"run {run_id[:8]} left {len(ended)} compute-log tail process(es) "
                         f"(pid {', '.join(map(str, ended))}); ended")
    return notes


def sweep_dead_runs(instance: dg.DagsterInstance, log: Say | None = None) -> list[str]:
    """Mark runs whose process is gone as failed and free their slots; free slots that finished
    runs still hold; end the compute-log tailers of runs whose process is gone. Returns one note
    per thing done (also passed to ``log``)."""
    notes: list[str] = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=list(LIVE_STATUSES))):
        proc = run_process(instance, record.dagster_run)
        if proc.verdict != "dead":
            continue
        instance.report_run_failed(record.dagster_run, message=(
            f"wrmil: the process of this run (pid {proc.pid}) is gone: killed, out of memory or the "
            "machine stopped. Marked failed and its concurrency slots freed; materialise again to resume."))
        instance.event_log_storage.free_concurrency_slots_for_run(proc.run_id)
        notes.append(f"{proc.describe()}: its process is gone; marked failed, its slots freed")
    holders = {s.run_id for info in _pool_infos(instance).values() for s in info.claimed_slots}
    for run_id in sorted(holders):
        run = instance.get_run_by_id(run_id)
        if run is None or (run.is_finished and run_process(instance, run).verdict != "alive"):
            instance.event_log_storage.free_concurrency_slots_for_run(run_id)
            state = run.status.value if run is not None else "deleted"
            notes.append(f"run {run_id[:8]} ({state}) still held a concurrency slot; freed")
    notes.extend(end_dead_runs_log_tailers(instance))
    for note in notes:
        if log is not None:
            log(f"wrmil: {note}")
    return notes


def waiting_message(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """What ``run_id`` waits for, when one of its steps waits for a pool slot; else ``None``."""
    for pool, info in _pool_infos(instance).items():
        waiting = [p.step_key for p in info.pending_steps if p.run_id == run_id and p.assigned_timestamp is None]
        if not waiting:
            continue
        holders = []
        for slot in info.claimed_slots:
            run = instance.get_run_by_id(slot.run_id)
            holder = run_process(instance, run).describe() if run is not None else f"run {slot.run_id[:8]} (deleted)"
            holders.append(f"{holder}, step {slot.step_key}")
        held = "; ".join(holders) or "no run (the slot is being handed over)"
        return (f"wrmil: step {', '.join(waiting)} waits for a slot of pool '{pool}' (limit {info.limit}), "
                f"held by {held}. A dead holder is freed automatically; to stop a live one, terminate it "
                "in the UI (`make ui`, Runs).")
    return None


@contextmanager
def watching_slots(instance: dg.DagsterInstance, run_id: str, log: Say, poll_s: float = 5.0,
                   repeat_s: float = 60.0) -> Iterator[None]:
    """While the caller executes run ``run_id``: every ``poll_s`` fail dead runs and free their
    slots, and say (on change, and every ``repeat_s``) which run holds a slot it waits for."""
    stop = threading.Event()

    def watch() -> None:
        """Poll until told to stop; say a message when it changes, and again every ``repeat_s``."""
        last, last_at, elapsed, errors = None, 0.0, 0.0, set()
        while not stop.wait(poll_s):
            elapsed += poll_s
            try:
                sweep_dead_runs(instance, log)
                msg = waiting_message(instance, run_id)
            except Exception as e:  # noqa: BLE001 - the watcher must never break the run it watches
                # e.g. SQLite busy for a moment: try again next tick, and say each distinct problem once
                if str(e) not in errors:
                    errors.add(str(e))
                    log(f"wrmil: could not inspect concurrency slots this time: {e}")
                continue
            if msg and (msg != last or elapsed - last_at >= repeat_s):
                log(msg)
                last_at = elapsed
            last = msg

    thread = threading.Thread(target=watch, name="wrmil-slot-watch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
