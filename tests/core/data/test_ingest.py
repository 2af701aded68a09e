"""Raw-data ingest: happy path, optional columns, and every bad-input case."""

from __future__ import annotations

import csv
import dataclasses
import os
import shutil
import threading
import time

import polars as pl
import pytest

from tests.support.raw_root import HEADER, make_raw_root, read_rows, write_csv
from wrmil_core.data.fingerprint import is_partially_written, metadata_fingerprint
from wrmil_core.data.ingest import SKIP_REASONS, IngestConfig, ingest
from wrmil_core.data.ingest import preset as ingest_preset
from wrmil_core.errors import WrmilInputError
from wrmil_core.schema import WORD_COLUMNS

EXPECTED_DTYPES = {
    "word_id": pl.Int64, "writer": pl.Int64, "doc_id": pl.Utf8, "position": pl.Int32,
    "path": pl.Utf8, "text": pl.Utf8, "repetition": pl.Int32, "session": pl.Int32,
}
WORDS = ("a", "bb", "ccc", "dd", "e", "ff")


@pytest.fixture
def root(tmp_path):
    return make_raw_root(tmp_path)


def _rewrite(root, mutate, header=HEADER):
    """Apply ``mutate(rows) -> rows`` to the root's CSV."""
    csv_path = root / "naver_ocr.csv"
    write_csv(csv_path, mutate(read_rows(csv_path)), header=header)


# --------------------------------------------------------------------------- happy path


def test_happy_path_schema_docs_and_order(root):
    res = ingest(root, reps_per_session=2)
    w = res.words
    assert tuple(w.columns) == WORD_COLUMNS
    assert dict(w.schema) == EXPECTED_DTYPES
    assert w.height == 4 * 4 * len(WORDS)
    assert all(v == 0 for v in res.skipped.values()) and set(res.skipped) == set(SKIP_REASONS)
    assert sorted(w["doc_id"].unique().to_list()) == sorted(f"{a}_s{s}" for a in range(4) for s in (0, 1))
    assert w["word_id"].to_list() == list(range(w.height))
    # Reading order: repetition, then row order (word order inside a repetition).
    doc = w.filter(pl.col("doc_id") == "2_s1").sort("position")
    assert doc["position"].to_list() == list(range(12))
    assert doc["repetition"].to_list() == [2] * 6 + [3] * 6
    assert doc["text"].to_list() == list(WORDS) * 2
    assert (doc["session"] == 1).all() and (doc["writer"] == 2).all()
    for p in w["path"].to_list():
        assert os.path.isabs(p) and os.path.isfile(p)
    assert w.row(0, named=True)["path"] == str(root.absolute() / "0" / "a_0.png")
    m = res.metadata
    assert m["n_words"] == 96 and m["n_writers"] == 4 and m["n_documents"] == 8
    assert m["skipped_missing_image"] == 0 and m["metadata_fingerprint"] == res.fingerprint
    assert all(isinstance(v, (int, float, str)) for v in m.values())


def test_reading_order_follows_repetition_not_row_blocks(tmp_path):
    root = make_raw_root(tmp_path, shuffle_rows=True, seed=3)
    w = ingest(root, reps_per_session=2).words
    for (doc,), g in w.group_by("doc_id"):
        g = g.sort("position")
        assert g["repetition"].is_sorted(), doc
        assert g["text"].to_list() == list(WORDS) * 2


def test_word_ids_deterministic_and_row_order_independent(tmp_path):
    a = ingest(make_raw_root(tmp_path, name="a"), reps_per_session=2).words
    a2 = ingest(tmp_path / "a", reps_per_session=2).words
    assert a.equals(a2)
    b = ingest(make_raw_root(tmp_path, name="b", shuffle_rows=True, seed=7), reps_per_session=2).words
    key = ["word_id", "writer", "doc_id", "position", "text", "repetition", "session"]
    assert a.select(key).equals(b.select(key))


