"""An upstream artifact cut short or garbled is a named error, never a polars/JSON traceback."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from upath import UPath

from wrmil_assets.io_managers import JsonIOManager, ParquetIOManager, UnreadableArtifactError, rebuild_hint


def _load(manager: ParquetIOManager | JsonIOManager, asset: str, path: Path):
    return manager.load_from_path(dg.build_input_context(asset_key=dg.AssetKey(asset)), UPath(path))


def _write(manager: ParquetIOManager | JsonIOManager, obj: object, path: Path) -> None:
    manager.dump_to_path(dg.build_output_context(), obj, UPath(path))


def test_truncated_parquet_names_asset_partition_and_command(tmp_path: Path) -> None:
    io = ParquetIOManager(base_path=UPath(tmp_path))
    path = tmp_path / "word_embeddings" / "train.parquet"
    _write(io, pl.DataFrame({"word_id": list(range(1000))}), path)
    assert _load(io, "word_embeddings", path).height == 1000
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(UnreadableArtifactError) as e:
        _load(io, "word_embeddings", path)
    msg = str(e.value)
    assert "asset word_embeddings, partition train" in msg and str(path) in msg
    assert "not a readable Parquet file" in msg and "wrmil run --job retrain" in msg


@pytest.mark.parametrize("garbage", [b"\x00garbage" * 50, b""])
def test_garbled_parquet_is_named(tmp_path: Path, garbage: bytes) -> None:
    path = tmp_path / "raw_words.parquet"
    path.write_bytes(garbage)
    with pytest.raises(UnreadableArtifactError, match=r"asset raw_words: .*`wrmil run --job ingest`"):
        _load(ParquetIOManager(base_path=UPath(tmp_path)), "raw_words", path)


@pytest.mark.parametrize("text", ['{"model_dir": "/x", "model_id"', "\udcff not json", "[1, 2]"])
def test_garbled_json_record_is_named(tmp_path: Path, text: str) -> None:
    io = JsonIOManager(base_path=UPath(tmp_path))
    path = tmp_path / "mil_model.json"
    _write(io, {"model_dir": "/x"}, path)
    assert _load(io, "mil_model", path) == {"model_dir": "/x"}
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(UnreadableArtifactError, match=r"asset mil_model: .*`wrmil run --job retrain_mil`"):
        _load(io, "mil_model", path)


def test_missing_artifact_is_named(tmp_path: Path) -> None:
    with pytest.raises(UnreadableArtifactError, match=r"asset arcface_model: .* is missing"):
        _load(JsonIOManager(base_path=UPath(tmp_path)), "arcface_model", tmp_path / "arcface_model.json")


def test_rebuild_hint_picks_the_smallest_job() -> None:
    assert "`wrmil run --job ingest`" in rebuild_hint("writer_split", None)
    assert "`wrmil run --job retrain`" in rebuild_hint("bags_by_difficulty", "val")
    assert "bags_by_difficulty (partition val)" in rebuild_hint("bags_by_difficulty", "val")
    assert "`wrmil run --job retrain_mil`" in rebuild_hint("difficulty_report", None)


def test_write_is_atomic_when_the_writer_fails(tmp_path: Path) -> None:
    """A write that fails half-way leaves the previous artifact whole and no temporary file."""
    io = JsonIOManager(base_path=UPath(tmp_path))
    path = tmp_path / "mil_model.json"
    _write(io, {"v": 1}, path)
    with pytest.raises(TypeError):
        _write(io, {"v": object.__new__(type("Unserialisable", (), {"__str__": None}))}, path)
    assert json.loads(path.read_text()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mil_model.json"]


def test_orphaned_temporary_files_of_dead_writers_are_swept(tmp_path: Path) -> None:
    """A writer killed mid-write leaves ``<name>.tmp<pid>``; the next write removes it, but never a
    live writer's temporary file."""
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # the process has exited: its pid names no running writer
    path = tmp_path / "raw_words.parquet"
    orphan = tmp_path / f"raw_words.parquet.tmp{dead_pid}"
    live = tmp_path / "raw_words.parquet.tmp1"  # pid 1 always runs
    other = tmp_path / f"writer_split.parquet.tmp{dead_pid}"  # another asset's file is not ours to judge
    for f in (orphan, live, other):
        f.write_bytes(b"partial")
    _write(ParquetIOManager(base_path=UPath(tmp_path)), pl.DataFrame({"a": [1]}), path)
    assert not orphan.exists()
    assert live.exists() and other.exists()
    assert pl.read_parquet(path)["a"].to_list() == [1]
