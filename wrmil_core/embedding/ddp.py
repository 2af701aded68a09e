"""Distributed data parallel plumbing: torchrun's environment -> a process group (or none).

``torchrun --nproc_per_node=N`` sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT.
With WORLD_SIZE > 1 we join a process group (NCCL when the device is CUDA, gloo on CPU), each
rank gets ``cuda:LOCAL_RANK``; without those variables everything runs in this process.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from wrmil_core.errors import WrmilInputError


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job; ``world == 1`` means no process group."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # we created the process group, so we destroy it

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def resolve_device(pref: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda"`` picks ``cuda:local_rank``."""
    if pref == "cuda" or (pref == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise WrmilInputError("device='cuda' was requested but torch sees no CUDA device; use device='cpu' or 'auto'")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def use_bf16(device: torch.device) -> bool:
    """bf16 autocast on CUDA devices that support it; fp32 on CPU (CPU bf16 is slow and not needed)."""
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


def setup(device_pref: str = "auto") -> DistEnv:
    """Read torchrun's variables; initialise the process group if WORLD_SIZE > 1 and none exists."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_pref, local_rank)
    if world <= 1:
        return DistEnv(device=device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world)
    return DistEnv(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local_rank, device=device,
                   owns_group=owns)


def teardown(env: DistEnv) -> None:
    """Destroy the process group if :func:`setup` created it."""
    if env.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def broadcast(env: DistEnv, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (identity without a process group)."""
    if not env.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def mean_across(env: DistEnv, value: torch.Tensor) -> torch.Tensor:
    """Mean of a scalar tensor over ranks (identity without a process group)."""
    if not env.distributed:
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / env.world


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
