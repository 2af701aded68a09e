"""Content offsets: what a word's transcription adds to its vector, learnt on training writers and removed."""

from __future__ import annotations

import numpy as np
import pytest

from wrmil_core.artifacts import load_model, save_model
from wrmil_core.embedding.content import (
    CONFIG_KEY,
    PREFIX,
    ContentOffsets,
    content_from_saved,
    fit_content_offsets,
    normalise_text,
    pair_kind_metrics,
)
from wrmil_core.errors import WrmilInputError


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def planted(n_writers: int = 12, n_words: int = 8, reps: int = 4, dim: int = 16, word_scale: float = 1.0,
            noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Unit vectors = writer centre + word offset + noise; every writer writes every word ``reps`` times."""
    rng = np.random.default_rng(seed)
    centres, offsets = rng.normal(size=(n_writers, dim)), word_scale * rng.normal(size=(n_words, dim))
    writers = np.repeat(np.arange(n_writers), n_words * reps)
    words = np.tile(np.repeat(np.arange(n_words), reps), n_writers)
    emb = centres[writers] + offsets[words] + noise * rng.normal(size=(len(writers), dim))
    return unit(emb).astype(np.float32), writers, [f"Word{w}" for w in words]


def same_writer_diff_word_cosine(emb: np.ndarray, writers: np.ndarray, texts: list[str]) -> float:
    e = unit(emb.astype(np.float64))
    cos = e @ e.T
    w, t = np.asarray(writers), np.asarray(texts)
    mask = (w[:, None] == w[None, :]) & (t[:, None] != t[None, :])
    return float(cos[mask].mean())


def test_a_planted_word_offset_is_learnt_on_train_writers_and_removed_from_unseen_ones() -> None:
    emb, writers, texts = planted()
    train = writers < 8
    test = ~train
    co = fit_content_offsets(emb[train], [t for t, k in zip(texts, train) if k], writers[train], shrinkage=1.0)
    assert co.words == tuple(f"word{i}" for i in range(8)) and co.offsets.shape == (8, 16)
    assert co.offsets.dtype == np.float32
    t_test = [t for t, k in zip(texts, test) if k]
    before, after = emb[test], co.apply(emb[test], t_test)
    assert np.allclose(np.linalg.norm(after, axis=1), 1.0, atol=1e-5)
    cos_before = same_writer_diff_word_cosine(before, writers[test], t_test)
    cos_after = same_writer_diff_word_cosine(after, writers[test], t_test)
    assert cos_after > cos_before + 0.2
    m0 = pair_kind_metrics(before, writers[test], t_test, n_pairs=4000)
    m1 = pair_kind_metrics(after, writers[test], t_test, n_pairs=4000)
    assert m1["auc_diff_word"] > m0["auc_diff_word"] + 0.05 and m1["auc_diff_word"] > 0.95
    assert m1["auc_same_word"] >= m0["auc_same_word"] - 0.01


def test_unknown_empty_and_unseen_texts_pass_exactly_unchanged() -> None:
    emb, writers, texts = planted(n_writers=4, n_words=3)
    co = fit_content_offsets(emb, texts, writers)
    rng = np.random.default_rng(5)
    new = rng.normal(size=(6, 16)).astype(np.float32)  # not even unit rows: untouched all the same
    texts_new = [None, "", "   ", "never seen", float("nan"), " WORD1 "]
    out = co.apply(new, texts_new)
    assert out.dtype == np.float32 and out is not new
    assert np.array_equal(out[:5], new[:5])
    assert not np.allclose(out[5], new[5]) and np.linalg.norm(out[5]) == pytest.approx(1.0, abs=1e-6)
    assert np.array_equal(co.rows(texts_new), [-1, -1, -1, -1, -1, co.words.index("word1")])
    out64 = co.apply(new.astype(np.float64), texts_new)
    assert out64.dtype == np.float64 and np.array_equal(out64[:5], new[:5].astype(np.float64))
    # texts of no-text words are left out of the fit, and a fit without any text gives no offsets
    empty = fit_content_offsets(emb, [None] * len(emb), writers)
    assert empty.words == () and empty.offsets.shape == (0, 16)
    assert np.array_equal(empty.apply(emb, texts), emb)
    with pytest.raises(WrmilInputError, match="16-d"):
        co.apply(new[:, :8], texts_new)
    with pytest.raises(WrmilInputError, match="one row per text"):
        co.apply(new, texts_new[:5])


def test_texts_are_stripped_and_casefolded_alike_in_fit_and_apply() -> None:
    assert normalise_text("  Straße ") == "strasse" and normalise_text("") is None and normalise_text(None) is None
    emb, writers, texts = planted(n_writers=4, n_words=3)
    a = fit_content_offsets(emb, texts, writers)
    b = fit_content_offsets(emb, [f" {t.upper()}  " for t in texts], writers)
    assert a.words == b.words and np.array_equal(a.offsets, b.offsets)
    assert np.array_equal(a.apply(emb, texts), a.apply(emb, [t.lower() for t in texts]))


def test_shrinkage_scales_a_once_seen_word_by_one_over_one_plus_k() -> None:
    # writer A: [1, 0] "Solo", [0, 1] no text -> A's mean [0.5, 0.5]; writer B: two "pair" words
    emb = np.array([[1, 0], [0, 1], [0.6, 0.8], [0.8, 0.6]], np.float32)
    texts = ["Solo", None, "pair", "pair"]
    writers = ["A", "A", "B", "B"]
    co = fit_content_offsets(emb, texts, writers, shrinkage=4.0, min_count=1)
    assert co.words == ("pair", "solo") and co.shrinkage == 4.0
    assert np.allclose(co.offsets[1], [0.1, -0.1])  # ([1, 0] - [0.5, 0.5]) / (1 + 4)
    assert np.allclose(co.offsets[0], [0.0, 0.0], atol=1e-7)  # B's two words centre to +-[0.1, -0.1]
    out = co.apply(emb[:1], [" solo"])
    assert np.allclose(out[0], np.array([0.9, 0.1]) / np.hypot(0.9, 0.1), atol=1e-6)
    assert fit_content_offsets(emb, texts, writers, shrinkage=0.0, min_count=1).offsets[1] == pytest.approx([0.5, -0.5])
    assert fit_content_offsets(emb, texts, writers, shrinkage=4.0, min_count=2).words == ("pair",)
    with pytest.raises(WrmilInputError, match="shrinkage"):
        fit_content_offsets(emb, texts, writers, shrinkage=-1.0)
    with pytest.raises(WrmilInputError, match="min_count"):
        fit_content_offsets(emb, texts, writers, min_count=0)
    with pytest.raises(WrmilInputError, match="writers"):
        fit_content_offsets(emb, texts, writers[:3])


def test_the_writer_signal_is_not_absorbed_into_the_word_offsets() -> None:
    # writer k: a big shift along axis k; word v: an offset along axis 8 + v; each writer writes its own mix
    n_writers, n_words, dim = 8, 6, 16
    rng = np.random.default_rng(1)
    rows, writers, texts = [], [], []
    for k in range(n_writers):
        for v in ((k + j) % n_words for j in range(3)):
            for _ in range(5):
                x = np.zeros(dim)
                x[k], x[8 + v] = 3.0, 1.0
                rows.append(x + 0.02 * rng.normal(size=dim))
                writers.append(k)
                texts.append(f"w{v}")
    emb, writers = unit(np.array(rows)).astype(np.float32), np.array(writers)
    co = fit_content_offsets(emb, texts, writers, shrinkage=0.0)
    in_writer_axes = np.linalg.norm(co.offsets[:, :8], axis=1)
    in_word_axes = np.linalg.norm(co.offsets[:, 8:], axis=1)
    assert (in_writer_axes < 0.05).all() and (in_word_axes > 0.2).all()
    # without the writer centring each word's mean would carry the shifts of the writers who wrote it
    plain = np.stack([unit(emb.astype(np.float64))[np.array(texts) == w].mean(0) for w in co.words])
    assert (np.linalg.norm(plain[:, :8], axis=1) > 0.4).all()
    # and the writers stay apart after the offsets are removed
    out = co.apply(emb, texts)
    assert (np.argmax(np.abs(out[:, :8]), axis=1) == writers).all()
    assert pair_kind_metrics(out, writers, texts, n_pairs=2000)["auc_diff_word"] == pytest.approx(1.0)


def test_save_and_load_round_trip_through_a_model_directory(tmp_path) -> None:
    emb, writers, texts = planted(n_writers=4, n_words=3)
    co = fit_content_offsets(emb, [t.replace("Word", "Wörd ") for t in texts], writers, shrinkage=2.5)
    cfg = co.config()
    assert cfg == {"words": ["wörd 0", "wörd 1", "wörd 2"], "shrinkage": 2.5, "dim": 16}
    save_model(tmp_path, {PREFIX + k: v for k, v in co.tensors().items()}, {CONFIG_KEY: cfg, "emb_dim": 16})
    state, saved = load_model(tmp_path)
    back = content_from_saved(saved[CONFIG_KEY], {k[len(PREFIX):]: v for k, v in state.items() if k.startswith(PREFIX)})
    assert back.words == co.words and back.shrinkage == co.shrinkage
    assert back.offsets.dtype == np.float32 and np.array_equal(back.offsets, co.offsets)
    assert np.array_equal(back.apply(emb, texts), co.apply(emb, texts))
    tensors = co.tensors()
    with pytest.raises(WrmilInputError, match="do not match"):
        content_from_saved({**cfg, "words": ["wörd 0", "wörd 2", "wörd 1"]}, tensors)
    with pytest.raises(WrmilInputError, match="do not match"):
        content_from_saved({**cfg, "dim": 15}, tensors)
    with pytest.raises(WrmilInputError, match="incomplete"):
        content_from_saved({"words": cfg["words"]}, tensors)


def test_pair_kind_metrics_against_a_by_hand_case() -> None:
    # writers A, B each write "x" twice (identical vectors) and "y" once; C has no texts (left out).
    # same word: same-writer pairs (x, x) score 1, different-writer ones cos(p, q) = 0 or cos(r, s) < 1 -> AUC 1.
    # different words: same-writer pairs score cos(p, r) = cos(q, s) = 0.1, different-writer ones
    # cos(p, s) = cos(q, r) = 0.5 -> AUC 0.
    z = np.sqrt(1 - 0.1**2 - 0.5**2)
    p, q = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]
    r, s = [0.1, 0.5, z], [0.5, 0.1, -z]
    emb = np.array([p, p, r, q, q, s, p, q], np.float32)
    writers = np.array(["A", "A", "A", "B", "B", "B", "C", "C"])
    texts = ["x", " X", "y", "x", "x", "Y", None, ""]
    m = pair_kind_metrics(emb, writers, texts, n_pairs=1000, seed=3)
    assert m == {"auc_same_word": pytest.approx(1.0), "auc_diff_word": pytest.approx(0.0),
                 "n_pairs_same_word": 1000, "n_pairs_diff_word": 1000}
    assert pair_kind_metrics(emb, writers, texts, n_pairs=1000, seed=3) == m  # reproducible
    # with one writer there are no different-writer pairs of either kind
    one = pair_kind_metrics(emb[:3], writers[:3], texts[:3], n_pairs=100)
    assert np.isnan(one["auc_same_word"]) and one["n_pairs_same_word"] == 0
    assert np.isnan(one["auc_diff_word"]) and one["n_pairs_diff_word"] == 0


def test_pair_kinds_hold_the_pairs_they_say() -> None:
    # [0.8 x one-hot word, 0.6 x one-hot writer]: cosine 1 same word and writer, 0.64 same word only,
    # 0.36 same writer only, 0 neither; a pair of the wrong kind in either class would pull an AUC below 1
    n_writers, n_words = 5, 4
    writers = np.repeat(np.arange(n_writers), n_words * 3)
    words = np.tile(np.repeat(np.arange(n_words), 3), n_writers)
    emb = np.concatenate([0.8 * np.eye(n_words)[words], 0.6 * np.eye(n_writers)[writers]], axis=1)
    m = pair_kind_metrics(emb, writers, [f"w{v}" for v in words], n_pairs=600, seed=0)
    assert m == {"auc_same_word": 1.0, "auc_diff_word": 1.0, "n_pairs_same_word": 600, "n_pairs_diff_word": 600}
    with pytest.raises(WrmilInputError, match="writers"):
        pair_kind_metrics(emb, writers[:-1], [f"w{v}" for v in words])
