"""Embedding table: schema, the blocking checks and their failure modes, unreadable images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from tests.support.embedding import TINY_CONFIG, make_words
from wrmil_core.embedding.infer import check_embeddings, embedding_stats
from wrmil_core.embedding.models import embed_words
from wrmil_core.embedding.model import build_model
from wrmil_core.errors import WrmilInputError
from wrmil_core.schema import EMBEDDING_COLUMNS


def table(emb: np.ndarray) -> pl.DataFrame:
    n, d = emb.shape
    return pl.DataFrame({
        "word_id": np.arange(n), "writer": np.zeros(n, np.int64), "doc_id": ["0_s0"] * n,
        "position": np.arange(n, dtype=np.int32),
        "emb": pl.Series(emb.astype(np.float32), dtype=pl.Array(pl.Float32, d)), "model_id": ["m"] * n,
    })


def unit(n: int = 20, d: int = 8) -> np.ndarray:
    e = np.random.default_rng(0).normal(size=(n, d))
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def test_good_table_passes_and_stats_are_right() -> None:
    ok, md = check_embeddings(table(unit()), dim=8)
    assert ok and md["problem"] == "none"
    s = embedding_stats(table(unit()))
    assert s["n_rows"] == 20 and s["dim"] == 8 and s["n_nonfinite"] == 0
    assert s["norm_min"] == pytest.approx(1, abs=1e-6) and s["norm_max"] == pytest.approx(1, abs=1e-6)
    assert s["component_std"] == pytest.approx(unit().std(), rel=1e-5)


@pytest.mark.parametrize("corrupt,dim,what", [
    (lambda e: np.where(np.arange(e.size).reshape(e.shape) == 5, np.nan, e), 8, "non-finite"),
    (lambda e: np.where(np.arange(e.size).reshape(e.shape) == 7, np.inf, e), 8, "non-finite"),
    (lambda e: e * np.r_[np.ones(19), 1.01][:, None], 8, "norm"),
    (lambda e: e, 16, "dimension"),
])
def test_corrupted_table_fails_check(corrupt, dim: int, what: str) -> None:
    ok, md = check_embeddings(table(corrupt(unit())), dim=dim)
    assert not ok and what in md["problem"]


def test_list_column_is_refused_not_crashed() -> None:
    t = table(unit()).with_columns(pl.col("emb").cast(pl.List(pl.Float32)))
    ok, md = check_embeddings(t, dim=8)
    assert not ok and "expected Array" in md["problem"]


def test_embed_words_schema_order_and_unreadable_images(tmp_path: Path) -> None:
    words = make_words(tmp_path, n_writers=2, per_writer=5).reverse()
    model = build_model(TINY_CONFIG).eval()
    out = embed_words(model, words, batch_size=4)
    assert tuple(out.columns) == EMBEDDING_COLUMNS
    assert out["word_id"].to_list() == words["word_id"].to_list()
    assert out.schema["emb"] == pl.Array(pl.Float32, 16) and out.schema["position"] == pl.Int32
    assert check_embeddings(out, 16)[0]
    # Batched result equals one-at-a-time embedding.
    one = embed_words(model, words[3:4], batch_size=1)
    np.testing.assert_allclose(one["emb"][0].to_numpy(), out["emb"][3].to_numpy(), atol=1e-5)
    Path(words["path"][2]).write_bytes(b"garbage")
    with pytest.raises(WrmilInputError, match="could not be read"):
        embed_words(model, words)
    skipped = embed_words(model, words, on_error="skip")
    assert skipped.height == words.height - 1 and words["word_id"][2] not in skipped["word_id"].to_list()
    with pytest.raises(WrmilInputError, match="lacks column"):
        embed_words(model, words.drop("path"))
    assert torch.is_grad_enabled()
