"""``channels_last``: the network and its batches in channels-last layout; off by default.

Also the pieces of ``benchmarks/train_throughput.py`` that time today's loop (a callback on the
optimiser steps) and the pre-decoded cache, so the GPU benchmark stays ready to run.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest
import torch

from tests.support.embedding import TINY_CONFIG, make_split
from wrmil_core.embedding.callbacks import Callback
from wrmil_core.embedding.config import PRESETS
from wrmil_core.embedding.infer import check_embeddings
from wrmil_core.embedding.models import embed_words
from wrmil_core.embedding.train import train_embedding

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "train_throughput.py"


class Layouts(Callback):
    """Records whether the 4-D weights are channels-last, at the start and after each step."""

    def __init__(self):
        self.seen: list[bool] = []

    def on_train_start(self, state) -> None:
        self.seen.append(self._channels_last(state))

    def on_step(self, state, step, loss) -> None:
        self.seen.append(self._channels_last(state))

    @staticmethod
    def _channels_last(state) -> bool:
        convs = [p for p in state.net.parameters() if p.dim() == 4 and p.shape[2] * p.shape[3] > 1]
        return all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)


def test_default_keeps_the_layout_and_presets_leave_it_off() -> None:
    assert not any(cfg.channels_last for cfg in PRESETS.values())


@pytest.mark.parametrize("channels_last", [False, True])
def test_training_uses_the_layout_it_is_given(tmp_path: Path, channels_last: bool) -> None:
    train, val = make_split(tmp_path / "img", per_writer=12)
    cfg = dataclasses.replace(TINY_CONFIG, epochs=1, channels_last=channels_last)
    layouts = Layouts()
    res = train_embedding(train, val, cfg, tmp_path / "out", resume=False, callbacks=[layouts])
    assert layouts.seen and set(layouts.seen) == {channels_last}  # from the first step to the last
    emb = embed_words(res.model_dir, val, device="cpu")  # the saved model is the usual format
    assert check_embeddings(emb, cfg.emb_dim)[0]


def test_benchmark_pieces_time_the_loop_and_the_cache(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("train_throughput", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    train, val = make_split(tmp_path / "img", per_writer=12)
    cache, labels, rate = bench.decode_cache(train, TINY_CONFIG)
    assert cache.dtype == torch.uint8 and tuple(cache.shape) == (train.height, 1, TINY_CONFIG.img_h, TINY_CONFIG.img_w)
    assert sorted(labels.unique().tolist()) == list(range(train["writer"].n_unique())) and rate > 0
    images_s, peak = bench.cached_training(TINY_CONFIG, cache, labels, torch.device("cpu"), steps=2)
    assert images_s > 0 and peak > 0
    timer = bench.StepTimer(TINY_CONFIG.batch_size)
    cfg = dataclasses.replace(TINY_CONFIG, epochs=1)
    train_embedding(train, val, cfg, tmp_path / "out", resume=False, callbacks=[timer])
    assert len(timer.times) == train.height // cfg.batch_size and timer.images_per_s > 0