def test_sessions_numeric_order_in_word_ids(tmp_path):
    # 11 sessions of one repetition: s10 must come after s9, not after s1.
    root = make_raw_root(tmp_path, n_writers=1, n_reps=11)
    w = ingest(root, reps_per_session=1).words
    assert w.sort("word_id")["session"].unique(maintain_order=True).to_list() == list(range(11))


def test_optional_doc_id_and_word_index(root):
    def mutate(rows):
        # Two documents per writer, split by word parity; reverse the order via word_index.
        out = []
        for i, r in enumerate(rows):
            k = WORDS.index(r["detected_word"])
            r["doc_id"] = f"page{r['label']}-{k % 2}"
            r["word_index"] = str(1000 - (int(r["repetition"]) * 10 + k))
            out.append(r)
        return out

    _rewrite(root, mutate, header=HEADER + ("doc_id", "word_index"))
    res = ingest(root, reps_per_session=2)
    w = res.words
    assert w["doc_id"].n_unique() == 8
    assert (w["session"] == -1).all()
    d = w.filter(pl.col("doc_id") == "page1-0").sort("position")
    assert d.height == 12
    # word_index decreases with repetition, so reading order is repetition 3 first.
    assert d["repetition"].to_list() == [3, 3, 3, 2, 2, 2, 1, 1, 1, 0, 0, 0]
    assert d["text"].to_list()[:3] == ["e", "ccc", "a"]


def test_optional_doc_id_only_orders_by_repetition(root):
    def mutate(rows):
        for r in rows:
            r["doc_id"] = f"W{r['label']}"
        return rows

    _rewrite(root, mutate, header=HEADER + ("doc_id",))
    w = ingest(root, reps_per_session=2).words
    assert sorted(w["doc_id"].unique().to_list()) == ["W0", "W1", "W2", "W3"]
    d = w.filter(pl.col("doc_id") == "W0").sort("position")
    assert d["repetition"].to_list() == sorted(d["repetition"].to_list())
    assert d["position"].to_list() == list(range(24))


def test_custom_metadata_name_and_fingerprint(tmp_path):
    root = make_raw_root(tmp_path, metadata_csv="meta.csv")
    with pytest.raises(WrmilInputError, match=r"meta\.csv.*metadata_csv"):
        ingest(root)
    res = ingest(root, metadata_csv="meta.csv", reps_per_session=2)
    assert res.metadata_path == root.absolute() / "meta.csv"
    # Content hash: a copy elsewhere with another mtime has the same fingerprint.
    copy = tmp_path / "copy.csv"
    shutil.copyfile(root / "meta.csv", copy)
    os.utime(copy, ns=(1, 1))
    assert metadata_fingerprint(copy) == res.fingerprint
    with open(copy, "a") as f:
        f.write("0/a_0.png,0,a,0\n")
    assert metadata_fingerprint(copy) != res.fingerprint


def test_is_partially_written(tmp_path):
    p = tmp_path / "naver_ocr.csv"
    p.write_text("image_path,label,detected_word,repetition\n")
    assert not is_partially_written(p, interval=0.01)
    assert not is_partially_written(tmp_path / "absent.csv", interval=0.01)
    (tmp_path / "naver_ocr.csv.part").write_text("x")
    assert is_partially_written(p, interval=0.01)
    (tmp_path / "naver_ocr.csv.part").unlink()

    stop = threading.Event()

    def writer():
        with open(p, "a") as f:
            while not stop.is_set():
                f.write("0/a_0.png,0,a,0\n")
                f.flush()
                time.sleep(0.005)

    t = threading.Thread(target=writer)
    t.start()
    try:
        assert is_partially_written(p, interval=0.3)
    finally:
        stop.set()
        t.join()


# --------------------------------------------------------------------------- bad input: errors


def test_missing_column_is_refused_even_with_extra_columns(root):
    rows = read_rows(root / "naver_ocr.csv")
    write_csv(root / "naver_ocr.csv",
              [(r["image_path"], r["label"], r["repetition"], "x") for r in rows],
              header=("image_path", "label", "repetition", "Unnamed: 0"))
    with pytest.raises(WrmilInputError) as e:
        ingest(root)
    msg = str(e.value)
    assert "detected_word" in msg and "Unnamed: 0" in msg and "naver_ocr.csv" in msg


