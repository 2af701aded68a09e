"""Score many questioned documents in one process, the models loaded once, and summarise them.

A batch is a folder or a CSV list (:func:`list_batch`):

* a **folder** whose entries are documents: page images, PDFs and TIFFs (each file one document,
  all its pages) and subfolders of word images (each one document), in natural name order. A
  folder of word images is itself one document, so a folder is read as a batch when asked
  (``wrmil score --batch``) or when it holds no image directly but PDFs or subfolders
  (:func:`is_batch_folder`);
* a **CSV list** with a ``path`` column (relative to the CSV's folder, or absolute) and optional
  ``id`` (the document's name in the summary and its output folder; default the file or folder
  name) and ``pages`` (a page spec such as ``1,3-4`` for that PDF/TIFF). An order CSV of one
  document has ``image_path,order`` instead, which tells the two apart (:func:`is_batch_list`).

:func:`score_batch` scores each document into ``out_dir/<id>/`` (``score.json``, ``strip.png`` and,
for scans, ``page_overlay.png``) and :func:`write_summary` writes ``summary.csv`` and
``summary.html`` (:data:`SUMMARY_COLUMNS`), one row per document. A document that fails is a row
with ``status`` ``error`` (bad input: the one-line ``WrmilInputError`` message) or ``crash``
(anything else, a bug to report); the others go on.
"""

from __future__ import annotations

import csv
import html
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from wrmil_core.data.multipage import is_multipage_path
from wrmil_core.errors import WrmilInputError
from wrmil_core.runtime import Log, speaker
from wrmil_core.scoring.document import IMAGE_SUFFIXES, natural_key
from wrmil_core.scoring.page import is_page_path, score_page
from wrmil_core.scoring.score import DocumentScore, ScoringModels, fpr_percent, score_document
from wrmil_core.scoring.strip import write_outputs

SUMMARY_CSV = "summary.csv"
SUMMARY_HTML = "summary.html"
BATCH_CSV_COLUMNS = ("path", "id", "pages")  # path required; id and pages optional
SUMMARY_COLUMNS: tuple[str, ...] = (
    "id", "path", "status", "pages", "words", "log10_lr", "verbal", "flagged_fpr_1", "flagged_fpr_5",
    "raw_score", "passage", "writers", "warnings", "overlay", "strip", "score_json", "seconds", "error")
OK, ERROR, CRASH = "ok", "error", "crash"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class BatchItem:
    """One questioned document of a batch: its name, its file or folder, its page spec (PDF/TIFF)."""

    id: str
    path: Path
    pages: str | None = None


@dataclass
class BatchRow:
    """The summary row of one document (:data:`SUMMARY_COLUMNS`; paths relative to the output folder)."""

    id: str
    path: str
    status: str
    values: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, str]:
        """The row as ``SUMMARY_COLUMNS`` -> text (blank where it does not apply)."""
        row = {c: "" for c in SUMMARY_COLUMNS}
        row.update(self.values, id=self.id, path=self.path, status=self.status)
        return row


def is_batch_list(path: str | Path) -> bool:
    """True for a CSV file whose header has a ``path`` column (a batch list, not an order CSV)."""
    p = Path(path)
    if not (p.is_file() and p.suffix.lower() == ".csv"):
        return False
    with p.open(newline="", encoding="utf-8-sig", errors="replace") as f:
        header = [c.strip() for c in next(csv.reader(f), [])]
    return "path" in header and "image_path" not in header


def is_batch_folder(path: str | Path) -> bool:
    """True for a folder that cannot be one document of word images but holds documents: no image
    directly inside it, and at least one PDF or (non-hidden) subfolder."""
    p = Path(path)
    if not p.is_dir():
        return False
    entries = [e for e in p.iterdir() if not e.name.startswith(".")]
    if any(e.is_file() and e.suffix.lower() in IMAGE_SUFFIXES for e in entries):
        return False
    return any(e.is_dir() or e.suffix.lower() == ".pdf" for e in entries)


def list_batch(path: str | Path, exclude: Path | None = None) -> list[BatchItem]:
    """The documents of a batch folder or CSV list (module docstring), in order; ``exclude`` (the
    output folder, when inside the batch folder) is skipped. Raises :class:`WrmilInputError` for a
    missing path, an empty batch or a bad CSV."""
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise WrmilInputError(f"batch {path} does not exist; give a folder of documents or a CSV list with a "
                              "path column")
    if path.is_file() and path.suffix.lower() != ".csv":
        raise WrmilInputError(f"batch {path} is one file; a batch is a folder of documents or a CSV list with a path "
                              "column. To score this file alone, leave --batch out")
    items = _read_batch_csv(path) if path.is_file() else _folder_items(path, exclude)
    if not items:
        raise WrmilInputError(f"batch {path} holds no documents: give page images, PDFs, TIFFs or subfolders "
                              "of word images (or a CSV list with a path column)")
    return items


