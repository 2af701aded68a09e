"""Models and documents for the scoring tests (helpers only; no tests in this module).

The embedding here is a deterministic toy, not a trained network (training one that separates
synthetic writers takes minutes on a CPU): a randomly initialised timm CNN whose BatchNorm
statistics are estimated on synthetic words, so its features are standardised random conv
features. Those separate hands that differ in ink darkness, stroke width and slant, so the
questioned documents are written by a light, thin, back-slanted host and a forger with heavy,
black, forward-slanted strokes (each with its own synthetic letter shapes). The MIL model is the
training-free ``distance`` model saved with thresholds; an untrained ``abmil`` covers the
attention-model branch; the word-level ``segment_scan`` detector scores whole documents. Each
MIL model gets a crafted ``calibration.json`` (:func:`crafted_evidence`: a hand-set PAV map and
1 % / 5 % FPR thresholds placed between the toy genuine and mixed documents' scores), not a fit:
fitting needs validation bags, and the tests check how scoring *applies* a calibration.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import torch

from wrmil_core import synth
from wrmil_core.artifacts import save_model
from wrmil_core.detectors.two_covariance import fit_two_covariance
from wrmil_core.evidence import Calibrator, DetectorEvidence, save_evidence

WORDS = list(synth.DEMO.words)
EMB_DIM = 32
WINDOW, BAG = 5, 10
N_WORDS = 60                 # 12 windows -> 3 sliding bags of 10
FOREIGN = range(25, 35)      # a 10-word passage: windows 5 and 6
# A cosine distance of 0.45 of a window from the rest of its bag, on the bag-probability scale.
THRESHOLDS = {"max_f1": float(1 / (1 + np.exp(-0.45))), "fpr_5": float(1 / (1 + np.exp(-0.6)))}
MODELS = ("distance", "abmil", "segment_scan")


def sigmoid(v: float) -> float:
    return float(1 / (1 + np.exp(-v)))


# Crafted calibrations, on the bag logit (the raw score is its sigmoid): PAV knots (logit, P(H1)) and
# the 1 % / 5 % FPR thresholds. segment_scan: the toy genuine document's statistic is about 1.7, the
# mixed one's about 4.7; distance: the old max_f1 threshold (a cosine distance of 0.45) separates them.
CALIBRATIONS: dict[str, dict[str, Any]] = {
    "segment_scan": {"knots": ((0.0, 0.05), (2.5, 0.5), (4.0, 0.9), (6.0, 0.99)), "fpr_1": 4.0, "fpr_5": 2.5},
    "distance": {"knots": ((0.2, 0.1), (0.45, 0.5), (0.6, 0.9)), "fpr_1": 0.6, "fpr_5": 0.45},
    "abmil": {"knots": ((-1.0, 0.1), (0.0, 0.5), (1.0, 0.9)), "fpr_1": 1.0, "fpr_5": 0.5},
}


def crafted_evidence(name: str, model_id: str, knots: tuple[tuple[float, float], ...], fpr_1: float, fpr_5: float,
                     lower: float = -2.0, upper: float = 3.0) -> DetectorEvidence:
    """A hand-set calibration (logit knots, thresholds as logits) in the format mil_model saves."""
    cal = Calibrator(x=tuple(sigmoid(k) for k, _ in knots), p=tuple(p for _, p in knots), lower=lower, upper=upper,
                     n_h1=100, n_h2=200, n_writers=8)
    return DetectorEvidence(model_name=name, model_id=model_id, calibrator=cal,
                            thresholds={"fpr_1": sigmoid(fpr_1), "fpr_5": sigmoid(fpr_5)}, n_genuine_val=200)


def host_style(writer: int) -> synth.WriterStyle:
    """The host's hand: light ink, thin strokes, slanted back."""
    return dataclasses.replace(synth.sample_writer_style(writer, 0), ink=70.0, stroke_width=1.3, slant=-0.1)


def forger_style(writer: int) -> synth.WriterStyle:
    """The forger's hand: black ink, heavy strokes, slanted forward."""
    return dataclasses.replace(synth.sample_writer_style(writer, 0), ink=0.0, stroke_width=3.0, slant=0.45)


def write_document(folder: Path, n: int = N_WORDS, foreign: range | None = None, seed: int = 0,
                   host: int = 10, forger: int = 11) -> Path:
    """Word images ``w0.png .. w{n-1}.png`` (the prompts' words in order) by one host, with the
    positions in ``foreign`` written by the forger."""
    folder.mkdir(parents=True, exist_ok=True)
    a, b = host_style(host), forger_style(forger)
    for i in range(n):
        style = b if foreign is not None and i in foreign else a
        synth.render_word(WORDS[i % len(WORDS)], style, np.random.default_rng([seed, i])).save(folder / f"w{i}.png")
    return folder


def toy_embedding_model(directory: Path) -> str:
    """Save the toy embedding (random CNN, BatchNorm statistics from synthetic words); return its id."""
    from wrmil_core.embedding.config import preset
    from wrmil_core.embedding.data import WordTransform
    from wrmil_core.embedding.model import build_model

    torch.manual_seed(0)
    # pinned backbone: the toy embedding must not change when the demo preset is retuned
    cfg = preset("demo", backbone="lcnet_050", device="cpu", num_workers=0, emb_dim=EMB_DIM, hidden_dim=64,
                 img_h=32, img_w=128)
    model = build_model(cfg)
    tf = WordTransform(cfg, train=False)
    styles = [host_style(w) if w % 2 else forger_style(w) for w in range(4)]
    x = torch.stack([tf(synth.render_word(WORDS[i], s, np.random.default_rng([9, k, i])))
                     for k, s in enumerate(styles) for i in range(len(WORDS))])
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batch
    model.train()
    with torch.no_grad():
        model(x)
    return save_model(directory, model.state_dict(), cfg.to_dict())


