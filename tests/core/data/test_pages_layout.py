"""Page scans -> the word-crop layout: segmentation cached by content, the metadata CSV ingest reads,
and pages that cannot be used skipped by name."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from tests.support.pages import TINY_PAGE, csafe_name, write_csafe_root
from wrmil_core import pages
from wrmil_core.data.ingest import ingest
from wrmil_core.data.pages_layout import (
    LAYOUT_CSV,
    PagesConfig,
    build_page_layout,
    cache_key,
    ingest_source,
    layout_for,
    preset,
)
from wrmil_core.errors import WrmilInputError
from wrmil_core.synth.pages import make_page


@pytest.fixture(scope="module")
def page_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two writers, two prompts each (one document per writer), read-only for the tests."""
    return write_csafe_root(tmp_path_factory.mktemp("pages") / "root", writers=(3, 4), prompts=("LND", "WOZ"))


def _mtimes(cache: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}


def test_layout_is_ingested_as_word_crops_in_reading_order(page_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "pages"
    layout = build_page_layout(page_root, out)
    pm = layout.page_map
    assert layout.n_pages == 4 and layout.cache_hits == 0 and not layout.failed
    assert pm["doc_id"].unique().sort().to_list() == ["3_s1", "4_s1"]
    # A document reads its WOZ page before its LND page, each in the segmenter's order.
    doc = pm.filter(pl.col("doc_id") == "3_s1")
    assert doc["word_index"].to_list() == list(range(doc.height))
    assert doc["page"].unique(maintain_order=True).to_list() == [csafe_name(3, 1, "WOZ", 1), csafe_name(3, 1, "LND", 1)]
    woz = make_page(TINY_PAGE, writer=3, seed=1)  # write_csafe_root: seed = the prompt's index
    seg = pages.segment_page(woz.image)
    assert doc.head(seg.boxes.height).select(pages.BOX_COLUMNS[1:]).equals(seg.boxes.select(pages.BOX_COLUMNS[1:]))
    words = ingest(out, metadata_csv=LAYOUT_CSV).words
    assert words.height == pm.height and sorted(words["writer"].unique()) == [3, 4]
    first = words.filter((pl.col("doc_id") == "3_s1") & (pl.col("position") == 0))["path"][0]
    crop = np.asarray(Image.open(first).convert("L"))
    x0, y0, x1, y1 = seg.boxes.row(0)[3:]
    m = seg.crop_margin
    assert np.array_equal(crop, woz.image[max(0, y0 - m):y1 + m, max(0, x0 - m):x1 + m])


def test_unchanged_pages_come_from_the_cache(page_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(page_root, root)
    out = tmp_path / "pages"
    first = build_page_layout(root, out)
    before = _mtimes(out / "cache")
    again = build_page_layout(root, out)
    assert again.cache_hits == 4 and again.metadata["n_segmented"] == 0
    assert _mtimes(out / "cache") == before  # nothing was cut or written again
    assert again.page_map.drop("cache_hit").equals(first.page_map.drop("cache_hit"))
    assert again.fingerprint == first.fingerprint
    # A renamed page keeps its entry; a changed page and a changed segmenter setting are cut again.
    (root / csafe_name(4, 1, "WOZ", 1)).rename(root / csafe_name(4, 1, "WOZ", 2))
    changed = make_page(TINY_PAGE, writer=4, seed=7)
    Image.fromarray(changed.image).save(root / csafe_name(4, 1, "LND", 1))
    third = build_page_layout(root, out)
    assert third.cache_hits == 3 and third.fingerprint != first.fingerprint
    assert build_page_layout(root, out, preset("demo", segmenter="clean")).cache_hits == 0


def test_a_damaged_cache_entry_is_cut_again(page_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "pages"
    first = build_page_layout(page_root, out)
    victim = min((out / "cache").glob("*.parquet"))
    victim.write_bytes(b"PAR1 truncated")
    again = build_page_layout(page_root, out)
    assert again.cache_hits == 3
    assert again.page_map.drop("cache_hit").equals(first.page_map.drop("cache_hit"))


def test_bad_pages_are_skipped_by_name_and_doubtful_ones_flagged(page_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(page_root, root)
    (root / csafe_name(5, 1, "LND", 1)).write_bytes(b"not an image")
    Image.new("L", (800, 600), 245).save(root / csafe_name(6, 1, "LND", 1))  # an empty page
    shutil.copy(root / csafe_name(3, 1, "LND", 1), root / csafe_name(3, 2, "LND", 1))
    few = np.full((600, 800), 245, dtype=np.uint8)
    few[280:320, 100:300] = 20  # one blob: a page with one "word"
    Image.fromarray(few).save(root / csafe_name(7, 1, "PHR", 1))
    layout = build_page_layout(root, tmp_path / "pages")
    assert set(layout.failed) == {csafe_name(5, 1, "LND", 1), csafe_name(6, 1, "LND", 1)}
    assert "not an image" in layout.failed[csafe_name(5, 1, "LND", 1)]
    assert "empty" in layout.failed[csafe_name(6, 1, "LND", 1)]
    assert layout.duplicates == {csafe_name(3, 2, "LND", 1): f"{csafe_name(3, 2, 'LND', 1)} has the same bytes as "
                                                             f"{csafe_name(3, 1, 'LND', 1)}"}
    assert list(layout.flagged) == [csafe_name(7, 1, "PHR", 1)] and layout.flagged[csafe_name(7, 1, "PHR", 1)]
    md = layout.metadata
    assert (md["n_pages"], md["n_pages_used"], md["n_failed"], md["n_duplicate_pages"], md["n_flagged"]) == (8, 5, 2, 1, 1)


def test_no_usable_page_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / csafe_name(1, 1, "LND", 1)).write_bytes(b"\x89PNG broken")
    with pytest.raises(WrmilInputError, match=r"none of its 1 page\(s\) could be used: .*w0001_s01_pLND_r1.png"):
        build_page_layout(tmp_path / "root", tmp_path / "pages")


def test_ingest_source_reads_the_layout_built_from_this_root(page_root: Path, tmp_path: Path) -> None:
    art = tmp_path / "art"
    with pytest.raises(WrmilInputError, match="materialise raw_pages first"):
        ingest_source(page_root, "naver_ocr.csv", art)
    build_page_layout(page_root, art / "pages")
    assert ingest_source(page_root, "naver_ocr.csv", art) == (art / "pages", LAYOUT_CSV)
    other = tmp_path / "other"
    shutil.copytree(page_root, other)
    with pytest.raises(WrmilInputError, match=f"built from {page_root}, not from {other}"):
        layout_for(other, art / "pages")
    words = tmp_path / "words"
    words.mkdir()
    (words / "naver_ocr.csv").write_text("image_path,label,detected_word,repetition\n")
    assert ingest_source(words, "naver_ocr.csv", art) == (words, "naver_ocr.csv")


def test_config_and_cache_key() -> None:
    assert preset("cpu") == PagesConfig() and PagesConfig().segment_config == pages.PRESETS["default"]
    with pytest.raises(WrmilInputError, match="choose one of"):
        PagesConfig(segmenter="fast")
    sha = "ab" * 32
    assert cache_key(sha, pages.preset("default")) == cache_key(sha, pages.preset("default"))
    assert cache_key(sha, pages.preset("default")) != cache_key(sha, pages.preset("default", crop_margin=5))
    assert cache_key(sha, pages.preset("default")) != cache_key("cd" * 32, pages.preset("default"))
