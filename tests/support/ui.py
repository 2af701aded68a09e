"""Run ``dagster dev`` for a browser test and talk to its GraphQL endpoint.

``dagster dev`` spawns a webserver and a code-server (and the daemon), each its own process, so
the server starts in a new session and :func:`stop_process_group` signals the whole group: no
child outlives the test. Everything it writes (``DAGSTER_HOME``, artifacts, logs) lies under a
temporary directory the caller owns.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
# Debian's chromium, headless, with everything that would touch the network switched off.
CHROMIUM_ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_dagster_home(path: Path) -> Path:
    """An absolute ``DAGSTER_HOME`` with telemetry off (Dagster insists on an absolute path)."""
    home = path.resolve()
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return home


@dataclass
class DagsterDev:
    """A running ``dagster dev`` (its own process group) and where it serves and logs."""

    proc: subprocess.Popen
    port: int
    log_path: Path
    _log_file: Any = field(repr=False, default=None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, n_chars: int = 4000) -> str:
        """The end of the server's combined stdout/stderr (for assertion messages)."""
        try:
            return self.log_path.read_text(errors="replace")[-n_chars:]
        except OSError as e:
            return f"<no log: {e}>"


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_dagster_dev(tmp: Path, env_overrides: dict[str, str], port: int | None = None,
                      workspace: str = "workspace.yaml") -> DagsterDev:
    """Start ``dagster dev -w <workspace>`` from the repo root on a free loopback port.

    ``env_overrides`` (e.g. ``DAGSTER_HOME``, ``WRMIL_*``) are laid over the current environment.
    Output goes to ``tmp/dagster_dev.log``.
    """
    port = port or free_port()
    dagster = Path(sys.executable).parent / "dagster"
    env = {**os.environ, **env_overrides, "PYTHONUNBUFFERED": "1"}
    log_path = tmp / "dagster_dev.log"
    log_file = open(log_path, "wb")
    proc = subprocess.Popen(
        [str(dagster), "dev", "-w", workspace, "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        start_new_session=True,  # own process group: stop_process_group reaches every child
        # dagster dev shuts down on SIGTERM by way of SIGINT; a parent started in the background
        # of a shell may have left SIGINT ignored, which would make it ignore SIGTERM too.
        preexec_fn=_default_sigint,
    )
    return DagsterDev(proc=proc, port=port, log_path=log_path, _log_file=log_file)


def stop_process_group(server: DagsterDev, grace_s: float = 20.0) -> None:
    """SIGTERM the server's process group, wait, then SIGKILL whatever is left."""
    pgid = server.proc.pid  # start_new_session=True: the leader's pid is the group id
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and group_alive(pgid):
            time.sleep(0.2)
            server.proc.poll()  # reap the leader so it does not linger as a zombie
        if not group_alive(pgid):
            break
    server.proc.poll()
    if server._log_file is not None:
        server._log_file.close()


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` still exists (zombies of reaped leaders excluded)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # killpg(0) also succeeds for unreaped zombies; look at the members' states.
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            return True
    return False


def graphql(url: str, query: str, variables: dict[str, Any] | None = None, timeout: float = 30.0) -> dict:
    """POST a query to the webserver's ``/graphql`` and return ``data`` (raises on errors)."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(f"{url}/graphql", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:  # the test's own loopback server  # nosec B310
        payload = json.loads(r.read())
    if payload.get("errors"):
        raise RuntimeError(f"GraphQL errors: {payload['errors']}")
    return payload["data"]


def wait_for_server(server: DagsterDev, timeout_s: float = 240.0) -> float:
    """Block until the webserver answers ``/server_info`` and the code location has loaded.

    Returns the seconds waited; raises ``TimeoutError`` (or ``RuntimeError`` if the process died)
    with the end of the server log.
    """
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if server.proc.poll() is not None:
            raise RuntimeError(f"dagster dev exited with code {server.proc.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/server_info", timeout=5) as r:  # loopback  # nosec B310
                if r.status == 200 and location_loaded(server.url):
                    return time.monotonic() - t0
        except (urllib.error.URLError, ConnectionError, TimeoutError, RuntimeError, ValueError):
            pass  # still starting: not listening, or answering before the workspace is ready
        time.sleep(1.0)
    raise TimeoutError(f"dagster dev did not serve {server.url} within {timeout_s:.0f} s:\n"
                       f"{server.log_tail()}")


LOCATIONS_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } }
} } } }
"""


def location_loaded(url: str) -> bool:
    """True once every code location finished loading; raises if one failed to load."""
    ws = graphql(url, LOCATIONS_QUERY)["workspaceOrError"]
    entries = ws.get("locationEntries") or []
    if not entries or any(e["loadStatus"] != "LOADED" for e in entries):
        return False
    for e in entries:
        loc = e["locationOrLoadError"] or {}
        if loc.get("__typename") == "PythonError":
            raise AssertionError(f"code location {e['name']} failed to load: {loc.get('message')}")
    return True


RUN_QUERY = """
query Run($runId: ID!) { runOrError(runId: $runId) { __typename
  ... on Run { runId status assetSelection { path } } } }
"""

RUNS_QUERY = """
{ runsOrError { __typename ... on Runs { results { runId status assetSelection { path } } } } }
"""


def list_runs(url: str) -> list[dict[str, Any]]:
    """Every run of the instance (newest first) with its status and selected asset keys."""
    return graphql(url, RUNS_QUERY)["runsOrError"]["results"]


def run_status(url: str, run_id: str) -> str:
    """The run's status (QUEUED, STARTING, STARTED, SUCCESS, FAILURE, CANCELED, ...)."""
    return graphql(url, RUN_QUERY, {"runId": run_id})["runOrError"]["status"]


ASSET_CHECKS_QUERY = """
{ assetNodes { assetKey { path }
    assetChecksOrError { __typename ... on AssetChecks { checks { name } } } } }
"""


def asset_checks_from_ui(url: str) -> dict[str, set[str]]:
    """``asset name -> check names`` as the webserver's GraphQL reports them."""
    out: dict[str, set[str]] = {}
    for node in graphql(url, ASSET_CHECKS_QUERY)["assetNodes"]:
        checks = node["assetChecksOrError"]
        names = {c["name"] for c in checks["checks"]} if checks["__typename"] == "AssetChecks" else set()
        out["/".join(node["assetKey"]["path"])] = names
    return out


RUN_ERRORS_QUERY = """
query Logs($runId: ID!) { logsForRun(runId: $runId) { __typename
  ... on EventConnection { events { __typename
    ... on MessageEvent { message level }
    ... on ExecutionStepFailureEvent { error { message cause { message } } }
    ... on RunFailureEvent { error { message } } } } } }
"""


def run_error_messages(url: str, run_id: str, limit: int = 10) -> list[str]:
    """The run's ERROR-level messages and failure errors (to explain a failed run in an assertion)."""
    conn = graphql(url, RUN_ERRORS_QUERY, {"runId": run_id})["logsForRun"]
    out = []
    for e in conn.get("events", []):
        error = e.get("error") or {}
        err = " ".join(m for m in (error.get("message"), (error.get("cause") or {}).get("message")) if m)
        if err or e.get("level") == "ERROR":
            out.append(f"{e['__typename']}: {e.get('message', '')} {err or ''}".strip())
    return out[-limit:]


def wait_for_run(url: str, run_id: str, timeout_s: float = 300.0) -> str:
    """Poll until the run reaches a terminal status and return it (raises ``TimeoutError``)."""
    t0 = time.monotonic()
    status = "UNKNOWN"
    while time.monotonic() - t0 < timeout_s:
        status = run_status(url, run_id)
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(1.0)
    raise TimeoutError(f"run {run_id} still {status} after {timeout_s:.0f} s")
