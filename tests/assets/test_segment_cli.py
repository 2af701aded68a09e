"""``wrmil segment``: outputs and their locations, flagged pages, one error line and exit 2 on bad input."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from PIL import Image

from wrmil_assets.cli import main
from wrmil_core.synth.pages import make_page, page_preset


@pytest.fixture(scope="module")
def page_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pages") / "w3_p1.png"
    Image.fromarray(make_page(page_preset("small"), 3, seed=0).image).save(path)
    return path


def test_segment_one_page(page_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["segment", str(page_png), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    page_map = pl.read_parquet(tmp_path / "w3_p1.parquet")
    assert len(list((tmp_path / "w3_p1").glob("*.png"))) == page_map.height > 50
    assert str(tmp_path / "w3_p1.overlay.png") in out and (tmp_path / "w3_p1.overlay.png").exists()
    assert "0 of 1 page(s) flagged" in out


def test_segment_folder_flags_and_fails(page_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "a.png").write_bytes(page_png.read_bytes())
    Image.fromarray(make_page(page_preset("small"), 5, seed=3, n_words=2).image).save(pages / "few.png")
    (pages / "zz.png").write_text("not an image")
    assert main(["segment", str(pages), "--out", str(tmp_path / "out")]) == 2  # a page could not be used
    captured = capsys.readouterr()
    errors = captured.err.strip().splitlines()
    assert len(errors) == 1 and "zz.png" in errors[0] and "not an image" in errors[0]
    assert "doubtful few: very few words" in captured.out
    assert "1 of 2 page(s) flagged" in captured.out
    assert (tmp_path / "out" / "a.parquet").exists()


@pytest.mark.parametrize("make, why", [
    (lambda d: d / "missing.png", "no such file"),
    (lambda d: (d / "t.png").write_text("x") and d / "t.png", "not an image"),
    (lambda d: Image.fromarray(make_page(page_preset("small"), 3, seed=0).image).resize((40, 30)).save(d / "t.png")
     or d / "t.png", "thumbnail"),
    (lambda d: Image.new("L", (120, 60), 255).save(d / "crop.png") or d / "crop.png", "empty"),
    (lambda d: Image.new("L", (800, 600), 250).save(d / "blank.png") or d / "blank.png", "empty"),
    (lambda d: Image.new("L", (800, 600), 0).save(d / "black.png") or d / "black.png", "empty"),
    (lambda d: (d / "none").mkdir() or d / "none", "no page images"),
])
def test_bad_input_is_one_line_and_exit_2(make, why: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = make(tmp_path)
    assert main(["segment", str(path), "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wrmil segment: error: ") and why in lines[0], captured
    assert str(path.name) in lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
