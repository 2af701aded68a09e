"""Saved models scored on bags, with the evidence saved beside each one.

A saved model directory (written by :mod:`wrmil_core.mil.train`) holds the weights and a JSON
config with the model name, its constructor hparams, the bag geometry and embedding model it was
trained on, its decision thresholds and its val AUC; beside them ``calibration.json`` holds the
detector's evidence (:mod:`wrmil_core.evidence.store`: score -> log10 LR and 1%/5%-FPR thresholds).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wrmil_core.bags.tensors import BagTensors
from wrmil_core.detectors.run import check_bags, score_bags
from wrmil_core.evidence.store import EVIDENCE_FILE, DetectorEvidence, load_evidence
from wrmil_core.mil.registry import load_mil_model


@dataclass(frozen=True)
class ModelScores:
    """One model's scores of a set of bags, the decision thresholds and the evidence saved with it."""

    bag_probs: np.ndarray  # (B,) float64: sigmoid of the bag logit
    window_scores: np.ndarray  # (B, n_win) float64: higher = more likely foreign
    thresholds: dict[str, float]
    evidence: DetectorEvidence | None = None  # None: no calibration saved with the model

    def log10_lr(self) -> np.ndarray | None:
        """The bags' calibrated log10 LRs (H1: more than one writer), None without evidence."""
        return None if self.evidence is None else self.evidence.log10_lr(self.bag_probs)


def score_saved_models(model_dirs: dict[str, str | Path], bags: BagTensors, batch_size: int = 512,
                       device: str = "cpu") -> tuple[dict[str, ModelScores], dict[str, float]]:
    """Load each saved model, check ``bags`` fit it (embedding model id, geometry) and score them.

    Returns ``(scores, val_auc)``: each model's :class:`ModelScores` (the input of
    :func:`wrmil_core.report.build_report`, with the model's evidence when its directory holds
    ``calibration.json``; a stale one is refused) and its saved val AUC.
    """
    scores, val_auc = {}, {}
    for name, directory in model_dirs.items():
        model, cfg = load_mil_model(directory, device)
        check_bags(bags, f"bags scored by model {name!r} ({directory})", model_id=cfg["embedding_model_id"],
                   dim=cfg["dim"], bag_size=cfg["bag_size"], window_size=cfg["window_size"])
        probs, ws = score_bags(model, bags, batch_size)
        evidence = (load_evidence(directory, model_id=cfg.get("model_id"))
                    if (Path(directory) / EVIDENCE_FILE).is_file() else None)
        scores[name] = ModelScores(bag_probs=probs, window_scores=ws, thresholds=dict(cfg["thresholds"]),
                                   evidence=evidence)
        if cfg.get("val_auc") is not None:
            val_auc[name] = float(cfg["val_auc"])
    return scores, val_auc


__all__ = ["ModelScores", "score_saved_models"]
