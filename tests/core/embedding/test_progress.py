"""Progress bars for training (epochs, steps, validation) and inference: shown on a terminal,
silent elsewhere (CI, pipes, Dagster), where the log callback still gets its per-epoch lines."""

from __future__ import annotations

import io
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tests.support.embedding import TINY_CONFIG, make_split
from wrmil_core.embedding.models import embed_words
from wrmil_core.embedding.train import train_embedding


class Terminal(io.StringIO):
    """stderr as an interactive terminal would be: it says it is a TTY and records what is drawn."""

    def isatty(self) -> bool:
        return True


def test_bars_draw_on_a_terminal_only_and_logs_keep_epoch_lines(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    train, val = make_split(tmp_path / "words")

    pipe, logs = io.StringIO(), []  # not a TTY: the bars must stay silent
    monkeypatch.setattr(sys, "stderr", pipe)
    r = train_embedding(train, val, TINY_CONFIG, tmp_path / "quiet", log=logs.append)
    embed_words(r.model_dir, val, device="cpu", log=logs.append)
    assert pipe.getvalue() == ""
    assert [m.split(":")[0] for m in logs if m.startswith("epoch ")] == ["epoch 1/2", "epoch 2/2"]
    assert any(m.startswith(f"embedded {val.height}/{val.height} images") for m in logs)

    term, logs = Terminal(), []
    monkeypatch.setattr(sys, "stderr", term)
    train_embedding(train, val, replace(TINY_CONFIG, epochs=1), tmp_path / "tty", log=logs.append)
    embed_words(r.model_dir, val, device="cpu")
    drawn = term.getvalue()
    # tqdm may skip intermediate redraws, never the first one, which names the bar and its total.
    assert "epochs:" in drawn and "/1 [" in drawn  # the epoch bar
    assert "epoch 1:" in drawn and "/6 [" in drawn  # the step bar: 96 images / batch 16
    assert "validating:" in drawn and "embedding:" in drawn  # the inference bars
    assert any(m.startswith("epoch 1/1:") for m in logs)  # the log keeps its lines on a terminal too
