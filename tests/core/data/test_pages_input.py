"""Page-scan data roots: CSAFE page names, ``pages.csv``, and telling word-crop roots from page roots."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from wrmil_core.data.pages_input import data_root_kind, is_page_root, list_pages, parse_csafe_name
from wrmil_core.errors import WrmilInputError


def _png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (8, 8), 255).save(path)
    return path


def test_csafe_name_gives_writer_document_and_order() -> None:
    r = parse_csafe_name("/data/w0012_s02_pWOZ_r3.png")
    assert (r.writer, r.doc_id, r.order, r.rel, r.source) == (12, "12_s2", (2, 0, 3), "w0012_s02_pWOZ_r3.png", "name")
    # Prompts read WOZ, LND, PHR within a session; case of the letters and the image type do not matter.
    assert parse_csafe_name("W0012_S02_plnd_R01.TIF").order == (2, 1, 1)
    assert parse_csafe_name("w0012_s02_pPHR_r1.jpg").order == (2, 2, 1)
    assert parse_csafe_name("w0012_s03_pWOZ_r1.png").doc_id == "12_s3"


@pytest.mark.parametrize("name, needle", [
    ("page1.png", "does not follow wNNNN_sNN_pPROMPT_rN.png"),
    ("w0001_s01_pABC_r1.png", "prompt 'ABC' is not one of WOZ/LND/PHR"),
    ("w0001_s01_pLND.png", "does not follow"),
    ("w0001_s01_pLND_r1.pdf", "does not follow"),
    ("wX001_s01_pLND_r1.png", "does not follow"),
])
def test_bad_csafe_names_are_refused_naming_the_file(name: str, needle: str) -> None:
    with pytest.raises(WrmilInputError, match=needle) as e:
        parse_csafe_name(Path("/data") / name)
    assert f"/data/{name}" in str(e.value) and "pages.csv" in str(e.value)


def test_a_bad_name_among_good_pages_stops_listing(tmp_path: Path) -> None:
    _png(tmp_path / "w0001_s01_pLND_r1.png")
    _png(tmp_path / "scan 7.png")
    with pytest.raises(WrmilInputError, match=r"scan 7\.png: the name does not follow"):
        list_pages(tmp_path)


def test_pages_sorted_into_documents_in_reading_order(tmp_path: Path) -> None:
    for name in ("w0002_s01_pLND_r1.png", "w0001_s01_pPHR_r1.png", "w0001_s01_pWOZ_r2.png",
                 "w0001_s01_pWOZ_r1.png", "w0001_s02_pLND_r1.png"):
        _png(tmp_path / name)
    pages = list_pages(tmp_path)
    assert [(p.doc_id, p.rel) for p in pages] == [
        ("1_s1", "w0001_s01_pWOZ_r1.png"), ("1_s1", "w0001_s01_pWOZ_r2.png"), ("1_s1", "w0001_s01_pPHR_r1.png"),
        ("1_s2", "w0001_s02_pLND_r1.png"), ("2_s1", "w0002_s01_pLND_r1.png")]


def test_pages_csv_sets_writer_document_and_order(tmp_path: Path) -> None:
    for name in ("a.png", "scans/b.png", "c.png"):
        _png(tmp_path / name)
    (tmp_path / "pages.csv").write_text("page,writer,doc_id,order,note\nc.png,7,letter,2,x\nscans/b.png,7,letter,1,\n"
                                        "a.png,8,memo,0,\n,,,,\n")
    pages = list_pages(tmp_path)
    assert [(p.rel, p.writer, p.doc_id, p.source) for p in pages] == [
        ("scans/b.png", 7, "letter", "pages.csv line 3"), ("c.png", 7, "letter", "pages.csv line 2"),
        ("a.png", 8, "memo", "pages.csv line 4")]
    # Without an order column the rows' order is the reading order.
    (tmp_path / "pages.csv").write_text("page,writer,doc_id\nc.png,7,letter\nscans/b.png,7,letter\n")
    assert [p.rel for p in list_pages(tmp_path)] == ["c.png", "scans/b.png"]


@pytest.mark.parametrize("text, needle", [
    ("page,writer\na.png,1\n", r"missing column\(s\) \['doc_id'\]"),
    ("page,writer,doc_id\n", "header but no rows"),
    ("page,writer,doc_id\na.png,one,d\n", r"line 2: writer 'one' is not an integer"),
    ("page,writer,doc_id\na.png,1,d\nmissing.png,1,d\n", r"line 3: page 'missing.png' not found"),
    ("page,writer,doc_id\na.png,1,\n", "line 2: empty doc_id"),
    ("page,writer,doc_id\n../a.png,1,d\n", "line 2: page '../a.png' must be a path relative to the data root"),
    ("page,writer,doc_id\na.png,1,d\n./a.png,1,d\n", "line 3: page 'a.png' is already listed on line 2"),
    ("page,writer,doc_id\na.png,1,d\nb.png,2,d\n", r"'d': writer 1 e\.g\. a\.png \(pages\.csv line 2\); writer 2"),
    ("page,writer,doc_id,order\na.png,1,d,0\nb.png,1,d,0\n", "line 3 and pages.csv line 2 put two pages"),
    ("page,writer,doc_id,order\na.png,1,d,first\n", "line 2: order 'first' is not an integer"),
])
def test_pages_csv_errors_name_the_file_and_line(tmp_path: Path, text: str, needle: str) -> None:
    _png(tmp_path / "a.png")
    _png(tmp_path / "b.png")
    (tmp_path / "pages.csv").write_text(text)
    with pytest.raises(WrmilInputError, match=needle) as e:
        list_pages(tmp_path)
    assert str(tmp_path / "pages.csv") in str(e.value) or "a document must belong to one writer" in str(e.value)


def test_pages_csv_in_another_encoding_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pages.csv").write_bytes("page,writer,doc_id\nn\xe9e.png,1,d\n".encode("latin-1"))
    with pytest.raises(WrmilInputError, match="cannot be read as UTF-8 CSV"):
        list_pages(tmp_path)


def test_kind_of_data_root(tmp_path: Path) -> None:
    words = tmp_path / "words"
    _png(words / "1" / "a_0.png")
    (words / "naver_ocr.csv").write_text("image_path,label,detected_word,repetition\n")
    assert data_root_kind(words, "naver_ocr.csv") == "words" and not is_page_root(words, "naver_ocr.csv")
    pages = tmp_path / "pages"
    _png(pages / "w0001_s01_pLND_r1.png")
    assert data_root_kind(pages, "naver_ocr.csv") == "pages" and is_page_root(pages, "naver_ocr.csv")
    listed = tmp_path / "listed"
    _png(listed / "scans" / "p.png")
    (listed / "pages.csv").write_text("page,writer,doc_id\nscans/p.png,1,d\n")
    assert data_root_kind(listed, "naver_ocr.csv") == "pages"
    # Missing or empty roots are left to ingest's own messages.
    assert data_root_kind(tmp_path / "nowhere", "naver_ocr.csv") == "words"


def test_a_root_with_neither_layout_is_refused_in_one_line(tmp_path: Path) -> None:
    _png(tmp_path / "1" / "a_0.png")  # word crops, but the metadata CSV is missing
    (tmp_path / "words.csv").write_text("x\n")
    with pytest.raises(WrmilInputError) as e:
        data_root_kind(tmp_path, "naver_ocr.csv")
    msg = str(e.value)
    assert "holds neither word crops nor page scans" in msg and "\n" not in msg
    assert "naver_ocr.csv" in msg and "pages.csv" in msg and "wNNNN_sNN_pPROMPT_rN.png" in msg
    assert "CSV files present: words.csv" in msg
