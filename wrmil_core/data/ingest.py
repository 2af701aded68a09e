"""Read a raw data root into the tidy ``words`` table (see ``wrmil_core.schema``).

Layout (the original CSAFE/"naver_ocr" layout)::

    <root>/<writer>/<word>_<rep>.png
    <root>/naver_ocr.csv   columns: image_path,label,detected_word,repetition[,doc_id][,word_index]

``image_path`` is relative to ``<root>``. Without ``doc_id`` a document is one writer's session
(``session = repetition // reps_per_session``, ``doc_id = f"{writer}_s{session}"``); without
``word_index`` the reading order is repetition, then CSV row order. Other columns (a transcription,
a source path, a spreadsheet's index) are ignored and listed in ``IngestResult.ignored_columns``.

Every piece of bad input either raises ``WrmilInputError`` (message names the file, CSV line and
value, and says what to do) or is skipped, counted in ``IngestResult.skipped`` and shown by
example in ``IngestResult.skipped_examples``; nothing is dropped silently.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from wrmil_core import presets
from wrmil_core.data.fingerprint import metadata_fingerprint
from wrmil_core.data.images import check_images
from wrmil_core.data.metadata_csv import (
    INT32_MAX,
    MAX_EXAMPLES,
    MetadataTable,
    check_root,
    fmt_list,
    normalise_paths,
    parse_int,
    read_metadata_csv,
    resolve_metadata_path,
    shown,
)
from wrmil_core.errors import WrmilInputError
from wrmil_core.runtime import Log, speaker
from wrmil_core.schema import (
    DEFAULT_METADATA_CSV,
    DEFAULT_REPS_PER_SESSION,
    WORD_COLUMNS,
)

#: Skip categories, in the order they are applied. Every key is always present in ``skipped``.
SKIP_REASONS: tuple[str, ...] = (
    "blank_row",              # a CSV row whose fields are all empty (spreadsheet exports)
    "duplicate_row",          # exact duplicate of an earlier row (same image_path, same fields)
    "missing_image",          # image_path does not exist under the root
    "empty_image",            # 0-byte file or an image of width/height 0
    "corrupt_image",          # not readable as an image (unknown format, truncated, bad CRC, I/O error)
    "short_document",         # documents with fewer than ``min_doc_words`` usable words
    "short_document_words",   # words dropped with those documents
    "writer_without_documents",  # writers left with no document at all
)
#: Reasons that count CSV rows (the others count documents or writers).
ROW_SKIPS: tuple[str, ...] = ("blank_row", "duplicate_row", "missing_image", "empty_image",
                              "corrupt_image", "short_document_words")


@dataclass(frozen=True)
class IngestConfig:
    """How to read a data root (where it is and its layout come from the settings resource).

    min_doc_words   documents with fewer usable words are skipped (one window's worth)
    verify_images   open every image and walk its chunks (else only stat it: fast, misses corruption)
    """

    min_doc_words: int = 5
    verify_images: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.min_doc_words, int) or self.min_doc_words < 1:
            raise WrmilInputError(f"min_doc_words must be an integer >= 1, got {self.min_doc_words!r}.")


DEFAULT = IngestConfig()
# cpu, gpu: a user's own data (`wrmil run --data-root`); ingest has nothing to tune per preset.
PRESETS: dict[str, IngestConfig] = {"demo": DEFAULT, "paper": DEFAULT, "cpu": DEFAULT, "gpu": DEFAULT}


def preset(name: str, **overrides: Any) -> IngestConfig:
    """A named preset with optional field overrides, e.g. ``preset("demo", verify_images=False)``."""
    return presets.preset(PRESETS, name, **overrides)


@dataclass
class IngestResult:
    """Outcome of :func:`ingest`.

    ``words`` follows ``schema.WORD_COLUMNS``; ``skipped`` maps every reason in ``SKIP_REASONS``
    to a count; ``skipped_examples`` holds up to 10 human-readable examples per non-zero reason;
    ``fingerprint`` is :func:`metadata_fingerprint` of the CSV that was read; ``ignored_columns``
    are the CSV's columns that ingest does not use.
    """

    words: pl.DataFrame
    skipped: dict[str, int]
    skipped_examples: dict[str, list[str]]
    fingerprint: str
    metadata_path: Path
    n_csv_rows: int = 0
    root: Path = field(default_factory=Path)
    ignored_columns: tuple[str, ...] = ()

    @property
    def words_per_document(self) -> pl.Series:
        """Word count of every document."""
        return self.words.group_by("doc_id").len()["len"]

    @property
    def metadata(self) -> dict[str, int | float | str]:
        """Flat counts for Dagster materialisation metadata."""
        w, per_doc = self.words, self.words_per_document
        out: dict[str, int | float | str] = {
            "n_csv_rows": self.n_csv_rows,
            "n_words": w.height,
            "n_writers": w["writer"].n_unique(),
            "n_documents": w["doc_id"].n_unique(),
            "words_per_doc_min": int(per_doc.min()),
            "words_per_doc_median": float(per_doc.median()),
            "words_per_doc_max": int(per_doc.max()),
            "n_skipped_rows": sum(self.skipped[k] for k in ROW_SKIPS),
        }
        out.update({f"skipped_{k}": v for k, v in self.skipped.items()})
        out["ignored_columns"] = ", ".join(self.ignored_columns) or "none"
        out["metadata_fingerprint"] = self.fingerprint
        out["metadata_path"] = str(self.metadata_path)
        out["data_root"] = str(self.root)
        return out


@dataclass
class _Skips:
    """Counts and a few examples per skip reason."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SKIP_REASONS, 0))
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, n: int, examples: list[str]) -> None:
        self.counts[reason] += n
        if n:
            kept = self.examples.setdefault(reason, [])
            kept.extend(examples[: MAX_EXAMPLES - len(kept)])


