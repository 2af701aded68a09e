"""Dagster layer: instance_windows and bags_by_difficulty materialise for a split, the bags are
built from instance_windows, and windows cut with another geometry are refused."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from tests.support.bag_tables import default_table
from wrmil_assets.assets import bags
from wrmil_assets.config import resolve
from wrmil_assets.io_managers import ParquetIOManagerFactory
from wrmil_assets.partitions import split_partitions
from wrmil_core.bags.build import build_bags
from wrmil_core.bags.config import PRESETS, BagConfig, preset

# word_embeddings[split] is read from Parquet by the real IO manager; the test writes that file
WORD_EMBEDDINGS = dg.AssetSpec("word_embeddings", partitions_def=split_partitions).with_io_manager_key("parquet_io")


@pytest.fixture
def io_dir(tmp_path: Path) -> Path:
    io = tmp_path / "assets"
    (io / "word_embeddings").mkdir(parents=True)
    default_table(seed=4).write_parquet(io / "word_embeddings" / "val.parquet")
    return io


def _materialize(io: Path, windows_config: dict | None = None) -> dg.ExecuteInProcessResult:
    run_config = {"ops": {"instance_windows": {"config": windows_config or {}}}}
    with dg.DagsterInstance.ephemeral() as instance:
        return dg.materialize([WORD_EMBEDDINGS, bags.instance_windows, bags.bags_by_difficulty], partition_key="val",
                              instance=instance, resources={"parquet_io": ParquetIOManagerFactory(base_dir=str(io))},
                              run_config=run_config, raise_on_error=False)


def test_bags_are_built_from_instance_windows_and_pass_every_check(io_dir):
    result = _materialize(io_dir)
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert set(checks) == set(bags.BLOCKING) | set(bags.WARNING)
    assert all(checks[name] for name in bags.BLOCKING), checks
    assert checks["windows_match_instance_windows"]
    emb = pl.read_parquet(io_dir / "word_embeddings" / "val.parquet")
    written = pl.read_parquet(io_dir / "bags_by_difficulty" / "val.parquet")
    assert written.equals(build_bags(emb, "val", preset("demo")).bags)       # the asset is the core, same numbers


@pytest.mark.parametrize("windows_config, what", [
    ({"window_size": 4}, "windows of 4 words"),
    ({"window_stride": 3}, "another window_stride"),
    ({"preset": "paper"}, "another window_stride"),
])
def test_bags_refuse_instance_windows_cut_with_another_geometry(io_dir, windows_config, what):
    result = _materialize(io_dir, windows_config)
    assert not result.success
    mats = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert mats == {"instance_windows"}                                     # no bags were written
    failures = result.get_step_failure_events()
    assert [f.step_key for f in failures] == ["bags_by_difficulty"]
    message = failures[0].step_failure_data.error.to_string()
    assert "WrmilInputError" in message and what in message
    assert "instance_windows[val]" in message
    assert "Re-materialise instance_windows[val] and bags_by_difficulty[val] together, with one bags config" in message
    assert not (io_dir / "bags_by_difficulty" / "val.parquet").exists()


def test_launchpad_config_resolves_to_the_core_preset():
    launchpad = bags.BagsConfig(preset="paper", ratios=[0.1, 0.3], seed=2)   # the launchpad gives lists
    assert resolve(launchpad, BagConfig, PRESETS) == preset("paper", ratios=(0.1, 0.3), seed=2)
    assert resolve(bags.BagsConfig(preset="demo"), BagConfig, PRESETS) == PRESETS["demo"]
