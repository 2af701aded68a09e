"""Scoring questioned documents: ``wrmil_core.scoring.score`` (models and documents from
``tests/support/scoring.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.support.scoring import FOREIGN, N_WORDS, THRESHOLDS, scoring_setup, write_document
from wrmil_core.errors import WrmilInputError
from wrmil_core.scoring.score import DocumentScore, read_model_pair, score_document


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return scoring_setup(tmp_path_factory)


@pytest.fixture(scope="module")
def scored(setup: dict[str, Any]) -> dict[str, DocumentScore]:
    return {d: score_document(setup[d], setup["emb_dir"], setup["mil"]["distance"]) for d in ("genuine", "mixed")}


def test_mixed_document_scores_higher_and_foreign_words_top(scored: dict[str, DocumentScore]) -> None:
    gen, mix = scored["genuine"], scored["mixed"]
    assert (mix.n_words, mix.n_windows, mix.n_bags, mix.short_document) == (N_WORDS, 12, 3, False)
    assert mix.probability > gen.probability + 0.05, (gen.probability, mix.probability)
    assert mix.decisions["max_f1"] and not gen.decisions["max_f1"], (gen.probability, mix.probability)
    for s in (gen, mix):
        assert s.decisions == {k: s.probability >= v for k, v in THRESHOLDS.items()}
        assert s.probability == pytest.approx(max(s.bag_probabilities))
        assert len(s.word_scores) == s.n_words and len(s.window_scores) == s.n_windows
    # The two windows of the foreign passage are the two highest-scored windows.
    assert set(np.argsort(mix.window_scores)[-2:].tolist()) == {5, 6}, mix.window_scores
    top = [w["index"] for w in mix.top_words]
    assert len(top) == 10 and sum(i in FOREIGN for i in top) >= 9, top
    assert mix.top_words[0]["file"] == f"w{mix.top_words[0]['index']}.png"
    # Word score = score of its (best) window.
    assert mix.word_scores[27] == pytest.approx(mix.window_scores[5])
    assert all(mix.word_scores[w["index"]] == mix.window_scores[w["window"]] for w in mix.top_words)


def test_logit_model_windows_are_sigmoid_of_their_scores(scored: dict[str, DocumentScore]) -> None:
    """``distance`` declares window_output "logit": its window scores are sigmoid(raw)."""
    s = scored["mixed"]
    np.testing.assert_allclose(s.window_scores, 1 / (1 + np.exp(-np.asarray(s.window_raw))), rtol=1e-12)


def test_unaligned_passage_is_found(setup: dict[str, Any]) -> None:
    """A passage that straddles window boundaries (positions 22..33) is still found."""
    doc = write_document(setup["base"] / "unaligned", foreign=range(22, 34), seed=1)
    s = score_document(doc, setup["emb_dir"], setup["mil"]["distance"], top_k=15)
    top = [w["index"] for w in s.top_words]
    assert sum(i in range(22, 34) for i in top) >= 10, top
    assert int(np.argmax(s.window_scores)) in (4, 5, 6)


def test_short_document_scored_as_one_bag(setup: dict[str, Any]) -> None:
    doc = write_document(setup["base"] / "short", n=30, foreign=range(10, 15))
    s = score_document(doc, setup["emb_dir"], setup["mil"]["distance"])
    assert s.short_document and s.n_bags == 1 and s.n_windows == 6
    assert int(np.argmax(s.window_scores)) == 2
    assert "shorter than one bag" in s.summary()


def test_attention_model_scores_on_probability_scale(setup: dict[str, Any]) -> None:
    """``abmil`` declares window_output "attention": the most attended window of a bag scores
    the bag's probability, the others a share of it."""
    s = score_document(setup["mixed"], setup["emb_dir"], setup["mil"]["abmil"])
    assert s.model_name == "abmil" and 0.0 <= s.probability <= 1.0
    assert all(0.0 <= v <= s.probability + 1e-9 for v in s.window_scores)
    assert max(s.window_scores) == pytest.approx(s.probability)


def test_model_pair_refusals(setup: dict[str, Any]) -> None:
    emb, mil = setup["emb_dir"], setup["mil"]["distance"]
    pair = read_model_pair(emb, mil)
    assert (pair.window_size, pair.bag_size, pair.thresholds) == (5, 10, THRESHOLDS)
    with pytest.raises(WrmilInputError, match="64-d embeddings"):
        read_model_pair(emb, setup["mil_wrong_dim"])
    with pytest.raises(WrmilInputError, match="0123456789abcdef"):
        read_model_pair(emb, setup["mil_wrong_id"])
    with pytest.raises(WrmilInputError, match="not an embedding model directory"):
        read_model_pair(mil, emb)
    with pytest.raises(WrmilInputError, match="model.safetensors is missing; give a model directory written by wrmil"):
        read_model_pair(emb, setup["base"])
