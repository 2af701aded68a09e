"""``wrmil check``: the core summary and the command line (exit codes, one error line)."""

from __future__ import annotations

import shutil

import pytest
from PIL import Image

from tests.support.raw_root import HEADER, make_raw_root, read_rows, write_csv
from wrmil_assets.cli import main
from wrmil_core.data.check import DataCheck, PageCheck, check_data_root, check_root
from wrmil_core.data.ingest import ingest
from wrmil_core.data.pages_input import data_root_kind, list_pages
from wrmil_core.errors import WrmilInputError


@pytest.fixture
def root(tmp_path):
    """4 writers x 2 sessions of 12 words, with two extra CSV columns and one missing image."""
    root = make_raw_root(tmp_path)
    rows = [{**r, "transcription": r["detected_word"].upper(), "source": "scan 1"}
            for r in read_rows(root / "naver_ocr.csv")]
    write_csv(root / "naver_ocr.csv", rows, header=HEADER + ("transcription", "source"))
    (root / "1" / "bb_2.png").unlink()
    return root


def test_check_summarises_what_ingest_reads(root):
    check = check_data_root(root, reps_per_session=2)
    assert check.result.words.equals(ingest(root, reps_per_session=2).words)
    assert check.split_writers == (2, 1, 1) and check.n_skipped == 1
    rows = dict(check.rows())
    assert rows["writers"] == "4"
    assert rows["documents"].startswith("8 (writer x session of 2 repetitions")
    assert rows["words"] == "95"
    assert rows["words per document"] == "min 11, median 12, max 12"
    assert rows["ignored columns"] == "transcription, source"
    assert rows["skipped: missing_image"].startswith("1  e.g. line 39:") and "bb_2.png" in rows["skipped: missing_image"]
    assert "skipped: corrupt_image" not in rows
    table = check.table().splitlines()
    assert len(table) == len(rows) and all(line.startswith("  ") for line in table)


def test_check_refuses_too_few_writers_for_a_split(tmp_path):
    root = make_raw_root(tmp_path, n_writers=2)
    with pytest.raises(WrmilInputError, match=r"data root .*raw: a writer-disjoint split .* at least 3 writers, got 2"):
        check_data_root(root, reps_per_session=2)


def test_cli_check_prints_the_table_and_exits_0(root, capsys):
    assert main(["check", str(root), "--reps-per-session", "2"]) == 0
    out = capsys.readouterr().out
    assert "writers" in out and "words per document      min 11, median 12, max 12" in out
    assert "skipped: missing_image  1" in out and "transcription, source" in out
    assert f"next: wrmil run --data-root {root}" in out


def test_cli_check_options_reach_ingest(root, capsys):
    shutil.move(root / "naver_ocr.csv", root / "meta.csv")
    # One 24-word document per writer (writer 1: 23 usable words).
    args = ["check", str(root), "--metadata-csv", "meta.csv", "--reps-per-session", "4"]
    assert main(args + ["--min-doc-words", "25"]) == 2
    assert "min_doc_words=25" in capsys.readouterr().err
    assert main(args + ["--min-doc-words", "24"]) == 0
    out = capsys.readouterr().out
    assert "documents                          3 (writer x session of 4 repetitions" in out
    assert "skipped: writer_without_documents  1  e.g. writer 1" in out
    # the suggested next command carries the same layout flags, so it reads the data the same way
    assert f"next: wrmil run --data-root {root} --metadata-csv meta.csv --reps-per-session 4" in out


def test_cli_check_quotes_a_root_with_spaces(root, capsys):
    spaced = root.parent / "my word images"
    shutil.move(root, spaced)
    assert main(["check", str(spaced), "--reps-per-session", "2"]) == 0
    assert f"next: wrmil run --data-root '{spaced}' --reps-per-session 2" in capsys.readouterr().out


