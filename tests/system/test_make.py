"""`make test` on a fresh machine: chromium is installed when possible, else it stops at once with
the command to run. The browser test is never skipped."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make")
INSTALL_HINT = "sudo apt-get update && sudo apt-get install -y chromium"

pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def _make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([MAKE, "--no-print-directory", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120)


def test_without_chromium_and_apt_get_it_stops_at_once_with_the_command(tmp_path: Path) -> None:
    t0 = time.monotonic()
    done = _make("chromium", f"CHROMIUM={tmp_path / 'chromium'}", f"APT_GET={tmp_path / 'no-apt-get'}")
    assert done.returncode != 0
    assert INSTALL_HINT in done.stderr, done.stdout + done.stderr
    assert time.monotonic() - t0 < 30


def test_test_target_checks_chromium_before_anything_else(tmp_path: Path) -> None:
    dry = _make("-n", "test", f"CHROMIUM={tmp_path / 'chromium'}").stdout
    assert INSTALL_HINT in dry and "-m pytest" in dry
    assert dry.index(INSTALL_HINT) < dry.index("-m pytest")
    assert "pip install" not in dry[: dry.index(INSTALL_HINT)]


@pytest.mark.skipif(os.geteuid() != 0, reason="installing needs root; covered by the no-apt-get test otherwise")
def test_as_root_it_installs_debian_chromium(tmp_path: Path) -> None:
    """A stand-in apt-get records what it is asked and 'installs' chromium where make expects it."""
    chromium, calls = tmp_path / "chromium", tmp_path / "calls"
    apt_get = tmp_path / "apt-get"
    apt_get.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n'
                       f'case "$1" in install) printf "#!/bin/sh\\n" > {chromium}; chmod +x {chromium};; esac\n')
    apt_get.chmod(0o755)
    done = _make("chromium", f"CHROMIUM={chromium}", f"APT_GET={apt_get}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert calls.read_text().splitlines() == ["update", "install -y chromium"]


def test_ci_runs_the_readme_test_command() -> None:
    lines = [ln.strip() for ln in (REPO_ROOT / ".ci" / "run").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert lines[-1] == "make test"
    assert "make test" in (REPO_ROOT / "README.md").read_text()
