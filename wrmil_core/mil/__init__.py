"""Multiple-instance models that flag multi-writer bags, their training and the difficulty report.

Public API::

    build_mil_model(name, dim, **hparams) -> MILModel       # models.py
    MILConfig.preset("demo" | "paper", **overrides)         # train.py
    train_mil / train_all / load_mil_model / score_bags / score_saved_models
    build_report(results, test, out_dir, val_auc) -> Report  # report.py
    check_beats_distance(val_auc) -> (passed, metadata)
    make_toy_bags(...) -> BagTensors                         # toy.py
"""

from wrmil_core.mil.models import MODEL_NAMES, MILModel, build_mil_model
from wrmil_core.mil.report import DIFFICULTIES, Report, build_report, check_beats_distance
from wrmil_core.mil.toy import make_toy_bags
from wrmil_core.mil.train import (DEFAULT_MODELS, MILConfig, MILResult, check_bags, load_mil_model, results_metadata,
                                  score_bags, score_saved_models, train_all, train_mil)

__all__ = [
    "MODEL_NAMES", "MILModel", "build_mil_model", "DIFFICULTIES", "Report", "build_report", "check_beats_distance",
    "make_toy_bags", "DEFAULT_MODELS", "MILConfig", "MILResult", "check_bags", "load_mil_model", "results_metadata",
    "score_bags", "score_saved_models", "train_all", "train_mil",
]
