"""The report's comparison section (``wrmil_core.report.compare``): the saved fused model's comparison
calibration, fitted on validation writers, applied to held-out test writers' pairs of disjoint
documents, measured per words per side, and written into report.md / .html / .json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.support.scoring import save_fused, synthetic_embeddings
from wrmil_core.evidence.compare_calibration import COMPARE_WORDS, fit_compare_calibrations
from wrmil_core.evidence.metrics import cllr
from wrmil_core.report import build_report
from wrmil_core.report.compare import HEADING, compare_headline, compare_table, evaluate_compare
from wrmil_core.bags.tensors import BagTensors
from wrmil_core.detectors.run import score_bags
from wrmil_core.evidence.scored import ModelScores
from wrmil_core.metrics import fit_thresholds
from wrmil_core.mil.registry import build_mil_model
from wrmil_core.mil.toy import make_toy_bags

VAL, TEST = range(12), range(100, 106)


def distance_scores() -> tuple[dict[str, ModelScores], BagTensors]:
    """Toy test bags scored by the distance detector: the rest of the report, beside the comparison."""
    test = make_toy_bags(30, seed=5, separation=1.0)
    p, w = score_bags(build_mil_model("distance", test.x.shape[-1]), test)
    return {"distance": ModelScores(p, w, fit_thresholds(test.label.numpy(), p))}, test


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict:
    val = synthetic_embeddings(VAL, 300, mean_norm=2.0, seed=1)
    directory, _ = save_fused(tmp_path_factory.mktemp("cmp") / "fused", val)
    fit_compare_calibrations({"fused": directory}, val)
    return {"dirs": {"fused": directory}, "test": synthetic_embeddings(TEST, 200, mean_norm=2.0, seed=2)}


def test_rows_measure_test_writers_pairs(saved: dict) -> None:
    rows = evaluate_compare(saved["dirs"], saved["test"])
    assert [r.words for r in rows] == list(COMPARE_WORDS)
    for r in rows:
        assert r.n_writers == len(TEST) and r.n_val_writers == len(VAL)  # test writers scored, val ones calibrated
        assert r.n_same == int(r.same.sum()) and r.n_different == r.same.size - r.n_same
        assert r.figures["cllr"] == pytest.approx(cllr(r.log10_lr, r.same))
        assert r.figures["cllr"] < 0.5  # the writers separate
        h1, h2 = r.log10_lr[r.same == 1], r.log10_lr[r.same == 0]
        assert r.figures["rme_h1"] == pytest.approx((h1 < 0).mean()) and r.figures["rme_h2"] == pytest.approx((h2 > 0).mean())
    # 200 words per writer: 4 disjoint documents of 50, every pair of them per writer
    assert rows[-1].n_same == len(TEST) * 6
    assert compare_headline(rows)["compare/cllr_50"] == pytest.approx(rows[-1].figures["cllr"])
    assert compare_table(rows).count("\n") == 1 + len(rows)


def test_no_section_without_a_comparison_calibration(saved: dict, tmp_path: Path) -> None:
    assert evaluate_compare({"distance": saved["dirs"]["fused"]}, saved["test"]) == []  # no fused model
    assert evaluate_compare({"fused": tmp_path}, saved["test"]) == []  # fused saved without compare_calibration.json


def test_report_carries_the_section(saved: dict, tmp_path: Path) -> None:
    rows = evaluate_compare(saved["dirs"], saved["test"])
    results, test = distance_scores()
    rep = build_report(results, test, tmp_path, n_boot=20, compare_rows=rows)
    md, page = rep.paths["md"].read_text(), rep.paths["html"].read_text()
    assert HEADING in md and "compare_tippett.png" in md and rep.paths["compare_tippett_plot"].is_file()
    assert HEADING.replace("`", "") in page.replace("`", "") and "data:image/png;base64" in page
    saved_rows = json.loads(rep.paths["json"].read_text())["comparison"]
    assert [r["words_per_side"] for r in saved_rows] == list(COMPARE_WORDS)
    assert saved_rows[0]["cllr"] == pytest.approx(rows[0].figures["cllr"])
    assert rep.headline["compare/cllr_10"] == pytest.approx(rows[0].figures["cllr"])
    bare = build_report(results, test, tmp_path / "bare", n_boot=20)
    assert HEADING not in bare.paths["md"].read_text() and "comparison" not in json.loads(bare.paths["json"].read_text())
    assert np.isfinite([r.figures["cllr"] for r in rows]).all()
