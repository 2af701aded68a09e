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
from wrmil_core.embedding.classical import (ClassicalConfig, embed_words_classical, extract_features, fit_and_save,
                                            fit_classical, fit_projection, load_classical, preset, save_classical)
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
        ClassicalConfig(projection="ica")
    with pytest.raises(WrmilInputError, match="whiten_power"):
        ClassicalConfig(whiten_power=2.0)
    with pytest.raises(WrmilInputError, match="shrinkage"):
        ClassicalConfig(projection="lda", shrinkage=1.5)
    save_model(tmp_path / "net", {"w": torch.zeros(2)}, {"backbone": "x"})
    with pytest.raises(WrmilInputError, match="lacks \\['kind'\\]"):
        load_classical(tmp_path / "net")


def test_a_classical_model_dir_serves_where_a_network_dir_does(split, tmp_path: Path) -> None:
    """``embed_words`` (word_embeddings, wrmil score) and ``embed_baselines`` take a classical model
    directory; the tables carry the id ``save_model`` recorded and ``load_model`` verifies."""
    from wrmil_core.artifacts import read_config
    from wrmil_core.embedding.baselines import embed_baselines
    from wrmil_core.embedding.config import preset as network_preset
    from wrmil_core.embedding.infer import load_embedding_model
    from wrmil_core.embedding.models import embed_words, is_classical, network_config

    train, val = split
    network = network_preset("demo", backbone="test_resnet", img_h=32, img_w=96, emb_dim=16, hidden_dim=32)
    model = fit_and_save(train, tmp_path / "m", ClassicalConfig(), network=network)
    cfg = read_config(tmp_path / "m")
    assert is_classical(cfg) and cfg["model_id"] == model.model_id and cfg["emb_dim"] == model.dim
    assert network_config(cfg) == network
    table = embed_words(tmp_path / "m", val)
    direct = embed_words_classical(model, val)
    assert table["model_id"].unique().to_list() == [cfg["model_id"]]
    assert np.array_equal(embedding_matrix(table), embedding_matrix(direct))
    controls = embed_baselines(tmp_path / "m", val)
    assert controls["untrained"].schema["emb"].size == 16  # the network's initial weights, its emb_dim
    assert set(controls["pixels"]["model_id"]) == {f"pixels@{model.model_id}"}
    with pytest.raises(WrmilInputError, match="classical"):
        load_embedding_model(tmp_path / "m")


def test_a_hand_edited_config_is_refused(split, tmp_path: Path) -> None:
    import json

    model = fit_classical(split[0], ClassicalConfig(projection="center"))
    save_classical(tmp_path / "m", model)
    cfg_path = tmp_path / "m" / "config.json"
    cfg_path.write_text(json.dumps({**json.loads(cfg_path.read_text()), "hinge_leg": 3}))
    with pytest.raises(WrmilInputError, match="does not match the settings"):
        load_classical(tmp_path / "m")


def test_wrmil_score_with_a_classical_embedding(tmp_path: Path) -> None:
    """A questioned document scored through a classical embedding model and a MIL model trained on
    its vectors: the same ``score_document`` call as for a network."""
    from tests.support.scoring import EMB_DIM, FOREIGN, WORDS, forger_style, host_style, save_mil, write_document
    from wrmil_core import synth
    from wrmil_core.scoring.score import score_document

    rows = []
    for w, style in enumerate((host_style(20), forger_style(21), host_style(22), forger_style(23))):
        for i, word in enumerate(WORDS):
            path = tmp_path / "train" / f"{w}_{i}.png"
            path.parent.mkdir(exist_ok=True)
            synth.render_word(word, style, np.random.default_rng([5, w, i])).save(path)
            rows.append({"word_id": len(rows), "writer": w, "doc_id": str(w), "position": i, "path": str(path)})
    model = fit_and_save(pl.DataFrame(rows), tmp_path / "emb", ClassicalConfig(pca_dim=EMB_DIM))
    assert model.dim == EMB_DIM
    save_mil(tmp_path / "mil", "distance", model.dim, model.model_id)
    genuine = score_document(write_document(tmp_path / "genuine"), tmp_path / "emb", tmp_path / "mil")
    mixed = score_document(write_document(tmp_path / "mixed", foreign=FOREIGN), tmp_path / "emb", tmp_path / "mil")
    assert genuine.embedding_model_id == mixed.embedding_model_id == model.model_id
    assert mixed.probability > genuine.probability


