"""What a training run holds fixed (:class:`TrainRun`) and what it changes (:class:`TrainState`).

The loop in ``train.py`` and its callbacks read the run and update the state; a checkpoint is the
state written to disk, so resuming restores a :class:`TrainState` and carries on as if never stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import polars as pl
import torch
from torch import nn
from torch.utils.data import DataLoader

from wrmil_core.embedding import checkpoint as ckpt
from wrmil_core.embedding.config import EmbeddingConfig
from wrmil_core.embedding.data import ShardedEpochSampler, WriterBatchSampler
from wrmil_core.embedding.ddp import DistEnv
from wrmil_core.embedding.heads import MarginHead, build_head
from wrmil_core.embedding.model import EmbeddingNet, build_model
from wrmil_core.errors import WrmilInputError

# Fields that may change between an interrupted run and its resumption without changing the maths.
RESUME_FREE = ("num_workers", "device", "cpu_threads")


@dataclass(frozen=True)
class TrainRun:
    """The fixed facts of one training: config, this process's place in the job, data, output paths."""

    config: EmbeddingConfig
    env: DistEnv
    bf16: bool  # autocast to bf16 (CUDA devices that support it)
    out_dir: Path
    train: pl.DataFrame  # train words sorted by word_id
    classes: list[Any]  # training writers; class k is classes[k]
    val: pl.DataFrame  # the (stratified) val words validated on each epoch
    sampler: ShardedEpochSampler | WriterBatchSampler
    loader: DataLoader
    steps_per_epoch: int
    say: Callable[[str], None]  # rank 0's log; silent on the other ranks

    @property
    def checkpoint_dir(self) -> Path:
        return self.out_dir / "checkpoint"

    @property
    def tb_dir(self) -> Path:
        return self.out_dir / "tb"

    @property
    def model_dir(self) -> Path:
        return self.out_dir / "model"

    @property
    def curve_png(self) -> Path:
        return self.out_dir / "training_curve.png"

    @property
    def history_json(self) -> Path:
        return self.out_dir / "history.json"

    @property
    def fingerprint(self) -> dict[str, Any]:
        """The config fields a checkpoint must share with this run to be resumed by it."""
        return {k: v for k, v in self.config.to_dict().items() if k not in RESUME_FREE}


class TrainNet(nn.Module):
    """Embedding network + margin head as one module, so DDP syncs both."""

    def __init__(self, model: EmbeddingNet, head: MarginHead):
        super().__init__()
        self.model, self.head = model, head

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.head(self.model(x), y)


@dataclass(frozen=True)
class Best:
    """Early-stopping bookkeeping: the best val AUC so far, its epoch (1-based), epochs since."""

    auc: float = -1.0
    epoch: int = 0
    bad_epochs: int = 0


@dataclass
class TrainState:
    """Everything training changes; exactly what a checkpoint stores."""

    net: TrainNet
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.OneCycleLR
    epoch: int = 0  # epochs completed
    history: list[dict[str, float]] = field(default_factory=list)  # one record per epoch
    best: Best = field(default_factory=Best)
    stopped: bool = False  # early stopping fired
    baseline: dict[str, float] = field(default_factory=dict)  # untrained network on the val words
    pixels: dict[str, float] = field(default_factory=dict)  # raw pixels on the val words
    pretrained: dict[str, float] = field(default_factory=dict)  # the pretrained backbone's features, not fine-tuned
    skipped: dict[int, str] = field(default_factory=dict)  # unreadable training images: row -> error

    @property
    def model(self) -> EmbeddingNet:
        return self.net.model

    @property
    def lr(self) -> float:
        return self.scheduler.get_last_lr()[-1]  # the head's (the configured lr)

    @property
    def improved(self) -> bool:
        """The epoch just completed is the best so far."""
        return self.best.epoch == self.epoch


def new_state(run: TrainRun) -> TrainState:
    """Seeded network and head, AdamW, and a one-cycle schedule stepped once per batch."""
    config = run.config
    torch.manual_seed(config.seed)
    net = TrainNet(build_model(config, weights_dir=run.out_dir), build_head(config, len(run.classes)))
    net = net.to(run.env.device)
    if config.channels_last:
        net = net.to(memory_format=torch.channels_last)
    groups, peaks = _param_groups(net, config)
    opt = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=peaks, total_steps=config.epochs * run.steps_per_epoch, pct_start=config.warmup_frac,
        div_factor=config.max_lr / config.lr,
    )
    return TrainState(net, opt, sched)


