"""Read a raw data root into the tidy ``words`` table (see ``wrmil_core.schema``).

Layout (the original CSAFE/"naver_ocr" layout)::

    <root>/<writer>/<word>_<rep>.png
    <root>/naver_ocr.csv   columns: image_path,label,detected_word,repetition[,doc_id][,word_index]

``image_path`` is relative to ``<root>``. Without ``doc_id`` a document is one writer's session
(``session = repetition // reps_per_session``, ``doc_id = f"{writer}_s{session}"``); without
``word_index`` the reading order is repetition, then CSV row order.

Every piece of bad input either raises ``WrmilInputError`` (message names the file, CSV line and
value, and says what to do) or is skipped, counted in ``IngestResult.skipped`` and shown by
example in ``IngestResult.skipped_examples``; nothing is dropped silently.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from wrmil_core.data.fingerprint import metadata_fingerprint
from wrmil_core.data.images import check_images
from wrmil_core.errors import WrmilInputError
from wrmil_core.runtime import Log, speaker
from wrmil_core.schema import WORD_COLUMNS

REQUIRED_COLUMNS: tuple[str, ...] = ("image_path", "label", "detected_word", "repetition")
OPTIONAL_COLUMNS: tuple[str, ...] = ("doc_id", "word_index")

#: Skip categories, in the order they are applied. Every key is always present in ``skipped``.
SKIP_REASONS: tuple[str, ...] = (
    "duplicate_row",          # exact duplicate of an earlier row (same image_path, same fields)
    "missing_image",          # image_path does not exist under the root
    "empty_image",            # 0-byte file or an image of width/height 0
    "corrupt_image",          # not readable as an image (unknown format, truncated, bad CRC, I/O error)
    "short_document",         # documents with fewer than ``min_doc_words`` usable words
    "short_document_words",   # words dropped with those documents
    "writer_without_documents",  # writers left with no document at all
)

EXPECTED_LAYOUT = (
    "expected <root>/<writer>/<word>_<rep>.png images plus a metadata CSV in <root> with the "
    "header 'image_path,label,detected_word,repetition' (optional extra columns: doc_id, "
    "word_index) and one row per word image, image_path relative to <root>"
)


_MAX_EXAMPLES = 10
_DRIVE = re.compile(r"^[A-Za-z]:")  # Windows drive ("C:\\x.png", "C:x.png"): absolute for our purpose




@dataclass
class IngestResult:
    """Outcome of :func:`ingest`.

    ``words`` follows ``schema.WORD_COLUMNS``; ``skipped`` maps every reason in ``SKIP_REASONS``
    to a count; ``skipped_examples`` holds up to 10 human-readable examples per non-zero reason;
    ``fingerprint`` is :func:`metadata_fingerprint` of the CSV that was read.
    """

    words: pl.DataFrame
    skipped: dict[str, int]
    skipped_examples: dict[str, list[str]]
    fingerprint: str
    metadata_path: Path
    n_csv_rows: int = 0
    root: Path = field(default_factory=Path)

    @property
    def metadata(self) -> dict[str, int | float | str]:
        """Flat counts for Dagster materialisation metadata."""
        w = self.words
        per_doc = w.group_by("doc_id").len()["len"] if w.height else pl.Series([], dtype=pl.UInt32)
        out: dict[str, int | float | str] = {
            "n_csv_rows": self.n_csv_rows,
            "n_words": w.height,
            "n_writers": w["writer"].n_unique() if w.height else 0,
            "n_documents": w["doc_id"].n_unique() if w.height else 0,
            "words_per_doc_min": int(per_doc.min()) if per_doc.len() else 0,
            "words_per_doc_median": float(per_doc.median()) if per_doc.len() else 0.0,
            "words_per_doc_max": int(per_doc.max()) if per_doc.len() else 0,
            "n_skipped_rows": sum(
                self.skipped[k]
                for k in ("duplicate_row", "missing_image", "empty_image", "corrupt_image",
                          "short_document_words")
            ),
        }
        out.update({f"skipped_{k}": v for k, v in self.skipped.items()})
        out["metadata_fingerprint"] = self.fingerprint
        out["metadata_path"] = str(self.metadata_path)
        out["data_root"] = str(self.root)
        return out


# --------------------------------------------------------------------------- helpers


def _line(i: int) -> int:
    """CSV line of 0-based data row ``i`` (line 1 is the header)."""
    return i + 2


def _fmt_list(items: list[str], limit: int = _MAX_EXAMPLES) -> str:
    head = ", ".join(items[:limit])
    return head + (f", ... and {len(items) - limit} more" if len(items) > limit else "")


def _resolve_metadata(root: Path, metadata_csv: str | Path) -> Path:
    m = Path(metadata_csv)
    return m if m.is_absolute() else root / m


def _check_root(root: Path, metadata_path: Path) -> None:
    if not root.exists():
        raise WrmilInputError(f"data root {root} does not exist; {EXPECTED_LAYOUT}.")
    if not root.is_dir():
        raise WrmilInputError(f"data root {root} is not a directory; {EXPECTED_LAYOUT}.")
    if not any(root.iterdir()):
        raise WrmilInputError(f"data root {root} is empty; {EXPECTED_LAYOUT}.")
    if not metadata_path.is_file():
        present = sorted(p.name for p in root.glob("*.csv"))
        hint = (f" CSV files present in the root: {_fmt_list(present)}; pass metadata_csv=<name>."
                if present else "")
        raise WrmilInputError(
            f"metadata CSV {metadata_path} not found;{hint} {EXPECTED_LAYOUT}.")


def _read_csv(path: Path) -> pl.DataFrame:
    if path.stat().st_size == 0:
        raise WrmilInputError(f"metadata CSV {path} is empty (0 bytes); {EXPECTED_LAYOUT}.")
    try:
        # Everything as text: we validate types ourselves so errors can name rows and values.
        df = pl.read_csv(path, infer_schema=False)
    except pl.exceptions.NoDataError:
        raise WrmilInputError(f"metadata CSV {path} is empty; {EXPECTED_LAYOUT}.") from None
    except (pl.exceptions.ComputeError, pl.exceptions.DuplicateError, UnicodeDecodeError) as e:
        raise WrmilInputError(
            f"metadata CSV {path} could not be parsed as UTF-8 CSV ({e}); fix the file "
            f"(every row must have the header's number of fields); {EXPECTED_LAYOUT}.") from None
    # Tolerate a UTF-8 BOM and stray spaces around header names (spreadsheet exports).
    df = df.rename({c: c.lstrip("\ufeff").strip() for c in df.columns})
    cols = df.columns
    missing = [c for c in REQUIRED_COLUMNS if c not in cols]
    extra = [c for c in cols if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing column(s) {missing}")
        if extra:
            parts.append(f"unexpected column(s) {extra}")
        raise WrmilInputError(
            f"metadata CSV {path}: {' and '.join(parts)} (header is {cols}); the header must be "
            f"exactly {list(REQUIRED_COLUMNS)} plus optionally {list(OPTIONAL_COLUMNS)}; "
            "rename or remove the listed columns.")
    if df.height == 0:
        raise WrmilInputError(f"metadata CSV {path} has a header but no rows; {EXPECTED_LAYOUT}.")
    return df


def _parse_int(df: pl.DataFrame, col: str, path: Path, *, min_value: int | None = None) -> pl.Series:
    """Strictly parse a text column to Int64; error naming CSV lines and values otherwise."""
    s = df[col].str.strip_chars()
    parsed = s.cast(pl.Int64, strict=False)
    bad = (parsed.is_null()).arg_true().to_list()
    if bad:
        ex = [f"line {_line(i)}: {df[col][i]!r}" for i in bad]
        raise WrmilInputError(
            f"metadata CSV {path}: column '{col}' must hold integers, {len(bad)} row(s) do not: "
            f"{_fmt_list(ex)}; fix or remove these rows.")
    if min_value is not None:
        low = (parsed < min_value).arg_true().to_list()
        if low:
            ex = [f"line {_line(i)}: {parsed[i]}" for i in low]
            raise WrmilInputError(
                f"metadata CSV {path}: column '{col}' must be >= {min_value}, {len(low)} row(s) "
                f"are not: {_fmt_list(ex)}; fix or remove these rows.")
    return parsed


def _normalise_paths(raw: Iterable[str | None], path: Path) -> list[str]:
    """Lexically normalised relative POSIX paths; error on empty, absolute or escaping ones.

    Lexical (no symlink resolution) on purpose: a root whose writer folders are symlinks to
    another disk is legitimate; a CSV that points outside the root with ``..`` is not.
    """
    out: list[str] = []
    empty: list[str] = []
    escaping: list[str] = []
    for i, p in enumerate(raw):
        if p is None or not p.strip():
            empty.append(f"line {_line(i)}")
            out.append("")
            continue
        if p.startswith(("/", "\\")) or _DRIVE.match(p):
            escaping.append(f"line {_line(i)}: {p!r} (absolute)")
            out.append("")
            continue
        norm = os.path.normpath(p).replace(os.sep, "/")
        if norm == ".." or norm.startswith("../") or norm == ".":
            escaping.append(f"line {_line(i)}: {p!r}")
            out.append("")
            continue
        out.append(norm)
    if empty:
        raise WrmilInputError(
            f"metadata CSV {path}: column 'image_path' is empty in {len(empty)} row(s): "
            f"{_fmt_list(empty)}; fill in the path relative to the data root or remove the rows.")
    if escaping:
        raise WrmilInputError(
            f"metadata CSV {path}: image_path must be relative to the data root and stay inside "
            f"it; {len(escaping)} row(s) do not: {_fmt_list(escaping)}; move the images under "
            "the root and write their paths relative to it.")
    return out


# --------------------------------------------------------------------------- ingest


def ingest(
    root: str | Path,
    *,
    metadata_csv: str | Path = "naver_ocr.csv",
    reps_per_session: int = 9,
    min_doc_words: int = 5,
    verify_images: bool = True,
    log: Log = None,
) -> IngestResult:
    """Read ``root`` (original layout, see module docstring) into the ``words`` table.

    Args:
        root: data root; ``image_path`` values are relative to it.
        metadata_csv: CSV file name inside ``root`` (or an absolute path to it).
        reps_per_session: repetitions per session; ``session = repetition // reps_per_session``.
        min_doc_words: documents with fewer usable words are skipped (one window's worth).
        verify_images: open every image with PIL and ``verify()`` it (else only stat it).
        log: optional progress/warning callback (Dagster passes ``context.log.info``).

    Raises:
        WrmilInputError: layout, header, type, path-escape, conflicting-duplicate errors, or
            when nothing usable is left.
    """
    say = speaker(log)
    if reps_per_session < 1:
        raise WrmilInputError(f"reps_per_session must be >= 1, got {reps_per_session}.")
    if min_doc_words < 1:
        raise WrmilInputError(f"min_doc_words must be >= 1, got {min_doc_words}.")
    root = Path(root).expanduser().absolute()
    metadata_path = _resolve_metadata(root, metadata_csv)
    _check_root(root, metadata_path)
    fingerprint = metadata_fingerprint(metadata_path)
    raw = _read_csv(metadata_path)
    n_rows = raw.height
    say(f"read {n_rows} rows from {metadata_path}")

    skipped = {k: 0 for k in SKIP_REASONS}
    examples: dict[str, list[str]] = {}

    def skip(reason: str, n: int, ex: list[str]) -> None:
        skipped[reason] += n
        if n:
            examples.setdefault(reason, []).extend(ex[: _MAX_EXAMPLES - len(examples.get(reason, []))])

    has_doc = "doc_id" in raw.columns
    has_idx = "word_index" in raw.columns
    writer = _parse_int(raw, "label", metadata_path)
    repetition = _parse_int(raw, "repetition", metadata_path, min_value=0)
    rel = _normalise_paths(raw["image_path"].to_list(), metadata_path)
    cols: dict[str, pl.Series | list] = {
        "row": pl.int_range(0, n_rows, eager=True).alias("row"),
        "rel": rel,
        "writer": writer,
        "text": raw["detected_word"].fill_null(""),
        "repetition": repetition,
    }
    if has_doc:
        doc = raw["doc_id"].str.strip_chars()
        bad = (doc.is_null() | (doc == "")).arg_true().to_list()
        if bad:
            raise WrmilInputError(
                f"metadata CSV {metadata_path}: column 'doc_id' is empty in {len(bad)} row(s): "
                f"{_fmt_list([f'line {_line(i)}' for i in bad])}; fill it in for every row or "
                "drop the column to derive documents from writer and session.")
        cols["doc_id"] = doc
    if has_idx:
        cols["word_index"] = _parse_int(raw, "word_index", metadata_path, min_value=0)
    df = pl.DataFrame(cols)

    df = _drop_duplicates(df, metadata_path, skip)
    csv_writers = set(df["writer"].unique().to_list())

    # Documents and reading order; CSV-level errors are raised before the slow image scan.
    if has_doc:
        df = df.with_columns(pl.lit(-1, pl.Int64).alias("session"))
        multi = df.group_by("doc_id").agg(pl.col("writer").unique().sort()).filter(
            pl.col("writer").list.len() > 1)
        if multi.height:
            ex = [f"{d!r}: writers {w}" for d, w in multi.sort("doc_id").iter_rows()]
            raise WrmilInputError(
                f"metadata CSV {metadata_path}: a document must belong to one writer (label), "
                f"{multi.height} doc_id(s) do not: {_fmt_list(ex)}; give each writer's pages "
                "their own doc_id.")
    else:
        df = df.with_columns((pl.col("repetition") // reps_per_session).alias("session"))
        df = df.with_columns(
            pl.format("{}_s{}", pl.col("writer"), pl.col("session")).alias("doc_id"))
    order_key = "word_index" if has_idx else "repetition"
    if has_idx:
        dup = df.filter(pl.struct("doc_id", "word_index").is_duplicated())
        if dup.height:
            ex = [f"line {_line(r)}: doc {d!r} word_index {w}"
                  for r, d, w in dup.sort("doc_id", "word_index", "row")
                  .select("row", "doc_id", "word_index").iter_rows()]
            raise WrmilInputError(
                f"metadata CSV {metadata_path}: word_index must be unique inside a document, "
                f"{dup.height} row(s) share one: {_fmt_list(ex)}; renumber them.")

    # Image checks (the slow part): stat, and with verify_images open + verify every file.
    t0 = time.perf_counter()
    base = str(root)
    abs_paths = [os.path.join(base, r) for r in df["rel"].to_list()]
    status = check_images(abs_paths, verify=verify_images, log=log)
    say(f"checked {len(abs_paths)} images in {time.perf_counter() - t0:.1f} s "
        f"(verify_images={verify_images})")
    df = df.with_columns(pl.Series("path", abs_paths),
                         pl.Series("status", [s for s, _ in status]))
    rows = df["row"].to_list()
    for reason in ("missing_image", "empty_image", "corrupt_image"):
        idx = [i for i, (s, _) in enumerate(status) if s == reason]
        skip(reason, len(idx),
             [f"line {_line(rows[i])}: {abs_paths[i]} ({status[i][1]})" for i in idx[:_MAX_EXAMPLES]])
    if skipped["missing_image"] == df.height:
        raise WrmilInputError(
            f"none of the {df.height} image paths in {metadata_path} exist under {root} "
            f"(first: {abs_paths[0]}); image_path must be relative to the data root — check "
            "the root you passed and the CSV's paths.")
    df = df.filter(pl.col("status") == "ok").drop("status")
    if df.height == 0:
        raise WrmilInputError(
            f"no usable image left in {root} after skipping {skipped}; examples: "
            f"{ {k: v[:3] for k, v in examples.items()} }; fix the images or the CSV.")

    # Documents too short to hold one window are skipped whole.
    lens = df.group_by("doc_id").agg(pl.len().alias("n"), pl.col("writer").first())
    short = lens.filter(pl.col("n") < min_doc_words).sort("writer", "doc_id")
    if short.height:
        skip("short_document", short.height,
             [f"doc {d!r} (writer {w}): {n} word(s) < min_doc_words={min_doc_words}"
              for d, n, w in short.select("doc_id", "n", "writer").iter_rows()])
        skipped["short_document_words"] += int(short["n"].sum())
        df = df.filter(~pl.col("doc_id").is_in(short["doc_id"].implode()))
    # Writers in the CSV that end with no document at all (short documents and/or bad images).
    gone = sorted(csv_writers - set(df["writer"].unique().to_list()))
    skip("writer_without_documents", len(gone),
         [f"writer {w}: no document with >= {min_doc_words} usable words" for w in gone])
    if df.height == 0:
        raise WrmilInputError(
            f"every document in {root} has fewer than min_doc_words={min_doc_words} usable "
            f"words ({skipped['short_document']} document(s) skipped); lower min_doc_words, "
            "check reps_per_session, or supply doc_id to group words into longer documents.")

    words = (
        df.sort("doc_id", order_key, "row")
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
    assert tuple(words.columns) == WORD_COLUMNS
    if any(skipped.values()):
        say("skipped input: " + ", ".join(f"{k}={v}" for k, v in skipped.items() if v))
        for k, ex in examples.items():
            say(f"  {k} e.g. " + "; ".join(ex[:3]))
    say(f"ingested {words.height} words, {words['writer'].n_unique()} writers, "
        f"{words['doc_id'].n_unique()} documents")
    return IngestResult(words=words, skipped=skipped, skipped_examples=examples,
                        fingerprint=fingerprint, metadata_path=metadata_path,
                        n_csv_rows=n_rows, root=root)


def _drop_duplicates(df: pl.DataFrame, path: Path, skip: Callable[[str, int, list[str]], None]
                     ) -> pl.DataFrame:
    """Skip exact repeats of an image_path; error when repeats disagree on any field."""
    dup_mask = df["rel"].is_duplicated()
    if not dup_mask.any():
        return df
    fields = [c for c in df.columns if c not in ("row", "rel")]
    dups = df.filter(dup_mask)
    conflicts = (
        dups.group_by("rel")
        .agg([pl.col(c).n_unique().alias(c) for c in fields] + [pl.col("row").sort()])
        .filter(pl.any_horizontal([pl.col(c) > 1 for c in fields]))
        .sort(pl.col("row").list.first())
    )
    if conflicts.height:
        ex = []
        for r in conflicts.iter_rows(named=True):
            differ = [c for c in fields if r[c] > 1]
            rows = dups.filter(pl.col("rel") == r["rel"]).sort("row")
            vals = "; ".join(
                f"line {_line(x['row'])}: " + ", ".join(
                    f"{'label' if c == 'writer' else c}={x[c]!r}" for c in differ)
                for x in rows.iter_rows(named=True))
            ex.append(f"{r['rel']!r} ({vals})")
        raise WrmilInputError(
            f"metadata CSV {path}: {conflicts.height} image_path(s) appear more than once with "
            f"different values: {_fmt_list(ex, 5)}; keep one correct row per image.")
    first = df["rel"].is_first_distinct()
    removed = df.filter(~first)
    skip("duplicate_row", removed.height,
         [f"line {_line(r)}: {p!r}" for r, p in removed.select("row", "rel").head(_MAX_EXAMPLES).iter_rows()])
    return df.filter(first)


def write_words(df: pl.DataFrame, path: str | Path) -> Path:
    """Write the ``words`` table to Parquet atomically (temp file + rename); returns the path."""
    if tuple(df.columns) != WORD_COLUMNS:
        raise ValueError(f"words table must have columns {WORD_COLUMNS}, got {tuple(df.columns)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    df.write_parquet(tmp)
    os.replace(tmp, path)
    return path
