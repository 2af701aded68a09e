"""`make demo`'s page step (``scripts/page_demo.py``) on small pages with the scoring tests' toy models:
it segments pages, scores a mixed page by two test-split writers and prints where the overlay is."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl
import pytest
from PIL import Image

from tests.support.scoring import scoring_setup

REPO_ROOT = Path(__file__).resolve().parents[2]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("page_demo", REPO_ROOT / "scripts" / "page_demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return scoring_setup(tmp_path_factory)


def _demo_dirs(setup: dict[str, Any], tmp_path: Path, test_writers: list[int]) -> tuple[Path, Path]:
    """A synthetic data root (its marker file only) and an artifact dir with models and a writer split."""
    root, art = tmp_path / "synthetic", tmp_path / "artifacts"
    root.mkdir()
    (root / "synth_config.json").write_text(json.dumps({"seed": 0, "n_writers": 40}))
    shutil.copytree(setup["art"] / "assets", art / "assets")
    splits = pl.DataFrame({"writer": [0, 1, *test_writers], "split": ["train", "val"] + ["test"] * len(test_writers)})
    splits.write_parquet(art / "assets" / "writer_split.parquet")
    return root, art


@pytest.mark.slow
def test_page_demo_prints_the_overlay_of_a_mixed_page_by_test_writers(setup: dict[str, Any], tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    root, art = _demo_dirs(setup, tmp_path, [7, 12, 30])
    preview = tmp_path / "preview.png"
    assert _script().main(["--data-root", str(root), "--artifact-dir", str(art), "--page", "small",
                           "--preview", str(preview)]) == 0
    out = capsys.readouterr().out
    overlay = art / "page_demo" / "mixed_page" / "page_overlay.png"
    assert f"page demo: overlay of the scored mixed-writer page: {overlay}" in out and overlay.is_file()
    assert "writer 30's page, words 40-69 by writer 12" in out  # both from the test split
    assert out.count("precision") == 3  # two segmented pages and the mixed one
    assert preview.is_file() and Image.open(preview).height == 1000
    for name in ("writer7_blank.overlay.png", "writer12_ruled.overlay.png", "writer7_blank.parquet"):
        assert (art / "page_demo" / "segmented" / name).is_file(), name


def test_page_demo_without_a_pipeline_run_says_what_to_do(setup: dict[str, Any], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    root, art = _demo_dirs(setup, tmp_path, [7])
    script = _script()
    assert script.main(["--data-root", str(root), "--artifact-dir", str(art)]) == 2
    assert "the test split has 1 writer(s)" in capsys.readouterr().err
    (art / "assets" / "writer_split.parquet").unlink()
    assert script.main(["--data-root", str(root), "--artifact-dir", str(art)]) == 2
    assert "run `wrmil run --preset demo` first" in capsys.readouterr().err
