"""Distributed data parallel plumbing: torchrun's environment -> a process group (or none).

``torchrun --nproc_per_node=N`` sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT.
With WORLD_SIZE > 1 we join a process group (NCCL when the device is CUDA, gloo on CPU), each
rank gets ``cuda:LOCAL_RANK``; without those variables everything runs in this process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from wrmil_core.runtime import resolve_device


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


def wrap(module: nn.Module, env: DistEnv) -> nn.Module:
    """``module`` under DistributedDataParallel in a process group, else itself.

    DDP's constructor also copies rank 0's weights to every rank.
    """
    if not env.distributed:
        return module
    return DistributedDataParallel(module, device_ids=[env.device.index] if env.device.type == "cuda" else None)


def all_true(env: DistEnv, flag: bool) -> bool:
    """Whether ``flag`` holds on every rank (ranks that disagree on taking a step would hang DDP)."""
    if not env.distributed:
        return flag
    ok = torch.tensor(float(flag), device=env.device)
    dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    return bool(ok)


def all_gather(env: DistEnv, obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` without a process group)."""
    if not env.distributed:
        return [obj]
    out: list[Any] = [None] * env.world
    dist.all_gather_object(out, obj)
    return out
