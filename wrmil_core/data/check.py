"""``wrmil check``: validate a data root without running the pipeline.

A data root of word crops is checked by ingest itself (columns, paths, images, documents, short
documents: one implementation) plus the writer count a writer-disjoint split needs. A root of
page scans (told apart as ``wrmil run`` does, :func:`~wrmil_core.data.pages_input.data_root_kind`)
is checked as ``raw_pages`` reads it: its page list (``pages.csv`` or CSAFE names), every image,
duplicate pages, and the writer count; its words are only counted once ``wrmil run`` cuts the
pages. Errors raise ``WrmilInputError`` with one line naming the file, row or value; skips are
counted and shown in the summary table.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from wrmil_core.data.fingerprint import metadata_fingerprint
from wrmil_core.data.images import check_images
from wrmil_core.data.ingest import DEFAULT, SKIP_REASONS, IngestResult, ingest
from wrmil_core.data.pages_input import PAGES_CSV, PageRecord, data_root_kind, list_pages
from wrmil_core.data.split import DEFAULT_FRACTIONS, split_sizes
from wrmil_core.errors import WrmilInputError
from wrmil_core.runtime import Log
from wrmil_core.schema import DEFAULT_METADATA_CSV, DEFAULT_REPS_PER_SESSION, SPLITS


@dataclass(frozen=True)
class DataCheck:
    """What a data root holds once ingested; ``split_writers`` is the default split's writers per split."""

    result: IngestResult
    split_writers: tuple[int, ...]
    reps_per_session: int
    min_doc_words: int

    @property
    def n_skipped(self) -> int:
        """Skip count over every reason (rows, documents and writers)."""
        return sum(self.result.skipped.values())

    @property
    def _documents_from(self) -> str:
        if (self.result.words["session"] == -1).all():
            return "the CSV's doc_id"
        return f"writer x session of {self.reps_per_session} repetitions"

    def rows(self) -> list[tuple[str, str]]:
        """The summary as (what, value) rows."""
        r, m = self.result, self.result.metadata
        rows = [
            ("data root", str(r.root)),
            ("metadata CSV", f"{r.metadata_path.name} ({r.n_csv_rows} rows, sha256 {r.fingerprint[:12]})"),
            ("ignored columns", m["ignored_columns"]),
            ("writers", str(m["n_writers"])),
            ("documents", f"{m['n_documents']} ({self._documents_from}; min_doc_words={self.min_doc_words})"),
            ("words", str(m["n_words"])),
            ("words per document", (f"min {m['words_per_doc_min']}, median {m['words_per_doc_median']:g}, "
                                    f"max {m['words_per_doc_max']}")),
            ("default split", ", ".join(f"{s} {n}" for s, n in zip(SPLITS, self.split_writers)) + " writers"),
        ]
        for reason in SKIP_REASONS:
            n = r.skipped[reason]
            if n:
                example = r.skipped_examples.get(reason, [""])[0]
                rows.append((f"skipped: {reason}", f"{n}" + (f"  e.g. {example}" if example else "")))
        if not self.n_skipped:
            rows.append(("skipped", "nothing"))
        return rows

    @property
    def root(self) -> Path:
        """The data root checked."""
        return self.result.root

    def table(self) -> str:
        """The summary as an aligned two-column text table."""
        return _table(self.rows())


def _table(rows: list[tuple[str, str]]) -> str:
    """``rows`` as an aligned two-column text table."""
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)


PAGE_SKIP_REASONS: tuple[str, ...] = ("missing_image", "empty_image", "corrupt_image", "duplicate_page")


@dataclass(frozen=True)
class PageCheck:
    """What a page-scan data root holds: its usable ``pages``, skipped pages by reason (examples),
    the default split's writers per split, and where writers and documents came from."""

    root: Path
    pages: tuple[PageRecord, ...]
    skipped: dict[str, list[str]]
    split_writers: tuple[int, ...]
    listed_by: str

    @property
    def n_skipped(self) -> int:
        """Skipped pages over every reason."""
        return sum(len(v) for v in self.skipped.values())

    def rows(self) -> list[tuple[str, str]]:
        """The summary as (what, value) rows."""
        per_doc: dict[str, int] = {}
        for page in self.pages:
            per_doc[page.doc_id] = per_doc.get(page.doc_id, 0) + 1
        counts = sorted(per_doc.values())
        rows = [
            ("data root", str(self.root)),
            ("layout", f"page scans ({self.listed_by})"),
            ("pages", str(len(self.pages))),
            ("writers", str(len({p.writer for p in self.pages}))),
            ("documents", str(len(per_doc))),
            ("pages per document", f"min {counts[0]}, median {statistics.median(counts):g}, max {counts[-1]}"),
            ("words", "counted when `wrmil run` cuts the pages (raw_pages)"),
            ("default split", ", ".join(f"{s} {n}" for s, n in zip(SPLITS, self.split_writers)) + " writers"),
        ]
        for reason in PAGE_SKIP_REASONS:
            if self.skipped.get(reason):
                rows.append((f"skipped: {reason}", f"{len(self.skipped[reason])}  e.g. {self.skipped[reason][0]}"))
        if not self.n_skipped:
            rows.append(("skipped", "nothing"))
        return rows

    def table(self) -> str:
        """The summary as an aligned two-column text table."""
        return _table(self.rows())


