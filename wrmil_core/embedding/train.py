"""Train the writer-embedding network on train writers; validate on unseen (val) writers.

Read top to bottom: :func:`train_embedding` sets up the process, :func:`_train` is the loop. Per
epoch: train steps (AdamW, OneCycleLR stepped per batch, bf16 autocast on CUDA, grad clipping) ->
rank 0 embeds the val words and computes verification/retrieval figures -> early stopping on val
AUC -> side jobs (``callbacks.py``: TensorBoard, checkpoint, log line). The final model is the best
epoch's weights; with ``classical_weight`` > 0 the classical LDA part is then fitted on the train
words and saved beside them (``fusion.py``). What stays fixed lives in a ``TrainRun``, what changes
in a ``TrainState`` (``state.py``); a checkpoint is the state, so a resumed run replays the
uninterrupted one exactly.

From the command line, on one device or several GPUs under torchrun: ``python -m wrmil_core.embedding``
(``__main__.py``; ``python -m wrmil_core.embedding.train`` still works). ``batch_size`` is per process
(the paper's 64 x 5 GPUs = 320). Only rank 0 writes artifacts. Outputs under ``out_dir``: ``model/``
(``save_model``: model.safetensors + config.json), ``history.json``, ``training_curve.png``, ``tb/``
(TensorBoard) and ``checkpoint/`` (resume state).

Measured (demo preset, synthetic DEMO set: 24 train / 8 val / 8 test writers, 2 CPU cores shared
with other jobs, load ~1): 2 min 24 s wall for
``python -m wrmil_core.embedding --preset demo`` including start-up; val AUC 0.823,
EER 0.253 (untrained network 0.558 / 0.457, raw pixels 0.568 / 0.460); test writers AUC 0.809,
EER 0.267 (untrained 0.528 / 0.481). Runs are bit-for-bit reproducible for a given seed.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import polars as pl
import torch
from torch import nn
from torch.utils.data import DataLoader

from wrmil_core import runtime
from wrmil_core.artifacts import save_model, weights_id
from wrmil_core.embedding import ddp
from wrmil_core.embedding import state as st
from wrmil_core.embedding.baselines import pretrained_start, untrained_network
from wrmil_core.embedding.callbacks import (Callback, Checkpointing, CurvePlot, EpochLog, TensorBoardLog, Validation,
                                            validate)
from wrmil_core.embedding.config import EmbeddingConfig
from wrmil_core.embedding.data import (ShardedEpochSampler, WordImageDataset, WordTransform, WriterBatchSampler,
                                       make_batch_loader, make_loader, pk_shape, stratified_subset)
from wrmil_core.embedding.fusion import fit_classical_part
from wrmil_core.embedding.state import TrainRun, TrainState
from wrmil_core.errors import WrmilInputError
from wrmil_core.runtime import Log, progress, speaker

T = TypeVar("T")


class TrainingDivergedError(RuntimeError):
    """The loss became NaN/inf; the message names the epoch and step."""


@dataclass
class TrainResult:
    """What :func:`train_embedding` produced (paths are under ``out_dir``)."""

    model_dir: Path
    model_id: str
    history: list[dict[str, float]]
    val_metrics: dict[str, float]  # trained model, best epoch
    baseline_metrics: dict[str, float]  # randomly initialised network, same val words
    pixel_metrics: dict[str, float]  # raw downsampled pixels, same val words
    curve_png: Path
    tb_dir: Path
    skipped_images: int
    epochs_run: int
    seconds: float
    best_epoch: int = 0
    stopped_early: bool = False
    skipped_examples: list[str] = field(default_factory=list)
    # model_quality's figures from training's own val passes (None: arcface_model embeds the val words again)
    quality: dict[str, dict[str, float | int | None]] | None = None
    pretrained_metrics: dict[str, float] = field(default_factory=dict)  # the pretrained start, not fine-tuned

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values (paths as strings): how a launched training hands its result back."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        return json.loads(json.dumps(data, default=lambda v: str(v) if isinstance(v, Path) else float(v)))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainResult:
        """Inverse of :meth:`to_json`."""
        paths = {"model_dir", "curve_png", "tb_dir"}
        return cls(**{k: (Path(v) if k in paths else v) for k, v in data.items()})


def train_embedding(train_words: pl.DataFrame, val_words: pl.DataFrame, config: EmbeddingConfig, out_dir: str | Path,
                    resume: bool = True, log: Log = None, callbacks: Sequence[Callback] = ()) -> TrainResult:
    """Train on ``train_words`` (the words table of the train split), validate on ``val_words``.

    Runs in this process on one device, or as one rank of a torchrun job (see module docstring).
    ``resume=True`` continues from ``out_dir/checkpoint`` when it holds a run of the same config and
    training writers; ``resume=False`` starts over. Raises ``WrmilInputError`` for unusable splits
    or config, :class:`TrainingDivergedError` for a NaN/inf loss. Progress bars (epochs, steps)
    appear on an interactive terminal only; ``log`` gets one line per epoch. ``callbacks`` run after
    the built-in ones (``worker.py``'s Pipes report, a benchmark's timer): their ``on_train_start`` and
    ``on_step`` on every rank, ``on_epoch_end`` and ``on_train_end`` on rank 0; they must not change the maths.
    """
    env = ddp.setup(config.device)
    try:
        with runtime.cpu_threads(env.device, config.cpu_threads, config.num_workers, env.world):
            return _train(train_words, val_words, config, Path(out_dir), resume, log, env, callbacks)
    finally:
        ddp.teardown(env)


def _train(train_words: pl.DataFrame, val_words: pl.DataFrame, config: EmbeddingConfig, out_dir: Path,
           resume: bool, log: Log, env: ddp.DistEnv, extra: Sequence[Callback] = ()) -> TrainResult:
    t_start = time.perf_counter()
    run = _prepare(train_words, val_words, config, out_dir, env, speaker(log if env.is_main else None))
    state = st.new_state(run)
    validation = Validation(run)
    if resume and st.restore(run, state):
        run.say(f"resuming from {run.checkpoint_dir}: {state.epoch} of {config.epochs} epochs done, "
                f"best val AUC {state.best.auc:.4f}")
    else:
        _start_fresh(run, state, validation)
    net = ddp.wrap(state.net, env)
    callbacks: list[Callback] = []
    if env.is_main:  # side jobs run once per job, on rank 0
        callbacks = [TensorBoardLog(run), Checkpointing(run), EpochLog(run), CurvePlot(run)]
    callbacks += extra
    for cb in callbacks:
        cb.on_train_start(state)

    for epoch in _bar(run, range(state.epoch, run.config.epochs), desc="epochs", unit="epoch"):
        if state.stopped:
            break
        t_epoch = time.perf_counter()
        loss = _train_epoch(run, state, net, callbacks)
        state.epoch = epoch + 1
        if env.is_main:
            metrics = validation(state)
            record = {"epoch": state.epoch, "loss": loss, "lr": state.lr, "seconds": time.perf_counter() - t_epoch,
                      "skipped_images": len(state.skipped), **{f"val_{k}": float(v) for k, v in metrics.items()}}
            state.history.append(record)
            for cb in callbacks:
                cb.on_epoch_end(state, record)
        state.stopped = ddp.broadcast(env, state.stopped)

    _check_replicas(run, state)
    return _finish(run, state, callbacks, t_start, validation)


def _prepare(train_words: pl.DataFrame, val_words: pl.DataFrame, config: EmbeddingConfig, out_dir: Path,
             env: ddp.DistEnv, say: Callable[[str], None]) -> TrainRun:
    """Check the splits; writer classes, this rank's sampler and loader, the val subset."""
    _check_split(train_words, "train")
    _check_split(val_words, "val")
    train = train_words.sort("word_id")
    config = config.for_data(train.height)  # epochs scaled to the data set when the config has an image budget
    classes = sorted(train["writer"].unique().to_list())
    labels = train["writer"].replace_strict(classes, list(range(len(classes))), return_dtype=pl.Int64).to_numpy()
    dataset = WordImageDataset(train["path"].to_list(), labels, WordTransform(config, train=True))
    sampler, loader, steps_per_epoch = _train_loader(dataset, labels, config, env)
    val = stratified_subset(val_words.sort("word_id"), config.max_val_images, config.seed)
    return TrainRun(config, env, runtime.use_bf16(env.device), out_dir, train, classes, val, sampler, loader,
                    steps_per_epoch, say)


