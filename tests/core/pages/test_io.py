"""Reading page files, writing crops + page map + overlay, and segmenting a folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from wrmil_core.errors import WrmilInputError
from wrmil_core.pages import (
    BOX_COLUMNS,
    read_page,
    segment_page,
    segment_pages,
    write_segmentation,
)
from wrmil_core.synth.pages import SynthPage, make_page, page_preset


def test_read_page_formats(tmp_path: Path) -> None:
    grey = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (30, 1))
    Image.fromarray(grey).convert("RGB").save(tmp_path / "rgb.jpg", quality=95)
    Image.fromarray(grey).save(tmp_path / "grey.tif")
    rgba = Image.fromarray(grey).convert("RGBA")
    rgba.putalpha(0)  # fully transparent: flattened onto white paper
    rgba.save(tmp_path / "clear.png")
    assert np.abs(read_page(tmp_path / "rgb.jpg").astype(int) - grey).max() <= 3
    assert (read_page(tmp_path / "grey.tif") == grey).all()
    clear = read_page(tmp_path / "clear.png")
    assert clear.dtype == np.uint8 and (clear == 255).all()


def test_read_page_bad_files(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("not an image")
    Image.new("L", (400, 400), 255).save(tmp_path / "cut.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "cut.png").read_bytes()[:60])  # truncated
    for name, why in [("missing.png", "no such file"), ("notes.png", "not an image"), ("cut.png", "cannot read"),
                      (".", "folder")]:
        with pytest.raises(WrmilInputError, match=why) as e:
            read_page(tmp_path / name)
        assert str(tmp_path / name) in str(e.value) or name == "."


def test_write_segmentation(tmp_path: Path, small_pages: dict[str, SynthPage]) -> None:
    image = small_pages["cursive"].image
    seg = segment_page(image)
    paths = write_segmentation(seg, image, tmp_path, "p1")
    crops = sorted(paths["crops"].glob("*.png"))
    assert [c.name for c in crops] == [f"{i:04d}.png" for i in range(seg.boxes.height)]
    first = seg.boxes.row(0, named=True)
    m = seg.crop_margin
    assert Image.open(crops[0]).size == (first["x1"] - first["x0"] + 2 * m, first["y1"] - first["y0"] + 2 * m)
    page_map = pl.read_parquet(paths["page_map"])
    assert page_map.columns == [*BOX_COLUMNS, "page", "crop"]
    assert page_map.select(BOX_COLUMNS).equals(seg.boxes)
    assert (tmp_path / page_map["crop"][0]).exists()
    meta = pl.read_parquet_metadata(paths["page_map"])
    assert json.loads(meta["doubtful"]) == seg.doubtful
    assert float(meta["skew_deg"]) == pytest.approx(seg.skew_deg, abs=1e-3)
    overlay = np.asarray(Image.open(paths["overlay"]))
    assert overlay.ndim == 3 and (overlay[..., 0] != overlay[..., 2]).any()  # coloured boxes drawn
    # a second cut with fewer words leaves no stale crops behind
    seg.boxes = seg.boxes.head(5)
    write_segmentation(seg, image, tmp_path, "p1")
    assert len(list(paths["crops"].glob("*.png"))) == 5


def test_segment_pages_folder(tmp_path: Path, small_pages: dict[str, SynthPage]) -> None:
    pages = tmp_path / "pages"
    pages.mkdir()
    Image.fromarray(small_pages["cursive"].image).save(pages / "a.png")
    Image.fromarray(small_pages["print"].image).save(pages / "b.png")
    Image.fromarray(make_page(page_preset("small"), 3, seed=1, n_words=3).image).save(pages / "c.png")
    (pages / "d.png").write_bytes(b"\x89PNG broken")
    (pages / "readme.txt").write_text("not a page")
    summary = segment_pages(pages, tmp_path / "out")
    assert sorted(summary.words) == ["a", "b", "c"]
    assert list(summary.failed) == ["d"] and "d.png" in summary.failed["d"]
    assert summary.n_flagged == 1 and "very few words" in summary.flagged["c"][0]
    assert (tmp_path / "out" / "a.parquet").exists() and (tmp_path / "out" / "b.overlay.png").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(WrmilInputError, match="no page images"):
        segment_pages(tmp_path / "empty", tmp_path / "out2")