def _folder_items(folder: Path, exclude: Path | None) -> list[BatchItem]:
    """Page images, PDFs, TIFFs and subfolders directly inside ``folder``, in natural name order."""
    skip = exclude.resolve() if exclude is not None else None
    entries = sorted((e for e in folder.iterdir() if not e.name.startswith(".") and e.resolve() != skip
                      and (e.is_dir() or is_page_path(e))), key=lambda e: natural_key(e.name))
    return _with_ids([(None, e, None) for e in entries])


def _read_batch_csv(csv_path: Path) -> list[BatchItem]:
    """The rows of a batch list (columns ``path``, optional ``id`` and ``pages``)."""
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [(c or "").strip() for c in (reader.fieldnames or [])]
            rows = [(reader.line_num, {(k or "").strip(): (v or "").strip() for k, v in r.items() if k})
                    for r in reader]
    except (UnicodeDecodeError, csv.Error) as e:
        raise WrmilInputError(f"batch list {csv_path} cannot be read as UTF-8 CSV ({e}); re-save it as UTF-8 with "
                              "a path column") from None
    if "path" not in header:
        raise WrmilInputError(f"batch list {csv_path} has columns {header}; it needs a path column (optional id "
                              "and pages), one questioned document per row")
    listed = []
    for line, r in rows:
        if not any(r.values()):
            continue
        if not r.get("path"):
            raise WrmilInputError(f"batch list {csv_path} line {line}: empty path; fill it in or remove the row")
        p = Path(r["path"]).expanduser()
        listed.append((r.get("id") or None, p if p.is_absolute() else csv_path.parent / p, r.get("pages") or None))
    ids = [i for i, _, _ in listed if i]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise WrmilInputError(f"batch list {csv_path}: id(s) {repeated} repeat; give each document its own id")
    return _with_ids(listed)


def _with_ids(listed: list[tuple[str | None, Path, str | None]]) -> list[BatchItem]:
    """Items with an id each: the given one, else the file stem (folder name); a repeated default
    gets ``_2``, ``_3`` ... (``a.png`` and ``a.pdf`` both name ``a``)."""
    items, seen = [], set()
    for given, path, pages in listed:
        base = given or (path.name if path.is_dir() else path.stem) or "document"
        name, k = base, 1
        while name in seen:
            k += 1
            name = f"{base}_{k}"
        seen.add(name)
        items.append(BatchItem(name, path, pages))
    return items


def output_folder(out_dir: Path, item_id: str) -> Path:
    """``out_dir/<id>``, the id made safe as a folder name (characters other than letters, digits,
    ``.``, ``_`` and ``-`` become ``_``)."""
    safe = _UNSAFE.sub("_", item_id).strip(".") or "document"
    return out_dir / safe


def score_batch(items: list[BatchItem], models: ScoringModels, out_dir: str | Path, *, pages: str | None = None,
                dpi: int = 300, top_k: int = 10, log: Log = None) -> list[BatchRow]:
    """Score every document of ``items`` with the loaded ``models`` into ``out_dir/<id>/``; return
    one row per document (a failed one with its error). ``pages`` applies to each PDF/TIFF whose
    item names no page spec of its own."""
    say = speaker(log)
    out_dir = Path(out_dir)
    rows = []
    for k, item in enumerate(items, start=1):
        t0 = time.perf_counter()
        try:
            row = _score_item(item, models, out_dir, pages, dpi, top_k)
        except WrmilInputError as e:
            row = BatchRow(item.id, str(item.path), ERROR, {"error": str(e)})
        except Exception as e:  # noqa: BLE001 - one document's bug must not cost the others their rows
            row = BatchRow(item.id, str(item.path), CRASH, {"error": f"{type(e).__name__}: {e}"})
        row.values["seconds"] = f"{time.perf_counter() - t0:.1f}"
        rows.append(row)
        what = row.values.get("error") if row.status != OK else f"log10 LR {row.values['log10_lr']}, {row.values['verbal']}"
        say(f"[{k}/{len(items)}] {item.id}: {row.status}: {what}")
    return rows


