"""Multiple-instance models that flag multi-writer bags, their training and the difficulty report.

Public API::

    build_mil_model(name, dim, **hparams) -> MILModel             # models.py
    MILConfig, PRESETS, preset("demo" | "paper", **overrides)     # config.py
    train_mil / train_all -> MILResult                            # train.py
    score_bags / load_mil_model / score_saved_models -> ModelScores  # inference.py
    build_report(scores, test, out_dir, val_auc) -> Report        # report/
    check_beats_distance(val_auc) -> (passed, metadata)
    make_toy_bags(...) -> BagTensors                              # toy.py
"""

from wrmil_core.mil.config import DEFAULT_MODELS, PRESETS, MILConfig, preset
from wrmil_core.mil.inference import (
    ModelScores,
    check_bags,
    load_mil_model,
    score_bags,
    score_saved_models,
)
from wrmil_core.mil.models import MODEL_NAMES, MILModel, build_mil_model
from wrmil_core.mil.report import Report, build_report, check_beats_distance
from wrmil_core.mil.toy import make_toy_bags
from wrmil_core.mil.train import MILResult, results_metadata, train_all, train_mil

__all__ = [
    "DEFAULT_MODELS",
    "MODEL_NAMES",
    "PRESETS",
    "MILConfig",
    "MILModel",
    "MILResult",
    "ModelScores",
    "Report",
    "build_mil_model",
    "build_report",
    "check_bags",
    "check_beats_distance",
    "load_mil_model",
    "make_toy_bags",
    "preset",
    "results_metadata",
    "score_bags",
    "score_saved_models",
    "train_all",
    "train_mil",
]
