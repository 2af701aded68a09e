"""The frozen-feature embedding: pretrained style features + PCA + LDA, fitted with no training loop,
read back through the one embedding interface; content offsets added to a fitted model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from tests.support.embedding import TINY_CONFIG, make_split
from wrmil_core.artifacts import read_config
from wrmil_core.embedding.evaluate import verification_metrics
from wrmil_core.embedding.fit import fit_embedding
from wrmil_core.embedding.frozen import fit_projection
from wrmil_core.embedding.infer import check_embeddings, embedding_matrix
from wrmil_core.embedding.models import ContentNormalised, FrozenEmbedding, FusedEmbedding, embed_words, load_embedding
from wrmil_core.errors import WrmilInputError

FROZEN = replace(TINY_CONFIG, method="frozen", backbone="efficientnet_lite0", weights="efficientnet_lite0@imagenet",
                 frozen_pca_dim=24, frozen_lda_dim=4)


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory):
    return make_split(tmp_path_factory.mktemp("words"), n_train=6, n_val=4, per_writer=12)


def test_the_projection_is_pca_then_lda_as_scikit_learn_fits_them() -> None:
    rng = np.random.default_rng(0)
    writers = np.repeat(np.arange(6), 20)
    x = rng.normal(size=(120, 30)) + 3 * rng.normal(size=(6, 30))[writers]
    proj = fit_projection(x, writers, pca_dim=12, lda_dim=4, shrinkage=0.3)
    pca = PCA(n_components=12, random_state=0).fit(x)
    lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage=0.3).fit(pca.transform(x), writers)
    expected = (pca.transform(x) @ lda.scalings_)[:, :4]
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(proj(x), expected, atol=1e-5)
    with pytest.raises(WrmilInputError, match="at least 3 training writers"):
        fit_projection(x[:40], writers[:40])


def test_the_frozen_method_fits_without_training_and_embeds_unseen_writers(split, tmp_path: Path) -> None:
    train, val = split
    fitted = fit_embedding(FROZEN, train, val, tmp_path / "frozen")
    assert fitted.method == "frozen" and fitted.metadata["epochs_run"] == 0 and fitted.train_result is None
    cfg = read_config(fitted.model_dir)
    assert cfg["kind"] == "frozen" and cfg["emb_dim"] == fitted.emb_dim == 4
    model = load_embedding(fitted.model_dir)
    assert isinstance(model, FrozenEmbedding) and model.model_id == fitted.model_id
    table = embed_words(fitted.model_dir, val, device="cpu")
    assert check_embeddings(table, 4)[0] and set(table["model_id"]) == {fitted.model_id}
    assert verification_metrics(embedding_matrix(table), table["writer"].to_numpy(), 2000)["auc"] > 0.7
    again = fit_embedding(FROZEN, train, val, tmp_path / "again")
    assert again.model_id == fitted.model_id  # deterministic: the same words give the same model


def test_every_method_of_the_config_has_a_fitter() -> None:
    from wrmil_core.embedding.config import METHODS
    from wrmil_core.embedding.fit import _FITTERS

    assert set(_FITTERS) == set(METHODS)


def test_the_frozen_method_needs_pretrained_weights(split, tmp_path: Path) -> None:
    train, val = split
    with pytest.raises(WrmilInputError, match="needs pretrained weights"):
        fit_embedding(replace(TINY_CONFIG, method="frozen"), train, val, tmp_path)


def test_a_fused_frozen_model_carries_its_classical_part(split, tmp_path: Path) -> None:
    train, val = split
    fitted = fit_embedding(replace(FROZEN, classical_weight=0.4), train, val, tmp_path)
    model = load_embedding(fitted.model_dir)
    assert isinstance(model, FusedEmbedding) and isinstance(model.inner, FrozenEmbedding)
    table = embed_words(model, val)
    assert check_embeddings(table, fitted.emb_dim)[0] and fitted.emb_dim == 4 + model.classical.dim


def test_content_offsets_join_the_model_and_leave_words_without_text_unchanged(split, tmp_path: Path) -> None:
    train, val = split
    texts = [f"w{i % 3}" for i in range(train.height)]
    train = train.with_columns(text=np.array(texts))
    plain = fit_embedding(FROZEN, train, val, tmp_path / "plain")
    fitted = fit_embedding(replace(FROZEN, content_prior=5.0), train, val, tmp_path / "content")
    assert fitted.model_id != plain.model_id and "content" in read_config(fitted.model_dir)
    model = load_embedding(fitted.model_dir)
    assert isinstance(model, ContentNormalised) and sorted(model.content.words) == ["w0", "w1", "w2"]
    no_text = val.with_columns(text=np.array([""] * val.height))
    assert np.array_equal(embedding_matrix(embed_words(model, no_text)),
                          embedding_matrix(embed_words(plain.model_dir, no_text)))
    with_text = val.with_columns(text=np.array(["w1"] * val.height))
    assert not np.allclose(embedding_matrix(embed_words(model, with_text)), embedding_matrix(embed_words(model, no_text)))