def _score_item(item: BatchItem, models: ScoringModels, out_dir: Path, pages: str | None, dpi: int,
                top_k: int) -> BatchRow:
    """Score one document and return its row (raises on bad input)."""
    doc_out = output_folder(out_dir, item.id)
    if not item.path.exists():
        raise WrmilInputError(f"{item.path}: no such file or folder; fix the path or remove it from the batch")
    if item.path.is_dir():
        score = score_document(item.path, None, None, top_k=top_k, models=models)
        outputs = {k: Path(v) for k, v in write_outputs(score, doc_out).items()}
        n_pages = ""
    elif is_page_path(item.path):
        spec = item.pages or (pages if is_multipage_path(item.path) else None)
        result = score_page(item.path, None, None, doc_out, top_k=top_k, models=models, pages_spec=spec, dpi=dpi)
        score, outputs, n_pages = result.score, result.outputs, str(result.n_pages)
    else:
        raise WrmilInputError(f"{item.path}: not a questioned document; give a page image (PNG, JPEG, TIFF), a PDF "
                              "or a folder of word images")
    values = _score_values(score)
    values.update(pages=n_pages, **{k: _rel(outputs.get(v), out_dir) for k, v in
                                    (("overlay", "overlay"), ("strip", "strip"), ("score_json", "json"))})
    return BatchRow(item.id, str(item.path), OK, values)


def _score_values(score: DocumentScore) -> dict[str, str]:
    """The summary columns a document score fills."""
    flags = {f"flagged_{k}": "yes" if v else "no" for k, v in score.decisions.items()}
    passage = score.passage_range
    return {"words": str(score.n_words),
            "log10_lr": "" if score.log10_lr is None else f"{score.log10_lr:+.2f}",
            "verbal": score.verbal, "raw_score": f"{score.probability:.4f}",
            "passage": "" if passage is None else f"{passage[0]}-{passage[1]}",
            "writers": "" if score.writers is None else str(score.writers["estimate"]),
            "warnings": "; ".join(score.warnings),
            **{k: v for k, v in flags.items() if k in SUMMARY_COLUMNS}}


def _rel(path: Path | None, out_dir: Path) -> str:
    """``path`` relative to the output folder (links that survive moving the folder); blank for none."""
    if path is None:
        return ""
    p = Path(path)
    return p.relative_to(out_dir).as_posix() if p.is_relative_to(out_dir) else str(p)


def write_summary(rows: list[BatchRow], out_dir: str | Path) -> dict[str, Path]:
    """``summary.csv`` and ``summary.html`` of a scored batch (:data:`SUMMARY_COLUMNS`)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out_dir / SUMMARY_CSV, "html": out_dir / SUMMARY_HTML}
    with paths["csv"].open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(SUMMARY_COLUMNS))
        writer.writeheader()
        writer.writerows(r.as_dict() for r in rows)
    paths["html"].write_text(summary_html(rows), encoding="utf-8")
    return paths


def summary_html(rows: list[BatchRow]) -> str:
    """A self-contained HTML table of the batch: one row per document, links to its overlay and
    strip, failed documents highlighted with their error."""
    def cell(col: str, value: str) -> str:
        if col in ("overlay", "strip", "score_json") and value:
            return f'<td><a href="{html.escape(value)}">{html.escape(col.replace("_", "."))}</a></td>'
        return f"<td>{html.escape(value)}</td>"

    heads = "".join(f"<th>{html.escape(_heading(c))}</th>" for c in SUMMARY_COLUMNS)
    body = "\n".join(f'<tr class="{r.status}">' + "".join(cell(c, v) for c, v in r.as_dict().items()) + "</tr>"
                     for r in rows)
    failed = sum(r.status != OK for r in rows)
    return ("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>wrmil batch summary</title><style>"
            "body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px;"
            "font-size:13px;vertical-align:top}tr.error,tr.crash{background:#fdd}</style></head><body>\n"
            f"<h1>wrmil batch summary</h1><p>{len(rows)} document(s), {len(rows) - failed} scored, {failed} failed. "
            "log10 LR: H1 more than one writer vs H0 one writer; flagged at the 1 % / 5 % false-positive "
            f"thresholds of validation writers.</p>\n<table><tr>{heads}</tr>\n{body}\n</table></body></html>\n")


def _heading(column: str) -> str:
    """``flagged_fpr_1`` -> ``flagged at 1 % FPR``; other columns unchanged."""
    return f"flagged at {fpr_percent(column[len('flagged_'):])} FPR" if column.startswith("flagged_") else column


def exit_code(rows: list[BatchRow]) -> int:
    """0 when every document was scored, 1 when one crashed (a bug), else 2 when one had bad input."""
    statuses = {r.status for r in rows}
    return 1 if CRASH in statuses else 2 if ERROR in statuses else 0


__all__ = ["BATCH_CSV_COLUMNS", "SUMMARY_COLUMNS", "BatchItem", "BatchRow", "exit_code", "is_batch_folder",
           "is_batch_list", "list_batch", "output_folder", "score_batch", "summary_html", "write_summary"]
