"""`training_set_key`: one training directory per training set, so a resume never mixes data."""

from __future__ import annotations

import polars as pl

from wrmil_core.embedding.checkpoint import training_set_key


def _words(paths: list[str], writers: list[int]) -> pl.DataFrame:
    return pl.DataFrame({"path": paths, "writer": pl.Series(writers, dtype=pl.Int64)})


def test_training_set_key_changes_with_the_data_and_the_split():
    train, val = _words(["/d/0/a_0.png", "/d/1/b_0.png"], [0, 1]), _words(["/d/2/c_0.png"], [2])
    key = training_set_key(train, val)
    assert key == training_set_key(train.clone(), val.clone())
    assert key != training_set_key(_words(["/d/0/a_0.png", "/d/1/x_0.png"], [0, 1]), val)  # other image
    assert key != training_set_key(_words(["/d/0/a_0.png", "/d/1/b_0.png"], [0, 3]), val)  # other label
    assert key != training_set_key(val, train)  # writers moved between splits
