"""``wrmil_core.embedding.launch``: the one line a torchrun failure becomes, naming the rank that failed
on its own, not a peer torchrun stopped after it."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

from wrmil_core.embedding.launch import failure_line, first_failure


def _raised(path: Path, message: str, when: int) -> str:
    """An error file as torch's ``@record`` writes it, stamped ``when``."""
    path.write_text(json.dumps({"message": {"message": message, "extraInfo": {"timestamp": str(when)}}}))
    return str(path)


def test_a_killed_rank_is_named_not_the_peer_torchrun_stopped(tmp_path: Path) -> None:
    """Rank 1 is killed (no error file: torch stamps it when torchrun reads it); rank 0 raised on the
    broken connection a second earlier, then torchrun stopped it with SIGTERM."""
    peer = ProcessFailure(0, 100, -signal.SIGTERM,
                          _raised(tmp_path / "r0.json", "RuntimeError: Connection reset by peer", int(time.time()) - 1))
    killed = ProcessFailure(1, 101, -signal.SIGKILL, str(tmp_path / "none.json"))
    error = ChildFailedError("train", {0: peer, 1: killed})
    assert error.get_first_failure()[0] == 0  # torch's own order names the peer
    assert first_failure(error) == (1, killed)
    line = failure_line(error)
    assert line.startswith("training rank 1 (local rank 1, pid 101) died with exit code -9 (SIGKILL)")
    assert "1 other rank(s) failed after it" in line and "Connection reset" not in line


def test_a_rank_that_raised_is_named_with_its_exception(tmp_path: Path) -> None:
    raised = ProcessFailure(0, 100, 1, _raised(tmp_path / "r0.json", "ValueError: bad batch", int(time.time()) - 5))
    stopped = ProcessFailure(1, 101, -signal.SIGTERM, str(tmp_path / "none.json"))
    line = failure_line(ChildFailedError("train", {0: raised, 1: stopped}))
    assert line.startswith("training rank 0 (local rank 0, pid 100) died with exit code 1: ValueError: bad batch")


def test_only_stopped_ranks_fall_back_to_torchs_order(tmp_path: Path) -> None:
    a = ProcessFailure(0, 100, -signal.SIGTERM, _raised(tmp_path / "r0.json", "RuntimeError: x", 1000))
    b = ProcessFailure(1, 101, -signal.SIGTERM, _raised(tmp_path / "r1.json", "RuntimeError: y", 2000))
    assert first_failure(ChildFailedError("train", {0: a, 1: b})) == (0, a)