def check_data_root(
    root: str | Path,
    *,
    metadata_csv: str | Path = DEFAULT_METADATA_CSV,
    reps_per_session: int = DEFAULT_REPS_PER_SESSION,
    min_doc_words: int = DEFAULT.min_doc_words,
    verify_images: bool = DEFAULT.verify_images,
    log: Log = None,
) -> DataCheck:
    """Ingest ``root`` as the pipeline would and check it can be split writer-disjointly.

    Raises:
        WrmilInputError: any error ingest raises, or fewer writers than splits.
    """
    result = ingest(root, metadata_csv=metadata_csv, reps_per_session=reps_per_session,
                    min_doc_words=min_doc_words, verify_images=verify_images, log=log)
    try:
        sizes = split_sizes(result.words["writer"].n_unique(), DEFAULT_FRACTIONS)
    except WrmilInputError as e:
        raise WrmilInputError(f"data root {result.root}: {e}") from None
    return DataCheck(result=result, split_writers=tuple(sizes), reps_per_session=reps_per_session,
                     min_doc_words=min_doc_words)


def check_page_root(root: str | Path, *, verify_images: bool = DEFAULT.verify_images, log: Log = None) -> PageCheck:
    """Read the page-scan root ``root`` as ``raw_pages`` would, short of cutting the pages: list its
    pages, skip missing, empty, corrupt and duplicate images, and check the writers can be split.

    Raises:
        WrmilInputError: a bad page name or ``pages.csv``, no usable page, or fewer writers than splits.
    """
    root = Path(root).expanduser().absolute()
    records = list_pages(root)
    status = check_images([str(r.path) for r in records], verify=verify_images, log=log, desc="checking pages")
    skipped: dict[str, list[str]] = {}
    usable: list[PageRecord] = []
    first_of: dict[str, str] = {}
    for record, (state, why) in zip(records, status):
        if state != "ok":
            skipped.setdefault(state, []).append(f"{record.rel} ({why})")
            continue
        sha = metadata_fingerprint(record.path)  # raw_pages skips a page whose bytes it has seen
        if sha in first_of:
            skipped.setdefault("duplicate_page", []).append(f"{record.rel} (same bytes as {first_of[sha]})")
            continue
        first_of[sha] = record.rel
        usable.append(record)
    if not usable:
        examples = "; ".join(v[0] for v in skipped.values())
        raise WrmilInputError(f"data root {root}: none of its {len(records)} page(s) can be used: {examples}")
    try:
        sizes = split_sizes(len({r.writer for r in usable}), DEFAULT_FRACTIONS)
    except WrmilInputError as e:
        raise WrmilInputError(f"data root {root}: {e}") from None
    listed_by = f"listed in {PAGES_CSV}" if (root / PAGES_CSV).is_file() else "CSAFE file names"
    return PageCheck(root=root, pages=tuple(usable), skipped=skipped, split_writers=tuple(sizes), listed_by=listed_by)


def check_root(
    root: str | Path,
    *,
    metadata_csv: str | Path = DEFAULT_METADATA_CSV,
    reps_per_session: int = DEFAULT_REPS_PER_SESSION,
    min_doc_words: int = DEFAULT.min_doc_words,
    verify_images: bool = DEFAULT.verify_images,
    log: Log = None,
) -> DataCheck | PageCheck:
    """Check ``root`` as ``wrmil run`` would read it: :func:`check_page_root` for page scans, else
    :func:`check_data_root` (word crops); a folder holding neither layout is refused in one line."""
    if data_root_kind(root, metadata_csv) == "pages":
        return check_page_root(root, verify_images=verify_images, log=log)
    return check_data_root(root, metadata_csv=metadata_csv, reps_per_session=reps_per_session,
                           min_doc_words=min_doc_words, verify_images=verify_images, log=log)