def _train_loader(dataset: WordImageDataset, labels: np.ndarray, config: EmbeddingConfig, env: ddp.DistEnv
                  ) -> tuple[ShardedEpochSampler | WriterBatchSampler, DataLoader, int]:
    """This rank's sampler and loader of training batches, and the steps per epoch."""
    pin = env.device.type == "cuda"
    if config.sampler == "pk":
        p, k = pk_shape(config.batch_size, config.words_per_writer, int(labels.max()) + 1)
        sampler = WriterBatchSampler(labels, p, k, env.rank, env.world, config.max_train_images_per_epoch, config.seed)
        loader, steps = make_batch_loader(dataset, sampler, config.num_workers, pin_memory=pin), len(sampler)
    else:
        sampler = ShardedEpochSampler(len(labels), env.rank, env.world, config.max_train_images_per_epoch, config.seed)
        loader = make_loader(dataset, config.batch_size, config.num_workers, sampler=sampler, drop_last=True,
                             pin_memory=pin)
        steps = len(sampler) // config.batch_size
    if steps == 0:
        raise WrmilInputError(
            f"batch_size={config.batch_size} x {env.world} process(es) exceeds the "
            f"{min(len(labels), config.max_train_images_per_epoch or len(labels))} training images drawn per epoch; "
            "lower batch_size"
        )
    return sampler, loader, steps


