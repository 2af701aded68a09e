"""The difficulty report: every model and difficulty in html/md/json, rows follow the test ratios,
n/a handling, best model, and the JSON carrying the evaluated numbers verbatim."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from wrmil_core.detectors.run import score_bags
from wrmil_core.evidence.scored import ModelScores
from wrmil_core.metrics import fit_thresholds, roc_auc
from wrmil_core.mil.registry import build_mil_model
from wrmil_core.mil.toy import make_toy_bags
from wrmil_core.report import build_report, check_beats_distance, evaluate_scores


def _fake_results(test, rng, thresholds=None) -> dict[str, ModelScores]:
    """Three 'models': the distance baseline, an oracle, and noise named abmil."""
    y = test.label.numpy()
    wf = test.window_foreign.numpy().astype(float)
    dist = score_bags(build_mil_model("distance", test.x.shape[-1]), test)
    oracle = (1 / (1 + np.exp(-(100 * test.foreign_word_frac + rng.normal(size=len(y))))), wf + rng.random(wf.shape))
    noise = (rng.random(len(y)), rng.random(wf.shape))
    return {name: ModelScores(p, w, thresholds or fit_thresholds(y, p)) for name, (p, w) in
            {"abmil": noise, "oracle": oracle, "distance": dist}.items()}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    test = make_toy_bags(40, seed=5, separation=1.0)
    results = _fake_results(test, np.random.default_rng(0))
    out = tmp_path_factory.mktemp("report")
    return build_report(results, test, out, val_auc={"abmil": 0.5, "oracle": 0.99, "distance": 0.9}, n_boot=200), results, test


def test_report_has_every_model_and_difficulty(report) -> None:
    rep, results, _test = report
    html = rep.paths["html"].read_text()
    md = rep.paths["md"].read_text()
    doc = json.loads(rep.paths["json"].read_text())
    for name in results:
        assert name in html and name in md and name in rep.markdown_table
        assert name in {r["model"] for r in doc["rows"]}
    for label in ("0%", "5%", "10%", "20%", "30%"):
        assert f"| {label}" in rep.markdown_table and label in html
        assert any(r["difficulty"] == label for r in doc["rows"])
    assert len(doc["rows"]) == 3 * 5
    assert "data:image/png;base64," in html and "<img" in html  # self-contained
    assert set(rep.paths) == {"main_plot", "roc_plot", "examples_plot", "md", "html", "json"}
    for p in rep.paths.values():
        assert Path(p).is_file()
    assert rep.main_plot_png.read_bytes()[:4] == b"\x89PNG"
    assert doc["best_model"] == rep.best_model and doc["summary"] == rep.summary and rep.summary in md


def test_report_numbers(report) -> None:
    rep, results, test = report
    y = test.label.numpy()
    ev = rep.evaluation
    assert rep.best_model == "oracle"
    for r in ev.rows:
        if r.ratio > 0:
            sel = (y == 0) | np.isclose(test.ratio, r.ratio)
            assert r.auc == pytest.approx(roc_auc(y[sel], results[r.model].bag_probs[sel]))
            assert r.auc_lo <= r.auc <= r.auc_hi
    gain5 = rep.headline["oracle/auc_5"] - rep.headline["abmil/auc_5"]
    assert ev.gain_over_abmil["5"] == pytest.approx(gain5)
    assert rep.headline["best/gain_over_abmil_5"] == pytest.approx(gain5)
    assert all(isinstance(v, float) and math.isfinite(v) for v in rep.headline.values())
    assert "oracle/fpr_at_fpr_5" in rep.headline and "distance/det_at_max_f1_30" in rep.headline
    assert "oracle" in rep.summary and "abmil" in rep.summary


def test_json_carries_the_evaluated_numbers(report) -> None:
    """The renderer formats, never recomputes: report.json equals a fresh evaluation."""
    rep, results, test = report
    doc = json.loads(rep.paths["json"].read_text())
    ev = evaluate_scores(results, test, n_boot=200)
    assert doc["rows"] == [r.as_dict() for r in ev.rows]
    assert doc["overall"] == {m: o.as_dict() for m, o in ev.overall.items()}
    assert doc["headline"] == ev.headline and doc["mean_auc"] == ev.mean_auc
    assert doc["thresholds"] == {m: s.thresholds for m, s in results.items()}
    row = next(r for r in doc["rows"] if r["model"] == "oracle" and r["difficulty"] == "20%")
    assert f"| 20% | oracle | {row['n_bags']} | {100 * row['foreign_frac']:.1f} | {row['auc']:.3f} [" in rep.markdown_table


def test_rows_follow_the_ratios_of_the_test_bags(tmp_path: Path) -> None:
    """Bags built with ratios [0.15] give a 15% row and no 5/10/20/30% rows."""
    test = make_toy_bags(30, ratios=(0.15,), n_contaminated_per_ratio=30, seed=6)
    results = _fake_results(test, np.random.default_rng(1))
    rep = build_report(results, test, tmp_path, val_auc={m: 0.9 for m in results}, n_boot=50)
    doc = json.loads(rep.paths["json"].read_text())
    assert doc["difficulties"] == [0.15] and rep.evaluation.difficulties == [0.15]
    assert {r["difficulty"] for r in doc["rows"]} == {"0%", "15%"} and len(doc["rows"]) == 3 * 2
    assert all(r["auc"] is not None and r["n_bags"] == 30 for r in doc["rows"] if r["ratio"] > 0)
    assert set(doc["gain_over_abmil"]) == {"15"} and "abmil/auc_15" in rep.headline
    md = rep.paths["md"].read_text()
    assert "AUC 15%" in md and "n/a" not in md
    for pct in ("5", "10", "20", "30"):
        assert f"AUC {pct}%" not in md and f"| {pct}%" not in md and f"abmil/auc_{pct}" not in rep.headline


def test_unanswerable_figures_are_na_not_a_crash(tmp_path: Path) -> None:
    """No genuine test bags: every AUC is n/a (strict JSON null), localisation still answers."""
    test = make_toy_bags(0, ratios=(0.05, 0.15), n_contaminated_per_ratio=20, seed=6)
    results = _fake_results(test, np.random.default_rng(1), thresholds={"max_f1": 0.5, "fpr_5": 0.9})
    rep = build_report(results, test, tmp_path, n_boot=50)
    text = json.loads(rep.paths["json"].read_text())  # strict JSON: would fail on NaN
    rows = {(r["model"], r["difficulty"]): r for r in text["rows"]}
    assert rows[("oracle", "15%")]["auc"] is None and rows[("oracle", "15%")]["n_bags"] == 20
    assert rows[("oracle", "15%")]["loc_auc"] is not None and rows[("oracle", "0%")]["n_bags"] == 0
    assert "n/a" in rep.markdown_table and rep.best_model is None
    assert not any("/auc_" in k for k in rep.headline) and "oracle/det_at_max_f1_15" in rep.headline


def test_no_contaminated_bags_at_all(tmp_path: Path) -> None:
    test = make_toy_bags(20, ratios=(), seed=7)
    results = {"distance": ModelScores(np.random.default_rng(0).random(20), np.zeros((20, 10)),
                                       {"max_f1": 0.5, "fpr_5": 0.9})}
    rep = build_report(results, test, tmp_path, n_boot=50)
    assert rep.best_model is None and rep.paths["html"].is_file() and rep.evaluation.difficulties == []
    assert rep.paths["roc_plot"].read_bytes()[:4] == b"\x89PNG"
    assert rep.headline["distance/fpr_at_max_f1"] == pytest.approx((results["distance"].bag_probs >= 0.5).mean())
    assert rep.headline["distance/fpr_at_fpr_5"] == pytest.approx((results["distance"].bag_probs >= 0.9).mean())
    assert not any("auc" in k or "recall" in k or "f1" in k.replace("max_f1", "") for k in rep.headline)


def test_scores_of_other_bags_are_refused(tmp_path: Path) -> None:
    test = make_toy_bags(10, seed=7)
    other = make_toy_bags(12, seed=7)
    with pytest.raises(ValueError, match="expected"):
        build_report(_fake_results(other, np.random.default_rng(0)), test, tmp_path)
    with pytest.raises(ValueError, match="at least one"):
        build_report({}, test, tmp_path)


def test_check_beats_distance() -> None:
    ok, md = check_beats_distance({"abmil": 0.6, "contrast": 0.95, "distance": 0.9})
    assert ok and md["best_learned_model"] == "contrast" and md["models_not_beating_baseline"] == "abmil"
    bad, md = check_beats_distance({"abmil": 0.6, "contrast": 0.88, "distance": 0.9})
    assert not bad and md["gain_over_baseline"] == pytest.approx(-0.02)
    assert check_beats_distance({"abmil": 0.6})[0]
