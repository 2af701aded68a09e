"""Which pages a data root of page scans holds, and whose document each one belongs to.

A data root is one of two kinds (:func:`data_root_kind`):

* **word crops**: its metadata CSV exists (``naver_ocr.csv``; ``wrmil_core.data.ingest`` reads it);
* **page scans**, when it has no metadata CSV but either

  - ``pages.csv`` with columns ``page,writer,doc_id`` (optional ``order``: the page's place in its
    document, default the row order; ``page`` relative to the root), or
  - page images directly inside the root named as in the CSAFE database,
    ``wNNNN_sNN_pPROMPT_rN.png`` (writer, session, prompt ``WOZ``/``LND``/``PHR``, repetition).
    A document is one writer's session, as in the word-crop layout (``doc_id = f"{writer}_s{session}"``);
    its pages are read in prompt order (WOZ, LND, PHR), then repetition.

Anything else is refused with one line naming both layouts. Every bad page name or CSV row is a
:class:`WrmilInputError` naming the file (and line) and what to do.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

from wrmil_core.data.metadata_csv import EXPECTED_LAYOUT, fmt_list, resolve_metadata_path, shown
from wrmil_core.errors import WrmilInputError

PAGES_CSV = "pages.csv"
PAGES_CSV_COLUMNS: tuple[str, ...] = ("page", "writer", "doc_id")
PAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
PROMPT_ORDER: tuple[str, ...] = ("WOZ", "LND", "PHR")
CSAFE_PATTERN = "wNNNN_sNN_pPROMPT_rN.png (writer, session, prompt WOZ/LND/PHR, repetition; e.g. w0001_s01_pLND_r01.png)"
_CSAFE = re.compile(r"^w(\d{1,9})_s(\d{1,4})_p([A-Za-z]+)_r(\d{1,4})$", re.IGNORECASE)
PAGES_LAYOUT = (f"page scans are either images directly in the root named {CSAFE_PATTERN}, or listed in "
                f"<root>/{PAGES_CSV} with columns page,writer,doc_id (optional order; page relative to the root)")


@dataclass(frozen=True)
class PageRecord:
    """One page of a page-scan data root.

    rel: path relative to the data root (POSIX); writer: writer id; doc_id: its document;
    order: sort key of the page inside its document; source: where writer and document came from
    (``"name"`` or ``"pages.csv line N"``), for messages.
    """

    path: Path
    rel: str
    writer: int
    doc_id: str
    order: tuple[int, ...]
    source: str


def parse_csafe_name(path: str | Path, root: str | Path | None = None) -> PageRecord:
    """The writer, document and reading order a CSAFE page name encodes.

    ``w0001_s02_pWOZ_r03.png`` -> writer 1, doc ``"1_s2"``, order (2, 0, 3). Raises
    :class:`WrmilInputError` naming the file when the name does not follow the CSAFE pattern.
    """
    path = Path(path)
    m = _CSAFE.match(path.stem)
    prompt = m.group(3).upper() if m else ""
    if path.suffix.lower() not in PAGE_SUFFIXES or m is None or prompt not in PROMPT_ORDER:
        what = (f"prompt {m.group(3)!r} is not one of {'/'.join(PROMPT_ORDER)}" if m and prompt not in PROMPT_ORDER
                else f"the name does not follow {CSAFE_PATTERN}")
        raise WrmilInputError(f"page {path}: {what}; rename it, or list the pages with their writer and document "
                              f"in {PAGES_CSV} (columns page,writer,doc_id)")
    writer, session, rep = int(m.group(1)), int(m.group(2)), int(m.group(4))
    rel = path.relative_to(root).as_posix() if root is not None else path.name
    return PageRecord(path=path, rel=rel, writer=writer, doc_id=f"{writer}_s{session}",
                      order=(session, PROMPT_ORDER.index(prompt), rep), source="name")


def top_level_pages(root: Path) -> list[Path]:
    """Image files directly inside ``root`` (hidden files skipped), sorted by name."""
    return sorted(p for p in root.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in PAGE_SUFFIXES)


def is_page_root(root: str | Path, metadata_csv: str | Path) -> bool:
    """True when ``root`` is a folder without the metadata CSV that holds ``pages.csv`` or page images."""
    root = Path(root)
    if not root.is_dir() or resolve_metadata_path(root, metadata_csv).is_file():
        return False
    return (root / PAGES_CSV).is_file() or bool(top_level_pages(root))


def page_root_files(root: str | Path) -> list[Path]:
    """Every file a page-scan root's content depends on: ``pages.csv`` and each page image under the
    root (hidden files and folders skipped), sorted; what a data-change sensor watches."""
    root = Path(root).expanduser()
    images = [p for p in root.rglob("*") if p.suffix.lower() in PAGE_SUFFIXES and p.is_file()
              and not any(part.startswith(".") for part in p.relative_to(root).parts)]
    listing = [root / PAGES_CSV] if (root / PAGES_CSV).is_file() else []
    return listing + sorted(images)


def data_root_kind(root: str | Path, metadata_csv: str | Path) -> str:
    """``"words"`` (metadata CSV present, or a root ingest will refuse with its own message: missing,
    not a folder, empty) or ``"pages"``; a folder that holds neither layout is refused in one line."""
    root = Path(root).expanduser()
    if not root.is_dir() or not any(root.iterdir()) or resolve_metadata_path(root, metadata_csv).is_file():
        return "words"
    if is_page_root(root, metadata_csv):
        return "pages"
    present = sorted(p.name for p in root.glob("*.csv"))
    hint = f" CSV files present: {fmt_list(present)} (pass metadata_csv=<name> if one is the metadata CSV)." if present else ""
    raise WrmilInputError(
        f"data root {root} holds neither word crops nor page scans: no metadata CSV "
        f"{resolve_metadata_path(root, metadata_csv).name}, no {PAGES_CSV} and no page images in it.{hint} Word crops: "
        f"{EXPECTED_LAYOUT}. Pages: {PAGES_LAYOUT}.")


def list_pages(root: str | Path) -> list[PageRecord]:
    """The pages of a page-scan root, sorted by document and reading order (``pages.csv`` when present,
    else the CSAFE names of the images directly in the root)."""
    root = Path(root).expanduser().absolute()
    if (root / PAGES_CSV).is_file():
        records = read_pages_csv(root / PAGES_CSV, root)
    else:
        files = top_level_pages(root)
        if not files:
            raise WrmilInputError(f"data root {root}: no page images and no {PAGES_CSV}; {PAGES_LAYOUT}")
        records = [parse_csafe_name(p, root) for p in files]
    _refuse_shared_documents(records)
    return sorted(records, key=lambda r: (r.doc_id, r.order, r.rel))


def read_pages_csv(csv_path: Path, root: Path) -> list[PageRecord]:
    """The rows of ``pages.csv`` as :class:`PageRecord` (errors name the file, line and value)."""
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [(c or "").strip() for c in (reader.fieldnames or [])]
            rows = [(reader.line_num, {(k or "").strip(): (v or "").strip() for k, v in r.items()}) for r in reader]
    except (UnicodeDecodeError, csv.Error) as e:
        raise WrmilInputError(f"pages CSV {csv_path} cannot be read as UTF-8 CSV ({e}); re-save it as UTF-8 "
                              f"with the header {','.join(PAGES_CSV_COLUMNS)}") from None
    missing = [c for c in PAGES_CSV_COLUMNS if c not in header]
    if missing:
        raise WrmilInputError(f"pages CSV {csv_path}: missing column(s) {missing} (header is {shown(header, 200)}); "
                              f"it needs {list(PAGES_CSV_COLUMNS)} and may add 'order'")
    rows = [(line, r) for line, r in rows if any(r.values())]
    if not rows:
        raise WrmilInputError(f"pages CSV {csv_path} has a header but no rows; list one page per row")
    has_order = "order" in header
    records, seen = [], {}
    for k, (line, r) in enumerate(rows):
        record = _csv_record(csv_path, root, line, r, (_int_field(csv_path, line, r, "order") if has_order else k,))
        if record.rel in seen:
            raise WrmilInputError(f"pages CSV {csv_path} line {line}: page {record.rel!r} is already listed on line "
                                  f"{seen[record.rel]}; list each page once")
        seen[record.rel] = line
        records.append(record)
    if has_order:
        _refuse_repeated_order(csv_path, records)
    return records


def _csv_record(csv_path: Path, root: Path, line: int, r: dict[str, str], order: tuple[int, ...]) -> PageRecord:
    """One ``pages.csv`` row, its page checked to exist inside the root."""
    where = f"pages CSV {csv_path} line {line}"
    rel, doc = r.get("page", ""), r.get("doc_id", "")
    if not rel or not doc:
        raise WrmilInputError(f"{where}: empty {'page' if not rel else 'doc_id'}; fill it in or remove the row")
    norm = os.path.normpath(rel).replace(os.sep, "/")
    if rel.startswith(("/", "\\")) or norm == ".." or norm.startswith("../"):
        raise WrmilInputError(f"{where}: page {rel!r} must be a path relative to the data root {root}, inside it")
    path = root / norm
    if not path.is_file():
        raise WrmilInputError(f"{where}: page {rel!r} not found (looked for {path}); paths are relative to {root}")
    writer = _int_field(csv_path, line, r, "writer")
    return PageRecord(path=path, rel=norm, writer=writer, doc_id=doc, order=order, source=f"{PAGES_CSV} line {line}")


def _int_field(csv_path: Path, line: int, r: dict[str, str], col: str) -> int:
    try:
        return int(r.get(col, ""))
    except ValueError:
        raise WrmilInputError(f"pages CSV {csv_path} line {line}: {col} {shown(r.get(col, ''))} is not an "
                              "integer; fix the row") from None


def _refuse_repeated_order(csv_path: Path, records: list[PageRecord]) -> None:
    """Two pages at one ``order`` of one document would have no reading order."""
    seen: dict[tuple[str, tuple[int, ...]], str] = {}
    for r in records:
        key = (r.doc_id, r.order)
        if key in seen:
            raise WrmilInputError(f"pages CSV {csv_path}: {r.source} and {seen[key]} put two pages of document "
                                  f"{r.doc_id!r} at order {r.order[0]}; give each page its own order")
        seen[key] = r.source


def _refuse_shared_documents(records: list[PageRecord]) -> None:
    """A document belongs to one writer (the pipeline contaminates documents with other writers' words)."""
    writers: dict[str, dict[int, str]] = {}
    for r in records:
        writers.setdefault(r.doc_id, {}).setdefault(r.writer, f"{r.rel} ({r.source})")
    shared = {d: w for d, w in writers.items() if len(w) > 1}
    if shared:
        ex = [f"{d!r}: " + "; ".join(f"writer {w} e.g. {p}" for w, p in sorted(ws.items())) for d, ws in sorted(shared.items())]
        raise WrmilInputError(f"a document must belong to one writer, {len(shared)} do not: {fmt_list(ex, 3)}; "
                              "give each writer's pages their own doc_id")