# --------------------------------------------------------------------------- ingest


def ingest(
    root: str | Path,
    *,
    metadata_csv: str | Path = DEFAULT_METADATA_CSV,
    reps_per_session: int = DEFAULT_REPS_PER_SESSION,
    min_doc_words: int = DEFAULT.min_doc_words,
    verify_images: bool = DEFAULT.verify_images,
    log: Log = None,
) -> IngestResult:
    """Read ``root`` (original layout, see module docstring) into the ``words`` table.

    Args:
        root: data root; ``image_path`` values are relative to it.
        metadata_csv: CSV file name inside ``root`` (or an absolute path to it).
        reps_per_session: repetitions per session; ``session = repetition // reps_per_session``.
        min_doc_words, verify_images: see :class:`IngestConfig`.
        log: optional progress/warning callback (Dagster passes ``context.log.info``).

    Raises:
        WrmilInputError: layout, header, type, path-escape, conflicting-duplicate errors, or
            when nothing usable is left.
    """
    config = IngestConfig(min_doc_words=min_doc_words, verify_images=verify_images)
    if not isinstance(reps_per_session, int) or reps_per_session < 1:
        raise WrmilInputError(f"reps_per_session must be an integer >= 1, got {reps_per_session!r}.")
    root = Path(root).expanduser().absolute()
    metadata_path = resolve_metadata_path(root, metadata_csv)
    check_root(root, metadata_path)
    fingerprint = metadata_fingerprint(metadata_path)
    table = read_metadata_csv(metadata_path)
    say, skips = speaker(log), _Skips()
    say(f"read {table.rows.height} rows from {metadata_path}" + _ignored_note(table))
    skips.add("blank_row", len(table.blank_lines), [f"line {n}" for n in table.blank_lines])
    # CSV-level errors come before the slow image scan.
    df = _drop_duplicates(_typed_rows(table, metadata_path), metadata_path, skips)
    csv_writers = set(df["writer"].unique().to_list())
    df = _assign_documents(df, reps_per_session, metadata_path)
    df = _drop_bad_images(df, root, metadata_path, config.verify_images, skips, log)
    df = _drop_short_documents(df, config.min_doc_words, skips, root)
    _count_writers_without_documents(csv_writers, df, config.min_doc_words, skips)
    words = _words_table(df)
    _log_summary(words, skips, say)
    return IngestResult(words=words, skipped=skips.counts, skipped_examples=skips.examples,
                        fingerprint=fingerprint, metadata_path=metadata_path,
                        n_csv_rows=table.rows.height + len(table.blank_lines), root=root,
                        ignored_columns=table.ignored_columns)


# --------------------------------------------------------------------------- steps


def _ignored_note(table: MetadataTable) -> str:
    return f"; ignored column(s) {list(table.ignored_columns)}" if table.ignored_columns else ""


