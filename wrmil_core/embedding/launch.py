"""torchrun for the embedding training, with a one-line summary when a rank dies.

    python -m wrmil_core.embedding.launch --nproc-per-node 2 --failure-file run/failure.txt -- \\
        --words words.parquet --splits splits.parquet --out run/ --config config.json --pipes

runs ``torchrun --standalone --nproc_per_node 2 -m wrmil_core.embedding <args after -->`` in this
process (torch's own elastic launcher, not a copy). torchrun reports a dead rank as a multi-line
``ChildFailedError`` on stderr; here the first failure becomes one line, e.g. ``training rank 1
(local rank 1, pid 4242) died with exit code -9 (SIGKILL) ...``, with the rank's own exception
when it raised one (``python -m wrmil_core.embedding`` records it with torch's ``@record``). The
line is printed and written to ``--failure-file`` (JSON: ``summary``, ``bad_input``), so the Dagster
step (``wrmil_assets/training_launch.py``) can fail with it, on this machine or from a Kubernetes
pod through the shared volume. Exit code 1 on a failure, else 0.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from torch.distributed import run as torchrun
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

from wrmil_core.errors import WrmilInputError

WORKER_MODULE = "wrmil_core.embedding"


def torchrun_args(nproc_per_node: int, worker_args: list[str]) -> list[str]:
    """torchrun's argument list for one node of ``nproc_per_node`` ranks (a free port each run)."""
    return ["--standalone", f"--nproc_per_node={nproc_per_node}", "-m", WORKER_MODULE, *worker_args]


def first_failure(error: ChildFailedError) -> tuple[int, ProcessFailure]:
    """The rank that failed first, leaving out ranks torchrun itself stopped (SIGTERM) when another
    failed on its own. torch's ``get_first_failure`` orders by the error file's time, and a rank
    killed outright (kill -9) has no file, so it is stamped when torchrun reads it: a peer that
    raised on the broken connection meanwhile, then was stopped, would be named instead."""
    own = {r: f for r, f in error.failures.items() if f.exitcode != -signal.SIGTERM}
    if not own:
        return error.get_first_failure()
    rank = min(own, key=lambda r: own[r].timestamp)
    return rank, own[rank]


def rank_error(error: ChildFailedError) -> str:
    """The first failed rank's own exception (``Type: message``, recorded by ``@record``), or ""."""
    _, failure = first_failure(error)
    if not failure.error_file_data.get("message"):
        return ""  # no error file: killed (kill -9, out of memory), no exception to tell
    message = failure.message  # @record's file: {"message": "Type: text", "extraInfo": {...}}
    return str(message.get("message", "")) if isinstance(message, dict) else str(message)


def failure_line(error: ChildFailedError) -> str:
    """The first failed rank of a torchrun job, its exit code and signal (or exception), in one line."""
    rank, failure = first_failure(error)
    name = failure.signal_name()
    cause = f"exit code {failure.exitcode}" + (f" ({name})" if failure.exitcode < 0 else "")
    own = rank_error(error)
    others = len(error.failures) - 1
    return (f"training rank {rank} (local rank {failure.local_rank}, pid {failure.pid}) died with {cause}"
            + (f": {' '.join(own.split())}" if own else "")
            + (f"; {others} other rank(s) failed after it" if others > 0 else "")
            + "; torchrun stopped the job" + ("" if own else " (no exception recorded: killed, e.g. kill -9 or "
                                                            "out of memory; see the step's stderr)"))


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see module docstring)."""
    p = argparse.ArgumentParser(prog="python -m wrmil_core.embedding.launch", description=__doc__.split("\n\n")[0])
    p.add_argument("--nproc-per-node", type=int, default=1, help="ranks on this node (one per GPU)")
    p.add_argument("--failure-file", help="write the one-line failure summary here")
    p.add_argument("worker_args", nargs=argparse.REMAINDER, help="-- then python -m wrmil_core.embedding's arguments")
    a = p.parse_args(argv)
    worker_args = a.worker_args[1:] if a.worker_args[:1] == ["--"] else a.worker_args
    if a.failure_file:
        Path(a.failure_file).unlink(missing_ok=True)  # a line from an earlier attempt is not this one's
    try:
        torchrun.run(torchrun.parse_args(torchrun_args(a.nproc_per_node, worker_args)))
    except ChildFailedError as e:
        line = failure_line(e)
        print(line, file=sys.stderr, flush=True)
        if a.failure_file:  # JSON: the line, and whether the rank refused its input (WrmilInputError)
            Path(a.failure_file).parent.mkdir(parents=True, exist_ok=True)
            bad_input = rank_error(e).startswith(f"{WrmilInputError.__name__}: ")
            Path(a.failure_file).write_text(json.dumps({"summary": line, "bad_input": bad_input}) + "\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
