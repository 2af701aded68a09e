"""Training MIL models, fitting their decision thresholds and saving them.

Training follows the original recipe: every batch holds equally many genuine and contaminated
bags (32 + 32), AdamW with a OneCycle schedule, BCE on the bag logit, early stopping on val AUC.
Decision thresholds are fitted on the val bags at their natural 1:2 ratio (max-F1 as the
original, and the 5%-false-positive threshold on genuine val bags) and saved with the model.
The val scores are returned (``MILResult.val_probs``) so the caller above this package fits each
detector's evidence on them (:func:`wrmil_core.evidence.fit.fit_detectors`); mil never imports
evidence. Test bags are never seen here.
The loop's side jobs (log line, TensorBoard scalars, progress bar) live in :class:`_EpochLog`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from wrmil_core.artifacts import save_model
from wrmil_core.bags.tensors import BagTensors
from wrmil_core.detectors import MILModel, check_bags, forward, score_bags
from wrmil_core.errors import WrmilInputError
from wrmil_core.metrics import fit_thresholds, roc_auc
from wrmil_core.mil.config import MILConfig
from wrmil_core.mil.registry import MODEL_NAMES, build_mil_model
from wrmil_core.runtime import Log, cpu_threads, progress, resolve_device, speaker


@dataclass
class MILResult:
    """What training one model produced: where it is saved, its thresholds and val figures.

    ``val_probs``: the model's scores of the val bags (what its thresholds and evidence are fitted
    on). ``evidence``: the :class:`wrmil_core.evidence.DetectorEvidence` that
    :func:`wrmil_core.evidence.fit.fit_detectors` attaches (typed loosely: mil sits below evidence).
    """

    name: str
    model_dir: Path
    model_id: str
    thresholds: dict[str, float]
    val_auc: float | None
    best_epoch: int
    epochs_run: int
    train_seconds: float
    n_params: int
    history: list[dict[str, float]] = field(default_factory=list)
    val_probs: np.ndarray | None = field(default=None, repr=False)
    evidence: Any = None  # DetectorEvidence (calibrator + FPR thresholds, fitted on val), or None


def train_all(names: Sequence[str] | None, train: BagTensors, val: BagTensors, config: MILConfig,
              out_dir: Path, log: Log = None) -> dict[str, MILResult]:
    """Train every model in ``names`` (default: ``config.models``) into ``out_dir/<name>/``."""
    return {n: train_mil(n, train, val, config, out_dir, log) for n in (names or config.models)}


def train_mil(name: str, train: BagTensors, val: BagTensors, config: MILConfig, out_dir: Path,
              log: Log = None) -> MILResult:
    """Train model ``name`` on ``train``, early-stop on ``val`` AUC, fit thresholds on ``val``.

    Writes the model to ``out_dir/<name>/`` (safetensors + config.json with model name, hparams,
    dim, bag geometry, embedding model id, thresholds, val AUC) and TensorBoard scalars to
    ``out_dir/tb/<name>/``; returns the val scores with the result (the evidence is fitted on them
    by :func:`wrmil_core.evidence.fit.fit_detectors`). Training-free detectors are not trained;
    their thresholds are fitted the same way. Deterministic for ``config.seed`` on CPU.
    """
    out_dir = Path(out_dir)
    _check_training_bags(name, train, val)
    device = resolve_device(config.device)
    threads = cpu_threads(device, config.num_threads) if config.num_threads else contextlib.nullcontext()
    with threads, _EpochLog(name, config, out_dir, log) as epoch_log:
        torch.manual_seed(config.seed)
        model = build_mil_model(name, train.x.shape[-1], **config.hparams.get(name, {})).to(device)
        t0 = time.perf_counter()
        history: list[dict[str, float]] = []
        best_epoch = 0
        cross_fitted = None
        if model.fitted:  # closed form, on the validation bags (the model's fit says what it reads)
            info = model.fit(train, val)
            cross_fitted = info.pop("val_logits", None)
            epoch_log.say(f"[{name}] fitted: {info}")
        elif model.trainable:
            history, best_epoch = _fit(model, train, val, config, device, epoch_log)
        val_probs, _ = score_bags(model, val, config.eval_batch_size)
        if cross_fitted is not None:  # a model fitted on val scores each val bag as if unseen (its fit says how)
            val_probs = 1.0 / (1.0 + np.exp(-np.asarray(cross_fitted, dtype=np.float64)))
        val_auc = roc_auc(val.label.numpy(), val_probs)
        thresholds = fit_thresholds(val.label.numpy(), val_probs, config.target_fpr)
        epoch_log.finish(val_auc, best_epoch)
    model_dir = out_dir / name
    model_id = _save(name, model, config, train, thresholds, model_dir,
                     {"val_auc": val_auc, "best_epoch": best_epoch, "epochs_run": len(history)})
    secs = time.perf_counter() - t0
    epoch_log.say(f"[{name}] val AUC {val_auc:.4f}, thresholds {thresholds}, saved to {model_dir} ({secs:.1f} s)")
    return MILResult(name=name, model_dir=model_dir, model_id=model_id, thresholds=thresholds, val_auc=val_auc,
                     best_epoch=best_epoch, epochs_run=len(history), train_seconds=secs,
                     n_params=sum(p.numel() for p in model.parameters()), history=history, val_probs=val_probs)


def _fit(model: MILModel, train: BagTensors, val: BagTensors, config: MILConfig, device: torch.device,
         epoch_log: _EpochLog) -> tuple[list[dict[str, float]], int]:
    """The training loop: epochs of balanced batches, val AUC after each, early stopping.

    Leaves the model at its best epoch's weights; returns ``(history, best_epoch)``.
    """
    y_train = train.label.numpy()
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config.max_lr, total_steps=config.epochs * _steps_per_epoch(y_train, config),
        pct_start=config.pct_start, div_factor=config.max_lr / config.lr)
    best = _Best(model)
    history: list[dict[str, float]] = []
    for epoch in range(1, config.epochs + 1):
        loss = _train_epoch(model, train, _balanced_batches(y_train, config, gen), opt, sched, device)
        auc = _val_auc(model, val, config)
        if auc is None:  # diverged: never the best epoch, so the best earlier weights are kept
            epoch_log.say(f"[{model.name}] epoch {epoch}: non-finite scores (training diverged; try a lower max_lr)")
            auc = 0.0
        history.append({"epoch": epoch, "train_loss": loss, "val_auc": auc, "lr": sched.get_last_lr()[0]})
        epoch_log.epoch(history[-1])
        if best.update(model, auc, epoch) >= config.patience:
            epoch_log.say(f"[{model.name}] early stop at epoch {epoch} (best {best.epoch}, val AUC {best.auc:.4f})")
            break
    model.load_state_dict(best.state)
    return history, best.epoch


def _train_epoch(model: MILModel, bags: BagTensors, batches: list[np.ndarray], opt: torch.optim.Optimizer,
                 sched: torch.optim.lr_scheduler.LRScheduler, device: torch.device) -> float:
    """One pass over ``batches`` (BCE on the bag logit, one optimiser and scheduler step each): mean loss."""
    model.train()
    losses = []
    for idx in batches:
        xb = bags.x[torch.as_tensor(idx)].to(device)
        yb = bags.label[torch.as_tensor(idx)].to(device).float()
        logit, _ = forward(model, xb, device)
        loss = F.binary_cross_entropy_with_logits(logit, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    return float(np.mean(losses))


def _val_auc(model: MILModel, val: BagTensors, config: MILConfig) -> float | None:
    """Val AUC, or None when the scores are not finite (training diverged)."""
    probs, _ = score_bags(model, val, config.eval_batch_size)
    if not np.isfinite(probs).all():
        return None
    return float(roc_auc(val.label.numpy(), probs))


class _Best:
    """Early-stopping bookkeeping: the best val AUC so far, its epoch and weights."""

    def __init__(self, model: MILModel) -> None:
        self.auc, self.epoch, self.stale = -1.0, 0, 0
        self.state = copy.deepcopy(model.state_dict())

    def update(self, model: MILModel, auc: float, epoch: int) -> int:
        """Record this epoch; return how many epochs in a row brought no gain."""
        if auc > self.auc + 1e-6:
            self.auc, self.epoch, self.stale = auc, epoch, 0
            self.state = copy.deepcopy(model.state_dict())
        else:
            self.stale += 1
        return self.stale


class _EpochLog:
    """The loop's side jobs: per-epoch log lines (the Dagster run log), TensorBoard scalars under
    ``out_dir/tb/<name>/`` and a progress bar over the epochs (silent when not on a terminal)."""

    def __init__(self, name: str, config: MILConfig, out_dir: Path, log: Log) -> None:
        self.name, self.epochs, self.say = name, config.epochs, speaker(log)
        self.writer = None
        if config.tensorboard:
            from torch.utils.tensorboard import (
                SummaryWriter,  # imported lazily: slow import
            )

            tb_dir = out_dir / "tb" / name
            for old in tb_dir.glob("events.out.tfevents.*"):  # a re-run replaces this model's curves
                old.unlink()
            self.writer = SummaryWriter(log_dir=str(tb_dir))
        self.bar = progress(total=config.epochs, desc=f"MIL {name}", unit="epoch")

    def __enter__(self) -> _EpochLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
        if self.writer is not None:
            self.writer.close()

    def epoch(self, rec: dict[str, float]) -> None:
        """Report one finished epoch (``epoch``, ``train_loss``, ``val_auc``, ``lr``)."""
        epoch = int(rec["epoch"])
        if self.writer is not None:
            self.writer.add_scalar("train/loss", rec["train_loss"], epoch)
            self.writer.add_scalar("val/auc", rec["val_auc"], epoch)
            self.writer.add_scalar("train/lr", rec["lr"], epoch)
        self.bar.set_postfix(loss=f"{rec['train_loss']:.4f}", val_auc=f"{rec['val_auc']:.4f}", refresh=False)
        self.bar.update(1)
        self.say(f"[{self.name}] epoch {epoch}/{self.epochs} loss {rec['train_loss']:.4f} val AUC {rec['val_auc']:.4f}")

    def finish(self, val_auc: float | None, best_epoch: int) -> None:
        """Record the final (best-weights) val AUC at the best epoch."""
        if self.writer is not None:
            self.writer.add_scalar("val/best_auc", float(val_auc), best_epoch)


def _check_training_bags(name: str, train: BagTensors, val: BagTensors) -> None:
    """Known model; train and val bags of one geometry and embedding model, each with both classes."""
    if name not in MODEL_NAMES:
        raise WrmilInputError(f"unknown MIL model {name!r} in the config; choose from {', '.join(MODEL_NAMES)}")
    check_bags(train, "train bags")
    _, w, t, d = train.x.shape
    check_bags(val, "val bags", model_id=train.model_id, dim=d, bag_size=w, window_size=t)
    for what, y in (("train", train.label.numpy()), ("val", val.label.numpy())):
        if not ((y == 0).any() and (y == 1).any()):
            raise WrmilInputError(f"{what} bags need both genuine and contaminated bags (got labels {sorted(set(y.tolist()))}); "
                                  "check bags_by_difficulty for that split")


def _steps_per_epoch(labels: np.ndarray, cfg: MILConfig) -> int:
    """Batches per epoch: one pass over the larger class, capped by ``max_batches_per_epoch``."""
    n = max(int(np.ceil((labels == 0).sum() / cfg.batch_genuine)),
            int(np.ceil((labels == 1).sum() / cfg.batch_contaminated)), 1)
    return min(n, cfg.max_batches_per_epoch) if cfg.max_batches_per_epoch else n


def _balanced_batches(labels: np.ndarray, cfg: MILConfig, gen: torch.Generator) -> list[np.ndarray]:
    """One epoch of batches, each ``batch_genuine`` genuine + ``batch_contaminated`` contaminated
    bags; each class is shuffled and the smaller one cycled (the original balanced sampler)."""
    gen_idx, con_idx = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    n_batches = _steps_per_epoch(labels, cfg)

    def stream(idx: np.ndarray, per: int) -> np.ndarray:
        need = n_batches * per
        reps = int(np.ceil(need / len(idx)))
        return np.concatenate([idx[torch.randperm(len(idx), generator=gen).numpy()] for _ in range(reps)])[:need]

    g = stream(gen_idx, cfg.batch_genuine).reshape(n_batches, cfg.batch_genuine)
    c = stream(con_idx, cfg.batch_contaminated).reshape(n_batches, cfg.batch_contaminated)
    return [np.concatenate([gi, ci]) for gi, ci in zip(g, c)]


def _save(name: str, model: MILModel, cfg: MILConfig, bags: BagTensors, thresholds: dict[str, float], model_dir: Path,
          extra: dict[str, Any]) -> str:
    """Weights (float32) + config.json with everything needed to rebuild and check the model."""
    _, w, t, d = bags.x.shape
    config = {
        "model_name": name, "hparams": model.hparams, "dim": d, "bag_size": w, "window_size": t,
        "embedding_model_id": bags.model_id, "thresholds": thresholds, "mil_config": cfg.to_dict(),
        "trainable": model.trainable, **extra,
    }
    state = {k: v.float() for k, v in model.state_dict().items()}
    # A training-free detector has no weights: its name, settings and embedding make its id.
    salt = "" if model.trainable else json.dumps([name, model.hparams, bags.model_id], sort_keys=True, default=str)
    return save_model(model_dir, state, config, id_salt=salt)


__all__ = ["MILResult", "train_all", "train_mil"]