def _check_split(words: pl.DataFrame, name: str) -> None:
    missing = [c for c in ("word_id", "writer", "path") if c not in words.columns]
    if missing:
        raise WrmilInputError(f"{name} words lack column(s) {missing}; pass the ingest `words` table filtered to the split")
    if words.height == 0:
        raise WrmilInputError(f"the {name} split has no word images; check writer_split and the data root")
    n_writers = words["writer"].n_unique()
    if n_writers < 2:
        raise WrmilInputError(
            f"the {name} split has {n_writers} writer ({words.height} images); writer embeddings need at least 2 "
            "writers per split: give the data set more writers or change the split fractions"
        )


def _start_fresh(run: TrainRun, state: TrainState, validation: Validation) -> None:
    """Clear an old run's state and curves (rank 0) and measure the baselines on the val words."""
    if not run.env.is_main:
        return
    for d in (run.checkpoint_dir, run.tb_dir):  # a fresh run must not mix with an old run's curves or state
        shutil.rmtree(d, ignore_errors=True)
    run.say(f"baseline: embedding {run.val.height} val words with the untrained network and raw pixels")
    # The untrained control is the randomly initialised network even when training starts pretrained.
    untrained = state.model if not pretrained_start(run.config) else untrained_network(run.config, run.env.device)
    state.baseline, state.pixels, validation.untrained = validate(run, untrained, with_pixels=True)
    run.say(f"baseline val AUC: untrained {state.baseline['auc']:.4f}, raw pixels {state.pixels['auc']:.4f}")
    if pretrained_start(run.config):
        state.pretrained = validate(run, state.model, backbone_only=True)[0]
        run.say(f"pretrained backbone, not fine-tuned: val AUC {state.pretrained['auc']:.4f}")


def _train_epoch(run: TrainRun, state: TrainState, net: nn.Module, callbacks: list[Callback]) -> float:
    """One pass over this epoch's images; the mean loss over all ranks' steps."""
    # Seeds derived from (seed, epoch, rank): augmentation, dropout and the sample order replay
    # exactly after a resume without storing RNG states.
    seed = run.config.seed * 100_003 + state.epoch * 1_009 + run.env.rank
    torch.manual_seed(seed)
    run.loader.generator.manual_seed(seed)
    run.sampler.set_epoch(state.epoch)
    net.train()
    loss_sum, n_steps = torch.zeros((), device=run.env.device), 0
    batches = _bar(run, run.loader, total=run.steps_per_epoch, desc=f"epoch {state.epoch + 1}", unit="step")
    for step, batch in enumerate(batches):
        _note_unreadable(run, state, batch["skipped"])
        if not ddp.all_true(run.env, batch["x"] is not None and len(batch["y"]) >= 2):
            state.scheduler.step()  # keep the schedule aligned with the step count
            continue
        loss = _train_step(run, state, net, batch, step)
        loss_sum += loss
        n_steps += 1
        for cb in callbacks:
            cb.on_step(state, step, loss)
    if n_steps == 0:
        raise WrmilInputError(
            f"epoch {state.epoch + 1}: no readable training image in any batch ({len(state.skipped)} unreadable, e.g. "
            f"{next(iter(state.skipped.values()), '?')}); check the image files of the train split"
        )
    for other in ddp.all_gather(run.env, state.skipped):  # rank 0 records every rank's unreadable images
        state.skipped.update(other)
    return (loss_sum / n_steps).item()


