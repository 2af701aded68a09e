"""Windows: consecutive words per document, vectorised, documents shorter than a window skipped."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.bag_tables import synth_table
from wrmil_core.bags.windows import make_windows
from wrmil_core.errors import WrmilInputError


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 30), min_size=1, max_size=6),
    window_size=st.integers(1, 7),
    stride=st.integers(1, 7),
    seed=st.integers(0, 1000),
)
def test_windows_are_consecutive_words_of_one_document(lengths, window_size, stride, seed):
    emb = synth_table(lengths, list(range(len(lengths))), seed=seed)
    res = make_windows(emb, window_size=window_size, stride=stride)
    w = res.windows
    assert w.columns == ["window_id", "doc_id", "writer", "start", "word_ids", "model_id"]
    assert w.schema["word_ids"] == pl.Array(pl.Int32, window_size)
    assert w.schema["start"] == pl.Int32 and w.schema["window_id"] == pl.Int64
    expected = [max(0, (L - window_size) // stride + 1) for L in lengths]
    assert w.height == sum(expected)
    assert res.skipped_docs == sum(L < window_size for L in lengths)
    assert w["window_id"].to_list() == list(range(w.height))
    assert set(w["model_id"].to_list()) <= {"m1"}
    if w.height == 0:
        return
    # every word of window i is the word at position start+j of the window's document
    key = {(d, p): wid for d, p, wid in zip(emb["doc_id"], emb["position"], emb["word_id"])}
    writer_of_doc = dict(zip(emb["doc_id"], emb["writer"]))
    ids = w["word_ids"].to_numpy()
    for i, (d, s, wr) in enumerate(zip(w["doc_id"], w["start"], w["writer"])):
        assert ids[i].tolist() == [key[(d, s + j)] for j in range(window_size)]
        assert writer_of_doc[d] == wr
    per_doc = w.group_by("doc_id").agg(pl.col("start").sort()).sort("doc_id")
    for d, starts in zip(per_doc["doc_id"], per_doc["start"]):
        assert starts.to_list() == list(range(0, len(starts) * stride, stride))


def test_windows_do_not_depend_on_row_order():
    emb = synth_table([12, 9, 3], [0, 1, 2], seed=3)
    a = make_windows(emb, window_size=4, stride=2).windows
    b = make_windows(emb.reverse(), window_size=4, stride=2).windows
    assert a.equals(b)


def test_words_table_without_model_id_gives_null_model_id():
    words = synth_table([6], [0], model_id=None).drop("emb")
    res = make_windows(words, window_size=5)
    assert res.windows.height == 2 and res.windows["model_id"].null_count() == 2
    assert res.metadata["n_windows"] == 2 and res.metadata["skipped_docs"] == 0


def test_bad_tables_are_refused_with_a_clear_message():
    emb = synth_table([6, 6], [0, 1])
    with pytest.raises(WrmilInputError, match="lacks column"):
        make_windows(emb.drop("position"))
    with pytest.raises(WrmilInputError, match="empty"):
        make_windows(emb.head(0))
    two_writers = emb.with_columns(pl.when(pl.col("position") == 3).then(9).otherwise(pl.col("writer")).alias("writer"))
    with pytest.raises(WrmilInputError, match="one writer"):
        make_windows(two_writers)
    dup = emb.with_columns(pl.when(pl.col("position") == 3).then(2).otherwise(pl.col("position")).alias("position"))
    with pytest.raises(WrmilInputError, match="twice"):
        make_windows(dup)
    mixed = emb.with_columns(pl.when(pl.col("position") == 0).then(pl.lit("m2")).otherwise(pl.col("model_id")).alias("model_id"))
    with pytest.raises(WrmilInputError, match="mixes embedding models"):
        make_windows(mixed)
    with pytest.raises(WrmilInputError, match="window_size"):
        make_windows(emb, window_size=0)
