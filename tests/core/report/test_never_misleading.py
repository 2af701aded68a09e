"""The report's never-misleading check: it passes a default detector that is as good as the best
single one in every cell, and names the cells where a planted inverted one misleads, in the report's
first lines, its JSON and its headline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from wrmil_core.evidence.scored import ModelScores
from wrmil_core.metrics import fit_thresholds
from wrmil_core.mil.registry import default_detector
from wrmil_core.mil.toy import make_toy_bags
from wrmil_core.report import build_report
from wrmil_core.report.never_misleading import MARGIN, CellCheck, check_cells, failing


def _scores(test, default_sign: float) -> dict[str, ModelScores]:
    """An honest single detector (the foreign share plus noise), and the default: the same scores,
    times ``default_sign`` on the scattered bags (-1: a planted inverted detector there)."""
    rng = np.random.default_rng(0)
    y = test.label.numpy()
    honest = test.foreign_word_frac * 10 + rng.normal(size=len(y))
    planted = np.where(test.geometry == "scattered", default_sign, 1.0) * honest
    windows = rng.random((len(y), test.x.shape[1]))
    return {name: ModelScores(1 / (1 + np.exp(-s)), windows, fit_thresholds(y, 1 / (1 + np.exp(-s))))
            for name, s in {"scattered": honest, default_detector(): planted}.items()}


def _bags():
    test = make_toy_bags(60, seed=5, separation=1.0)
    y = test.label.numpy()
    # half the contaminated bags become "scattered" ones (labels only: the check reads the scores)
    geometry = np.where(y == 0, "none", np.where(np.arange(len(y)) % 2 == 0, "contiguous", "scattered"))
    test.geometry = geometry
    return test


def test_check_cells_by_hand() -> None:
    label = np.array([0, 0, 0, 1, 1, 1])
    geometry = np.array(["none"] * 3 + ["contiguous"] * 3)
    ratio = np.array([0, 0, 0, 0.2, 0.2, 0.2])
    good = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    cells = check_cells({"fused": 1 - good, "scattered": good}, label, geometry, ratio, "fused")
    assert cells == [CellCheck("contiguous", 0.2, 0.0, "scattered", 1.0)]
    assert failing(cells) and "not above 0.5" in cells[0].describe()
    close = check_cells({"fused": good + np.array([0, 0, 0.45, 0, 0, 0]), "scattered": good}, label, geometry,
                        ratio, "fused")
    assert close[0].default_auc == pytest.approx(1 - 1 / 9) and not close[0].passed  # 0.111 below
    assert check_cells({"fused": good, "scattered": good}, label, geometry, ratio, "fused")[0].passed
    assert MARGIN == 0.02


def test_report_names_the_cells_a_planted_inverted_default_fails(tmp_path: Path) -> None:
    test = _bags()
    rep = build_report(_scores(test, -1.0), test, tmp_path, n_boot=20)
    bad = rep.failing_cells
    assert bad and {c.geometry for c in bad} == {"scattered"}
    assert {c.ratio for c in bad} == set(np.unique(test.ratio[test.geometry == "scattered"]))
    first = (tmp_path / "report.md").read_text().splitlines()[0]
    assert first.startswith("**Never-misleading check") and "FAILS in" in first
    md = (tmp_path / "report.md").read_text()
    assert all(f"FAILS scattered {c.ratio:.0%}" in md for c in bad)
    doc = json.loads((tmp_path / "report.json").read_text())
    assert sum(not c["passed"] for c in doc["never_misleading"]["cells"]) == len(bad)
    assert rep.headline["never_misleading/failing"] == len(bad)
    assert rep.headline_model == default_detector()


def test_report_passes_an_honest_default(tmp_path: Path) -> None:
    test = _bags()
    rep = build_report(_scores(test, 1.0), test, tmp_path, n_boot=20)
    assert rep.checks and not rep.failing_cells
    assert "FAILS" not in (tmp_path / "report.md").read_text().splitlines()[0]