@pytest.mark.parametrize("mutate, expected", [
    (lambda root: shutil.rmtree(root), "does not exist"),
    (lambda root: (root / "naver_ocr.csv").write_text("image_path,label,repetition\n0/a_0.png,0,0\n"),
     "missing column(s) ['detected_word']"),
    (lambda root: (root / "naver_ocr.csv").write_text(
        "image_path,label,detected_word,repetition\n0/a_0.png,zero,a,0\n"), "line 2: 'zero'"),
])
def test_cli_check_errors_are_one_line_with_exit_2(root, capsys, mutate, expected):
    mutate(root)
    assert main(["check", str(root)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("wrmil check: error: ") and expected in lines[0]


# --- page-scan roots: `wrmil check` reads them as `wrmil run --data-root` does -------------------------


def _page(path, shade: int) -> None:
    """A tiny valid page image; ``shade`` makes its bytes differ from every other page's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (16, 12), shade).save(path)


@pytest.fixture
def page_root(tmp_path):
    """4 writers x 2 CSAFE pages (one session each), plus a corrupt page and a byte-identical copy."""
    root = tmp_path / "scans"
    for w in range(1, 5):
        for k, prompt in enumerate(("WOZ", "LND")):
            _page(root / f"w{w:04d}_s01_p{prompt}_r1.png", shade=10 * w + k)
    (root / "w0004_s01_pPHR_r1.png").write_bytes(b"not an image")
    shutil.copy(root / "w0001_s01_pWOZ_r1.png", root / "w0001_s01_pPHR_r1.png")
    return root


def test_check_reads_a_page_root_as_run_does(page_root):
    assert data_root_kind(page_root, "naver_ocr.csv") == "pages"  # the rule `wrmil run` and raw_pages use
    check = check_root(page_root)
    assert isinstance(check, PageCheck) and check.root == page_root
    assert [p.rel for p in check.pages] == [r.rel for r in list_pages(page_root)
                                            if r.rel not in ("w0004_s01_pPHR_r1.png", "w0001_s01_pPHR_r1.png")]
    assert check.split_writers == (2, 1, 1) and check.n_skipped == 2
    rows = dict(check.rows())
    assert rows["layout"] == "page scans (CSAFE file names)"
    assert (rows["pages"], rows["writers"], rows["documents"]) == ("8", "4", "4")
    assert rows["pages per document"] == "min 2, median 2, max 2"
    assert rows["skipped: corrupt_image"].startswith("1  e.g. w0004_s01_pPHR_r1.png (")
    assert rows["skipped: duplicate_page"] == "1  e.g. w0001_s01_pPHR_r1.png (same bytes as w0001_s01_pWOZ_r1.png)"
    assert len(check.table().splitlines()) == len(rows)


def test_check_reads_pages_csv_documents(tmp_path):
    root = tmp_path / "letters"
    lines = ["page,writer,doc_id"]
    for w in range(1, 4):
        for k in range(3):  # three pages of one letter per writer, in subfolders
            _page(root / f"writer{w}" / f"p{k}.tif", shade=10 * w + k)
            lines.append(f"writer{w}/p{k}.tif,{w},letter{w}")
    (root / "pages.csv").write_text("\n".join(lines) + "\n")
    rows = dict(check_root(root).rows())
    assert rows["layout"] == "page scans (listed in pages.csv)"
    assert (rows["pages"], rows["writers"], rows["documents"]) == ("9", "3", "3")
    assert rows["skipped"] == "nothing"


def test_cli_check_on_a_page_root(page_root, capsys):
    assert main(["check", str(page_root)]) == 0
    out = capsys.readouterr().out
    assert "page scans (CSAFE file names)" in out and "skipped: duplicate_page" in out
    assert f"next: wrmil run --data-root {page_root}" in out


@pytest.mark.parametrize("mutate, expected", [
    (lambda root: _page(root / "scan_0001.png", 7), "scan_0001.png: the name does not follow wNNNN_sNN"),
    (lambda root: [p.unlink() for p in root.glob("w000[34]_*")], "at least 3 writers, got 2"),
    (lambda root: [p.write_bytes(b"") for p in root.glob("*.png")], "none of its 10 page(s) can be used"),
    (lambda root: [p.unlink() for p in root.glob("*.png")] and (root / "notes.txt").write_text("x"),
     "holds neither word crops nor page scans"),
])
def test_cli_check_page_root_errors_are_one_line_with_exit_2(page_root, capsys, mutate, expected):
    mutate(page_root)
    assert main(["check", str(page_root)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert captured.out == "" and len(lines) == 1, captured
    assert lines[0].startswith("wrmil check: error: ") and expected in lines[0]


def test_check_keeps_reading_word_crops_when_the_root_also_holds_page_images(root):
    _page(root / "w0001_s01_pLND_r1.png", 3)  # the metadata CSV decides, as for `wrmil run`
    assert isinstance(check_root(root, reps_per_session=2), DataCheck)
