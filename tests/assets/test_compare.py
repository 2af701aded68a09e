"""Two-document comparison: ``wrmil_core.scoring.compare`` and ``wrmil compare``, on toy word images
and the toy embedding of ``tests/support/scoring.py``, with a fused model whose two-covariance model
is fitted on toy writers' documents and a crafted comparison calibration (log10 LR = raw LLR / ln 10,
bounded; the fit on validation pairs is tested in tests/core/evidence/test_compare_calibration.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.support.scoring import EMB_DIM, scoring_setup, write_document
from wrmil_assets.cli import main
from wrmil_core.artifacts import save_model
from wrmil_core.detectors.two_covariance import fit_two_covariance
from wrmil_core.errors import WrmilInputError
from wrmil_core.evidence.calibration import logistic_calibrator
from wrmil_core.evidence.compare_calibration import COMPARE_WORDS, CompareCalibration, save_compare_calibration
from wrmil_core.mil.registry import build_mil_model
from wrmil_core.scoring.compare import compare_documents, document_embedding
from wrmil_core.scoring.score import load_scoring_models

N = 30  # words per toy document


def _doc(base: Path, name: str, writer: int, seed: int, forger: bool) -> Path:
    """A one-writer document: ``writer`` in the host's hand, or (``forger``) in the forger's."""
    foreign = range(N) if forger else None
    return write_document(base / name, n=N, foreign=foreign, seed=seed, host=writer, forger=writer)


def _crafted_calibration(model_id: str) -> CompareCalibration:
    """log10 LR = LLR / ln 10 within [-3, 3] at every size."""
    s, y = np.array([-10.0, -1.0, 1.0, 10.0]), np.array([0, 0, 1, 1])
    cal = logistic_calibrator(0.0, 1 / math.log(10), s, y, n_writers=4)
    cal = type(cal)(**{**cal.__dict__, "lower": -3.0, "upper": 3.0})
    return CompareCalibration("fused", model_id, buckets=dict.fromkeys(COMPARE_WORDS, cal),
                              n_pairs={n: {"same": 10, "different": 40} for n in COMPARE_WORDS}, n_writers=4)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The toy embedding, a fused model fitted on four toy writers (two hands each style) and documents."""
    paths = scoring_setup(tmp_path_factory)
    base = tmp_path_factory.mktemp("compare")
    models = load_scoring_models(paths["emb_dir"], paths["mil"]["distance"])
    fit_docs = [_doc(base, f"fit{w}", w, seed=100 + w, forger=w % 2 == 1) for w in (20, 21, 22, 23)]
    groups = np.stack([document_embedding(d, models, base / "cuts") for d in fit_docs])
    fused = build_mil_model("fused", EMB_DIM)
    fused.cov.set(fit_two_covariance(torch.as_tensor(groups, dtype=torch.float64), shrinkage=0.5))
    config = {"model_name": "fused", "hparams": fused.hparams, "dim": EMB_DIM, "bag_size": 10, "window_size": 5,
              "embedding_model_id": paths["emb_id"], "thresholds": {"fpr_5": 0.5}, "trainable": False}
    mil_dir = base / "fused"
    model_id = save_model(mil_dir, dict(fused.state_dict()), config)
    save_compare_calibration(_crafted_calibration(model_id), mil_dir)
    return {**paths, "fused": mil_dir, "base": base,
            "q": _doc(base, "q", 10, seed=1, forger=False), "k_same": _doc(base, "k_same", 10, seed=2, forger=False),
            "k_other": _doc(base, "k_other", 11, seed=3, forger=True)}


def test_same_writer_above_zero_different_below(setup: dict[str, Any]) -> None:
    same = compare_documents(setup["q"], [setup["k_same"]], setup["emb_dir"], setup["fused"], setup["base"] / "w1")
    other = compare_documents(setup["q"], [setup["k_other"]], setup["emb_dir"], setup["fused"], setup["base"] / "w2")
    assert same.log10_lr > 0 > other.log10_lr
    assert same.verbal.endswith("for same writer") and other.verbal.endswith("for different writers")
    assert same.n_questioned == same.n_known == N and same.calibration["words_per_side"] == 25
    pooled = compare_documents(setup["q"], [setup["k_same"], setup["k_same"]], setup["emb_dir"], setup["fused"],
                               setup["base"] / "w3")
    assert pooled.n_known == 2 * N and pooled.calibration["words_per_side"] == 50  # harmonic mean 40


def test_refuses_a_detector_without_the_writer_model(setup: dict[str, Any]) -> None:
    with pytest.raises(WrmilInputError, match="'fused' detector"):
        compare_documents(setup["q"], [setup["k_same"]], setup["emb_dir"], setup["mil"]["distance"], setup["base"])
    with pytest.raises(WrmilInputError, match="no known document"):
        compare_documents(setup["q"], [], setup["emb_dir"], setup["fused"], setup["base"])


def test_cli_prints_and_writes_compare_json(setup: dict[str, Any], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["compare", str(setup["q"]), str(setup["k_other"]), "--embedding-model", str(setup["emb_dir"]),
               "--mil-model", str(setup["fused"]), "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "H1 same writer vs H2 different writers" in out and "for different writers" in out
    assert "25 words per side" in out and f"({N} words)" in out
    saved = json.loads((tmp_path / "compare.json").read_text())
    assert saved["log10_lr"] < 0 and saved["hypotheses"]["H1"] == "same writer" and saved["n_known"] == N


def test_cli_exits_2_on_a_missing_document(setup: dict[str, Any], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["compare", str(setup["q"]), str(tmp_path / "nope"), "--embedding-model", str(setup["emb_dir"]),
               "--mil-model", str(setup["fused"]), "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "nope does not exist" in err[0]