def _typed_rows(table: MetadataTable, path: Path) -> pl.DataFrame:
    """One row per CSV record: line, rel (normalised image path), writer, text, repetition,
    plus doc_id / word_index when the CSV has them."""
    rows = table.rows
    cols: dict[str, pl.Series] = {
        "line": rows["line"],
        "writer": parse_int(rows, "label", path),
        # Int32 in the words table, so the bound is checked here with the line that breaks it.
        "repetition": parse_int(rows, "repetition", path, min_value=0, max_value=INT32_MAX),
        "rel": normalise_paths(rows, path),
        "text": rows["detected_word"],
    }
    if "doc_id" in rows.columns:
        doc = rows["doc_id"].str.strip_chars()
        bad = rows.filter(doc == "")["line"].to_list()
        if bad:
            raise WrmilInputError(
                f"metadata CSV {path}: column 'doc_id' is empty in {len(bad)} row(s): "
                f"{fmt_list([f'line {n}' for n in bad])}; fill it in for every row or "
                "drop the column to derive documents from writer and session.")
        cols["doc_id"] = doc
    if "word_index" in rows.columns:
        cols["word_index"] = parse_int(rows, "word_index", path, min_value=0)
    return pl.DataFrame(cols)


def _drop_duplicates(df: pl.DataFrame, path: Path, skips: _Skips) -> pl.DataFrame:
    """Skip exact repeats of an image_path; error when repeats disagree on any field."""
    dup_mask = df["rel"].is_duplicated()
    if not dup_mask.any():
        return df
    fields = [c for c in df.columns if c not in ("line", "rel")]
    dups = df.filter(dup_mask)
    conflicts = (
        dups.group_by("rel")
        .agg([pl.col(c).n_unique().alias(c) for c in fields] + [pl.col("line").sort()])
        .filter(pl.any_horizontal([pl.col(c) > 1 for c in fields]))
        .sort(pl.col("line").list.first())
    )
    if conflicts.height:
        ex = []
        for r in conflicts.iter_rows(named=True):
            differ = [c for c in fields if r[c] > 1]
            rows = dups.filter(pl.col("rel") == r["rel"]).sort("line")
            vals = "; ".join(
                f"line {x['line']}: " + ", ".join(
                    f"{'label' if c == 'writer' else c}={shown(x[c])}" for c in differ)
                for x in rows.iter_rows(named=True))
            ex.append(f"{shown(r['rel'])} ({vals})")
        raise WrmilInputError(
            f"metadata CSV {path}: {conflicts.height} image_path(s) appear more than once with "
            f"different values: {fmt_list(ex, 5)}; keep one correct row per image.")
    first = df["rel"].is_first_distinct()
    removed = df.filter(~first)
    skips.add("duplicate_row", removed.height,
              [f"line {n}: {shown(p)}" for n, p in removed.select("line", "rel").head(MAX_EXAMPLES).iter_rows()])
    return df.filter(first)


