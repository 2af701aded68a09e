"""Small embeddings tables for the stage-2 (windows, bags) tests (helpers only; no tests here)."""

from __future__ import annotations

import numpy as np
import polars as pl


def synth_table(doc_lengths: list[int], doc_writers: list[int], *, dim: int = 4, seed: int = 0,
                model_id: str | None = "m1") -> pl.DataFrame:
    """An embeddings table: random unit vectors, scattered word ids (not 0..N-1, not in row order),
    documents ``d000, d001, ...`` of the given lengths and writers, rows in shuffled order."""
    rng = np.random.default_rng(seed)
    n = int(sum(doc_lengths))
    doc = np.repeat(np.arange(len(doc_lengths)), doc_lengths)
    pos = np.concatenate([np.arange(L) for L in doc_lengths]) if n else np.zeros(0, int)
    word_id = rng.permutation(n * 3)[:n] + 11
    e = rng.normal(size=(n, dim)).astype(np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    df = pl.DataFrame({
        "word_id": pl.Series(word_id, dtype=pl.Int64),
        "writer": pl.Series(np.asarray(doc_writers, np.int64)[doc], dtype=pl.Int64),
        "doc_id": pl.Series([f"d{d:03d}" for d in doc], dtype=pl.Utf8),
        "position": pl.Series(pos, dtype=pl.Int32),
        "emb": pl.Series(e, dtype=pl.Array(pl.Float32, dim)),
    })
    if model_id is not None:
        df = df.with_columns(pl.lit(model_id).alias("model_id"))
    return df.sample(fraction=1.0, shuffle=True, seed=seed)


def default_table(seed: int = 0, dim: int = 4) -> pl.DataFrame:
    """6 writers x 3 documents of 120 words: room for the default 50-word bags."""
    return synth_table([120] * 18, [d // 3 for d in range(18)], seed=seed, dim=dim)
