"""The side jobs of the training loop, one callback each (as in insightface's arcface_torch).

The loop (``train.py``) calls :class:`Validation` after every epoch, because its verdict (early
stopping) steers the loop; the others see the state through the hooks of :class:`Callback`:
TensorBoard scalars, the resumable checkpoint, the per-epoch log lines, and the training-curve
PNG. Callbacks run on rank 0 only; they never change the maths of training.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from wrmil_core.embedding import state as st
from wrmil_core.embedding.baselines import centred_unit
from wrmil_core.embedding.evaluate import METRIC_KEYS, embedding_quality, evaluate_embeddings
from wrmil_core.embedding.infer import embed_images
from wrmil_core.embedding.model import EmbeddingNet
from wrmil_core.embedding.state import Best, TrainRun, TrainState

if TYPE_CHECKING:  # tensorboard is imported when a run starts
    from torch.utils.tensorboard import SummaryWriter


class Callback:
    """Hooks of the training loop; each does nothing unless overridden."""

    def on_train_start(self, state: TrainState) -> None:
        """Before the first epoch of this call (after a resume, the first epoch not yet done)."""

    def on_step(self, state: TrainState, step: int, loss: torch.Tensor) -> None:
        """After optimiser step ``step`` (0-based in the epoch); ``loss`` is the mean over ranks."""

    def on_epoch_end(self, state: TrainState, record: dict[str, float]) -> None:
        """After epoch ``state.epoch`` was validated and ``record`` appended to the history."""

    def on_train_end(self, state: TrainState) -> None:
        """After the last epoch, once the best weights are back in ``state.model``."""


@dataclass
class ValVectors:
    """The val words' vectors of one validation pass (rows of the readable words), kept so the
    best epoch's figures with their intervals need no second pass over the images."""

    emb: np.ndarray
    writers: np.ndarray
    pixels: np.ndarray | None = None  # raw-pixel features, centred and unit (baselines.centred_unit)


def validate(run: TrainRun, model: EmbeddingNet, with_pixels: bool = False,
             backbone_only: bool = False) -> tuple[dict[str, float], dict[str, float], ValVectors]:
    """Val metrics of ``model`` (and of raw pixels if asked) on the run's val words, and the vectors;
    ``backbone_only``: of its backbone's pooled features (``embed_images``)."""
    config, device = run.config, run.env.device
    batch = 2 * config.batch_size if device.type == "cuda" else 64  # CPU: ~64 is fastest (see embed_words)
    out = embed_images(model, run.val["path"].to_list(), batch, device, config.num_workers, with_pixels=with_pixels,
                       desc="validating", backbone_only=backbone_only)
    vectors = ValVectors(out.emb, run.val["writer"].to_numpy()[out.index],
                         centred_unit(out.pixels) if with_pixels else None)
    kw = {"n_pairs": config.val_pairs, "n_queries": config.val_queries, "seed": config.seed}
    metrics = evaluate_embeddings(vectors.emb, vectors.writers, **kw)
    pixels = evaluate_embeddings(vectors.pixels, vectors.writers, **kw) if with_pixels else {}
    return metrics, pixels, vectors


class Validation:
    """Validate on unseen writers after each epoch and decide early stopping on val AUC.

    It keeps the vectors of the untrained network's pass (``untrained``, set by the loop) and of the
    best epoch, from which :meth:`quality` gives ``arcface_model``'s figures with their intervals.
    """

    def __init__(self, run: TrainRun):
        self.run = run
        self.untrained: ValVectors | None = None
        self.best: tuple[int, ValVectors] | None = None  # (epoch, vectors)

    def __call__(self, state: TrainState) -> dict[str, float]:
        """Metrics of the epoch just completed; updates ``state.best`` and ``state.stopped``."""
        config = self.run.config
        metrics, _, vectors = validate(self.run, state.model)
        if metrics["auc"] > state.best.auc + config.min_delta:
            state.best = Best(metrics["auc"], state.epoch, 0)
            self.best = (state.epoch, vectors)
        else:
            state.best = Best(state.best.auc, state.best.epoch, state.best.bad_epochs + 1)
        # Stopping after the last epoch would change nothing but the record.
        state.stopped = (config.patience > 0 and state.best.bad_epochs >= config.patience
                         and state.epoch < config.epochs)
        return metrics

    def quality(self, best_epoch: int) -> dict[str, dict[str, float | int | None]] | None:
        """``model_quality``'s figures (trained, untrained, pixels) from this process's passes, or
        None when one is missing: a resumed run whose best epoch or untrained pass came before the
        resumption, or a fused model (its vectors are not the network's: ``fusion.py``)."""
        config = self.run.config
        if self.untrained is None or self.best is None or self.best[0] != best_epoch or config.classical_weight > 0:
            return None
        trained, untrained = self.best[1], self.untrained
        kw = {"n_pairs": config.val_pairs, "n_queries": config.val_queries, "seed": config.seed}
        return {"trained": embedding_quality(trained.emb, trained.writers, **kw),
                "untrained": embedding_quality(untrained.emb, untrained.writers, **kw),
                "pixels": embedding_quality(untrained.pixels, untrained.writers, **kw)}