def test_lda_projection_keeps_the_directions_that_separate_writers() -> None:
    """Writers differ along 2 of 40 feature dimensions, buried under larger shared noise: centring
    alone barely separates them, the LDA projection finds the 2 directions (and scikit-learn's
    transform gives the same vectors)."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    rng = np.random.default_rng(0)
    n_writers, per = 12, 30
    writers = np.repeat(np.arange(n_writers), per)
    centres = np.zeros((n_writers, 40))
    centres[:, :2] = rng.normal(0, 2.0, (n_writers, 2))
    noise_scale = np.r_[np.full(2, 0.3), np.full(38, 3.0)]
    x = centres[writers] + rng.normal(0, 1, (len(writers), 40)) * noise_scale
    test = centres[writers] + rng.normal(0, 1, (len(writers), 40)) * noise_scale  # new words, same writers
    cfg = ClassicalConfig(projection="lda", lda_dim=2, shrinkage=0.1)
    model = fit_projection(x, cfg, writers)
    assert model.dim == 2 and model.components.shape == (2, 40)
    auc = lambda m: verification_metrics(m.project(test), writers)["auc"]  # noqa: E731
    assert auc(model) > 0.85 > auc(fit_projection(x, ClassicalConfig(projection="center"))) + 0.15
    lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage=0.1).fit(x, writers)
    by_sklearn = (test - x.mean(0)) @ lda.scalings_[:, :2]
    by_sklearn /= np.linalg.norm(by_sklearn, axis=1, keepdims=True)
    assert np.allclose(model.project(test), by_sklearn, atol=1e-4)
    assert fit_projection(x, ClassicalConfig(projection="lda", lda_dim=30), writers).dim == n_writers - 1


def test_lda_projection_needs_the_writers(split) -> None:
    x = np.random.default_rng(1).normal(size=(20, 8))
    with pytest.raises(WrmilInputError, match="writer of every training word"):
        fit_projection(x, preset("lda"))
    with pytest.raises(WrmilInputError, match="at least 3 training writers, got 2"):
        fit_projection(x, preset("lda"), np.repeat([0, 1], 10))
    train, _ = split  # fit_classical passes the words' writers
    assert fit_classical(train, preset("lda")).dim == train["writer"].n_unique() - 1


def test_few_images_never_start_a_feature_pool(split, monkeypatch: pytest.MonkeyPatch) -> None:
    """Scoring one document (tens of words) must not pay a pool's start (each worker re-imports)."""
    import wrmil_core.embedding.classical as classical

    def no_pool(*args: object) -> None:
        raise AssertionError("a process pool was started for a handful of images")

    monkeypatch.setattr(classical, "get_context", no_pool)
    train, _ = split
    paths = train["path"].to_list()[:12]
    feats, ok, errors = classical.extract_features(paths, preset("default", num_workers=2))
    assert len(ok) == 12 and not errors and len(paths) < classical.POOL_MIN_IMAGES


@pytest.mark.slow
def test_feature_pool_finishes_under_a_parent_that_ignores_sigterm(split) -> None:
    """Workers leave on their own (close + join): terminate() sends SIGTERM, which an inherited
    SIG_IGN (nohup'd jobs, some CI runners) turns into a hang that not even `timeout` stops."""
    import subprocess
    import sys

    train, _ = split
    code = ("import signal, sys\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "import wrmil_core.embedding.classical as classical\n"
            "from wrmil_core.embedding.classical import extract_features, preset\n"
            "classical.POOL_MIN_IMAGES = 1  # a pool for these 12 images\n"
            "if __name__ == '__main__':\n"
            "    f, ok, _ = extract_features(sys.argv[1:], preset('default', num_workers=2))\n"
            "    print(len(ok))\n")
    paths = train["path"].to_list()[:12]
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, text=True, timeout=180, cwd=root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "12"
