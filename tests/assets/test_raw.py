"""Dagster layer: raw_words and writer_split materialise in-process with their checks."""

from __future__ import annotations

import dagster as dg
import polars as pl

from tests.support.raw_root import HEADER, make_raw_root, read_rows, write_csv
from wrmil_assets.assets import raw
from wrmil_assets.io_managers import JsonIOManagerFactory, ParquetIOManagerFactory
from wrmil_assets.resources import WrmilSettings


def _resources(root, tmp_path):
    settings = WrmilSettings(data_root=str(root), artifact_dir=str(tmp_path / "artifacts"), reps_per_session=2)
    io = str(tmp_path / "artifacts" / "assets")
    return {"settings": settings, "parquet_io": ParquetIOManagerFactory(base_dir=io),
            "json_io": JsonIOManagerFactory(base_dir=io)}


def test_launchpad_configs_come_from_the_core_dataclasses():
    assert set(raw.IngestConfig.model_fields) == {"preset", "min_doc_words", "verify_images"}
    assert set(raw.SplitConfig.model_fields) == {"preset", "mode", "train_fraction", "val_fraction",
                                                 "test_fraction", "seed", "tolerance"}


def test_writer_split_materialises_with_passing_checks(tmp_path):
    root = make_raw_root(tmp_path, n_writers=10, n_reps=4)
    # A user's CSV often carries more columns: they are ignored and named in the metadata.
    rows = [{**r, "transcription": r["detected_word"]} for r in read_rows(root / "naver_ocr.csv")]
    write_csv(root / "naver_ocr.csv", rows, header=HEADER + ("transcription",))
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([raw.raw_words, raw.writer_split], instance=instance,
                                resources=_resources(root, tmp_path))
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"writers_disjoint": True, "fractions_within_tolerance": True, "splits_nonempty": True}
    splits = pl.read_parquet(tmp_path / "artifacts" / "assets" / "writer_split.parquet")
    assert splits.group_by("split").len().sort("split")["len"].to_list() == [2, 6, 2]  # test, train, val
    mats = {m.asset_key.to_user_string(): m for m in result.get_asset_materialization_events()}
    meta = mats["writer_split"].materialization.metadata
    assert meta["train_writers"].value == 6
    raw_meta = mats["raw_words"].materialization.metadata
    assert raw_meta["n_words"].value == 10 * 4 * 6
    assert raw_meta["ignored_columns"].value == "transcription"


def test_fraction_check_fails_on_requested_fractions_it_cannot_meet(tmp_path):
    """The non-blocking fraction check reports (not hides) a split that misses the request."""
    root = make_raw_root(tmp_path, n_writers=3, n_reps=4)
    cfg = {"ops": {"writer_split": {"config": {"train_fraction": 0.9, "val_fraction": 0.05, "test_fraction": 0.05,
                                              "tolerance": 0.0}}}}
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([raw.raw_words, raw.writer_split], instance=instance,
                                resources=_resources(root, tmp_path), run_config=cfg, raise_on_error=False)
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["writers_disjoint"] and checks["splits_nonempty"]
    assert checks["fractions_within_tolerance"] is False
    assert result.success  # warn-only: the run goes on