def test_header_names_are_case_sensitive_with_a_hint(root):
    _rewrite(root, lambda rows: [{**r, "Label": r["label"]} for r in rows],
             header=("image_path", "Label", "detected_word", "repetition"))
    with pytest.raises(WrmilInputError, match=r"missing column\(s\) \['label'\] \(found 'Label' for 'label'"):
        ingest(root)


def test_duplicate_known_column_is_refused(root):
    _rewrite(root, lambda rows: rows, header=HEADER + ("label",))
    with pytest.raises(WrmilInputError, match=r"\['label'\] appear more than once"):
        ingest(root)


def test_non_integer_labels_name_rows(root):
    def mutate(rows):
        rows[3]["label"] = "writer7"
        rows[10]["label"] = "2.5"
        return rows

    _rewrite(root, mutate)
    with pytest.raises(WrmilInputError) as e:
        ingest(root)
    msg = str(e.value)
    assert "'label'" in msg and "line 5: 'writer7'" in msg and "line 12: '2.5'" in msg


def test_non_integer_repetition(root):
    def mutate(rows):
        rows[0]["repetition"] = ""
        return rows

    _rewrite(root, mutate)
    with pytest.raises(WrmilInputError, match=r"'repetition'.*line 2"):
        ingest(root)


@pytest.mark.parametrize("bad", ["../outside.png", "0/../../outside.png", "/etc/passwd", "C:\\x.png"])
def test_paths_escaping_root(root, bad):
    def mutate(rows):
        rows[7]["image_path"] = bad
        return rows

    _rewrite(root, mutate)
    with pytest.raises(WrmilInputError) as e:
        ingest(root)
    assert "line 9" in str(e.value) and repr(bad) in str(e.value)


def test_inner_dotdot_inside_root_is_fine(root):
    def mutate(rows):
        rows[0]["image_path"] = "1/../0/a_0.png"
        return rows

    _rewrite(root, mutate)
    w = ingest(root, reps_per_session=2).words
    assert w.height == 96 and w["path"][0].endswith("/0/a_0.png") and ".." not in w["path"][0]


def test_conflicting_duplicates_error(root):
    def mutate(rows):
        dup = dict(rows[4])
        dup["label"] = "3"
        return rows + [dup]

    _rewrite(root, mutate)
    with pytest.raises(WrmilInputError) as e:
        ingest(root)
    msg = str(e.value)
    assert "'0/e_0.png'" in msg and "line 6: label=0" in msg and "line 98: label=3" in msg


