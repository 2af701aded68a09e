"""The import contracts of ``pyproject.toml`` (``[tool.importlinter]``): the evaluation side of
wrmil_core is layered (cv > scoring > report > evidence > mil > detectors > metrics) and no two
sibling packages of wrmil_core import each other. Run through import-linter's own command, so a
broken contract fails ``make test`` with import-linter's report of the offending imports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports --no-cache`` run in ``cwd``: the contracts of ``cwd/pyproject.toml`` on the
    packages in ``cwd``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(cwd), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-c", LINT, "--no-cache"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_wrmil_core_keeps_its_import_contracts() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, f"import-linter contract broken:\n{result.stdout}\n{result.stderr}"
    assert "0 broken" in result.stdout and "2 kept" in result.stdout, result.stdout


def test_a_forbidden_import_breaks_the_contracts(tmp_path: Path) -> None:
    """The same check on a copy of the contracts over a tiny package whose bottom layer imports its
    top one (a layer violation and a sibling cycle): both contracts must be reported broken."""
    pkg = tmp_path / "wrmil_core"
    for name, body in {"__init__": "", "metrics": "import wrmil_core.cv\n", "cv/__init__": "import wrmil_core.metrics\n",
                       **{f"{p}/__init__": "" for p in ("scoring", "report", "evidence", "mil", "detectors")}}.items():
        path = pkg / f"{name}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    result = lint_imports(tmp_path)
    assert result.returncode != 0 and "2 broken" in result.stdout, result.stdout
    assert "wrmil_core.metrics -> wrmil_core.cv" in result.stdout, result.stdout
