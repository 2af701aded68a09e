"""``wrmil_core.runtime``: how computation runs (here: the OpenMP wait policy of the scoring commands)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _policy_after(code: str, **env: str) -> str:
    """``OMP_WAIT_POLICY`` in a fresh interpreter after ``code`` ran (``unset`` when absent)."""
    environ = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    environ.update(PYTHONPATH=str(ROOT), **env)
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport os; print(os.environ.get('OMP_WAIT_POLICY', 'unset'))"],
                         env=environ, capture_output=True, text=True, check=True, timeout=120)
    return out.stdout.strip().splitlines()[-1]


def test_threads_sleep_when_set_before_torch_loads() -> None:
    assert _policy_after("from wrmil_core.runtime import sleeping_thread_waits as s; assert s()") == "PASSIVE"


def test_a_policy_the_user_set_is_kept() -> None:
    code = "from wrmil_core.runtime import sleeping_thread_waits as s; s()"
    assert _policy_after(code, OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"


def test_nothing_changes_once_torch_is_loaded() -> None:
    code = "import torch\nfrom wrmil_core.runtime import sleeping_thread_waits as s; assert not s()"
    assert _policy_after(code) == "unset"


def test_the_score_command_imports_torch_after_the_policy() -> None:
    """The CLI module itself must not load torch, or the scoring commands set the policy too late."""
    assert _policy_after("import sys, wrmil_assets.cli; assert 'torch' not in sys.modules") == "unset"