def test_empty_root_and_missing_root(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(WrmilInputError, match=r"empty.*<writer>/<word>_<rep>\.png"):
        ingest(tmp_path / "empty")
    with pytest.raises(WrmilInputError, match="does not exist"):
        ingest(tmp_path / "nope")


def test_empty_csv_and_header_only(root):
    (root / "naver_ocr.csv").write_bytes(b"")
    with pytest.raises(WrmilInputError, match=r"empty \(0 bytes\).*image_path,label"):
        ingest(root)
    (root / "naver_ocr.csv").write_text(",".join(HEADER) + "\n")
    with pytest.raises(WrmilInputError, match="header but no rows"):
        ingest(root)


def test_all_images_missing_is_an_error(root):
    for d in root.iterdir():
        if d.is_dir():
            shutil.rmtree(d)
    with pytest.raises(WrmilInputError, match="none of the 96 image paths"):
        ingest(root)


def test_doc_spanning_two_writers_is_an_error(root):
    def mutate(rows):
        for r in rows:
            r["doc_id"] = "shared" if r["label"] in ("0", "1") else f"d{r['label']}"
        return rows

    _rewrite(root, mutate, header=HEADER + ("doc_id",))
    with pytest.raises(WrmilInputError, match=r"'shared': writers \[0, 1\]"):
        ingest(root)


def test_duplicate_word_index_in_doc_is_an_error(root):
    def mutate(rows):
        for i, r in enumerate(rows):
            r["doc_id"] = f"d{r['label']}"
            r["word_index"] = str(i)
        rows[1]["word_index"] = rows[0]["word_index"]
        return rows

    _rewrite(root, mutate, header=HEADER + ("doc_id", "word_index"))
    with pytest.raises(WrmilInputError, match=r"line 2: doc 'd0' word_index 0.*line 3"):
        ingest(root)


# --------------------------------------------------------------------------- bad input: skips


def test_missing_images_skipped_and_counted(root):
    (root / "1" / "bb_2.png").unlink()
    (root / "3" / "ff_0.png").unlink()
    res = ingest(root, reps_per_session=2)
    assert res.skipped["missing_image"] == 2
    assert res.words.height == 94
    assert any("bb_2.png" in x for x in res.skipped_examples["missing_image"])
    assert res.metadata["skipped_missing_image"] == 2
    # Positions stay gap-free after the skip.
    d = res.words.filter(pl.col("doc_id") == "1_s1").sort("position")
    assert d["position"].to_list() == list(range(11))


def test_corrupt_truncated_and_empty_images(root):
    (root / "0" / "a_1.png").write_bytes(b"not an image at all")
    good = (root / "0" / "bb_1.png").read_bytes()
    (root / "0" / "bb_1.png").write_bytes(good[: len(good) // 2])       # truncated PNG
    flipped = bytearray((root / "0" / "dd_1.png").read_bytes())
    flipped[flipped.index(b"IDAT") + 6] ^= 0xFF                          # bit rot in pixel data
    (root / "0" / "dd_1.png").write_bytes(bytes(flipped))
    (root / "2" / "e_0.png").write_bytes(b"")
    res = ingest(root, reps_per_session=2)
    assert res.skipped["corrupt_image"] == 3
    assert res.skipped["empty_image"] == 1
    assert res.words.height == 92
    ex = " ".join(res.skipped_examples["corrupt_image"])
    assert "a_1.png" in ex and "bb_1.png" in ex and "dd_1.png" in ex
    # Without verification only the 0-byte file is caught; the others pass the cheap stat.
    fast = ingest(root, reps_per_session=2, verify_images=False)
    assert fast.skipped["corrupt_image"] == 0 and fast.skipped["empty_image"] == 1
    assert fast.words.height == 95


def test_zero_size_image_dimension_is_empty(root):
    # A PNG header declaring 0 width cannot be saved by Pillow; craft one by patching IHDR.
    import struct
    import zlib

    def chunk(t, data):
        return struct.pack(">I", len(data)) + t + data + struct.pack(">I", zlib.crc32(t + data))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 5, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    (root / "3" / "a_3.png").write_bytes(png)
    res = ingest(root, reps_per_session=2)
    assert res.skipped["empty_image"] == 1 and res.skipped["corrupt_image"] == 0
    assert "size 0x5" in res.skipped_examples["empty_image"][0]
    assert res.words.height == 95


def test_exact_duplicates_skipped(root):
    _rewrite(root, lambda rows: rows + [dict(rows[0]), dict(rows[5]), dict(rows[0])])
    res = ingest(root, reps_per_session=2)
    assert res.skipped["duplicate_row"] == 3
    assert res.words.height == 96 and res.words["path"].n_unique() == 96
    assert any("line 98" in x for x in res.skipped_examples["duplicate_row"])


def test_short_documents_and_writers_left_without_documents(tmp_path):
    root = make_raw_root(tmp_path, n_writers=3, n_reps=3, words=("a", "bb", "ccc"))
    # reps_per_session=2: session 0 has 6 words, session 1 only 3 (< 5) -> skipped.
    # Writer 2 loses images in session 0 too, so has no document left.
    for rep in (0, 1):
        (root / "2" / f"a_{rep}.png").unlink()
        (root / "2" / f"bb_{rep}.png").unlink()
    res = ingest(root, reps_per_session=2, min_doc_words=5)
    assert res.skipped["short_document"] == 4         # 0_s1, 1_s1, 2_s0, 2_s1
    assert res.skipped["short_document_words"] == 3 + 3 + 2 + 3
    assert res.skipped["writer_without_documents"] == 1
    assert any("writer 2" in x for x in res.skipped_examples["writer_without_documents"])
    assert sorted(res.words["doc_id"].unique().to_list()) == ["0_s0", "1_s0"]
    assert res.metadata["n_skipped_rows"] == 4 + 11
    with pytest.raises(WrmilInputError, match="min_doc_words=7"):
        ingest(root, reps_per_session=2, min_doc_words=7)


def test_skips_are_logged(root):
    (root / "1" / "bb_2.png").unlink()
    msgs: list[str] = []
    ingest(root, reps_per_session=2, log=msgs.append)
    assert any("missing_image=1" in m for m in msgs)
    assert any("bb_2.png" in m for m in msgs)


def test_bom_header_is_tolerated(root):
    text = (root / "naver_ocr.csv").read_text(encoding="utf-8")
    (root / "naver_ocr.csv").write_text("\ufeff" + text, encoding="utf-8")
    assert ingest(root, reps_per_session=2).words.height == 96


def test_writer_with_all_images_missing_is_reported(root):
    shutil.rmtree(root / "3")
    res = ingest(root, reps_per_session=2)
    assert res.skipped["missing_image"] == 24
    assert res.skipped["writer_without_documents"] == 1
    assert res.skipped_examples["writer_without_documents"] == [
        "writer 3: no document with >= 5 usable words"]
    assert sorted(res.words["writer"].unique().to_list()) == [0, 1, 2]


# --------------------------------------------------------------------------- extra columns, encodings, CSV syntax


def test_extra_columns_are_ignored_and_listed(root, tmp_path):
    """Transcriptions, source paths or a spreadsheet's index column do not stop ingest."""
    plain = ingest(root, reps_per_session=2)
    assert plain.ignored_columns == () and plain.metadata["ignored_columns"] == "none"
    _rewrite(root, lambda rows: [{**r, "transcription": r["detected_word"].upper(), "source path": "scans/p 1.tif",
                                  "": str(i)} for i, r in enumerate(rows)],
             header=("",) + HEADER[:2] + ("transcription",) + HEADER[2:] + ("source path",))
    msgs: list[str] = []
    res = ingest(root, reps_per_session=2, log=msgs.append)
    assert res.ignored_columns == ("", "transcription", "source path")
    assert res.metadata["ignored_columns"] == ", transcription, source path"
    assert any("ignored column(s)" in m and "transcription" in m for m in msgs)
    assert tuple(res.words.columns) == WORD_COLUMNS
    assert res.words.equals(plain.words)


def test_blank_rows_are_skipped_counted_and_lines_stay_exact(root):
    text = (root / "naver_ocr.csv").read_text().splitlines()
    # A blank line and a spreadsheet's empty row between data rows, and one at the end.
    text = text[:3] + ["", ",,,"] + text[3:] + [" , , , "]
    rows = text[:6]
    rows[5] = rows[5].replace(",0,", ",zero,", 1)  # data row 3 is now on line 6
    (root / "naver_ocr.csv").write_text("\n".join(rows + text[6:]) + "\n")
    with pytest.raises(WrmilInputError, match=r"line 6: 'zero'"):
        ingest(root)
    (root / "naver_ocr.csv").write_text("\n".join(text) + "\n")
    res = ingest(root, reps_per_session=2)
    assert res.words.height == 96 and res.skipped["blank_row"] == 3
    assert res.skipped_examples["blank_row"] == ["line 4", "line 5", "line 100"]
    assert res.n_csv_rows == 99 and res.metadata["n_skipped_rows"] == 3


def test_crlf_quoting_and_a_quoted_line_break(root):
    rows = read_rows(root / "naver_ocr.csv")
    rows[0]["detected_word"] = 'say "hi",\nthen go'
    rows[2]["label"] = "x"  # on line 5: the quoted line break takes two lines
    with open(root / "naver_ocr.csv", "w", newline="", encoding="utf-8") as f:
        wr = csv.writer(f, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
        wr.writerow(HEADER)
        wr.writerows([[r[c] for c in HEADER] for r in rows])
    with pytest.raises(WrmilInputError, match=r"'label'.*line 5: 'x'"):
        ingest(root)
    rows[2]["label"] = "0"
    write_csv(root / "naver_ocr.csv", rows)
    w = ingest(root, reps_per_session=2).words
    assert w.height == 96 and w.filter(pl.col("word_id") == 0)["text"][0] == 'say "hi",\nthen go'


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-8-sig"])
def test_unicode_encodings_with_a_byte_order_mark_are_read(root, encoding):
    text = (root / "naver_ocr.csv").read_text(encoding="utf-8").replace(",a,", ",café ☕,")
    (root / "naver_ocr.csv").write_bytes(text.encode(encoding))
    w = ingest(root, reps_per_session=2).words
    assert w.height == 96 and "café ☕" in w["text"].to_list()


def test_latin1_and_bomless_utf16_are_refused_with_the_line(root):
    text = (root / "naver_ocr.csv").read_text(encoding="utf-8")
    lines = text.splitlines()
    lines[4] = lines[4].replace(",dd,", ",café,")
    (root / "naver_ocr.csv").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    with pytest.raises(WrmilInputError, match=r"not valid UTF-8: byte 0xe9 on line 5.*iconv"):
        ingest(root)
    (root / "naver_ocr.csv").write_bytes(text.encode("utf-16-le"))
    with pytest.raises(WrmilInputError, match=r"NUL bytes.*UTF-16 without a byte-order mark"):
        ingest(root)


def test_rows_with_the_wrong_number_of_fields_name_their_lines(root):
    text = (root / "naver_ocr.csv").read_text().splitlines()
    text[7] += ",extra"
    text[9] = text[9].rsplit(",", 1)[0]
    (root / "naver_ocr.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(WrmilInputError, match=r"2 row\(s\).*4 fields: line 8: 5 field\(s\), line 10: 3 field"):
        ingest(root)


def test_repetition_beyond_int32_is_refused(root):
    def mutate(rows):
        rows[2]["repetition"] = str(2**31)
        return rows

    _rewrite(root, mutate)
    with pytest.raises(WrmilInputError, match=r"'repetition' must be <= 2147483647.*line 4: 2147483648"):
        ingest(root)


def test_unicode_and_spaces_in_paths(root):
    def mutate(rows):
        for name, r in (("zürich café.png", rows[0]), ("日本 語.png", rows[1])):
            os.replace(root / r["image_path"], root / "0" / name)
            r["image_path"] = f"0/{name}"
        return rows

    _rewrite(root, mutate)
    w = ingest(root, reps_per_session=2).words
    assert w.height == 96 and str(root.absolute() / "0" / "日本 語.png") in w["path"].to_list()


def test_no_progress_output_off_a_terminal(root, capsys):
    ingest(root, reps_per_session=2)
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------- IngestConfig


def test_ingest_config_presets_and_validation():
    assert IngestConfig() == ingest_preset("demo") == ingest_preset("paper")
    assert (IngestConfig().min_doc_words, IngestConfig().verify_images) == (5, True)
    assert ingest_preset("demo", verify_images=False).verify_images is False
    with pytest.raises(WrmilInputError, match="min_doc_words"):
        IngestConfig(min_doc_words=0)
    with pytest.raises(WrmilInputError, match="min_doc_words"):
        ingest(".", min_doc_words=0)
    with pytest.raises(WrmilInputError, match="unknown IngestConfig preset 'huge'"):
        ingest_preset("huge")
    with pytest.raises(dataclasses.FrozenInstanceError):
        IngestConfig().min_doc_words = 3  # type: ignore[misc]
