"""Shortcut controls: the untrained network and raw pixels as embeddings tables, and the check
that warns when the trained embedding does not beat raw pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from tests.support.embedding import TINY_CONFIG, make_split, make_words
from wrmil_core.artifacts import save_model
from wrmil_core.embedding.baselines import (
    baseline_model_id,
    centred_unit,
    check_beats_pixels,
    embed_baselines,
    quality_by_embedding,
    untrained_network,
)
from wrmil_core.embedding.evaluate import evaluate_embeddings
from wrmil_core.embedding.infer import check_embeddings, embedding_matrix
from wrmil_core.embedding.train import train_embedding
from wrmil_core.errors import WrmilInputError
from wrmil_core.schema import EMBEDDING_COLUMNS


def test_baselines_reproduce_the_figures_training_measured(tmp_path: Path) -> None:
    """Same network, pixels and words as training's own baseline figures: the same numbers."""
    train, val = make_split(tmp_path / "words")
    res = train_embedding(train, val, TINY_CONFIG, tmp_path / "run", resume=False)
    words = val.sort("word_id")  # training validates on the val words in word-id order (no subset here)
    tables = embed_baselines(res.model_dir, words, device="cpu")
    kw = {"n_pairs": TINY_CONFIG.val_pairs, "n_queries": TINY_CONFIG.val_queries, "seed": TINY_CONFIG.seed}
    for name, measured in (("untrained", res.baseline_metrics), ("pixels", res.pixel_metrics)):
        t = tables[name]
        assert t.columns == list(EMBEDDING_COLUMNS) and t["word_id"].to_list() == words["word_id"].to_list()
        assert set(t["model_id"]) == {baseline_model_id(name, res.model_id)} == {f"{name}@{res.model_id}"}
        assert check_embeddings(t, t.schema["emb"].size)[0]
        got = evaluate_embeddings(embedding_matrix(t), t["writer"].to_numpy(), **kw)
        assert got == pytest.approx(measured, abs=1e-4)  # float rounding: another thread count than training
    assert tables["untrained"].schema["emb"].size == TINY_CONFIG.emb_dim
    assert tables["pixels"].schema["emb"].size == 16 * 64


def test_untrained_network_is_the_seeded_start_and_leaves_the_rng_alone() -> None:
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)
    a = untrained_network(TINY_CONFIG)
    assert torch.equal(torch.rand(3), expected_draw)  # the global RNG stream is untouched
    b = untrained_network(TINY_CONFIG)
    other = untrained_network(TINY_CONFIG.__class__(**{**TINY_CONFIG.to_dict(), "seed": 1}))
    sa, sb, so = a.state_dict(), b.state_dict(), other.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], so[k]) for k in sa)
    assert not a.training


def test_embed_baselines_names_an_unreadable_image(tmp_path: Path) -> None:
    words = make_words(tmp_path / "w", n_writers=2, per_writer=4)
    model = untrained_network(TINY_CONFIG)
    model_dir = tmp_path / "model"
    save_model(model_dir, model.state_dict(), TINY_CONFIG.to_dict())
    bad = words["path"][3]
    Path(bad).write_bytes(b"not a png")
    with pytest.raises(WrmilInputError, match="could not be read") as e:
        embed_baselines(model_dir, words, device="cpu")
    assert Path(bad).name in str(e.value)


def test_centred_unit_by_hand() -> None:
    x = np.array([[1.0, 0.0], [3.0, 0.0], [2.0, 2.0]])  # column means 2 and 2/3
    c = np.array([[-1.0, -2 / 3], [1.0, -2 / 3], [0.0, 4 / 3]])
    np.testing.assert_allclose(centred_unit(x), c / np.linalg.norm(c, axis=1, keepdims=True), rtol=1e-6)
    assert centred_unit(x).dtype == np.float32


def test_baseline_ids_and_quality_by_embedding() -> None:
    with pytest.raises(WrmilInputError, match="unknown baseline"):
        baseline_model_id("classical-ish", "m1")
    rng = np.random.default_rng(0)
    writers = np.repeat(np.arange(4), 10)
    good = rng.normal(size=(4, 8))[writers] + 0.01 * rng.normal(size=(40, 8))

    def table(e: np.ndarray) -> pl.DataFrame:
        return pl.DataFrame({"writer": writers, "emb": pl.Series(e.astype(np.float32), dtype=pl.Array(pl.Float32, 8))})

    q = quality_by_embedding({"trained": table(good), "pixels": table(rng.normal(size=(40, 8)))},
                             n_pairs=1000, n_queries=20, n_boot=20)
    assert q["trained"]["auc"] == pytest.approx(1.0) and 0.3 < q["pixels"]["auc"] < 0.7
    assert q["trained"]["n_writers"] == q["pixels"]["n_writers"] == 4


def test_check_warns_when_pixels_come_close_and_passes_when_beaten() -> None:
    untrained = {"auc": 0.52, "eer": 0.49}
    ok, md = check_beats_pixels({"auc": 0.80, "eer": 0.28, "n_writers": 8, "n_images": 2000},
                                {"auc": 0.62, "eer": 0.41}, untrained)
    assert ok and md["auc_margin_over_pixels"] == pytest.approx(0.18) and md["min_auc_margin"] == 0.05
    assert md["trained/auc"] == 0.80 and md["pixels/auc"] == 0.62 and md["untrained/auc"] == 0.52
    assert md["trained/n_writers"] == 8.0 and isinstance(md["trained/n_images"], float)
    ok, md = check_beats_pixels({"auc": 0.65}, {"auc": 0.62}, untrained)
    assert not ok and md["auc_margin_over_pixels"] == pytest.approx(0.03) and "shortcut" in md["verdict"]
    assert not check_beats_pixels({"auc": 0.55}, {"auc": 0.62})[0]  # pixels better than training
    assert check_beats_pixels({"auc": 0.65}, {"auc": 0.62}, min_margin=0.02)[0]  # the margin is configurable
    ok, md = check_beats_pixels({"auc": 0.65}, {})
    assert ok and "missing" in md["note"]