def _assign_documents(df: pl.DataFrame, reps_per_session: int, path: Path) -> pl.DataFrame:
    """Add ``session`` and (when the CSV has none) ``doc_id``; refuse documents shared by writers
    and reading orders that put two words at one ``word_index``."""
    if "doc_id" in df.columns:
        df = df.with_columns(pl.lit(-1, pl.Int64).alias("session"))
        multi = df.group_by("doc_id").agg(pl.col("writer").unique().sort()).filter(
            pl.col("writer").list.len() > 1)
        if multi.height:
            ex = [f"{shown(d)}: writers {w}" for d, w in multi.sort("doc_id").iter_rows()]
            raise WrmilInputError(
                f"metadata CSV {path}: a document must belong to one writer (label), "
                f"{multi.height} doc_id(s) do not: {fmt_list(ex)}; give each writer's pages "
                "their own doc_id.")
    else:
        df = df.with_columns((pl.col("repetition") // reps_per_session).alias("session"))
        df = df.with_columns(pl.format("{}_s{}", pl.col("writer"), pl.col("session")).alias("doc_id"))
    if "word_index" in df.columns:
        dup = df.filter(pl.struct("doc_id", "word_index").is_duplicated())
        if dup.height:
            ex = [f"line {n}: doc {shown(d)} word_index {w}"
                  for n, d, w in dup.sort("doc_id", "word_index", "line")
                  .select("line", "doc_id", "word_index").iter_rows()]
            raise WrmilInputError(
                f"metadata CSV {path}: word_index must be unique inside a document, "
                f"{dup.height} row(s) share one: {fmt_list(ex)}; renumber them.")
    return df


def _drop_bad_images(df: pl.DataFrame, root: Path, path: Path, verify: bool, skips: _Skips,
                     log: Log) -> pl.DataFrame:
    """Stat (and with ``verify`` open and walk) every image; skip missing, empty and corrupt ones."""
    t0 = time.perf_counter()
    abs_paths = [os.path.join(str(root), r) for r in df["rel"].to_list()]
    status = check_images(abs_paths, verify=verify, log=log, desc="checking images")
    speaker(log)(f"checked {len(abs_paths)} images in {time.perf_counter() - t0:.1f} s "
                 f"(verify_images={verify})")
    lines = df["line"].to_list()
    for reason in ("missing_image", "empty_image", "corrupt_image"):
        idx = [i for i, (s, _) in enumerate(status) if s == reason]
        skips.add(reason, len(idx),
                  [f"line {lines[i]}: {shown(abs_paths[i], 200)} ({status[i][1]})" for i in idx[:MAX_EXAMPLES]])
    if skips.counts["missing_image"] == df.height:
        raise WrmilInputError(
            f"none of the {df.height} image paths in {path} exist under {root} "
            f"(first: {shown(abs_paths[0], 200)}); image_path must be relative to the data root — check "
            "the root you passed and the CSV's paths.")
    ok = pl.Series([s == "ok" for s, _ in status], dtype=pl.Boolean)
    df = df.with_columns(pl.Series("path", abs_paths, dtype=pl.Utf8)).filter(ok)
    if df.height == 0:
        raise WrmilInputError(
            f"no usable image left in {root} after skipping {skips.counts}; examples: "
            f"{ {k: v[:3] for k, v in skips.examples.items()} }; fix the images or the CSV.")
    return df


def _drop_short_documents(df: pl.DataFrame, min_doc_words: int, skips: _Skips, root: Path) -> pl.DataFrame:
    """Skip whole documents too short to hold one window."""
    lens = df.group_by("doc_id").agg(pl.len().alias("n"), pl.col("writer").first())
    short = lens.filter(pl.col("n") < min_doc_words).sort("writer", "doc_id")
    if short.height == 0:
        return df
    skips.add("short_document", short.height,
              [f"doc {shown(d)} (writer {w}): {n} word(s) < min_doc_words={min_doc_words}"
               for d, n, w in short.select("doc_id", "n", "writer").iter_rows()])
    skips.counts["short_document_words"] += int(short["n"].sum())
    df = df.filter(~pl.col("doc_id").is_in(short["doc_id"].implode()))
    if df.height == 0:
        raise WrmilInputError(
            f"every document in {root} has fewer than min_doc_words={min_doc_words} usable words "
            f"({short.height} document(s) skipped); lower min_doc_words, check reps_per_session, "
            "or supply doc_id to group words into longer documents.")
    return df


def _count_writers_without_documents(csv_writers: set[int], df: pl.DataFrame, min_doc_words: int,
                                     skips: _Skips) -> None:
    """Writers of the CSV left with no document (short documents and/or bad images)."""
    gone = sorted(csv_writers - set(df["writer"].unique().to_list()))
    skips.add("writer_without_documents", len(gone),
              [f"writer {w}: no document with >= {min_doc_words} usable words" for w in gone])


def _words_table(df: pl.DataFrame) -> pl.DataFrame:
    """Positions in reading order (word_index, else repetition, then CSV line) and stable ids."""
    order_key = "word_index" if "word_index" in df.columns else "repetition"
    words = (
        df.sort("doc_id", order_key, "line")
        .with_columns(pl.int_range(pl.len()).over("doc_id").cast(pl.Int32).alias("position"))
        # Deterministic ids: by writer, session (numeric, so s2 < s10), doc, reading order.
        .sort("writer", "session", "doc_id", "position")
        .with_row_index("word_id")
        .select(
            pl.col("word_id").cast(pl.Int64),
            pl.col("writer").cast(pl.Int64),
            pl.col("doc_id").cast(pl.Utf8),
            pl.col("position").cast(pl.Int32),
            pl.col("path").cast(pl.Utf8),
            pl.col("text").cast(pl.Utf8),
            pl.col("repetition").cast(pl.Int32),
            pl.col("session").cast(pl.Int32),
        )
    )
    assert tuple(words.columns) == WORD_COLUMNS  # this function's invariant, not input validation  # nosec B101
    return words


def _log_summary(words: pl.DataFrame, skips: _Skips, say: Callable[[str], None]) -> None:
    if any(skips.counts.values()):
        say("skipped input: " + ", ".join(f"{k}={v}" for k, v in skips.counts.items() if v))
        for k, ex in skips.examples.items():
            say(f"  {k} e.g. " + "; ".join(ex[:3]))
    say(f"ingested {words.height} words, {words['writer'].n_unique()} writers, "
        f"{words['doc_id'].n_unique()} documents")
