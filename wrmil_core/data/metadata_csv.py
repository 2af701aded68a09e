"""Reading the raw data root's metadata CSV into text columns, and validating them row by row.

The CSV is decoded and split by the standard library (``csv``), not by a fast columnar reader, so
every row keeps the line it starts on: errors name ``line N`` of the file even when a quoted field
spans lines or blank lines sit between rows. Everything stays text here; :func:`parse_int` and
:func:`normalise_paths` turn columns into typed values with messages that name lines and values.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from wrmil_core.errors import WrmilInputError

REQUIRED_COLUMNS: tuple[str, ...] = ("image_path", "label", "detected_word", "repetition")
OPTIONAL_COLUMNS: tuple[str, ...] = ("doc_id", "word_index")
KNOWN_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

EXPECTED_LAYOUT = (
    "expected <root>/<writer>/<word>_<rep>.png images plus a metadata CSV in <root> with the "
    "header 'image_path,label,detected_word,repetition' (optional: doc_id, word_index; other "
    "columns are ignored) and one row per word image, image_path relative to <root>"
)

MAX_EXAMPLES = 10
INT32_MAX = 2**31 - 1
_DRIVE = re.compile(r"^[A-Za-z]:")  # Windows drive ("C:\\x.png", "C:x.png"): absolute for our purpose
_NEWLINE = re.compile(rb"\r\n|\r|\n")
# Byte-order marks that say the file is UTF-16/32 (UTF-32 first: its LE mark starts with UTF-16's).
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True)
class MetadataTable:
    """The CSV's known columns as text, one row per non-blank record.

    ``rows`` holds the present columns of ``KNOWN_COLUMNS`` (Utf8) plus ``line`` (Int64, the file
    line the record starts on); ``ignored_columns`` are the header's other columns, in file order;
    ``blank_lines`` are the records whose fields are all empty (skipped).
    """

    rows: pl.DataFrame
    ignored_columns: tuple[str, ...]
    blank_lines: tuple[int, ...]


def fmt_list(items: Sequence[str], limit: int = MAX_EXAMPLES) -> str:
    """``a, b, c, ... and N more``."""
    head = ", ".join(items[:limit])
    return head + (f", ... and {len(items) - limit} more" if len(items) > limit else "")


def shown(value: object, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters: one line, and short even for a huge field."""
    r = repr(value)
    return r if len(r) <= limit else r[: limit - 3] + "..."


def resolve_metadata_path(root: Path, metadata_csv: str | Path) -> Path:
    """``metadata_csv`` inside ``root``, unless it is an absolute path."""
    m = Path(metadata_csv)
    return m if m.is_absolute() else root / m


def check_root(root: Path, metadata_path: Path) -> None:
    """Refuse a missing, empty or non-directory root and a missing metadata CSV."""
    if not root.exists():
        raise WrmilInputError(f"data root {root} does not exist; {EXPECTED_LAYOUT}.")
    if not root.is_dir():
        raise WrmilInputError(f"data root {root} is not a directory; {EXPECTED_LAYOUT}.")
    if not any(root.iterdir()):
        raise WrmilInputError(f"data root {root} is empty; {EXPECTED_LAYOUT}.")
    if not metadata_path.is_file():
        present = sorted(p.name for p in root.glob("*.csv"))
        hint = (f" CSV files present in the root: {fmt_list(present)}; pass metadata_csv=<name>."
                if present else "")
        raise WrmilInputError(f"metadata CSV {metadata_path} not found;{hint} {EXPECTED_LAYOUT}.")


