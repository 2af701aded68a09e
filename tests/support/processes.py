"""Run ``wrmil`` as a real process for fault-injection tests: start it, watch it, kill -9 it.

Each ``wrmil`` process starts in its own session, so :meth:`WrmilProcess.kill9` reaches every
process it spawned (SIGKILL to the whole group, as a power cut or the OOM killer would), including
the ``tail -F`` processes Dagster's compute log manager starts (and any descendant that left the
group); :func:`tailers_under` finds the ones a test left behind. Every
wait is bounded: a run that hangs fails its test with the end of its log instead of hanging the
suite. Everything a run writes (``DAGSTER_HOME``, artifacts, its log) lies under a temporary
directory the caller owns.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from tests.support.ui import REPO_ROOT, group_alive

WRMIL_ENV_PREFIX = "WRMIL_"


def wrmil_command() -> list[str]:
    """The ``wrmil`` console script of this interpreter's environment (what a user types)."""
    script = Path(sys.executable).parent / "wrmil"
    return [str(script)] if script.exists() else [sys.executable, "-m", "wrmil_assets.cli"]


def wrmil_env(home: Path, artifact_dir: Path, **settings: str) -> dict[str, str]:
    """The caller's environment without any ``WRMIL_*`` variable, plus a private instance and artifacts.

    ``home`` becomes ``DAGSTER_HOME`` (created, telemetry off; ``wrmil run`` adds its pool limits
    to it only when it has no ``dagster.yaml`` yet, so the file is not written here);
    ``settings`` maps ``WRMIL_*`` names to values (e.g. ``WRMIL_REPS_PER_SESSION="4"``).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(WRMIL_ENV_PREFIX)}
    home.mkdir(parents=True, exist_ok=True)
    env.update({"DAGSTER_HOME": str(home.resolve()), "WRMIL_ARTIFACT_DIR": str(artifact_dir.resolve()),
                "WRMIL_DEVICE": "cpu", "PYTHONUNBUFFERED": "1", **settings})
    return env


@dataclass
class WrmilProcess:
    """A running ``wrmil`` command (leader of its own process group) and its combined log."""

    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        """Everything the process printed so far (stdout and stderr)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError as e:
            return f"<no log: {e}>"

    def log_tail(self, n_chars: int = 4000) -> str:
        return self.log()[-n_chars:]

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout_s: float) -> int:
        """Wait for the exit code; after ``timeout_s`` kill the group and raise ``TimeoutError``.

        Interrupted (Ctrl-C in pytest), it kills the group too: a process in its own session
        would otherwise outlive the test run.
        """
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise TimeoutError(f"`{' '.join(self.proc.args)}` still running after {timeout_s:.0f} s "
                               f"(killed):\n{self.log_tail()}") from None
        except BaseException:
            self.kill9()
            raise

    def kill9(self, grace_s: float = 30.0) -> None:
        """SIGKILL the whole process group and wait until none of it is left."""
        pgid = self.proc.pid  # start_new_session=True: the leader's pid is the group id
        strays = descendants(self.proc.pid)  # found before the kill: orphans can no longer be traced
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        kill_all(strays, grace_s)  # those that left the group (setsid); the rest are gone already
        self.proc.wait(timeout=grace_s)  # reap the leader (sets returncode)
        deadline = time.monotonic() + grace_s
        while group_alive(pgid):
            if time.monotonic() > deadline:
                raise TimeoutError(f"process group {pgid} survived SIGKILL for {grace_s:.0f} s")
            time.sleep(0.05)


