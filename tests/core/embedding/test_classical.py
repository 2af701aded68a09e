"""Training-free classical embedding: capture-invariant features, the embeddings table, save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from PIL import Image

from tests.support.embedding import draw_word, make_split
from wrmil_core.artifacts import save_model
from wrmil_core.embedding.classical import (ClassicalConfig, embed_words_classical, extract_features, fit_classical,
                                            fit_projection, load_classical, preset, save_classical)
from wrmil_core.embedding.classical_features import block_sizes, ink_mask, word_features
from wrmil_core.embedding.evaluate import verification_metrics
from wrmil_core.embedding.infer import check_embeddings, embedding_matrix
from wrmil_core.errors import WrmilInputError
from wrmil_core.schema import EMBEDDING_COLUMNS


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> tuple[pl.DataFrame, pl.DataFrame]:
    return make_split(tmp_path_factory.mktemp("words"), n_train=4, n_val=4)


def recolour(img: Image.Image, ink: int, paper: int) -> Image.Image:
    """The same strokes with another ink and paper grey level (another pen / scanner)."""
    a = np.asarray(img, np.float32) / 255.0
    return Image.fromarray(np.round(paper + (ink - paper) * (1 - a)).astype(np.uint8))


def test_features_fixed_length_finite_and_blind_to_ink_tone_and_paper() -> None:
    img = draw_word(np.random.default_rng(0), writer=3)
    f = word_features(img)
    assert f.dtype == np.float32 and f.shape == (sum(block_sizes(12, 16, 8, 16).values()),)
    assert np.isfinite(f).all() and f.std() > 0
    for ink, paper in ((90, 200), (0, 255), (60, 140)):
        assert np.allclose(word_features(recolour(img, ink, paper)), f, atol=0.05)
    # White ink on dark paper is found as ink too.
    assert (ink_mask(recolour(img, 240, 30), 64) == ink_mask(img, 64)).mean() > 0.97
    other = word_features(draw_word(np.random.default_rng(0), writer=2))
    assert np.linalg.norm(other - f) > 0.1


def test_blank_image_gives_finite_features() -> None:
    assert np.isfinite(word_features(Image.new("L", (60, 30), 255))).all()


def test_embeddings_table_like_embed_words(split) -> None:
    train, val = split
    model = fit_classical(train, preset("default"))
    emb = embed_words_classical(model, val)
    assert emb.columns == list(EMBEDDING_COLUMNS) and emb.height == val.height
    assert emb.schema["emb"] == pl.Array(pl.Float32, model.dim) and model.dim == train.height - 1  # PCA rank
    ok, stats = check_embeddings(emb, model.dim)
    assert ok, stats
    assert emb["word_id"].to_list() == val["word_id"].to_list()
    assert emb["model_id"].unique().to_list() == [model.model_id]


def test_writers_separate_on_the_fixture(split) -> None:
    train, val = split
    emb = embed_words_classical(fit_classical(train, ClassicalConfig(projection="center")), val)
    assert verification_metrics(embedding_matrix(emb), emb["writer"].to_numpy())["auc"] > 0.9


def test_model_id_hashes_config_and_fit(split, tmp_path: Path) -> None:
    train, _ = split
    feats, _, _ = extract_features(train["path"].to_list(), ClassicalConfig())
    a, b = fit_projection(feats, ClassicalConfig()), fit_projection(feats, ClassicalConfig())
    assert a.model_id == b.model_id and len(a.model_id) == 16
    assert fit_projection(feats, ClassicalConfig(hinge_leg=3)).model_id != a.model_id  # config
    assert fit_projection(feats[:50], ClassicalConfig()).model_id != a.model_id  # fitted arrays
    assert save_classical(tmp_path / "m", a) == a.model_id
    back = load_classical(tmp_path / "m")
    assert back.config == a.config and back.model_id == a.model_id
    assert np.array_equal(back.project(np.ones((2, len(a.mean)))), a.project(np.ones((2, len(a.mean)))))
    assert not list((tmp_path / "m").glob("*.pkl"))


def test_unreadable_images_raise_or_are_skipped(split, tmp_path: Path) -> None:
    train, val = split
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    broken = val.with_columns(pl.when(pl.int_range(pl.len()) == 2).then(pl.lit(str(bad))).otherwise(pl.col("path"))
                              .alias("path"))
    model = fit_classical(train, ClassicalConfig(projection="center"))
    with pytest.raises(WrmilInputError, match="bad.png"):
        embed_words_classical(model, broken)
    assert embed_words_classical(model, broken, on_error="skip").height == val.height - 1


def test_config_is_validated_and_a_network_dir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WrmilInputError, match="projection"):
        ClassicalConfig(projection="lda")
    with pytest.raises(WrmilInputError, match="whiten_power"):
        ClassicalConfig(whiten_power=2.0)
    save_model(tmp_path / "net", {"w": torch.zeros(2)}, {"backbone": "x"})
    with pytest.raises(WrmilInputError, match="lacks \\['kind'\\]"):
        load_classical(tmp_path / "net")