def read_metadata_csv(path: Path) -> MetadataTable:
    """Decode, split and check the header of the metadata CSV (see :class:`MetadataTable`)."""
    data = path.read_bytes()
    if not data:
        raise WrmilInputError(f"metadata CSV {path} is empty (0 bytes); {EXPECTED_LAYOUT}.")
    records, lines = _records(_decode(data, path), path)
    first = next((i for i, r in enumerate(records) if not _blank(r)), None)
    if first is None:
        raise WrmilInputError(f"metadata CSV {path} is empty; {EXPECTED_LAYOUT}.")
    header = [c.lstrip("\ufeff").strip() for c in records[first]]
    _check_header(header, path)
    body, body_lines, odd_blank = _full_records(records[first + 1:], lines[first + 1:], len(header), path)
    # Positional names: the header may repeat or leave empty the names of ignored columns.
    frame = pl.DataFrame(body, schema=[(f"c{j}", pl.Utf8) for j in range(len(header))], orient="row")
    frame = frame.with_columns(pl.Series("line", body_lines, dtype=pl.Int64))
    blank = pl.all_horizontal([pl.col(f"c{j}").str.strip_chars() == "" for j in range(len(header))])
    blank_lines = tuple(sorted(odd_blank + frame.filter(blank)["line"].to_list()))
    frame = frame.filter(~blank)
    if frame.height == 0:
        raise WrmilInputError(f"metadata CSV {path} has a header but no rows; {EXPECTED_LAYOUT}.")
    rows = frame.select([pl.col(f"c{j}").alias(c) for j, c in enumerate(header) if c in KNOWN_COLUMNS] + ["line"])
    ignored = tuple(c for c in header if c not in KNOWN_COLUMNS)
    return MetadataTable(rows=rows, ignored_columns=ignored, blank_lines=blank_lines)


def _full_records(records: list[list[str]], lines: list[int], n: int, path: Path
                  ) -> tuple[list[list[str]], list[int], list[int]]:
    """Records with the header's ``n`` fields and their lines, plus the lines of shorter or longer
    records that are blank (an empty line); any other record of the wrong length is an error."""
    odd = [i for i, r in enumerate(records) if len(r) != n]  # a cheap pass: usually empty
    if not odd:
        return records, lines, []
    ragged = [f"line {lines[i]}: {len(records[i])} field(s)" for i in odd if not _blank(records[i])]
    if ragged:
        raise WrmilInputError(
            f"metadata CSV {path}: {len(ragged)} row(s) do not have the header's {n} fields: "
            f"{fmt_list(ragged)}; quote fields that hold commas, or fix the rows.")
    skip = set(odd)
    keep = [i for i in range(len(records)) if i not in skip]
    return [records[i] for i in keep], [lines[i] for i in keep], [lines[i] for i in odd]


def _decode(data: bytes, path: Path) -> str:
    """UTF-8 (an optional BOM is dropped), or UTF-16/32 when a BOM says so; else a named error."""
    encoding = next((enc for bom, enc in _BOMS if data.startswith(bom)), "utf-8-sig")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        line = len(_NEWLINE.findall(data, 0, e.start)) + 1
        raise WrmilInputError(
            f"metadata CSV {path} is not valid {encoding.removesuffix('-sig').upper()}: byte "
            f"0x{data[e.start]:02x} on line {line} ({e.reason}); re-save it as UTF-8, e.g. "
            f"`iconv -f latin1 -t utf-8 {path.name} > utf8.csv` for a Latin-1 file.") from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise WrmilInputError(
            f"metadata CSV {path} holds NUL bytes (first on line {line}): likely UTF-16 without a "
            "byte-order mark; re-save it as UTF-8.")
    return text


