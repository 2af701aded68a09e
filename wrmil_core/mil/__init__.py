"""The learned multiple-instance models, their training, and every bag model by name.

Sits above :mod:`wrmil_core.detectors` (the training-free detectors and the base class) and below
:mod:`wrmil_core.evidence`, which it never imports: the evidence of a trained model is fitted by
:mod:`wrmil_core.evidence.fit`, the report lives in :mod:`wrmil_core.report`.

Public API::

    build_mil_model(name, dim, **hparams) -> MILModel             # registry.py
    detector_class(name) / load_mil_model(model_dir)              # registry.py
    MILConfig, PRESETS, preset("demo" | "paper", **overrides)     # config.py
    train_mil / train_all -> MILResult (with the val scores)      # train.py
    document_scorer(model, name, window_size, bag_size)           # documents.py
    make_toy_bags(...) -> BagTensors                              # toy.py
"""

from wrmil_core.mil.config import DEFAULT_MODELS, PRESETS, MILConfig, preset
from wrmil_core.mil.registry import MODEL_NAMES, build_mil_model, detector_class, load_mil_model
from wrmil_core.mil.toy import make_toy_bags
from wrmil_core.mil.train import MILResult, train_all, train_mil

__all__ = [
    "DEFAULT_MODELS",
    "MODEL_NAMES",
    "PRESETS",
    "MILConfig",
    "MILResult",
    "build_mil_model",
    "detector_class",
    "load_mil_model",
    "make_toy_bags",
    "preset",
    "train_all",
    "train_mil",
]
