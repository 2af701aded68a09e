"""Batch scoring (``wrmil_core.scoring.batch``) and multi-page documents (``score_page`` on a TIFF):
models loaded once, one summary row per document, a broken document a row with its error, the CSV
list; toy models from ``tests/support/scoring.py``."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from PIL import Image

from tests.support.pages import write_scoring_page
from tests.support.scoring import FOREIGN, scoring_setup, write_document
from wrmil_core.errors import WrmilInputError
from wrmil_core.scoring.batch import (
    SUMMARY_COLUMNS,
    exit_code,
    is_batch_folder,
    is_batch_list,
    list_batch,
    score_batch,
    write_summary,
)
from wrmil_core.scoring.page import score_page
from wrmil_core.scoring.score import ScoringModels, load_scoring_models


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return scoring_setup(tmp_path_factory)


@pytest.fixture(scope="module")
def models(setup: dict[str, Any]) -> ScoringModels:
    return load_scoring_models(setup["emb_dir"], setup["mil"]["distance"])


def _two_page_tiff(path: Path) -> tuple[int, int]:
    """A TIFF of two scoring pages (30 words each, the second page's words by the forger from word 10 on);
    returns each page's true word count."""
    one, two = path.with_name("one.png"), path.with_name("two.png")
    n1 = write_scoring_page(one, n=30).height
    n2 = write_scoring_page(two, n=30, foreign=range(10, 30), seed=1).height
    first, second = Image.open(one), Image.open(two)
    first.save(path, save_all=True, append_images=[second])
    return n1, n2


def test_a_multi_page_tiff_is_one_document_read_page_by_page(models: ScoringModels, tmp_path: Path) -> None:
    n1, n2 = _two_page_tiff(tmp_path / "scan.tif")
    result = score_page(tmp_path / "scan.tif", None, None, tmp_path / "out", models=models)
    assert result.page_numbers == [1, 2] and result.score.n_words == result.boxes.height
    c1, c2 = (b.height for b in result.page_boxes)
    assert abs(c1 - n1) <= 2 and abs(c2 - n2) <= 2  # the segmenter may split or merge a word
    n1, n2 = c1, c2
    # page 1's words first, then page 2's, word indices running on
    assert result.score.files == [f"p001/{i:04d}.png" for i in range(n1)] + [f"p002/{i:04d}.png" for i in range(n2)]
    assert result.page_boxes[1]["word_index"].to_list() == list(range(n1, n1 + n2))
    table = pl.read_parquet(tmp_path / "out" / "page_scores.parquet")
    assert table["page"].to_list() == [1] * n1 + [2] * n2
    for name in ("page_overlay_p001.png", "page_overlay_p002.png", "words/p001.overlay.png", "score.json"):
        assert (tmp_path / "out" / name).is_file(), name
    assert result.outputs["overlay"] == tmp_path / "out" / "page_overlay_p001.png"

    only_two = score_page(tmp_path / "scan.tif", None, None, tmp_path / "out2", models=models, pages_spec="2")
    assert only_two.page_numbers == [2] and only_two.score.n_words == n2  # page 2 alone, cut as before
    assert (tmp_path / "out2" / "page_overlay.png").is_file()  # one page: the layout of a page image
    with pytest.raises(WrmilInputError, match=r"--pages '3': page 3 is out of range, the document has 2 page"):
        score_page(tmp_path / "scan.tif", None, None, tmp_path / "out3", models=models, pages_spec="3")


def test_a_batch_with_a_broken_file_still_summarises_the_others(setup: dict[str, Any], models: ScoringModels,
                                                                  tmp_path: Path) -> None:
    batch = tmp_path / "batch"
    write_document(batch / "genuine")
    write_document(batch / "mixed", foreign=FOREIGN)
    write_scoring_page(batch / "page.png", foreign=FOREIGN)
    (batch / "broken.png").write_bytes(b"not a png")
    items = list_batch(batch)
    assert [i.id for i in items] == ["broken", "genuine", "mixed", "page"]
    rows = score_batch(items, models, tmp_path / "out")
    paths = write_summary(rows, tmp_path / "out")
    with paths["csv"].open(newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == SUMMARY_COLUMNS
        summary = {r["id"]: r for r in reader}
    broken = summary["broken"]
    assert broken["status"] == "error" and "broken.png: not an image" in broken["error"]
    assert "\n" not in broken["error"] and broken["words"] == "" and broken["log10_lr"] == ""
    for name in ("genuine", "mixed", "page"):
        row = summary[name]
        assert row["status"] == "ok" and row["error"] == "" and abs(int(row["words"]) - 60) <= 2, row
        assert row["flagged_fpr_1"] in ("yes", "no") and row["flagged_fpr_5"] in ("yes", "no")
        assert row["log10_lr"].startswith(("+", "-")) and row["verbal"]
        assert (tmp_path / "out" / row["strip"]).is_file() and (tmp_path / "out" / row["score_json"]).is_file()
    assert summary["mixed"]["flagged_fpr_5"] == "yes" and summary["genuine"]["flagged_fpr_5"] == "no"
    assert summary["page"]["overlay"] == "page/page_overlay.png" and summary["genuine"]["overlay"] == ""
    first, last = (int(v) for v in summary["mixed"]["passage"].split("-"))
    assert first <= max(FOREIGN) and last >= min(FOREIGN)
    page = paths["html"].read_text()
    assert 'href="page/page_overlay.png"' in page and "broken.png: not an image" in page
    assert 'class="error"' in page
    assert exit_code(rows) == 2 and exit_code([r for r in rows if r.id != "broken"]) == 0


def test_a_csv_list_names_documents_ids_and_pages(models: ScoringModels, tmp_path: Path) -> None:
    write_document(tmp_path / "docs" / "a")
    _two_page_tiff(tmp_path / "docs" / "scan.tif")
    listing = tmp_path / "list.csv"
    listing.write_text("path,id,pages\ndocs/a,case 1/a,\ndocs/scan.tif,scan2,2\ndocs/missing.png,,\n")
    assert is_batch_list(listing)
    items = list_batch(listing)
    assert [(i.id, i.path.name, i.pages) for i in items] == [("case 1/a", "a", None), ("scan2", "scan.tif", "2"),
                                                             ("missing", "missing.png", None)]
    rows = {r.id: r for r in score_batch(items, models, tmp_path / "out")}
    assert rows["case 1/a"].status == "ok" and (tmp_path / "out" / "case_1_a" / "score.json").is_file()
    assert rows["scan2"].status == "ok" and rows["scan2"].values["pages"] == "1"
    assert rows["missing"].status == "error" and "missing.png: no such file or folder" in rows["missing"].values["error"]


def test_batch_inputs_are_told_apart_and_bad_lists_refused(tmp_path: Path) -> None:
    order = tmp_path / "order.csv"
    order.write_text("image_path,order\nw0.png,0\n")
    assert not is_batch_list(order)
    words = write_document(tmp_path / "words", n=3)
    assert not is_batch_folder(words)  # word images: one document
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "scan.pdf").write_bytes(b"%PDF")
    assert is_batch_folder(tmp_path / "docs")
    repeated = tmp_path / "repeated.csv"
    repeated.write_text("path,id\na,x\nb,x\n")
    with pytest.raises(WrmilInputError, match=r"id\(s\) \['x'\] repeat"):
        list_batch(repeated)
    no_path = tmp_path / "no_path.csv"
    no_path.write_text("file\na\n")
    with pytest.raises(WrmilInputError, match="it needs a path column"):
        list_batch(no_path)
    with pytest.raises(WrmilInputError, match="is one file; .*leave --batch out"):
        list_batch(tmp_path / "docs" / "scan.pdf")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WrmilInputError, match="holds no documents"):
        list_batch(tmp_path / "empty")