def descendants(pid: int) -> list[psutil.Process]:
    """Every live descendant of process ``pid`` (empty when it is gone)."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def kill_all(procs: list[psutil.Process], timeout_s: float = 30.0) -> None:
    """SIGKILL ``procs`` and wait until they are gone (a pid already reused is left alone by psutil)."""
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    deadline = time.monotonic() + timeout_s
    # Poll instead of psutil.wait_procs: that would reap our own children behind Popen's back.
    while alive := [p.pid for p in procs if _running(p)]:
        if time.monotonic() > deadline:
            raise TimeoutError(f"processes {alive} survived SIGKILL for {timeout_s:.0f} s")
        time.sleep(0.05)


def _running(proc: psutil.Process) -> bool:
    """Whether ``proc`` still runs (a zombie does not: it only waits to be reaped)."""
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kill_tree(proc: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """SIGKILL ``proc`` and every process it started (found before the kill), and reap ``proc``."""
    tree = [psutil.Process(proc.pid), *descendants(proc.pid)] if proc.poll() is None else []
    kill_all(tree, timeout_s)
    proc.wait(timeout=timeout_s)


def tailers_under(root: Path) -> list[str]:
    """The command lines of live ``tail`` processes that name a file under ``root``."""
    root = Path(os.path.realpath(root))
    found = []
    for proc in psutil.process_iter(["name", "cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] == psutil.STATUS_ZOMBIE or not cmdline or Path(cmdline[0]).name != "tail":
            continue
        if any(root in Path(os.path.realpath(arg)).parents for arg in cmdline[1:] if arg.startswith("/")):
            found.append(" ".join(cmdline))
    return found


def assert_no_tailers(root: Path, timeout_s: float = 10.0) -> None:
    """No ``tail`` process names a file under ``root`` (allowing a moment for SIGTERMs to land)."""
    deadline = time.monotonic() + timeout_s
    while (left := tailers_under(root)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"log tailers outlived their run: {left}"


def start_wrmil(args: list[str], env: dict[str, str], log_path: Path) -> WrmilProcess:
    """Start ``wrmil ARGS`` from the repository root in a new session; output goes to ``log_path``."""
    with open(log_path, "wb") as log_file:  # the child writes to its own copy of the descriptor
        proc = subprocess.Popen([*wrmil_command(), *args], cwd=REPO_ROOT, env=env, stdout=log_file,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    return WrmilProcess(proc=proc, log_path=log_path)


def run_wrmil(args: list[str], env: dict[str, str], log_path: Path, timeout_s: float) -> tuple[int, str]:
    """Run ``wrmil ARGS`` to completion (bounded); return ``(exit code, combined output)``."""
    p = start_wrmil(args, env, log_path)
    rc = p.wait(timeout_s)
    return rc, p.log()


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float, process: WrmilProcess | None = None,
               poll_s: float = 0.05) -> float:
    """Poll ``condition`` until true; return the seconds waited.

    Raises ``TimeoutError`` after ``timeout_s``, or ``RuntimeError`` as soon as ``process`` has
    exited without the condition becoming true (then the condition can never come true).
    """
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if condition():
            return time.monotonic() - t0
        if process is not None and not process.running():
            if condition():
                return time.monotonic() - t0
            raise RuntimeError(f"waiting for {what}: the process exited with code {process.proc.returncode}:\n"
                               f"{process.log_tail()}")
        time.sleep(poll_s)
    tail = f":\n{process.log_tail()}" if process is not None else ""
    raise TimeoutError(f"waiting for {what}: not after {timeout_s:.0f} s{tail}")


def file_digests(root: Path, patterns: Iterable[str] = ("**/*",)) -> dict[str, str]:
    """``relative path -> sha256`` of the files under ``root`` matching any glob pattern."""
    out: dict[str, str] = {}
    for pattern in patterns:
        for f in root.glob(pattern):
            if f.is_file():
                out[str(f.relative_to(root))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return dict(sorted(out.items()))


def read_record(artifact_dir: Path, asset: str) -> dict[str, Any]:
    """The JSON record the IO manager stored for an unpartitioned asset (``assets/<asset>.json``)."""
    return json.loads((artifact_dir / "assets" / f"{asset}.json").read_text())


__all__ = ["WrmilProcess", "assert_no_tailers", "descendants", "file_digests", "kill_all", "kill_tree",
           "read_record", "run_wrmil", "start_wrmil", "tailers_under", "wait_until", "wrmil_command", "wrmil_env"]