def _records(text: str, path: Path) -> tuple[list[list[str]], list[int]]:
    """CSV records and the line each starts on (1-based)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        records = list(reader)
        if reader.line_num == len(records):  # one line per record: the common, fast case
            return records, list(range(1, len(records) + 1))
        reader = csv.reader(io.StringIO(text, newline=""))
        records, lines = [], []
        while True:
            start = reader.line_num + 1
            record = next(reader, None)
            if record is None:
                return records, lines
            records.append(record)
            lines.append(start)
    except csv.Error as e:
        raise WrmilInputError(
            f"metadata CSV {path}: line {reader.line_num + 1} cannot be read as CSV ({e}); check its "
            "quotes (a field that holds a comma, quote or line break must be quoted, with \"\" for a "
            "quote inside).") from None


def _blank(record: list[str]) -> bool:
    return all(not f.strip() for f in record)


def _check_header(header: list[str], path: Path) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        lower = {c.lower(): c for c in header}
        near = [f"{lower[m]!r} for {m!r}" for m in missing if m in lower]
        hint = f" (found {', '.join(near)}: names are case-sensitive)" if near else ""
        raise WrmilInputError(
            f"metadata CSV {path}: missing column(s) {missing}{hint} (header is {shown(header, 300)}); the header "
            f"needs {list(REQUIRED_COLUMNS)} and may add {list(OPTIONAL_COLUMNS)}; rename the columns.")
    twice = sorted({c for c in header if c in KNOWN_COLUMNS and header.count(c) > 1})
    if twice:
        raise WrmilInputError(
            f"metadata CSV {path}: column(s) {twice} appear more than once in the header {shown(header, 300)}; "
            "keep one of each.")


def parse_int(rows: pl.DataFrame, col: str, path: Path, *, min_value: int | None = None,
              max_value: int | None = None) -> pl.Series:
    """Strictly parse a text column to Int64; error naming CSV lines and values otherwise."""
    parsed = rows[col].str.strip_chars().cast(pl.Int64, strict=False)
    lines = rows["line"]
    bad = parsed.is_null().arg_true().to_list()
    if bad:
        ex = [f"line {lines[i]}: {shown(rows[col][i])}" for i in bad]
        raise WrmilInputError(
            f"metadata CSV {path}: column '{col}' must hold integers, {len(bad)} row(s) do not: "
            f"{fmt_list(ex)}; fix or remove these rows.")
    if min_value is not None:
        _refuse_out_of_range(parsed, lines, parsed < min_value, f">= {min_value}", col, path)
    if max_value is not None:
        _refuse_out_of_range(parsed, lines, parsed > max_value, f"<= {max_value}", col, path)
    return parsed


def _refuse_out_of_range(parsed: pl.Series, lines: pl.Series, outside: pl.Series, bound: str,
                         col: str, path: Path) -> None:
    bad = outside.arg_true().to_list()
    if bad:
        ex = [f"line {lines[i]}: {parsed[i]}" for i in bad]
        raise WrmilInputError(
            f"metadata CSV {path}: column '{col}' must be {bound}, {len(bad)} row(s) are not: "
            f"{fmt_list(ex)}; fix or remove these rows.")


def normalise_paths(rows: pl.DataFrame, path: Path) -> pl.Series:
    """``image_path`` as lexically normalised relative POSIX paths; error on empty, absolute or
    escaping ones.

    Lexical (no symlink resolution) on purpose: a root whose writer folders are symlinks to
    another disk is legitimate; a CSV that points outside the root with ``..`` is not.
    """
    out: list[str] = []
    empty: list[str] = []
    escaping: list[str] = []
    for p, line in zip(rows["image_path"].to_list(), rows["line"].to_list()):
        norm = os.path.normpath(p).replace(os.sep, "/") if p.strip() else ""
        if not norm:
            empty.append(f"line {line}")
        elif p.startswith(("/", "\\")) or _DRIVE.match(p):
            escaping.append(f"line {line}: {shown(p)} (absolute)")
        elif norm in ("..", ".") or norm.startswith("../"):
            escaping.append(f"line {line}: {shown(p)}")
        out.append(norm)
    if empty:
        raise WrmilInputError(
            f"metadata CSV {path}: column 'image_path' is empty in {len(empty)} row(s): "
            f"{fmt_list(empty)}; fill in the path relative to the data root or remove the rows.")
    if escaping:
        raise WrmilInputError(
            f"metadata CSV {path}: image_path must be relative to the data root and stay inside "
            f"it; {len(escaping)} row(s) do not: {fmt_list(escaping)}; move the images under "
            "the root and write their paths relative to it.")
    return pl.Series("rel", out, dtype=pl.Utf8)
