"""PDF and multi-page TIFF documents (``wrmil_core.data.multipage``): pages read in order, ``--pages``
selects them, bad specs and files are one line naming the value."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from wrmil_core.data.multipage import check_dpi, parse_page_spec, read_document_pages
from wrmil_core.errors import WrmilInputError


def _pages(n: int = 3) -> list[Image.Image]:
    """White pages with a black square further right on each page: page k's square starts at x = 10 + 50 (k - 1)."""
    pages = []
    for k in range(n):
        im = Image.new("L", (300, 200), 255)
        ImageDraw.Draw(im).rectangle([10 + 50 * k, 10, 40 + 50 * k, 40], fill=0)
        pages.append(im)
    return pages


def _first_ink_x(page: np.ndarray) -> int:
    return int(np.nonzero(page < 128)[1].min())


@pytest.fixture(params=["pdf", "tif"])
def document(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    path = tmp_path / f"scan.{request.param}"
    first, *rest = _pages()  # fresh images per file: Pillow keeps a saved image's encoder settings
    first.save(path, save_all=True, append_images=rest, **({"resolution": 100} if request.param == "pdf" else {}))
    return path


def test_pages_are_read_in_order(document: Path) -> None:
    pages = read_document_pages(document, dpi=100)  # the PDF was written at 100 dpi: same pixels back
    assert [n for n, _ in pages] == [1, 2, 3]
    assert [_first_ink_x(p) for _, p in pages] == [10, 60, 110]
    assert all(p.dtype == np.uint8 and p.shape == (200, 300) for _, p in pages)


def test_pages_select_pages(document: Path) -> None:
    pages = read_document_pages(document, "1,3", dpi=100)
    assert [n for n, _ in pages] == [1, 3] and [_first_ink_x(p) for _, p in pages] == [10, 110]
    assert [n for n, _ in read_document_pages(document, "2-3", dpi=100)] == [2, 3]
    with pytest.raises(WrmilInputError, match=r"--pages '2,4': page 4 is out of range, the document has 3 page"):
        read_document_pages(document, "2,4", dpi=100)


def test_pdf_renders_at_the_chosen_dpi(tmp_path: Path) -> None:
    first, *rest = _pages(2)
    first.save(tmp_path / "scan.pdf", save_all=True, append_images=rest, resolution=100)
    pages = read_document_pages(tmp_path / "scan.pdf", dpi=200)
    assert pages[0][1].shape == (400, 600)
    with pytest.raises(WrmilInputError, match="--dpi 10: render PDFs at 50 to 1200 dpi"):
        check_dpi(10)


@pytest.mark.parametrize("spec, part", [("0", "0"), ("2-1", "2-1"), ("a", "a"), ("1,,2", ""), ("1-2-3", "1-2-3")])
def test_bad_page_specs_name_the_value(spec: str, part: str) -> None:
    with pytest.raises(WrmilInputError, match=rf"--pages {spec!r}: {part!r} is not a page number or range; give "
                                              "1-based pages like 1,3-4"):
        parse_page_spec(spec, 3)


def test_page_specs() -> None:
    assert parse_page_spec("1,3-4") == [0, 2, 3]
    assert parse_page_spec(" 3 , 1-2, 2") == [0, 1, 2]  # ascending, once each: pages keep their order


def test_unreadable_files_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.pdf").write_bytes(b"not a pdf")
    (tmp_path / "bad.tif").write_bytes(b"not a tiff")
    with pytest.raises(WrmilInputError, match=r"bad.pdf: cannot read the PDF .*re-export it"):
        read_document_pages(tmp_path / "bad.pdf")
    with pytest.raises(WrmilInputError, match=r"bad.tif: not an image"):
        read_document_pages(tmp_path / "bad.tif")
    with pytest.raises(WrmilInputError, match="no such file"):
        read_document_pages(tmp_path / "missing.pdf")
