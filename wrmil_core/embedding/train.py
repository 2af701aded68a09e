"""Train the writer-embedding network on train writers; validate on unseen (val) writers.

One process (CPU or one GPU)::

    python -m wrmil_core.embedding.train --words data/words.parquet --splits data/splits.parquet \\
        --out runs/embedding --preset demo [--set epochs=3 --set batch_size=32] [--no-resume]

Several GPUs (one process per GPU, torch DDP over NCCL; gloo on CPU)::

    torchrun --nproc_per_node=2 -m wrmil_core.embedding.train --words ... --splits ... \\
        --out runs/embedding --preset paper --set weights_file=/models/vit_base_patch16_224.safetensors

``batch_size`` is per process (the paper's 64 x 5 GPUs = 320). Only rank 0 writes artifacts.
Outputs under ``--out``: ``model/`` (``save_model``: model.safetensors + config.json), ``history.json``,
``training_curve.png``, ``tb/`` (TensorBoard) and ``checkpoint/`` (resume state).

The loop per epoch: train steps (AdamW, OneCycleLR stepped per batch, bf16 autocast on CUDA, grad
clipping) -> rank 0 embeds the val words and computes verification/retrieval figures -> early
stopping on val AUC -> checkpoint. The final model is the best epoch's weights.

Measured (demo preset, synthetic DEMO set: 24 train / 8 val / 8 test writers, 2 CPU cores shared
with other jobs, load ~1): 2 min 24 s wall for the command above including start-up; val AUC 0.823,
EER 0.253 (untrained network 0.558 / 0.457, raw pixels 0.568 / 0.460); test writers AUC 0.809,
EER 0.267 (untrained 0.528 / 0.481). Runs are bit-for-bit reproducible for a given seed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from wrmil_core.artifacts import save_model, weights_id
from wrmil_core.embedding import checkpoint as ckpt
from wrmil_core import runtime
from wrmil_core.embedding import ddp
from wrmil_core.embedding.config import EmbeddingConfig, preset
from wrmil_core.embedding.data import (ShardedEpochSampler, WordImageDataset, WordTransform, make_loader,
                                       stratified_subset)
from wrmil_core.embedding.evaluate import METRIC_KEYS, evaluate_embeddings
from wrmil_core.embedding.heads import build_head
from wrmil_core.embedding.infer import embed_images
from wrmil_core.embedding.model import EmbeddingNet, build_model
from wrmil_core.errors import WrmilInputError
from wrmil_core.runtime import Log, speaker
from wrmil_core.data.split import words_of_split

# Fields that may change between an interrupted run and its resumption without changing the maths.
_RESUME_FREE = ("num_workers", "device", "cpu_threads")


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

    @property
    def metadata(self) -> dict[str, int | float | str]:
        """Flat figures for Dagster materialisation metadata."""
        md: dict[str, int | float | str] = {
            "model_id": self.model_id, "model_dir": str(self.model_dir), "tb_dir": str(self.tb_dir),
            "epochs_run": self.epochs_run, "best_epoch": self.best_epoch, "stopped_early": str(self.stopped_early),
            "skipped_images": self.skipped_images, "train_seconds": round(self.seconds, 1),
        }
        for prefix, m in (("val", self.val_metrics), ("untrained", self.baseline_metrics), ("pixels", self.pixel_metrics)):
            md.update({f"{prefix}_{k}": float(m[k]) for k in METRIC_KEYS if k in m})
        return md


class _TrainNet(nn.Module):
    """Embedding network + margin head as one module, so DDP syncs both."""

    def __init__(self, model: EmbeddingNet, head: nn.Module):
        super().__init__()
        self.model, self.head = model, head

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.head(self.model(x), y)


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


def _state_tensors(net: _TrainNet, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {f"model.{k}": v for k, v in net.model.state_dict().items()}
    tensors.update({f"head.{k}": v for k, v in net.head.state_dict().items()})
    opt_t, opt_meta = ckpt.flatten_optimizer(opt.state_dict())
    tensors.update(opt_t)
    return tensors, opt_meta


def _plot_curve(history: list[dict[str, float]], baseline: dict[str, float], pixels: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    ep = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax1.plot(ep, [h["loss"] for h in history], "o-", label="train loss")
    ax1.set_xlabel("epoch"), ax1.set_ylabel("margin loss"), ax1.grid(alpha=0.3)
    lr_ax = ax1.twinx()
    lr_ax.plot(ep, [h["lr"] for h in history], "--", color="grey", label="lr (epoch end)")
    lr_ax.set_ylabel("learning rate (dashed)")
    ax1.legend(loc="upper right", fontsize=8)
    ax2.plot(ep, [h["val_auc"] for h in history], "o-", label="val verification AUC")
    ax2.plot(ep, [1 - h["val_eer"] for h in history], "s-", label="val 1 - EER")
    ax2.plot(ep, [h["val_top1"] for h in history], "^-", label="val retrieval top-1")
    if baseline:
        ax2.axhline(baseline["auc"], color="red", ls=":", label=f"untrained AUC {baseline['auc']:.3f}")
    if pixels:
        ax2.axhline(pixels["auc"], color="purple", ls="-.", label=f"raw pixels AUC {pixels['auc']:.3f}")
    ax2.set_xlabel("epoch"), ax2.set_ylim(0, 1.01), ax2.grid(alpha=0.3), ax2.legend(fontsize=7, loc="lower right")
    ax2.set_title("unseen (val) writers", fontsize=9)
    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _validate(model: EmbeddingNet, val: pl.DataFrame, config: EmbeddingConfig, env: ddp.DistEnv,
              with_pixels: bool = False) -> tuple[dict[str, float], dict[str, float]]:
    """Val metrics of ``model`` (and of raw pixels if asked) on the val words."""
    batch = 2 * config.batch_size if env.device.type == "cuda" else 64  # CPU: ~64 is fastest (see embed_words)
    out = embed_images(model, val["path"].to_list(), batch, env.device, config.num_workers, with_pixels=with_pixels)
    writers = val["writer"].to_numpy()[out.index]
    kw = dict(n_pairs=config.val_pairs, n_queries=config.val_queries, seed=config.seed)
    metrics = evaluate_embeddings(out.emb, writers, **kw)
    pix = evaluate_embeddings(out.pixels - out.pixels.mean(0), writers, **kw) if with_pixels else {}
    return metrics, pix


def train_embedding(train_words: pl.DataFrame, val_words: pl.DataFrame, config: EmbeddingConfig, out_dir: str | Path,
                    resume: bool = True, log: Log = None) -> TrainResult:
    """Train on ``train_words`` (the words table of the train split), validate on ``val_words``.

    Runs in this process on one device, or as one rank of a torchrun job (see module docstring).
    ``resume=True`` continues from ``out_dir/checkpoint`` when it holds a run of the same config and
    training writers; ``resume=False`` starts over. Raises ``WrmilInputError`` for unusable splits
    or config, :class:`TrainingDivergedError` for a NaN/inf loss.
    """
    env = ddp.setup(config.device)
    try:
        with runtime.cpu_threads(env.device, config.cpu_threads, config.num_workers, env.world):
            return _train(train_words, val_words, config, Path(out_dir), resume, log, env)
    finally:
        ddp.teardown(env)


def _train(train_words: pl.DataFrame, val_words: pl.DataFrame, config: EmbeddingConfig, out_dir: Path,
           resume: bool, log: Log, env: ddp.DistEnv) -> TrainResult:
    t_start = time.perf_counter()
    say = speaker(log if env.is_main else None)
    _check_split(train_words, "train")
    _check_split(val_words, "val")
    device = env.device
    ck_dir, tb_dir, model_dir = out_dir / "checkpoint", out_dir / "tb", out_dir / "model"
    curve_png, history_json = out_dir / "training_curve.png", out_dir / "history.json"

    train_words = train_words.sort("word_id")
    classes = sorted(train_words["writer"].unique().to_list())
    labels = train_words["writer"].replace_strict(classes, list(range(len(classes))), return_dtype=pl.Int64).to_numpy()
    val = stratified_subset(val_words.sort("word_id"), config.max_val_images, config.seed)

    torch.manual_seed(config.seed)
    model = build_model(config).to(device)
    head = build_head(config, len(classes)).to(device)
    net = _TrainNet(model, head)
    sampler = ShardedEpochSampler(train_words.height, env.rank, env.world, config.max_train_images_per_epoch, config.seed)
    steps_per_epoch = len(sampler) // config.batch_size
    if steps_per_epoch == 0:
        raise WrmilInputError(
            f"batch_size={config.batch_size} x {env.world} process(es) exceeds the {len(sampler) * env.world} training "
            "images drawn per epoch; lower batch_size"
        )
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config.max_lr, total_steps=config.epochs * steps_per_epoch, pct_start=config.warmup_frac,
        div_factor=config.max_lr / config.lr,
    )

    # ---- resume or start fresh
    fingerprint = {k: v for k, v in config.to_dict().items() if k not in _RESUME_FREE}
    state = ckpt.read_state(ck_dir) if resume else None
    if state is not None:
        differ = sorted(k for k in fingerprint if state["config"].get(k) != fingerprint[k])
        if differ or state["classes"] != classes or state["steps_per_epoch"] != steps_per_epoch:
            why = f"config fields {differ}" if differ else "training writers or steps per epoch (data or world size)"
            raise WrmilInputError(
                f"{ck_dir} holds a checkpoint of a different training ({why} differ); "
                "pass resume=False to start over, or use another out_dir"
            )
        tensors = ckpt.load_tensors(ck_dir, state["state_file"])
        model.load_state_dict(ckpt.split_prefix(tensors, "model."))
        head.load_state_dict(ckpt.split_prefix(tensors, "head."))
        opt.load_state_dict(ckpt.unflatten_optimizer(tensors, state["optimizer"]))
        sched.load_state_dict(state["scheduler"])
        history, start_epoch = state["history"], state["epoch"] + 1
        best_auc, best_epoch, bad_epochs = state["best_auc"], state["best_epoch"], state["bad_epochs"]
        baseline, pixels, stopped = state["baseline_metrics"], state["pixel_metrics"], state["stopped_early"]
        skipped: dict[int, str] = {int(k): v for k, v in state["skipped"].items()}
        say(f"resuming from {ck_dir}: {start_epoch} of {config.epochs} epochs done, best val AUC {best_auc:.4f}")
    else:
        if env.is_main:
            for d in (ck_dir, tb_dir):  # a fresh run must not mix with an old run's curves or state
                shutil.rmtree(d, ignore_errors=True)
        history, start_epoch, best_auc, best_epoch, bad_epochs, stopped, skipped = [], 0, -1.0, 0, 0, False, {}
        baseline, pixels = {}, {}
        if env.is_main:
            say(f"baseline: embedding {val.height} val words with the untrained network and raw pixels")
            baseline, pixels = _validate(model, val, config, env, with_pixels=True)
            say(f"baseline val AUC: untrained {baseline['auc']:.4f}, raw pixels {pixels['auc']:.4f}")

    train_net: nn.Module = net
    if env.distributed:  # DDP's constructor also copies rank 0's weights to every rank
        train_net = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    dataset = WordImageDataset(train_words["path"].to_list(), labels, WordTransform(config, train=True))
    loader = make_loader(dataset, config.batch_size, config.num_workers, sampler=sampler, drop_last=True,
                         pin_memory=device.type == "cuda")
    writer = None
    if env.is_main:
        from torch.utils.tensorboard import SummaryWriter

        out_dir.mkdir(parents=True, exist_ok=True)
        writer = SummaryWriter(str(tb_dir))
        if start_epoch == 0:
            for k in METRIC_KEYS:
                writer.add_scalar(f"baseline_untrained/{k}", baseline[k], 0)
                writer.add_scalar(f"baseline_pixels/{k}", pixels[k], 0)
    say(f"training {config.backbone} on {train_words.height} images of {len(classes)} writers: "
        f"{config.epochs} epochs x {steps_per_epoch} steps x {config.batch_size} x {env.world} process(es) on {device}")

    autocast = dict(device_type=device.type, dtype=torch.bfloat16, enabled=runtime.use_bf16(device))
    for epoch in range(start_epoch, config.epochs):
        if stopped:
            break
        t_epoch = time.perf_counter()
        # Seeds derived from (seed, epoch, rank): augmentation, dropout and the sample order replay
        # exactly after a resume without storing RNG states.
        torch.manual_seed(config.seed * 100_003 + epoch * 1_009 + env.rank)
        loader.generator.manual_seed(config.seed * 100_003 + epoch * 1_009 + env.rank)
        sampler.set_epoch(epoch)
        train_net.train()
        loss_sum, n_steps = torch.zeros((), device=device), 0
        for step, batch in enumerate(loader):
            for i, msg in batch["skipped"]:
                if i not in skipped and len(skipped) < 10:
                    say(f"skipping unreadable training image {msg}")
                skipped[i] = msg
            ok = torch.tensor(float(batch["x"] is not None and len(batch["y"]) >= 2), device=device)
            if env.distributed:  # every rank must take (or skip) the same steps, or DDP hangs
                torch.distributed.all_reduce(ok, op=torch.distributed.ReduceOp.MIN)
            if not ok:
                sched.step()
                continue
            x, y = batch["x"].to(device, non_blocking=True), batch["y"].to(device, non_blocking=True)
            with torch.autocast(**autocast):
                loss = train_net(x, y)
            loss_all = ddp.mean_across(env, loss.detach().float())
            if not torch.isfinite(loss_all):
                raise TrainingDivergedError(
                    f"loss became {loss_all.item()} at epoch {epoch + 1} step {step + 1} (lr {sched.get_last_lr()[0]:.3g}); "
                    "lower max_lr, the margin scale s or margin m, or set grad_clip"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
            opt.step()
            sched.step()
            loss_sum += loss_all
            n_steps += 1
            if writer is not None and step % 10 == 0:
                gstep = epoch * steps_per_epoch + step
                writer.add_scalar("train/loss", loss_all.item(), gstep)
                writer.add_scalar("train/lr", sched.get_last_lr()[0], gstep)
        if n_steps == 0:
            raise WrmilInputError(
                f"epoch {epoch + 1}: no readable training image in any batch ({len(skipped)} unreadable, e.g. "
                f"{next(iter(skipped.values()), '?')}); check the image files of the train split"
            )
        if env.distributed:  # rank 0 records every rank's unreadable images
            gathered: list[dict[int, str]] = [{} for _ in range(env.world)]
            torch.distributed.all_gather_object(gathered, skipped)
            for d in gathered:
                skipped.update(d)

        # ---- validate on unseen writers (rank 0), decide early stopping, checkpoint
        decision = None
        if env.is_main:
            metrics, _ = _validate(model, val, config, env)
            improved = metrics["auc"] > best_auc + config.min_delta
            if improved:
                best_auc, best_epoch, bad_epochs = metrics["auc"], epoch + 1, 0
            else:
                bad_epochs += 1
            stopped = config.patience > 0 and bad_epochs >= config.patience and epoch + 1 < config.epochs
            rec = {"epoch": epoch + 1, "loss": (loss_sum / n_steps).item(), "lr": sched.get_last_lr()[0],
                   "seconds": time.perf_counter() - t_epoch, "skipped_images": len(skipped),
                   **{f"val_{k}": float(v) for k, v in metrics.items()}}
            history.append(rec)
            say(f"epoch {epoch + 1}/{config.epochs}: loss {rec['loss']:.4f} val AUC {metrics['auc']:.4f} "
                f"EER {metrics['eer']:.4f} top-1 {metrics['top1']:.3f} mAP {metrics['map']:.3f} ({rec['seconds']:.0f} s)"
                + (" *" if improved else ""))
            for k in ("loss", "lr"):
                writer.add_scalar(f"epoch/{k}", rec[k], epoch + 1)
            for k in METRIC_KEYS:
                writer.add_scalar(f"val/{k}", metrics[k], epoch + 1)
            writer.flush()
            tensors, opt_meta = _state_tensors(net, opt)
            meta = {"config": fingerprint, "classes": classes, "steps_per_epoch": steps_per_epoch, "world": env.world,
                    "optimizer": opt_meta, "scheduler": sched.state_dict(), "history": history,
                    "best_auc": best_auc, "best_epoch": best_epoch, "bad_epochs": bad_epochs, "stopped_early": stopped,
                    "baseline_metrics": baseline, "pixel_metrics": pixels, "skipped": {str(k): v for k, v in skipped.items()},
                    "seeds": {"seed": config.seed, "epoch_seed": "seed*100003 + epoch*1009 + rank"}}
            ckpt.save_checkpoint(ck_dir, epoch, tensors, meta, model.state_dict() if improved else None)
            history_json.write_text(json.dumps(history, indent=1))
            decision = stopped
        stopped = ddp.broadcast(env, decision)
        if stopped:
            say(f"early stopping: val AUC did not improve for {config.patience} epoch(s); best epoch {best_epoch}")

    if env.distributed:  # DDP keeps replicas identical; a mismatch means a broken setup, not bad luck
        ids: list[str] = [""] * env.world
        # Parameters only: BN running stats legitimately differ after each rank's last forward.
        torch.distributed.all_gather_object(ids, weights_id({k: p.data for k, p in net.named_parameters()}))
        if len(set(ids)) != 1:
            raise RuntimeError(f"DDP replicas diverged (weight hashes per rank: {ids})")
        say(f"DDP: all {env.world} replicas hold identical weights ({ids[0]})")

    # ---- final artifact: the best epoch's weights (rank 0 writes, everyone gets the id)
    model_id = None
    if env.is_main:
        if writer is not None:
            writer.close()
        state = ckpt.read_state(ck_dir)
        model.load_state_dict(ckpt.load_tensors(ck_dir, state["best_file"]))
        best = next(h for h in state["history"] if h["epoch"] == state["best_epoch"])
        val_metrics = {k[4:]: v for k, v in best.items() if k.startswith("val_")}
        history, baseline, pixels, stopped = state["history"], state["baseline_metrics"], state["pixel_metrics"], state["stopped_early"]
        best_epoch, skipped = state["best_epoch"], {int(k): v for k, v in state["skipped"].items()}
        extra = {"val_metrics": val_metrics, "untrained_metrics": baseline, "pixel_metrics": pixels,
                 "best_epoch": best_epoch, "n_train_writers": len(classes), "n_train_images": train_words.height,
                 "mean": model.mean.flatten().tolist(), "std": model.std.flatten().tolist()}
        model_id = save_model(model_dir, model.state_dict(), {**config.to_dict(), **extra})
        history_json.write_text(json.dumps(history, indent=1))
        _plot_curve(history, baseline, pixels, curve_png)
        say(f"saved model {model_id} (best epoch {best_epoch}, val AUC {val_metrics['auc']:.4f} vs untrained "
            f"{baseline['auc']:.4f}) to {model_dir}")
        payload = (model_id, history, val_metrics, baseline, pixels, best_epoch, stopped, skipped)
    else:
        payload = None
    model_id, history, val_metrics, baseline, pixels, best_epoch, stopped, skipped = ddp.broadcast(env, payload)
    return TrainResult(
        model_dir=model_dir, model_id=model_id, history=history, val_metrics=val_metrics, baseline_metrics=baseline,
        pixel_metrics=pixels, curve_png=curve_png, tb_dir=tb_dir, skipped_images=len(skipped),
        epochs_run=len(history), seconds=time.perf_counter() - t_start, best_epoch=best_epoch, stopped_early=stopped,
        skipped_examples=list(skipped.values())[:10],
    )


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # bare strings such as backbone names


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see module docstring)."""
    p = argparse.ArgumentParser(prog="python -m wrmil_core.embedding.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--words", required=True, help="words table (Parquet, schema.WORD_COLUMNS)")
    p.add_argument("--splits", required=True, help="writer split table (Parquet: writer, split)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--preset", default="demo", help="embedding preset: demo | paper")
    p.add_argument("--config", help="JSON file of config fields applied over the preset (e.g. a saved config.json)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a config field")
    p.add_argument("--no-resume", action="store_true", help="start over even if a checkpoint exists")
    a = p.parse_args(argv)
    overrides = {}
    for item in a.set:
        k, sep, v = item.partition("=")
        if not sep:
            p.error(f"--set expects FIELD=VALUE, got {item!r}")
        overrides[k] = _parse_value(v)
    if a.config:
        names = set(EmbeddingConfig.__dataclass_fields__)
        overrides = {**{k: v for k, v in json.loads(Path(a.config).read_text()).items() if k in names}, **overrides}
    config = preset(a.preset, **overrides)
    words, splits = pl.read_parquet(a.words), pl.read_parquet(a.splits)
    result = train_embedding(words_of_split(words, splits, "train"), words_of_split(words, splits, "val"), config, Path(a.out), resume=not a.no_resume,
                             log=lambda m: print(m, flush=True))
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({"model_id": result.model_id, "model_dir": str(result.model_dir),
                          "val": result.val_metrics, "untrained": result.baseline_metrics,
                          "pixels": result.pixel_metrics, "epochs_run": result.epochs_run,
                          "seconds": round(result.seconds, 1)}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