def _train_step(run: TrainRun, state: TrainState, net: nn.Module, batch: dict[str, Any], step: int) -> torch.Tensor:
    """Forward, NaN guard, backward, clip, optimiser and schedule step; the loss averaged over ranks."""
    device, config = run.env.device, run.config
    x, y = batch["x"].to(device, non_blocking=True), batch["y"].to(device, non_blocking=True)
    if config.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=run.bf16):
        loss = net(x, y)
    loss_all = ddp.mean_across(run.env, loss.detach().float())
    if not torch.isfinite(loss_all):
        raise TrainingDivergedError(
            f"loss became {loss_all.item()} at epoch {state.epoch + 1} step {step + 1} (lr {state.lr:.3g}); "
            "lower max_lr, the margin scale s or margin m, or set grad_clip"
        )
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.grad_clip > 0:
        nn.utils.clip_grad_norm_(state.net.parameters(), config.grad_clip)
    state.optimizer.step()
    state.scheduler.step()
    return loss_all


def _note_unreadable(run: TrainRun, state: TrainState, skipped: list[tuple[int, str]]) -> None:
    """Count a batch's unreadable images; name the first ten in the log."""
    for i, msg in skipped:
        if i not in state.skipped and len(state.skipped) < 10:
            run.say(f"skipping unreadable training image {msg}")
        state.skipped[i] = msg


def _check_replicas(run: TrainRun, state: TrainState) -> None:
    """DDP keeps replicas identical; a mismatch means a broken setup, not bad luck."""
    if not run.env.distributed:
        return
    # Parameters only: BN running stats legitimately differ after each rank's last forward.
    ids = ddp.all_gather(run.env, weights_id({k: p.data for k, p in state.net.named_parameters()}))
    if len(set(ids)) != 1:
        raise RuntimeError(f"DDP replicas diverged (weight hashes per rank: {ids})")
    run.say(f"DDP: all {run.env.world} replicas hold identical weights ({ids[0]})")


def _finish(run: TrainRun, state: TrainState, callbacks: list[Callback], t_start: float,
            validation: Validation) -> TrainResult:
    """Rank 0 saves the best epoch's weights as the model; every rank gets the same result."""
    result = None
    if run.env.is_main:
        st.load_best_weights(run, state)
        best = next(h for h in state.history if h["epoch"] == state.best.epoch)
        val_metrics = {k[4:]: v for k, v in best.items() if k.startswith("val_")}
        model = state.model
        extra = {"val_metrics": val_metrics, "untrained_metrics": state.baseline, "pixel_metrics": state.pixels,
                 "pretrained_metrics": state.pretrained,
                 "best_epoch": state.best.epoch, "n_train_writers": len(run.classes),
                 "n_train_images": run.train.height,
                 "mean": model.mean.flatten().tolist(), "std": model.std.flatten().tolist()}
        tensors, fused = model.state_dict(), {}
        if run.config.classical_weight > 0:  # one save: a crash never leaves the network without its part
            classical, fused = fit_classical_part(run.train, run.config, run.say)
            tensors = {**tensors, **classical}
        model_id = save_model(run.model_dir, tensors, {**run.config.to_dict(), **extra, **fused})
        for cb in callbacks:
            cb.on_train_end(state)
        run.say(f"saved model {model_id} (best epoch {state.best.epoch}, val AUC {val_metrics['auc']:.4f} vs untrained "
                f"{state.baseline['auc']:.4f}) to {run.model_dir}")
        result = TrainResult(
            model_dir=run.model_dir, model_id=model_id, history=state.history, val_metrics=val_metrics,
            baseline_metrics=state.baseline, pixel_metrics=state.pixels, curve_png=run.curve_png, tb_dir=run.tb_dir,
            skipped_images=len(state.skipped), epochs_run=len(state.history), seconds=time.perf_counter() - t_start,
            best_epoch=state.best.epoch, stopped_early=state.stopped,
            skipped_examples=list(state.skipped.values())[:10], quality=validation.quality(state.best.epoch),
            pretrained_metrics=state.pretrained,
        )
    return ddp.broadcast(run.env, result)


def _bar(run: TrainRun, iterable: Iterable[T], **kw: Any) -> Iterable[T]:
    """A progress bar on rank 0 (silent off a terminal); the other ranks iterate quietly."""
    return progress(iterable, **kw) if run.env.is_main else iterable


if __name__ == "__main__":  # the older spelling of ``python -m wrmil_core.embedding``
    import runpy

    runpy.run_module("wrmil_core.embedding", run_name="__main__", alter_sys=True)
