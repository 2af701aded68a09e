"""Fuzzing the metadata CSV (issue 10's fault list): whatever a user's export looks like, ingest
either reads it (every CSV row ends up as a word or in a counted skip) or refuses it with one
``WrmilInputError`` line that names the file; never another exception.

Inputs: encodings (UTF-8 with and without BOM, UTF-16/32, Latin-1, cp1252, BOM-less UTF-16),
CRLF / CR / LF line ends, every quoting style, huge, negative and non-numeric labels and
repetitions, unicode and spaces in paths, escaping paths, blank rows, extra / missing / renamed
columns, and raw byte damage (truncation, inserted bytes) of a valid file.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.raw_root import HEADER, make_png
from wrmil_core.data.ingest import ingest
from wrmil_core.errors import WrmilInputError
from wrmil_core.schema import WORD_COLUMNS

STEMS = ("a", "café latte", "日本 語", "x y")
IMAGES = tuple(f"{w}/{stem}_{r}.png" for w in range(3) for r in range(2) for stem in STEMS)
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 writers x 2 repetitions x 4 words, file names with spaces and non-ASCII letters."""
    root = tmp_path_factory.mktemp("fuzz") / "raw"
    for i, rel in enumerate(IMAGES):
        make_png(root / rel, seed=i)
    (root / "2" / "broken_0.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return root


def _ints() -> st.SearchStrategy[str]:
    odd = st.sampled_from(["", " ", "x", "1.5", "1e3", " 7 ", "+3", "-0", "٣", "５", "0x10", "1_000",
                           str(2**31), str(2**63), str(-2**63 - 1), "NaN"])
    return st.one_of(st.integers(0, 3).map(str), st.integers(0, 3).map(str), st.integers(-2**70, 2**70).map(str),
                     odd, st.text(max_size=6))


def _paths() -> st.SearchStrategy[str]:
    odd = st.sampled_from(["", "   ", "../x.png", "0/../../x.png", "/etc/passwd", "C:\\x.png", "\\\\srv\\x.png",
                           "0/missing.png", "0", ".", "0/./a_0.png", "1/../0/a_0.png", "0\\a_0.png",
                           "2/broken_0.png", " 0/a_0.png", "0/a_0.png\n", "0/e\u0301_0.png"])
    valid = st.sampled_from(IMAGES)
    return st.one_of(valid, valid, valid, odd, st.text(max_size=12))


@st.composite
def metadata_rows(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    """A header (required columns, maybe optional / extra / missing / renamed) and rows under it."""
    header = list(HEADER)
    if draw(st.booleans()):
        header.append("doc_id")
    if draw(st.booleans()):
        header.append("word_index")
    header += draw(st.lists(st.sampled_from(["transcription", "source path", "", "Unnamed: 0", "label"]),
                            max_size=2))
    if draw(st.integers(0, 9)) == 0:  # a missing or renamed column now and then
        i = draw(st.integers(0, len(header) - 1))
        header[i] = draw(st.sampled_from(["", header[i].upper(), header[i] + " "]))
    header = draw(st.permutations(header))
    gen = {"image_path": _paths(), "label": _ints(), "repetition": _ints(), "word_index": _ints(),
           "detected_word": st.text(max_size=8), "doc_id": st.one_of(st.sampled_from(["d0", "d1", " ", ""]),
                                                                     st.text(max_size=4))}
    rows = []
    for _ in range(draw(st.integers(0, 14))):
        if draw(st.integers(0, 9)) == 0:
            rows.append(draw(st.sampled_from([[], [""] * len(header), [" "] * len(header)])))
        else:
            rows.append([draw(gen.get(c, st.text(max_size=5))) for c in header])
    if rows and draw(st.integers(0, 9)) == 0:  # a ragged row
        rows[draw(st.integers(0, len(rows) - 1))].append("extra")
    return header, rows


@st.composite
def csv_bytes(draw: st.DrawFn) -> bytes:
    header, rows = draw(metadata_rows())
    buf = io.StringIO()
    wr = csv.writer(buf, lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"])),
                    quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC])))
    wr.writerow(header)
    wr.writerows(rows)
    enc = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "utf-32", "latin-1", "cp1252",
                                "utf-16-le"]))
    return buf.getvalue().encode(enc, errors="replace")


def _valid_csv() -> bytes:
    lines = ["image_path,label,detected_word,repetition"]
    lines += [f'"{rel}",{rel.split("/")[0]},w,{rel[-5]}' for rel in IMAGES]
    return ("\n".join(lines) + "\n").encode()


@st.composite
def damaged_bytes(draw: st.DrawFn) -> bytes:
    """A valid CSV cut short, or with random bytes spliced in."""
    data = _valid_csv()
    at = draw(st.integers(0, len(data)))
    if draw(st.booleans()):
        return data[:at]
    return data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]


def _read_or_refuse(root: Path, data: bytes, min_doc_words: int = 1) -> None:
    csv_path = root.parent / "fuzz.csv"
    csv_path.write_bytes(data)
    try:
        res = ingest(root, metadata_csv=csv_path, reps_per_session=1, min_doc_words=min_doc_words)
    except WrmilInputError as e:
        msg = str(e)
        assert msg and msg.splitlines() == [msg], f"not one line: {msg!r}"
        assert str(csv_path) in msg or str(root) in msg, f"names neither file nor root: {msg!r}"
        return
    assert tuple(res.words.columns) == WORD_COLUMNS and res.words.height > 0
    # Nothing dropped silently: each CSV row is a word or a counted skip.
    assert res.words.height + res.metadata["n_skipped_rows"] == res.n_csv_rows
    assert res.words["path"].n_unique() == res.words.height


@FUZZ
@given(data=csv_bytes(), min_doc_words=st.integers(1, 3))
def test_fuzzed_metadata_csv_is_read_or_refused_in_one_line(root: Path, data: bytes, min_doc_words: int) -> None:
    _read_or_refuse(root, data, min_doc_words)


@settings(max_examples=60, deadline=None)
@given(data=damaged_bytes())
def test_damaged_metadata_bytes_are_read_or_refused_in_one_line(root: Path, data: bytes) -> None:
    _read_or_refuse(root, data)


def test_the_undamaged_fuzz_csv_reads(root: Path) -> None:
    """The fuzz's base file is valid, so the damage tests start from a readable file."""
    csv_path = root.parent / "base.csv"
    csv_path.write_bytes(_valid_csv())
    res = ingest(root, metadata_csv=csv_path, reps_per_session=1, min_doc_words=1)
    assert res.words.height == len(IMAGES) and "日本 語" in "".join(res.words["path"].to_list())
