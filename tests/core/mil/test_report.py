"""The difficulty report: every model and difficulty in html/md/json, n/a handling, best model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from wrmil_core.mil.metrics import fit_thresholds, roc_auc
from wrmil_core.mil.models import build_mil_model
from wrmil_core.mil.report import build_report, check_beats_distance
from wrmil_core.mil.toy import make_toy_bags
from wrmil_core.mil.train import score_bags


def _fake_results(test, rng):
    """Three 'models': the distance baseline, an oracle, and noise named abmil."""
    y = test.label.numpy()
    wf = test.window_foreign.numpy().astype(float)
    dist = score_bags(build_mil_model("distance", test.x.shape[-1]), test)
    oracle = (1 / (1 + np.exp(-(100 * test.foreign_word_frac + rng.normal(size=len(y))))), wf + rng.random(wf.shape))
    noise = (rng.random(len(y)), rng.random(wf.shape))
    return {name: (p, w, fit_thresholds(y, p)) for name, (p, w) in
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
    for p in rep.paths.values():
        assert Path(p).is_file()
    assert rep.main_plot_png.read_bytes()[:4] == b"\x89PNG"


def test_report_numbers(report) -> None:
    rep, results, test = report
    y = test.label.numpy()
    assert rep.best_model == "oracle"
    for r in rep.rows:
        if r["ratio"] > 0:
            sel = (y == 0) | np.isclose(test.ratio, r["ratio"])
            assert r["auc"] == pytest.approx(roc_auc(y[sel], results[r["model"]][0][sel]))
            assert r["auc_lo"] <= r["auc"] <= r["auc_hi"]
    gain5 = rep.headline["oracle/auc_5"] - rep.headline["abmil/auc_5"]
    assert rep.gain_over_abmil["5"] == pytest.approx(gain5)
    assert rep.headline["best/gain_over_abmil_5"] == pytest.approx(gain5)
    assert all(isinstance(v, float) and math.isfinite(v) for v in rep.headline.values())
    assert "oracle/fpr_at_fpr_5" in rep.headline and "distance/det_at_max_f1_30" in rep.headline
    assert "oracle" in rep.summary and "abmil" in rep.summary


def test_missing_difficulty_is_na_not_a_crash(tmp_path: Path) -> None:
    test = make_toy_bags(30, ratios=(0.05, 0.15), n_contaminated_per_ratio=20, seed=6)
    rng = np.random.default_rng(1)
    results = _fake_results(test, rng)
    rep = build_report(results, test, tmp_path, n_boot=50)
    text = json.loads(rep.paths["json"].read_text())  # strict JSON: would fail on NaN
    rows = {(r["model"], r["difficulty"]): r for r in text["rows"]}
    assert rows[("oracle", "30%")]["auc"] is None and rows[("oracle", "30%")]["n_bags"] == 0
    assert rows[("oracle", "15%")]["auc"] is not None  # a ratio outside the standard four gets a row
    assert "n/a" in rep.markdown_table
    assert "abmil/auc_30" not in rep.headline and "abmil/auc_15" in rep.headline


def test_no_contaminated_bags_at_all(tmp_path: Path) -> None:
    test = make_toy_bags(20, ratios=(), seed=7)
    results = {"distance": (np.random.default_rng(0).random(20), np.zeros((20, 10)), {"max_f1": 0.5, "fpr_5": 0.9})}
    rep = build_report(results, test, tmp_path, n_boot=50)
    assert rep.best_model is None and rep.paths["html"].is_file()
    assert rep.headline["distance/fpr_at_max_f1"] == pytest.approx((results["distance"][0] >= 0.5).mean())
    assert rep.headline["distance/fpr_at_fpr_5"] == pytest.approx((results["distance"][0] >= 0.9).mean())
    assert not any("auc" in k or "recall" in k or "f1" in k.replace("max_f1", "") for k in rep.headline)


def test_check_beats_distance() -> None:
    ok, md = check_beats_distance({"abmil": 0.6, "contrast": 0.95, "distance": 0.9})
    assert ok and md["best_learned_model"] == "contrast" and md["models_not_beating_baseline"] == "abmil"
    bad, md = check_beats_distance({"abmil": 0.6, "contrast": 0.88, "distance": 0.9})
    assert not bad and md["gain_over_baseline"] == pytest.approx(-0.02)
    assert check_beats_distance({"abmil": 0.6})[0]
