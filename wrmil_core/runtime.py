"""Where and how computation runs: device choice, bf16, CPU threads, and the log callback type.

Every stage resolves its ``device`` string here, so ``"cuda"`` without a GPU fails the same way
everywhere, and every stage logs through the same optional callback.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, TypeVar

from tqdm import tqdm

from wrmil_core.errors import WrmilInputError

T = TypeVar("T")

if TYPE_CHECKING:  # torch is imported where a device is chosen, so data-only commands start fast
    import torch

Log = Callable[[str], None] | None
"""Optional progress callback (Dagster's ``context.log.info``, ``print``, or None for silence)."""


def speaker(log: Log) -> Callable[[str], None]:
    """``log`` itself, or a callback that drops messages when there is none."""
    return log if log is not None else (lambda _message: None)


def resolve_device(pref: str | torch.device, local_rank: int = 0) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda"`` picks ``cuda:local_rank``.

    Asking for CUDA on a machine without it is a user error, not a silent CPU run.
    """
    import torch

    if isinstance(pref, torch.device):
        return pref
    if pref == "cuda" or (pref == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise WrmilInputError("device='cuda' was requested but torch sees no CUDA device; use device='cpu' or 'auto'")
        return torch.device("cuda", local_rank)
    if pref in ("auto", "cpu"):
        return torch.device("cpu")
    if pref.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise WrmilInputError(f"device={pref!r} was requested but torch sees no CUDA device; use 'cpu' or 'auto'")
        return torch.device(pref)
    raise WrmilInputError(f"unknown device {pref!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")


def use_bf16(device: torch.device) -> bool:
    """bf16 autocast on CUDA devices that support it; fp32 on CPU (CPU bf16 is slow and not needed)."""
    import torch

    return device.type == "cuda" and torch.cuda.is_bf16_supported()


OMP_WAIT_POLICY = "OMP_WAIT_POLICY"


def sleeping_thread_waits() -> bool:
    """Let torch's OpenMP threads sleep, not spin, while they wait for work (``OMP_WAIT_POLICY=PASSIVE``),
    unless the environment names a policy. Call it before torch is imported (OpenMP reads the policy
    once, when torch loads it); afterwards it changes nothing and returns False.

    Spinning threads are what make a CPU run collapse on a shared machine: with another job busy on
    one of two cores, ``wrmil score --batch`` of 12 pages took 33-38 s with spinning threads and 11.4 s
    with sleeping ones. The numbers are the same (the same threads split the same work), whereas fewer
    threads would change the embeddings in their last bits.
    """
    if "torch" in sys.modules:
        return False
    os.environ.setdefault(OMP_WAIT_POLICY, "PASSIVE")
    return True


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def cpu_threads(device: torch.device, requested: int = 0, num_workers: int = 0, world: int = 1) -> Iterator[int]:
    """Set torch's intra-op threads for a CPU run and restore them afterwards.

    ``requested`` > 0 is used as given; 0 means the cores left to this process after its DataLoader
    workers (and the other ranks on the machine). Oversubscribed cores make torch's thread pool spin
    against the workers and other processes: on a busy 2-core machine a tiny training run took 18-26 s
    with 2 threads and 4 s with 1.
    """
    import torch

    if device.type != "cpu":
        yield torch.get_num_threads()
        return
    n = requested if requested > 0 else max(1, available_cores() // max(1, world) - num_workers)
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


def progress(iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = "",
             unit: str = "it", leave: bool = False) -> tqdm[T]:
    """A tqdm progress bar on an interactive terminal, silent otherwise (CI, Dagster run logs, pipes).

    Long command-line work (image checks, training, inference) shows progress; run logs keep their
    own per-epoch lines, so the bar never writes to a file.
    """
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, dynamic_ncols=True,
                disable=not sys.stderr.isatty())
