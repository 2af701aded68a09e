"""Writer-balanced P x K batches: composition, seeding, epochs, DDP sharding, and a training run."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.support.embedding import TINY_CONFIG, make_split
from wrmil_core.embedding.data import WriterBatchSampler, pk_shape
from wrmil_core.embedding.train import train_embedding
from wrmil_core.errors import WrmilInputError

# 10 writers with 5..23 words each, interleaved as in a words table sorted by word_id.
LABELS = np.concatenate([np.full(5 + 2 * w, w) for w in range(10)])
np.random.default_rng(0).shuffle(LABELS)


def epoch(sampler: WriterBatchSampler, e: int) -> list[list[int]]:
    sampler.set_epoch(e)
    return list(sampler)


def test_every_batch_has_p_writers_with_k_words_each() -> None:
    s = WriterBatchSampler(LABELS, p=4, k=3, seed=1)
    batches = epoch(s, 0)
    assert len(batches) == len(s) == len(LABELS) // 12
    for b in batches:
        per_writer = Counter(LABELS[b].tolist())
        assert len(b) == 12 and len(per_writer) == 4 and set(per_writer.values()) == {3}
        assert len(set(b)) == 12  # K distinct words of each writer (every writer has >= 3)


def test_writers_and_words_are_balanced_over_an_epoch() -> None:
    s = WriterBatchSampler(LABELS, p=5, k=2, seed=0)
    batches = epoch(s, 0)
    uses = Counter(LABELS[np.concatenate(batches)].tolist())
    per_writer = np.array([uses[w] for w in range(10)]) // 2  # batches each writer was in
    assert per_writer.max() - per_writer.min() <= 2  # writers, not words, are balanced
    words = Counter(np.concatenate(batches).tolist())
    for w in range(10):  # a writer's words cycle: none repeats before all were used
        counts = [words.get(i, 0) for i in np.flatnonzero(LABELS == w)]
        assert max(counts) - min(counts) <= 1


def test_seeded_reproducible_and_different_across_epochs_and_seeds() -> None:
    a, b = WriterBatchSampler(LABELS, 4, 3, seed=7), WriterBatchSampler(LABELS, 4, 3, seed=7)
    assert epoch(a, 0) == epoch(b, 0) and epoch(a, 3) == epoch(b, 3)
    assert epoch(a, 0) != epoch(a, 1)
    assert epoch(a, 0) != epoch(WriterBatchSampler(LABELS, 4, 3, seed=8), 0)


def test_ddp_ranks_share_out_the_single_process_batches() -> None:
    one = epoch(WriterBatchSampler(LABELS, 4, 3, seed=2, per_epoch=96), 5)
    ranks = [epoch(WriterBatchSampler(LABELS, 4, 3, rank=r, world=2, seed=2, per_epoch=96), 5) for r in (0, 1)]
    assert len(one) == 8 and [len(r) for r in ranks] == [4, 4]
    assert ranks[0] == one[0::2] and ranks[1] == one[1::2]  # disjoint, equal, nothing invented


def test_pk_shape_fills_the_batch_when_writers_are_few() -> None:
    assert pk_shape(64, 4, 52) == (16, 4)
    assert pk_shape(64, 4, 10) == (10, 6)  # all writers in every batch, more words each
    with pytest.raises(WrmilInputError, match="at least 2 training writers"):
        pk_shape(64, 4, 1)
    with pytest.raises(WrmilInputError, match="only 10 training writers"):
        WriterBatchSampler(LABELS, 11, 2)


def test_training_with_pk_batches_shortcut_augment_and_an_image_budget(tmp_path: Path) -> None:
    train, val = make_split(tmp_path / "img")  # 4 train writers x 24 words
    cfg = replace(TINY_CONFIG, sampler="pk", words_per_writer=4, shortcut_augment=True, epochs=10, image_budget=200)
    assert cfg.for_data(train.height).epochs == 2  # 200 images / 96 per epoch, rounded
    logs: list[str] = []
    r = train_embedding(train, val, cfg, tmp_path / "run", log=logs.append)
    assert r.epochs_run == 2 and all(np.isfinite(h["loss"]) for h in r.history)
    assert any("2 epochs x 6 steps x 16" in m for m in logs)  # 96 images // (4 writers x 4 words)
    assert 0 <= r.val_metrics["auc"] <= 1
