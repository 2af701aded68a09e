"""Questioned documents that arrive as one file of several pages: a PDF from a copier, or a multi-page TIFF.

:func:`read_document_pages` returns the pages of one file, in order, as uint8 grey arrays (dark ink
on light paper, as ``wrmil_core.pages.read_page`` gives): a PDF's pages rendered by PDFium
(``pypdfium2``) at ``dpi`` (default :data:`DEFAULT_DPI`), a TIFF's frames read in order (Pillow's
``ImageSequence``). ``pages`` selects pages with a 1-based spec such as ``"1,3-4"``
(:func:`parse_page_spec`). Single-page image files are ``wrmil_core.pages``' business; this module
does not import it (``data`` sits below ``pages``).

Every refusal is one :class:`WrmilInputError` line naming the file or value and the fix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import ImageSequence, UnidentifiedImageError

from wrmil_core.errors import WrmilInputError
from wrmil_core.imaging import grey_array, open_image

PDF_SUFFIX = ".pdf"
TIFF_SUFFIXES: tuple[str, ...] = (".tif", ".tiff")
MULTIPAGE_SUFFIXES: tuple[str, ...] = (PDF_SUFFIX, *TIFF_SUFFIXES)
DEFAULT_DPI = 300  # copiers scan handwriting at 300 dpi; the segmenter's presets are tuned at that scale
MIN_DPI, MAX_DPI = 50, 1200  # below 50 words are a few pixels high; above 1200 a page is ~100 Mpx
_PDF_POINTS_PER_INCH = 72


def is_multipage_path(path: str | Path) -> bool:
    """True when ``path`` names a PDF or TIFF file (by its suffix): a file that may hold several pages."""
    p = Path(path)
    return p.suffix.lower() in MULTIPAGE_SUFFIXES and not p.is_dir()


def parse_page_spec(spec: str, n_pages: int | None = None, where: str = "--pages") -> list[int]:
    """0-based page indices, ascending and without repeats, of a 1-based spec like ``"1,3-4"``.

    ``n_pages`` (when known) refuses a page past the end. Raises :class:`WrmilInputError` naming
    the spec and the bad part.
    """
    chosen: set[int] = set()
    for part in (spec or "").split(","):
        part = part.strip()
        lo_hi = part.split("-")
        try:
            lo, hi = (int(lo_hi[0]), int(lo_hi[-1])) if 1 <= len(lo_hi) <= 2 else (0, -1)
        except ValueError:
            lo, hi = 0, -1
        if not part or lo < 1 or hi < lo:
            raise WrmilInputError(f"{where} {spec!r}: {part!r} is not a page number or range; give 1-based pages "
                                  "like 1,3-4")
        if n_pages is not None and hi > n_pages:
            raise WrmilInputError(f"{where} {spec!r}: page {hi} is out of range, the document has {n_pages} "
                                  f"page(s); choose pages 1-{n_pages}")
        chosen.update(range(lo - 1, hi))
    return sorted(chosen)


def check_dpi(dpi: int) -> int:
    """``dpi`` itself, refused outside :data:`MIN_DPI` .. :data:`MAX_DPI`."""
    if not MIN_DPI <= dpi <= MAX_DPI:
        raise WrmilInputError(f"--dpi {dpi}: render PDFs at {MIN_DPI} to {MAX_DPI} dpi (default {DEFAULT_DPI})")
    return dpi


def read_document_pages(path: str | Path, pages: str | None = None,
                        dpi: int = DEFAULT_DPI) -> list[tuple[int, np.ndarray]]:
    """The selected pages (all by default) of a PDF or TIFF in page order: ``(1-based page number,
    uint8 grey array)``."""
    path = Path(path)
    if not path.is_file():
        raise WrmilInputError(f"{path}: no such file; give a PDF or TIFF of the questioned document")
    if path.suffix.lower() == PDF_SUFFIX:
        return _read_pdf(path, pages, check_dpi(dpi))
    return _read_tiff(path, pages)


def _read_pdf(path: Path, pages: str | None, dpi: int) -> list[tuple[int, np.ndarray]]:
    """Render the chosen pages of a PDF at ``dpi`` (PDFium; white paper under any transparency)."""
    import pypdfium2 as pdfium  # loaded only when a PDF is read

    try:
        doc = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as e:
        raise WrmilInputError(f"{path}: cannot read the PDF ({e}); re-export it from the scanner, or give the "
                              "pages as PNG/TIFF images") from None
    try:
        chosen = parse_page_spec(pages, len(doc)) if pages else list(range(len(doc)))
        if not chosen:
            raise WrmilInputError(f"{path}: the PDF has no pages; re-export it from the scanner")
        out = []
        for i in chosen:
            page = doc[i]
            bitmap = page.render(scale=dpi / _PDF_POINTS_PER_INCH)
            out.append((i + 1, np.asarray(bitmap.to_pil().convert("L"), dtype=np.uint8).copy()))
            bitmap.close()
            page.close()
        return out
    finally:
        doc.close()


def _read_tiff(path: Path, pages: str | None) -> list[tuple[int, np.ndarray]]:
    """The chosen frames of a (multi-page) TIFF, in order."""
    try:
        with open_image(path) as im:  # the size limit of every reader, per frame
            frames = [grey_array(f) for f in ImageSequence.Iterator(im)]
    except UnidentifiedImageError:
        raise WrmilInputError(f"{path}: not an image (unknown format); give the scan as a TIFF or PDF") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise WrmilInputError(f"{path}: cannot read the TIFF ({type(e).__name__}: {e}); re-export or replace "
                              "the file") from None
    chosen = parse_page_spec(pages, len(frames)) if pages else range(len(frames))
    return [(i + 1, frames[i]) for i in chosen]


__all__ = ["DEFAULT_DPI", "MULTIPAGE_SUFFIXES", "check_dpi", "is_multipage_path", "parse_page_spec",
           "read_document_pages"]
