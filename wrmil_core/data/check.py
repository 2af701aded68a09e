"""``wrmil check``: validate a data root without running the pipeline.

The check is ingest itself (columns, paths, images, documents, short documents: one
implementation) plus the writer count a writer-disjoint split needs. Errors raise
``WrmilInputError`` with one line naming the file, row or value; skips are counted and shown in
the summary table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wrmil_core.data.ingest import DEFAULT, SKIP_REASONS, IngestResult, ingest
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

    def table(self) -> str:
        """The summary as an aligned two-column text table."""
        rows = self.rows()
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)


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
