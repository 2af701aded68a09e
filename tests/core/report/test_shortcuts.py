"""The report's shortcut controls: baseline bags gathered only against the model they belong to,
the distance detector and verification per embedding, and a report that adds a section and
changes nothing else."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from tests.support.bag_tables import synth_table
from wrmil_core.bags.build import build_bags
from wrmil_core.bags.config import preset
from wrmil_core.bags.tensors import gather_bags
from wrmil_core.detectors.run import score_bags
from wrmil_core.embedding.evaluate import embedding_quality
from wrmil_core.errors import WrmilInputError
from wrmil_core.evidence.scored import ModelScores
from wrmil_core.metrics import fit_thresholds
from wrmil_core.mil.registry import build_mil_model
from wrmil_core.report import build_report, evaluate_controls, gather_baseline_bags
from wrmil_core.report.render import SHORTCUT_HEADING

DOCS, DOC_WRITERS = [120] * 18, [d // 3 for d in range(18)]  # 6 writers x 3 documents


def _with_vectors(table: pl.DataFrame, emb: np.ndarray, model_id: str) -> pl.DataFrame:
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    return table.with_columns(pl.Series("emb", emb.astype(np.float32), dtype=pl.Array(pl.Float32, emb.shape[1])),
                              pl.lit(model_id).alias("model_id"))


@pytest.fixture(scope="module")
def tables() -> dict[str, pl.DataFrame]:
    """A trained embedding that knows the writers, and two baselines of the same words that do not."""
    base = synth_table(DOCS, DOC_WRITERS, dim=8, seed=4, model_id="m1")
    rng = np.random.default_rng(0)
    writers = base["writer"].to_numpy()
    trained = rng.normal(size=(6, 8))[writers] + 0.7 * rng.normal(size=(base.height, 8))
    return {"trained": _with_vectors(base, trained, "m1"),
            "untrained": _with_vectors(base, rng.normal(size=(base.height, 8)), "untrained@m1"),
            "pixels": _with_vectors(base, rng.normal(size=(base.height, 32)), "pixels@m1")}


@pytest.fixture(scope="module")
def bags(tables) -> pl.DataFrame:
    return build_bags(tables["trained"], "test", preset("demo")).bags


def test_baseline_bags_hold_the_baseline_vectors_of_the_same_bags(bags, tables) -> None:
    trained = gather_bags(bags, tables["trained"])
    pix = gather_baseline_bags(bags, tables["pixels"], "pixels")
    assert pix.model_id == "pixels@m1" and pix.x.shape == (*trained.x.shape[:3], 32)
    assert np.array_equal(pix.bag_id, trained.bag_id) and np.array_equal(pix.label, trained.label)
    # the first word of the first bag, looked up by hand
    first = int(bags["word_ids"][0][0])
    row = tables["pixels"].filter(pl.col("word_id") == first)["emb"].to_numpy()[0]
    np.testing.assert_array_equal(pix.x[0, 0, 0].numpy(), row)


def test_baseline_gathering_keeps_the_stale_check(bags, tables) -> None:
    with pytest.raises(WrmilInputError, match="stale"):  # the normal path still refuses another model
        gather_bags(bags, tables["pixels"])
    with pytest.raises(WrmilInputError, match="stale"):  # a baseline of an older model
        gather_baseline_bags(bags, tables["pixels"].with_columns(pl.lit("pixels@m0").alias("model_id")), "pixels")
    with pytest.raises(WrmilInputError, match="stale"):  # another baseline's table
        gather_baseline_bags(bags, tables["untrained"], "pixels")
    with pytest.raises(WrmilInputError, match="stale"):  # the trained table is no baseline
        gather_baseline_bags(bags, tables["trained"], "untrained")


def test_controls_by_hand(bags, tables) -> None:
    sc = evaluate_controls(bags, tables, n_boot=100, verify_boot=50, n_pairs=4000, n_queries=100)
    assert sc.embeddings == ["trained", "untrained", "pixels"] and sc.difficulties == [0.05, 0.1, 0.2, 0.3]
    trained = gather_bags(bags, tables["trained"])
    probs, _ = score_bags(build_mil_model("distance", 8), trained)
    y = trained.label.numpy()
    for r in sc.difficulties:
        sel = (y == 0) | np.isclose(trained.ratio, r)
        assert sc.detection_auc("trained", r) == pytest.approx(roc_auc_score(y[sel], probs[sel]))
    for e in sc.embeddings:
        q = embedding_quality(tables[e]["emb"].to_numpy(), tables[e]["writer"].to_numpy(), 4000, 100, 0, 50)
        assert sc.verification[e] == q
    assert sc.mean_detection_auc("trained") > 0.8 > 0.65 > sc.mean_detection_auc("pixels")
    assert sc.verification["trained"]["auc"] > 0.85 and abs(sc.verification["pixels"]["auc"] - 0.5) < 0.1
    margin = sc.margin_over("pixels")
    assert margin["verification_auc"] == pytest.approx(sc.verification["trained"]["auc"]
                                                       - sc.verification["pixels"]["auc"])
    h = sc.headline
    assert h["shortcut/pixels/distance_auc_20"] == sc.detection_auc("pixels", 0.2)
    assert {"shortcut/untrained/verification_auc_lo", "shortcut/margin_over_pixels/distance_mean_auc",
            "shortcut/trained/distance_mean_auc"} <= set(h)
    assert all(isinstance(v, float) and math.isfinite(v) for v in h.values())


def _report(out: Path, bags, tables, with_controls: bool):
    test = gather_bags(bags, tables["trained"])
    y = test.label.numpy()
    dist = score_bags(build_mil_model("distance", 8), test)
    scores = {"distance": ModelScores(dist[0], dist[1], fit_thresholds(y, dist[0]))}
    sc = evaluate_controls(bags, tables, n_boot=100, verify_boot=30, n_pairs=2000, n_queries=60) if with_controls \
        else None
    return build_report(scores, test, out, val_auc={"distance": 0.9}, n_boot=100, shortcuts=sc)


def test_report_adds_the_section_and_changes_nothing_else(tmp_path, bags, tables) -> None:
    plain = _report(tmp_path / "plain", bags, tables, with_controls=False)
    rep = _report(tmp_path / "controls", bags, tables, with_controls=True)
    assert rep.evaluation == plain.evaluation and rep.markdown_table == plain.markdown_table
    md, md_plain = rep.paths["md"].read_text(), plain.paths["md"].read_text()
    section = md[md.index(f"## {SHORTCUT_HEADING}"):md.index("## Plots")]
    assert md.replace(section, "") == md_plain  # the trained rows and every other line are the same
    for label in ("trained embedding", "untrained network", "raw pixels"):
        assert f"| {label} |" in section and label in rep.paths["html"].read_text()
    for pct in ("5", "10", "20", "30"):
        assert f"distance AUC {pct}% [95% CI]" in section
    sc = rep.shortcuts
    assert f"{sc.verification['trained']['n_writers']} test writers" in section
    assert "beats raw pixels" in section  # the verdict: pixels are far behind here
    doc, doc_plain = json.loads(rep.paths["json"].read_text()), json.loads(plain.paths["json"].read_text())
    assert doc.pop("shortcut_controls") == json.loads(json.dumps(sc.as_dict())) and doc == doc_plain
    assert SHORTCUT_HEADING not in plain.paths["html"].read_text() and plain.shortcut_table == ""


def test_verdict_warns_when_pixels_come_close(tmp_path, bags, tables) -> None:
    """Raw pixels that carry the writer (here: the trained vectors themselves) trigger the warning."""
    close = {**tables, "pixels": tables["trained"].with_columns(pl.lit("pixels@m1").alias("model_id"))}
    rep = _report(tmp_path, bags, close, with_controls=True)
    md = rep.paths["md"].read_text()
    assert "The trained embedding does not beat raw pixels by 0.05 AUC" in md and "shortcut" in md
    assert rep.shortcuts.margin_over("pixels")["distance_mean_auc"] == pytest.approx(0.0)
