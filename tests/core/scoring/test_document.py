"""Reading a questioned document: ``wrmil_core.scoring.document``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.scoring import write_document
from wrmil_core.errors import WrmilInputError
from wrmil_core.schema import WORD_COLUMNS
from wrmil_core.scoring.document import check_scorable, document_words, list_document_images, natural_key


def test_reading_order_natural_and_csv(tmp_path: Path) -> None:
    for name in ("w10.png", "w2.png", "w1.png", "notes.txt", ".hidden.png"):
        (tmp_path / name).write_bytes(b"x")
    _, files = list_document_images(tmp_path)
    assert [p.name for p in files] == ["w1.png", "w2.png", "w10.png"]
    assert sorted(["p10", "p9", "P1"], key=natural_key) == ["P1", "p9", "p10"]
    order = tmp_path / "order.csv"
    order.write_text("image_path,order\nw1.png,3\nw10.png,1\nw2.png,2\n")
    _, files = list_document_images(tmp_path, order)
    assert [p.name for p in files] == ["w10.png", "w2.png", "w1.png"]
    _, files = list_document_images(order)  # the CSV itself as PATH
    assert [p.name for p in files] == ["w10.png", "w2.png", "w1.png"]


@pytest.mark.parametrize("rows, needle", [
    ("file,position\nw0.png,0\n", "needs image_path and order"),
    ("image_path,order\nw0.png,first\n", "line 2: order 'first' is not an integer"),
    ("image_path,order\nw0.png,0\nw1.png,0\n", "line 3: order 0 repeats line 2"),
    ("image_path,order\n,0\n", "line 2: empty image_path"),
    ("image_path,order\nw0.png,0\nw9.png,1\n", "line 3: image 'w9.png' not found"),
])
def test_order_csv_refusals_name_the_line(tmp_path: Path, rows: str, needle: str) -> None:
    for name in ("w0.png", "w1.png"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "order.csv").write_text(rows)
    with pytest.raises(WrmilInputError, match=needle):
        list_document_images(tmp_path, tmp_path / "order.csv")


def test_missing_folder_and_missing_csv_are_refused(tmp_path: Path) -> None:
    with pytest.raises(WrmilInputError, match="does not exist; give a folder"):
        list_document_images(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(WrmilInputError, match="is not a folder"):
        list_document_images(tmp_path / "notes.txt")
    with pytest.raises(WrmilInputError, match="order CSV .* does not exist"):
        list_document_images(tmp_path, tmp_path / "order.csv")


def test_check_scorable_needs_two_readable_windows(tmp_path: Path) -> None:
    doc = write_document(tmp_path / "doc", n=12)
    _, images = list_document_images(doc)
    check_scorable(doc, images, window_size=5)  # 12 words: two windows and a tail
    with pytest.raises(WrmilInputError, match="fewer than one window of 13 words"):
        check_scorable(doc, images, window_size=13)
    with pytest.raises(WrmilInputError, match="only one window of 7"):
        check_scorable(doc, images, window_size=7)
    (doc / "w7.png").write_bytes(b"not a png at all")
    with pytest.raises(WrmilInputError, match="w7.png"):
        check_scorable(doc, images, window_size=5)


def test_document_words_follow_the_words_schema(tmp_path: Path) -> None:
    images = [tmp_path / f"w{i}.png" for i in range(3)]
    words = document_words(tmp_path, images)
    assert tuple(words.columns) == WORD_COLUMNS
    assert words["position"].to_list() == [0, 1, 2] and words["writer"].to_list() == [-1, -1, -1]
    assert words["doc_id"].unique().to_list() == [tmp_path.name]
