"""Hyper-parameters of the MIL stage, with the ``demo`` and ``paper`` presets.

Every field but ``hparams`` is a plain scalar or a tuple of names, so the Dagster layer mirrors the
dataclass as a launchpad ``Config``; ``hparams`` (per-model constructor arguments) is set from code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from wrmil_core import presets
from wrmil_core.errors import WrmilInputError
from wrmil_core.mil.registry import MODEL_NAMES

DEFAULT_MODELS: tuple[str, ...] = ("abmil", "gated_abmil", "contrast", "set_transformer", "distance",
                                   "segment_scan", "scattered", "two_covariance", "fused")


@dataclass(frozen=True)
class MILConfig:
    """Training settings shared by all models (per-model constructor args in ``hparams``).

    ``lr`` is OneCycle's starting rate and ``max_lr`` its peak (the original: 1e-5 .. 1e-4).
    ``max_batches_per_epoch`` caps an epoch (None or 0: one pass over the larger class).
    ``patience``: epochs without a val-AUC gain before stopping early.
    ``target_fpr``: the false-positive budget of the second saved threshold (``fpr_5`` for 5%).
    ``num_threads`` sets torch's CPU threads while training (restored after; None or 0 leaves them); these
    models are small, and on a busy CPU one thread avoids oversubscription (measured: 5x faster on 2
    loaded cores).
    """

    models: tuple[str, ...] = DEFAULT_MODELS
    epochs: int = 30
    batch_genuine: int = 32
    batch_contaminated: int = 32
    lr: float = 1e-5
    max_lr: float = 1e-4
    pct_start: float = 0.1
    weight_decay: float = 5e-4
    patience: int = 5
    max_batches_per_epoch: int | None = None
    eval_batch_size: int = 512
    target_fpr: float = 0.05
    seed: int = 0
    device: str = "auto"
    tensorboard: bool = True
    num_threads: int | None = None
    hparams: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> WrmilInputError:
            return WrmilInputError(f"MILConfig.{name}={getattr(self, name)!r}: {why}")

        if not self.models:
            raise bad("models", f"name at least one of {', '.join(MODEL_NAMES)}")
        for name in ("models", "hparams"):
            unknown = [m for m in getattr(self, name) if m not in MODEL_NAMES]
            if unknown:
                raise bad(name, f"unknown model(s) {unknown}; choose from {', '.join(MODEL_NAMES)}")
        if not all(isinstance(h, dict) for h in self.hparams.values()):
            raise bad("hparams", "map each model name to a dict of its constructor arguments")
        for name in ("epochs", "batch_genuine", "batch_contaminated", "patience", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise bad(name, "must be >= 1")
        for name in ("max_batches_per_epoch", "num_threads"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise bad(name, "must be None or >= 0")
        if not 0 < self.lr <= self.max_lr:
            raise bad("lr", f"must be > 0 and at most max_lr={self.max_lr} (OneCycle starts at lr, peaks at max_lr)")
        if not 0 < self.pct_start < 1:
            raise bad("pct_start", "must be in (0, 1)")
        if self.weight_decay < 0:
            raise bad("weight_decay", "must be >= 0")
        if not 0 < self.target_fpr < 1:
            raise bad("target_fpr", "must be in (0, 1)")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (saved in each model's config.json)."""
        d = asdict(self)
        d["models"] = list(self.models)
        return d


PRESETS: dict[str, MILConfig] = {
    # The original hyper-parameters.
    "paper": MILConfig(epochs=30, lr=1e-5, max_lr=1e-4, patience=5),
    # Learns the synthetic set in a few CPU minutes: a higher peak rate, because at 1e-4 the small
    # models barely move in 20 short epochs.
    "demo": MILConfig(epochs=20, lr=1e-4, max_lr=3e-3, patience=6, max_batches_per_epoch=50),
}
# A user's own data (`wrmil run --data-root`, on a CPU or a GPU): the demo's schedule, which learns
# in minutes; only the embedding recipe differs between these presets.
PRESETS.update(cpu=PRESETS["demo"], gpu=PRESETS["demo"])


def preset(name: str, **overrides: Any) -> MILConfig:
    """``PRESETS[name]`` with field ``overrides`` (validated again); unknown names are refused."""
    return presets.preset(PRESETS, name, **overrides)
