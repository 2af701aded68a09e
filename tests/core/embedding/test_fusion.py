"""The fused embedding: the classical LDA part saved beside the network, one id, vectors side by side."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.support.embedding import TINY_CONFIG, make_split
from wrmil_core.artifacts import load_model, weights_id
from wrmil_core.embedding.classical import embed_words_classical
from wrmil_core.embedding.fusion import fuse, fused_dim
from wrmil_core.embedding.models import FusedEmbedding, load_embedding
from wrmil_core.embedding.infer import embedding_matrix, load_embedding_model
from wrmil_core.embedding.models import embed_words
from wrmil_core.embedding.train import train_embedding
from wrmil_core.errors import WrmilInputError

FUSED = replace(TINY_CONFIG, classical_weight=0.4)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    train, val = make_split(tmp_path_factory.mktemp("words"), n_train=5, n_val=3)
    out = tmp_path_factory.mktemp("runs")
    net = train_embedding(train, val, TINY_CONFIG, out / "net")
    return train, val, net, train_embedding(train, val, FUSED, out / "fused")


def test_fused_cosine_is_the_weighted_mean_of_the_two() -> None:
    rng = np.random.default_rng(0)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    a, b = unit(rng.normal(size=(6, 5))), unit(rng.normal(size=(6, 3)))
    f = fuse(a, b, 0.3)
    assert np.allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-6)
    assert np.allclose(f @ f.T, 0.7 * (a @ a.T) + 0.3 * (b @ b.T), atol=1e-6)
    with pytest.raises(WrmilInputError, match="cannot fuse"):
        fuse(a, b[:4], 0.3)


def test_fused_model_saves_both_parts_under_one_id(trained) -> None:
    train, _, net, fused = trained
    state, cfg = load_model(fused.model_dir)  # the id check covers the classical arrays too
    assert cfg["model_id"] == fused.model_id == weights_id(state) != net.model_id
    assert cfg["classical"]["projection"] == "lda" and cfg["classical_dim"] == min(30, train["writer"].n_unique() - 1)
    assert fused_dim(cfg) == TINY_CONFIG.emb_dim + cfg["classical_dim"]
    model, config = load_embedding_model(fused.model_dir)  # the network alone still loads
    assert config.classical_weight == 0.4 and model.model_id == fused.model_id
    assert not isinstance(load_embedding(net.model_dir), FusedEmbedding)


def test_fused_vectors_are_the_network_and_classical_side_by_side(trained) -> None:
    _, val, _, fused = trained
    table = embed_words(fused.model_dir, val, device="cpu")
    assert table["model_id"].unique().to_list() == [fused.model_id]
    network, _ = load_embedding_model(fused.model_dir)
    alone = embedding_matrix(embed_words(network, val, device="cpu"))
    classical = embedding_matrix(embed_words_classical(load_embedding(fused.model_dir).classical, val))
    assert np.allclose(embedding_matrix(table), fuse(alone, classical, 0.4), atol=1e-6)


def test_fused_embedding_skips_or_names_an_unreadable_word(trained, tmp_path: Path) -> None:
    _, val, _, fused = trained
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    words = val.with_columns(pl.when(pl.int_range(pl.len()) == 2).then(pl.lit(str(bad))).otherwise(pl.col("path"))
                             .alias("path"))
    with pytest.raises(WrmilInputError, match="bad.png"):
        embed_words(fused.model_dir, words, device="cpu")
    kept = embed_words(fused.model_dir, words, device="cpu", on_error="skip")
    assert kept.height == val.height - 1 and val["word_id"][2] not in kept["word_id"].to_list()


def test_classical_weight_must_leave_the_network_a_share() -> None:
    with pytest.raises(WrmilInputError, match="classical_weight"):
        replace(TINY_CONFIG, classical_weight=1.0)
