"""The report's length section: sliding-bag and whole-document scoring of saved models, the table."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from wrmil_core.detectors.run import score_tensor
from wrmil_core.evidence.fit import train_with_evidence
from wrmil_core.mil.config import preset
from wrmil_core.mil.documents import sliding_scorer
from wrmil_core.mil.registry import build_mil_model
from wrmil_core.mil.toy import make_toy_bags
from wrmil_core.report import build_report, evaluate_length
from wrmil_core.report.length import WHOLE, whole_scorer


def _emb(n_writers: int = 6, words: int = 120, dim: int = 16, seed: int = 0) -> pl.DataFrame:
    """Each writer's words around their own direction (one document each), unit vectors."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_writers, dim))
    x = np.repeat(centres, words, axis=0) + rng.normal(scale=0.8, size=(n_writers * words, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    w = np.repeat(np.arange(n_writers), words)
    return pl.DataFrame({"word_id": np.arange(len(w)), "writer": w, "doc_id": [f"d{v}" for v in w],
                         "position": pl.Series(np.tile(np.arange(words), n_writers), dtype=pl.Int32),
                         "emb": pl.Series(x.astype(np.float32), dtype=pl.Array(pl.Float32, dim)), "model_id": "toy"})


def test_sliding_is_the_max_over_bags_and_whole_is_one_bag() -> None:
    model = build_mil_model("distance", 8)
    x = np.random.default_rng(0).normal(size=(3, 60, 8)).astype(np.float32)  # 12 windows of 5: 3 bags of 10
    got = sliding_scorer(model, window_size=5, bag_size=10, chunk=2)(x)
    for i in range(3):
        bags = np.stack([x[i, 5 * b:5 * b + 50].reshape(10, 5, 8) for b in range(3)])
        assert got[i] == pytest.approx(score_tensor(model, bags)[0].max())
    whole = whole_scorer(model, window_size=5)(x)
    assert np.allclose(whole, score_tensor(model, x.reshape(3, 12, 5, 8))[0])
    short = sliding_scorer(model, window_size=5, bag_size=10)(x[:, :25])  # fewer windows than a bag: one bag
    assert np.allclose(short, score_tensor(model, x[:, :25].reshape(3, 5, 5, 8))[0])


def test_length_section_from_saved_models(tmp_path) -> None:
    cfg = preset("demo", tensorboard=False, num_threads=1)
    train, val = make_toy_bags(30, seed=1, dim=16), make_toy_bags(40, seed=2, dim=16)
    res = train_with_evidence(["distance", "segment_scan"], train, val, cfg, tmp_path / "mil")
    thr = {n: r.evidence.thresholds["fpr_5"] for n, r in res.items()}
    rows = evaluate_length({n: r.model_dir for n, r in res.items()}, thr, _emb(), lengths=(25, 50), per_writer=3)
    names = {r.model for r in rows}
    assert names == {"distance", "distance" + WHOLE, "segment_scan", "segment_scan" + WHOLE}
    for r in rows:
        assert (r.n_h1, r.n_h2, r.n_writers) == (18, 18, 6) and r.auc is not None
    test = make_toy_bags(20, seed=3, dim=16)
    from wrmil_core.evidence.scored import score_saved_models

    scored, val_auc = score_saved_models({n: r.model_dir for n, r in res.items()}, test)
    rep = build_report(scored, test, tmp_path / "rep", val_auc=val_auc, n_boot=20, length_rows=rows)
    md = rep.paths["md"].read_text()
    assert "## Detection against document length" in md and "| segment_scan (whole) | 50 | 6 | 18 | 18 |" in md
    assert rep.paths["length_plot"].read_bytes()[:4] == b"\x89PNG"
    doc = json.loads(rep.paths["json"].read_text())
    assert [r["length"] for r in doc["length_curve"] if r["model"] == "distance"] == [25, 50]
    assert "segment_scan_whole/length_auc_50" in rep.headline and "distance/length_fpr_25" in rep.headline
