"""The report's forensic section: calibrated on val, measured on test, per difficulty / geometry /
overall, with the writers behind each figure, the few-data first line and the baseline verdict."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wrmil_core.detectors.run import score_bags
from wrmil_core.evidence import fit_evidence, forensic_metrics, rates_at_thresholds
from wrmil_core.evidence.scored import ModelScores
from wrmil_core.metrics import fit_thresholds, roc_auc
from wrmil_core.mil.registry import build_mil_model
from wrmil_core.mil.toy import make_toy_bags
from wrmil_core.report import build_report
from wrmil_core.report.forensic_text import FORENSIC_HEADING, GROUP_HEADINGS


def _probs(name: str, bags, rng) -> tuple[np.ndarray, np.ndarray]:
    if name == "distance":
        return score_bags(build_mil_model("distance", bags.x.shape[-1]), bags)
    wf = bags.window_foreign.numpy().astype(float)
    if name == "oracle":
        return 1 / (1 + np.exp(-(100 * bags.foreign_word_frac + rng.normal(size=len(bags))))), wf + rng.random(wf.shape)
    return rng.random(len(bags)), rng.random(wf.shape)  # abmil: noise


def _results(val, test, seed: int = 0) -> tuple[dict[str, ModelScores], dict[str, float]]:
    """distance (training-free), oracle (an unknown name: counts as learned), abmil (noise); each
    calibrated on the val bags and scored on the test bags."""
    rng = np.random.default_rng(seed)
    out, val_auc = {}, {}
    for name in ("abmil", "oracle", "distance"):
        vp, _ = _probs(name, val, rng)
        tp, tw = _probs(name, test, rng)
        ev = fit_evidence(name, f"id-{name}", vp, val.label.numpy(), n_writers=12)
        out[name] = ModelScores(tp, tw, fit_thresholds(val.label.numpy(), vp), evidence=ev)
        val_auc[name] = roc_auc(val.label.numpy(), vp)
    return out, val_auc


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    val = make_toy_bags(60, seed=1, separation=1.0)
    test = make_toy_bags(40, seed=5, separation=1.0)
    results, val_auc = _results(val, test)
    writers = np.arange(len(test)) % 9  # 9 test writers: few
    rep = build_report(results, test, tmp_path_factory.mktemp("rep"), val_auc=val_auc, n_boot=50, writers=writers)
    return rep, results, test, val_auc


def test_sections_plots_and_first_line(built) -> None:
    rep, _results_, test, _ = built
    md = rep.paths["md"].read_text()
    html = rep.paths["html"].read_text()
    first = md.splitlines()[0]
    assert first.startswith("**Few data: 9 test writers and") and f"{len(test)} test bags" in first
    assert html.index("Few data: 9 test writers") < html.index("<h1>")
    for heading in (FORENSIC_HEADING, GROUP_HEADINGS["overall"], GROUP_HEADINGS["difficulty"],
                    GROUP_HEADINGS["geometry"], "Calibration (fitted on validation)"):
        assert heading in md and heading in html
    for word in ("Cllr", "Cllr_min", "Cllr_cal", "misleading H1", "misleading H2", "detection @ 1% FPR",
                 "detection @ 5% FPR", "test FPR @ 1%", "writers"):
        assert word in md
    assert {"tippett_plot", "reliability_plot"} <= set(rep.paths)
    for key in ("tippett_plot", "reliability_plot"):
        assert rep.paths[key].read_bytes()[:4] == b"\x89PNG" and f"]({rep.paths[key].name})" in md
    assert "abmil (seed baseline)" in md and "distance (best training-free, by val)" in md


def test_max_f1_only_in_the_original_table(built) -> None:
    rep, *_ = built
    md = rep.paths["md"].read_text()
    original = md.index("## The original's metrics, reproduced")
    assert "max-F1" not in md[:original] and "max-F1" not in rep.markdown_table
    assert "max-F1" in md[original:original + 200]


def test_rows_are_test_figures_of_the_val_calibration(built) -> None:
    rep, results, test, _ = built
    fe = rep.forensic
    y = test.label.numpy()
    for m in ("oracle", "distance"):
        llr = results[m].evidence.log10_lr(results[m].bag_probs)
        row = fe.row(m, "difficulty", "20%")
        sel = (y == 0) | np.isclose(test.ratio, 0.2)
        assert row.figures == forensic_metrics(llr[sel], y[sel])
        assert (row.n_h1, row.n_h2) == (int((y[sel] == 1).sum()), int((y == 0).sum()))
        rates = rates_at_thresholds(y[sel], results[m].bag_probs[sel], results[m].evidence.thresholds)
        assert row.detection == {k: r["detection_rate"] for k, r in rates.items()}
        assert set(row.detection) == {"fpr_1", "fpr_5"}
        overall = fe.row(m)
        assert overall.n_writers == 9 and overall.n_h1 + overall.n_h2 == len(test)
    assert {r.value for r in fe.rows if r.group == "geometry"} == {"contiguous"}  # no geometry column: contiguous
    assert fe.row("oracle").figures["cllr"] < fe.row("abmil").figures["cllr"]


def test_learned_model_not_beating_the_training_free_one_is_named(built) -> None:
    rep, *_ = built
    c = rep.forensic.comparison
    assert c.baseline == "distance" and "abmil" in c.not_beating and "oracle" in c.beating
    md = rep.paths["md"].read_text()
    assert "abmil does not beat it on test" in md and "oracle does not beat" not in md


def test_json_and_metadata_carry_the_forensic_numbers(built) -> None:
    rep, *_ = built
    doc = json.loads(rep.paths["json"].read_text())
    assert doc["forensic"]["few_data"] is True and doc["forensic"]["n_writers"] == 9
    assert doc["forensic"]["comparison"]["baseline"] == "distance"
    assert doc["forensic"]["calibration"]["oracle"]["n_writers"] == 12
    oracle = doc["forensic"]["calibration"]["oracle"]
    assert oracle["kind"] in ("pav", "logistic") and {"pav_levels", "cllr_val_pav", "cllr_val_logistic"} <= set(oracle)
    assert f"{oracle['kind']} ({oracle['pav_levels']})" in rep.paths["md"].read_text()  # the calibration table
    for key in ("oracle/forensic_cllr", "oracle/forensic_cllr_cal", "distance/forensic_rme_h2",
                "oracle/forensic_det_at_fpr_5", "oracle/forensic_test_fpr_at_fpr_1", "oracle/forensic_cllr_20",
                "oracle/forensic_cllr_contiguous"):
        assert isinstance(rep.headline[key], float), key
    assert rep.headline["oracle/forensic_cllr"] == rep.forensic.row("oracle").figures["cllr"]


def test_geometries_and_plenty_of_writers(tmp_path) -> None:
    """Two geometries give a row each; enough writers and genuine bags: no caution line."""
    val = make_toy_bags(60, seed=1)
    test = make_toy_bags(120, seed=2)
    y = test.label.numpy()
    test.geometry = np.where(y == 0, "none", np.where(np.arange(len(y)) % 2, "scattered", "contiguous"))
    results, val_auc = _results(val, test)
    rep = build_report(results, test, tmp_path, val_auc=val_auc, n_boot=20, writers=np.arange(len(test)))
    fe = rep.forensic
    assert {r.value for r in fe.rows if r.group == "geometry"} == {"contiguous", "scattered"}
    sc = fe.row("oracle", "geometry", "scattered")
    assert sc.n_h1 == int(((y == 1) & (test.geometry == "scattered")).sum()) and sc.n_h2 == int((y == 0).sum())
    assert rep.paths["md"].read_text().startswith("# ") and not fe.few_data


def test_models_without_calibration_are_left_out(tmp_path) -> None:
    test = make_toy_bags(20, seed=3)
    val = make_toy_bags(20, seed=4)
    results, val_auc = _results(val, test)
    results["plain"] = ModelScores(results["abmil"].bag_probs, results["abmil"].window_scores,
                                   results["abmil"].thresholds)
    rep = build_report(results, test, tmp_path, val_auc=val_auc, n_boot=20)
    assert rep.forensic.uncalibrated == ["plain"] and "plain" not in rep.forensic.models
    assert "Left out (no calibration saved with the model): plain" in rep.paths["md"].read_text()
    assert rep.forensic.row("oracle").n_writers is None


def test_learned_models_face_the_best_training_free_detector() -> None:
    from wrmil_core.report import check_beats_distance
    from wrmil_core.report.forensic import best_training_free

    val_auc = {"abmil": 0.6, "contrast": 0.93, "distance": 0.9, "segment_scan": 0.95}
    assert best_training_free(val_auc) == "segment_scan" and best_training_free({"abmil": 0.7}) is None
    ok, md = check_beats_distance(val_auc, baseline="segment_scan")
    assert not ok and md["baseline"] == "segment_scan" and md["best_learned_model"] == "contrast"
    assert md["models_not_beating_baseline"] == "abmil, contrast"  # training-free distance is not "learned"
