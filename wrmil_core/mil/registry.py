"""Every bag model by name: the learned ones (:mod:`.models`) and the training-free detectors
(:mod:`wrmil_core.detectors`), built from a name so a saved JSON config can rebuild them.

The facts about a detector are its class attributes (:class:`wrmil_core.detectors.base.MILModel`);
callers that hold only a name read them through :func:`detector_class` and the lookups below, so no
module keeps its own list of detector names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wrmil_core.artifacts import load_model
from wrmil_core.detectors import TRAINING_FREE, MILModel
from wrmil_core.mil.fused import FusedMIL
from wrmil_core.mil.models import LEARNED
from wrmil_core.mil.two_covariance import TwoCovarianceMIL
from wrmil_core.runtime import resolve_device

# learned by gradient, fitted in closed form on validation bags, training-free
MODEL_REGISTRY: dict[str, type[MILModel]] = {cls.name: cls for cls in (*LEARNED, TwoCovarianceMIL, FusedMIL,
                                                                       *TRAINING_FREE)}
MODEL_NAMES: tuple[str, ...] = tuple(MODEL_REGISTRY)


def detector_class(name: str) -> type[MILModel] | None:
    """The model class registered as ``name`` (None for a name no class has, e.g. an old record's)."""
    return MODEL_REGISTRY.get(name)


def is_training_free(name: str) -> bool:
    """A registered detector that is not trained (``trainable = False``)."""
    cls = detector_class(name)
    return cls is not None and not cls.trainable


def is_default(name: str) -> bool:
    """The registered detector ``wrmil score`` prefers (``default = True``)."""
    cls = detector_class(name)
    return cls is not None and cls.default


def default_detector() -> str:
    """The name of the registered detector with ``default = True`` (exactly one class has it)."""
    names = [n for n, cls in MODEL_REGISTRY.items() if cls.default]
    if len(names) != 1:
        raise TypeError(f"exactly one detector class must have default = True, found {names}")
    return names[0]


def scores_whole(name: str) -> bool:
    """True when ``name`` scores a document as one word sequence of any length (``whole_document``),
    else by sliding bags of its training geometry."""
    cls = detector_class(name)
    return cls is not None and cls.whole_document


def build_mil_model(name: str, dim: int, **hparams: Any) -> MILModel:
    """Create the model registered as ``name`` for embeddings of size ``dim``."""
    cls = detector_class(name)
    if cls is None:
        raise ValueError(f"unknown MIL model {name!r}; choose from {', '.join(MODEL_NAMES)}")
    return cls(dim, **hparams)


def load_mil_model(model_dir: str | Path, device: str = "cpu") -> tuple[MILModel, dict[str, Any]]:
    """Rebuild a saved model in eval mode from ``model_dir``: ``(model, config)``."""
    state, config = load_model(model_dir)
    model = build_mil_model(config["model_name"], int(config["dim"]), **config.get("hparams", {}))
    model.load_state_dict(state)
    return model.to(resolve_device(device)).eval(), config


__all__ = ["MODEL_NAMES", "MODEL_REGISTRY", "build_mil_model", "default_detector", "detector_class", "is_default", "is_training_free",
           "load_mil_model", "scores_whole"]
