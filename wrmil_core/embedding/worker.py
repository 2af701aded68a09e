"""The training worker's side of a launch from Dagster: Pipes reporting on rank 0, and a test fault.

``wrmil_assets/training_launch.py`` starts ``python -m wrmil_core.embedding.launch`` (torchrun) through a
Dagster Pipes client; every rank runs ``python -m wrmil_core.embedding --pipes``. Rank 0 alone opens
the Pipes channel (``dagster_pipes``, the small dependency-free package, never Dagster itself) and
reports:

* each log line of the run (``pipes.log``), so the epochs appear live in the Dagster run log;
* one custom message per epoch, ``{"epoch_record": {...}}`` (the ``history.json`` record);
* at the end, a materialisation whose ``training_result`` metadata is the :class:`TrainResult` as
  JSON. Dagster turns it back into a ``TrainResult`` and builds the asset's metadata and check
  results with the very code of the in-process path, so both paths record the same thing.

``WRMIL_TEST_KILL_RANK=<rank>`` makes that rank kill itself (SIGKILL) at its second training step:
a real fault for the tests of a dying worker; nothing sets it outside the tests.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from wrmil_core.embedding.callbacks import Callback
from wrmil_core.embedding.state import TrainState

RESULT_KEY = "training_result"  # metadata key of the materialisation rank 0 reports
EPOCH_KEY = "epoch_record"  # custom message key of a per-epoch record
KILL_ENV = "WRMIL_TEST_KILL_RANK"


class PipesEpochReport(Callback):
    """Sends each epoch's record to Dagster as a Pipes custom message (rank 0 only)."""

    def __init__(self, pipes: Any):
        self.pipes = pipes

    def on_epoch_end(self, state: TrainState, record: dict[str, float]) -> None:
        self.pipes.report_custom_message({EPOCH_KEY: {k: float(v) for k, v in record.items()}})


class KillRank(Callback):
    """Test fault: the process of rank ``rank`` SIGKILLs itself at step ``step`` of its first epoch."""

    def __init__(self, rank: int, own_rank: int, step: int = 1):
        self.rank, self.own_rank, self.step = rank, own_rank, step

    def on_step(self, state: TrainState, step: int, loss: torch.Tensor) -> None:
        if self.own_rank == self.rank and step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class WorkerHooks:
    """What one rank passes to ``train_embedding`` and does with its result."""

    log: Callable[[str], None]
    callbacks: list[Callback] = field(default_factory=list)
    report_result: Callable[[dict[str, Any]], None] = lambda result: None


def fault_callbacks(own_rank: int) -> list[Callback]:
    """The test fault named by ``WRMIL_TEST_KILL_RANK``, if set."""
    target = os.environ.get(KILL_ENV, "").strip()
    return [KillRank(int(target), own_rank)] if target else []


@contextmanager
def worker_hooks(pipes: bool, say: Callable[[str], None]) -> Iterator[WorkerHooks]:
    """This rank's hooks: with ``pipes`` on rank 0, log lines, epochs and the result go to Dagster."""
    rank = int(os.environ.get("RANK", "0"))
    faults = fault_callbacks(rank)
    if not pipes or rank != 0:
        yield WorkerHooks(log=say, callbacks=faults)
        return
    from dagster_pipes import open_dagster_pipes

    with open_dagster_pipes() as context:
        def log(message: str) -> None:
            say(message)
            context.log.info(message)

        def report(result: dict[str, Any]) -> None:
            context.report_asset_materialization(metadata={RESULT_KEY: {"raw_value": result, "type": "json"}})

        yield WorkerHooks(log=log, callbacks=[PipesEpochReport(context), *faults], report_result=report)