def save_mil(directory: Path, name: str, dim: int, embedding_model_id: str,
             thresholds: dict[str, float] = THRESHOLDS, calibrated: bool = True) -> Path:
    """Save an untrained MIL model the way ``mil.train`` does (config keys included), with its
    crafted ``calibration.json`` unless ``calibrated`` is False (a model materialised before
    calibrated scoring)."""
    from wrmil_core.mil.registry import build_mil_model

    torch.manual_seed(0)
    model = build_mil_model(name, dim)
    config = {"model_name": name, "hparams": model.hparams, "dim": dim, "bag_size": BAG, "window_size": WINDOW,
              "embedding_model_id": embedding_model_id, "thresholds": thresholds, "trainable": model.trainable,
              "val_auc": 0.9}
    model_id = save_model(directory, {k: v.float() for k, v in model.state_dict().items()}, config)
    if calibrated:
        save_evidence(crafted_evidence(name, model_id, **CALIBRATIONS[name]), directory)
    return directory


def scoring_setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Models (toy embedding, distance + abmil MIL, mismatching MIL models), the records of a
    materialised artifact dir, and a genuine and a mixed document.

    Built once per test session under the session's base temp dir (the toy embedding takes
    seconds), so every module that scores shares it; a marker file says the build finished.
    """
    base = tmp_path_factory.getbasetemp() / "scoring_setup"
    paths = _setup_paths(base)
    if not (base / "built").is_file():
        _build_setup(paths)
        (base / "built").touch()
    paths["emb_id"] = json.loads((paths["emb_dir"] / "config.json").read_text())["model_id"]
    return paths


def _setup_paths(base: Path) -> dict[str, Any]:
    art = base / "artifacts"
    return {"base": base, "art": art, "emb_dir": art / "arcface" / "model",
            "mil": {n: art / "mil" / n for n in MODELS},
            "mil_wrong_dim": base / "wrong_dim", "mil_wrong_id": base / "wrong_id",
            "mil_uncalibrated": base / "uncalibrated", "genuine": base / "genuine", "mixed": base / "mixed"}


def _build_setup(p: dict[str, Any]) -> None:
    emb_id = toy_embedding_model(p["emb_dir"])
    for name, directory in p["mil"].items():
        save_mil(directory, name, EMB_DIM, emb_id)
    assets = p["art"] / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    (assets / "arcface_model.json").write_text(json.dumps(
        {"model_dir": str(p["emb_dir"]), "model_id": emb_id, "emb_dim": EMB_DIM}))
    (assets / "mil_model.json").write_text(json.dumps(
        {"embedding_model_id": emb_id,
         "models": {n: {"model_dir": str(d), "thresholds": THRESHOLDS, "val_auc": 0.9} for n, d in p["mil"].items()}}))
    (assets / "difficulty_report.json").write_text(json.dumps({"best_model": "distance"}))
    save_mil(p["mil_uncalibrated"], "distance", EMB_DIM, emb_id, calibrated=False)
    save_mil(p["mil_wrong_dim"], "distance", 2 * EMB_DIM, emb_id)
    save_mil(p["mil_wrong_id"], "distance", EMB_DIM, "0123456789abcdef")
    write_document(p["genuine"])
    write_document(p["mixed"], foreign=FOREIGN)


def synthetic_embeddings(writers: range, words_per_writer: int, dim: int = 8, mean_norm: float = 5.0,
                         doc_words: int = 50, seed: int = 0) -> pl.DataFrame:
    """An embeddings table of Gaussian "writers": writer ``w``'s words are ``mu_w + N(0, I)``, ``mu_w``
    of norm ``mean_norm`` in a random direction (so every writer's cosine geometry is alike), in
    documents of ``doc_words`` words (the length calibration reads each writer's documents in order
    as one sequence)."""
    rng = np.random.default_rng(seed)
    rows, vecs = [], []
    for w in writers:
        mu = rng.normal(size=dim)
        mu *= mean_norm / np.linalg.norm(mu)
        vecs.append(mu + rng.normal(size=(words_per_writer, dim)))
        rows += [(w, f"w{w:03d}_d{i // doc_words:03d}", i % doc_words) for i in range(words_per_writer)]
    writer, doc_id, position = zip(*rows)
    return pl.DataFrame({
        "word_id": pl.Series(range(len(rows)), dtype=pl.Int64), "writer": pl.Series(writer, dtype=pl.Int64),
        "doc_id": pl.Series(doc_id, dtype=pl.Utf8), "position": pl.Series(position, dtype=pl.Int32),
        "emb": pl.Series(np.concatenate(vecs).astype(np.float32), dtype=pl.Array(pl.Float32, dim)),
        "model_id": pl.Series(["toy"] * len(rows), dtype=pl.Utf8)})


def save_fused(directory: Path, val_emb: pl.DataFrame, dim: int = 8) -> tuple[Path, str]:
    """A fused model whose two-covariance model is fitted on ``val_emb``'s writers (one group each)."""
    groups = np.stack([np.stack(g) for g in val_emb.group_by("writer", maintain_order=True)
                       .agg("emb")["emb"].to_list()])[:, :200]
    from wrmil_core.mil.registry import build_mil_model

    model = build_mil_model("fused", dim)
    model.cov.set(fit_two_covariance(torch.as_tensor(groups, dtype=torch.float64)))
    config = {"model_name": "fused", "hparams": model.hparams, "dim": dim, "bag_size": 10, "window_size": 5,
              "embedding_model_id": "toy", "thresholds": {"fpr_5": 0.5}, "trainable": False}
    return directory, save_model(directory, dict(model.state_dict()), config)
