"""``raw_data_sensor``: re-ingest when the raw data changes, for word-crop and page-scan data roots alike."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
from PIL import Image

from tests.support.raw_root import make_raw_root
from wrmil_assets.automation import raw_data_sensor
from wrmil_assets.resources import WrmilSettings


def _tick(root: Path, tmp_path: Path, cursor: str | None = None) -> dg.SensorResult | dg.SkipReason:
    settings = WrmilSettings(data_root=str(root), artifact_dir=str(tmp_path / "artifacts"))
    return raw_data_sensor(dg.build_sensor_context(cursor=cursor, resources={"settings": settings}))


def _page(path: Path, shade: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (16, 12), shade).save(path)


@pytest.fixture
def page_root(tmp_path: Path) -> Path:
    """Three writers' CSAFE page scans, no metadata CSV: a page-scan root as `wrmil run` reads it."""
    root = tmp_path / "scans"
    for w in range(1, 4):
        _page(root / f"w{w:04d}_s01_pLND_r1.png", shade=10 * w)
    return root


def _requested(result: dg.SensorResult | dg.SkipReason) -> str:
    """The fingerprint a tick requested an ingest run for (its run key and the new cursor)."""
    assert isinstance(result, dg.SensorResult), getattr(result, "skip_message", result)
    (request,) = result.run_requests
    assert request.run_key == result.cursor
    return result.cursor


def test_a_page_root_triggers_once_then_on_each_change(page_root: Path, tmp_path: Path) -> None:
    first = _requested(_tick(page_root, tmp_path))
    unchanged = _tick(page_root, tmp_path, cursor=first)
    assert isinstance(unchanged, dg.SkipReason) and "unchanged" in unchanged.skip_message
    _page(page_root / "w0004_s01_pLND_r1.png", shade=99)  # a new page
    added = _requested(_tick(page_root, tmp_path, cursor=first))
    assert added != first
    (page_root / "w0001_s01_pLND_r1.png").unlink()  # a page removed
    assert _requested(_tick(page_root, tmp_path, cursor=added)) not in (first, added)


def test_a_page_root_is_fingerprinted_by_name_not_location(page_root: Path, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere" / "scans"
    fingerprint = _requested(_tick(page_root, tmp_path))
    shutil.copytree(page_root, moved, copy_function=shutil.copy2)  # same names, sizes and times
    assert isinstance(_tick(moved, tmp_path, cursor=fingerprint), dg.SkipReason)


def test_a_pages_csv_edit_triggers(tmp_path: Path) -> None:
    root = tmp_path / "letters"
    for w in range(1, 4):
        _page(root / f"writer{w}" / "p0.png", shade=w)
    def listing(doc: str) -> str:
        return "page,writer,doc_id\n" + "".join(f"writer{w}/p0.png,{w},{doc}{w}\n" for w in range(1, 4))

    (root / "pages.csv").write_text(listing("d"))
    first = _requested(_tick(root, tmp_path))
    (root / "pages.csv").write_text(listing("letter"))  # the same pages, other documents
    assert _requested(_tick(root, tmp_path, cursor=first)) != first


def test_a_page_root_still_being_copied_waits(page_root: Path, tmp_path: Path) -> None:
    (page_root / "w0009_s01_pLND_r1.png.part").write_bytes(b"half a page")
    skip = _tick(page_root, tmp_path)
    assert isinstance(skip, dg.SkipReason) and "still being written" in skip.skip_message


def test_a_root_with_neither_layout_is_skipped_saying_why(tmp_path: Path) -> None:
    root = tmp_path / "notes"
    root.mkdir()
    (root / "readme.txt").write_text("not data")
    skip = _tick(root, tmp_path)
    assert isinstance(skip, dg.SkipReason) and "holds neither word crops nor page scans" in skip.skip_message


def test_a_word_crop_root_still_triggers_on_its_metadata_csv(tmp_path: Path) -> None:
    root = make_raw_root(tmp_path)
    first = _requested(_tick(root, tmp_path))
    _page(root / "w0001_s01_pLND_r1.png", shade=5)  # images beside a metadata CSV: still word crops
    assert isinstance(_tick(root, tmp_path, cursor=first), dg.SkipReason)
    with (root / "naver_ocr.csv").open("a") as f:
        f.write("\n")
    assert _requested(_tick(root, tmp_path, cursor=first)) != first