class TensorBoardLog(Callback):
    """Scalars under ``tb/``: baselines once, loss and lr every 10 steps, val metrics per epoch."""

    def __init__(self, run: TrainRun):
        self.run = run
        self.writer: SummaryWriter | None = None

    def on_train_start(self, state: TrainState) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.run.out_dir.mkdir(parents=True, exist_ok=True)
        self.writer = SummaryWriter(str(self.run.tb_dir))
        if state.epoch == 0:
            for k in METRIC_KEYS:
                self.writer.add_scalar(f"baseline_untrained/{k}", state.baseline[k], 0)
                self.writer.add_scalar(f"baseline_pixels/{k}", state.pixels[k], 0)

    def on_step(self, state: TrainState, step: int, loss: torch.Tensor) -> None:
        if step % 10 == 0:  # .item() waits for the GPU, so not every step
            gstep = state.epoch * self.run.steps_per_epoch + step
            self.writer.add_scalar("train/loss", loss.item(), gstep)
            self.writer.add_scalar("train/lr", state.lr, gstep)

    def on_epoch_end(self, state: TrainState, record: dict[str, float]) -> None:
        for k in ("loss", "lr"):
            self.writer.add_scalar(f"epoch/{k}", record[k], state.epoch)
        for k in METRIC_KEYS:
            self.writer.add_scalar(f"val/{k}", record[f"val_{k}"], state.epoch)
        self.writer.flush()

    def on_train_end(self, state: TrainState) -> None:
        self.writer.close()


class Checkpointing(Callback):
    """The resumable checkpoint after every epoch, and ``history.json`` beside it."""

    def __init__(self, run: TrainRun):
        self.run = run

    def on_epoch_end(self, state: TrainState, record: dict[str, float]) -> None:
        st.save(self.run, state)
        self.run.history_json.write_text(json.dumps(state.history, indent=1))

    def on_train_end(self, state: TrainState) -> None:
        self.run.history_json.write_text(json.dumps(state.history, indent=1))


class EpochLog(Callback):
    """One line per epoch in the run log (Dagster's, or the terminal's), and the start and stop."""

    def __init__(self, run: TrainRun):
        self.run = run

    def on_train_start(self, state: TrainState) -> None:
        run, config = self.run, self.run.config
        run.say(f"training {config.backbone} on {run.train.height} images of {len(run.classes)} writers: "
                f"{config.epochs} epochs x {run.steps_per_epoch} steps x {config.batch_size} x {run.env.world} "
                f"process(es) on {run.env.device}")

    def on_epoch_end(self, state: TrainState, record: dict[str, float]) -> None:
        r, say = record, self.run.say
        say(f"epoch {state.epoch}/{self.run.config.epochs}: loss {r['loss']:.4f} val AUC {r['val_auc']:.4f} "
            f"EER {r['val_eer']:.4f} top-1 {r['val_top1']:.3f} mAP {r['val_map']:.3f} ({r['seconds']:.0f} s)"
            + (" *" if state.improved else ""))
        if state.stopped:
            say(f"early stopping: val AUC did not improve for {self.run.config.patience} epoch(s); "
                f"best epoch {state.best.epoch}")


class CurvePlot(Callback):
    """``training_curve.png``: loss and lr, and the val figures against both baselines, per epoch."""

    def __init__(self, run: TrainRun):
        self.run = run

    def on_train_end(self, state: TrainState) -> None:
        plot_curve(state.history, state.baseline, state.pixels, self.run.curve_png)


def plot_curve(history: list[dict[str, float]], baseline: dict[str, float], pixels: dict[str, float],
               path: Path) -> None:
    """Two panels: train loss with the lr schedule; val AUC, 1 - EER and top-1 with the baselines' AUC."""
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