def _param_groups(net: TrainNet, config: EmbeddingConfig) -> tuple[list[dict[str, Any]], list[float]]:
    """One parameter group, or with ``backbone_lr_scale`` < 1 the backbone's apart at that fraction of
    the lr (the one-cycle warm-up then rises to a lower peak there); their peak learning rates."""
    if config.backbone_lr_scale == 1.0:
        return [{"params": list(net.parameters())}], [config.max_lr]
    backbone = list(net.model.backbone.parameters())
    ids = {id(p) for p in backbone}
    rest = [p for p in net.parameters() if id(p) not in ids]
    return [{"params": backbone}, {"params": rest}], [config.max_lr * config.backbone_lr_scale, config.max_lr]


def save(run: TrainRun, state: TrainState) -> None:
    """Checkpoint the state after an epoch (and the weights, if it is the best epoch so far)."""
    tensors = {f"model.{k}": v for k, v in state.net.model.state_dict().items()}
    tensors.update({f"head.{k}": v for k, v in state.net.head.state_dict().items()})
    opt_tensors, opt_meta = ckpt.flatten_optimizer(state.optimizer.state_dict())
    tensors.update(opt_tensors)
    meta = {"config": run.fingerprint, "classes": run.classes, "steps_per_epoch": run.steps_per_epoch,
            "world": run.env.world, "optimizer": opt_meta, "scheduler": state.scheduler.state_dict(),
            "history": state.history, "best_auc": state.best.auc, "best_epoch": state.best.epoch,
            "bad_epochs": state.best.bad_epochs, "stopped_early": state.stopped,
            "baseline_metrics": state.baseline, "pixel_metrics": state.pixels, "pretrained_metrics": state.pretrained,
            "skipped": {str(k): v for k, v in state.skipped.items()},
            "seeds": {"seed": run.config.seed, "epoch_seed": "seed*100003 + epoch*1009 + rank"}}
    best_weights = state.model.state_dict() if state.improved else None
    ckpt.save_checkpoint(run.checkpoint_dir, state.epoch - 1, tensors, meta, best_weights)


def restore(run: TrainRun, state: TrainState) -> bool:
    """Load the run's checkpoint into ``state``; False if there is none.

    A checkpoint of another training (config, writers, or steps per epoch) is refused, not mixed in.
    """
    saved = ckpt.read_state(run.checkpoint_dir)
    if saved is None:
        return False
    fingerprint = run.fingerprint
    # A field the checkpoint predates counts as its default (which reproduces the older behaviour).
    defaults = {f.name: f.default for f in fields(EmbeddingConfig)}
    differ = sorted(k for k in fingerprint if saved["config"].get(k, defaults[k]) != fingerprint[k])
    if differ or saved["classes"] != run.classes or saved["steps_per_epoch"] != run.steps_per_epoch:
        why = f"config fields {differ}" if differ else "training writers or steps per epoch (data or world size)"
        raise WrmilInputError(
            f"{run.checkpoint_dir} holds a checkpoint of a different training ({why} differ); "
            "pass resume=False to start over, or use another out_dir"
        )
    tensors = ckpt.load_tensors(run.checkpoint_dir, saved["state_file"])
    state.net.model.load_state_dict(ckpt.split_prefix(tensors, "model."))
    state.net.head.load_state_dict(ckpt.split_prefix(tensors, "head."))
    state.optimizer.load_state_dict(ckpt.unflatten_optimizer(tensors, saved["optimizer"]))
    state.scheduler.load_state_dict(saved["scheduler"])
    state.epoch, state.history, state.stopped = saved["epoch"] + 1, saved["history"], saved["stopped_early"]
    state.best = Best(saved["best_auc"], saved["best_epoch"], saved["bad_epochs"])
    state.baseline, state.pixels = saved["baseline_metrics"], saved["pixel_metrics"]
    state.pretrained = saved.get("pretrained_metrics", {})
    state.skipped = {int(k): v for k, v in saved["skipped"].items()}
    return True


def load_best_weights(run: TrainRun, state: TrainState) -> None:
    """Put the best epoch's weights (kept by the checkpoint) into ``state.model``."""
    saved = ckpt.read_state(run.checkpoint_dir)
    state.model.load_state_dict(ckpt.load_tensors(run.checkpoint_dir, saved["best_file"]))

