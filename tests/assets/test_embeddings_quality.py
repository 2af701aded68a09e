"""Dagster layer: arcface_model's beats_raw_pixels check (warns, configurable), the baseline tables
materialising for a split, and word_embeddings recording the trained and baseline figures."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from tests.support.embedding import TINY_CONFIG, split_assets
from wrmil_assets.assets import embeddings
from wrmil_assets.definitions import build_resources
from wrmil_core.embedding.evaluate import METRIC_KEYS

pytestmark = pytest.mark.slow  # trains a tiny network (about 10 s on 2 cores)

RAW = dg.AssetSpec("raw_words").with_io_manager_key("parquet_io")
SPLIT = dg.AssetSpec("writer_split").with_io_manager_key("parquet_io")
TINY = {k: getattr(TINY_CONFIG, k) for k in ("backbone", "img_h", "img_w", "emb_dim", "hidden_dim", "epochs",
                                              "batch_size", "lr", "max_lr", "s", "m", "num_workers", "cpu_threads",
                                              "val_pairs", "val_queries")}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[dict, Path, dg.DagsterInstance]:
    """Resources over a tiny word set (4 train, 3 val writers), its IO dir and one instance."""
    tmp = tmp_path_factory.mktemp("emb")
    settings, io, _ = split_assets(tmp)
    with dg.DagsterInstance.ephemeral() as instance:
        yield build_resources(settings), io, instance


def _train(world, margin: float) -> dg.ExecuteInProcessResult:
    resources, _, instance = world
    config = {"ops": {"arcface_model": {"config": {"preset": "demo", **TINY, "min_auc_margin_over_pixels": margin}}}}
    return dg.materialize([RAW, SPLIT, embeddings.arcface_model], instance=instance, resources=resources,
                          run_config=config)


def test_beats_raw_pixels_warns_below_the_margin_and_passes_above(world) -> None:
    first = _train(world, margin=1.0)  # no embedding beats pixels by a whole AUC unit: warns
    (warn,) = first.get_asset_check_evaluations()
    assert warn.check_name == "beats_raw_pixels" and not warn.passed
    assert warn.severity == dg.AssetCheckSeverity.WARN
    md = {k: v.value for k, v in warn.metadata.items()}
    assert md["auc_margin_over_pixels"] == pytest.approx(md["trained/auc"] - md["pixels/auc"])
    assert md["min_auc_margin"] == 1.0 and "untrained/auc" in md and "shortcut" in md["verdict"]
    meta = first.asset_materializations_for_node("arcface_model")[0].metadata
    for key in ("val_auc", "baseline_auc", "pixels_auc", "pixels_eer", "pixels_n_writers"):
        assert isinstance(meta[key], (dg.FloatMetadataValue, dg.IntMetadataValue)), key
    assert meta["pixels_auc"].value == md["pixels/auc"]
    # val figures with writer-bootstrap intervals and the writers and words behind them, each numeric
    for prefix in ("val", "baseline", "pixels"):
        for key in METRIC_KEYS:
            lo, point, hi = (meta[f"{prefix}_{key}{end}"] for end in ("_lo", "", "_hi"))
            assert all(isinstance(v, dg.FloatMetadataValue) for v in (lo, point, hi)), f"{prefix}_{key}"
            assert lo.value <= point.value + 1e-9 and point.value <= hi.value + 1e-9, f"{prefix}_{key}"
        assert meta[f"{prefix}_n_writers"].value == 3 and meta[f"{prefix}_n_words"].value == 3 * 24
    assert meta["val_auc"].value == md["trained/auc"] and "| pixels |" in meta["val_quality"].value

    second = _train(world, margin=-1.0)  # resumes the finished training; any embedding passes
    (ok,) = second.get_asset_check_evaluations()
    assert ok.passed and ok.metadata["trained/auc"].value == md["trained/auc"]


def test_baselines_and_quality_for_a_split(world) -> None:
    resources, io, instance = world
    _train(world, margin=0.05)
    arcface = dg.AssetSpec("arcface_model").with_io_manager_key("json_io")
    graph = [RAW, SPLIT, arcface, embeddings.baseline_embeddings, embeddings.word_embeddings]
    result = dg.materialize(graph, partition_key="val", instance=instance, resources=resources)
    assert result.success
    checks = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    assert all(checks[(a, "embeddings_valid")] for a in ("untrained_embeddings", "pixel_embeddings", "word_embeddings"))
    trained = pl.read_parquet(io / "word_embeddings" / "val.parquet")
    model_id = trained["model_id"][0]
    for asset, baseline, dim in (("untrained_embeddings", "untrained", 16), ("pixel_embeddings", "pixels", 1024)):
        t = pl.read_parquet(io / asset / "val.parquet")
        assert t["word_id"].to_list() == trained["word_id"].to_list() and t.schema["emb"].size == dim
        assert set(t["model_id"]) == {f"{baseline}@{model_id}"}
    meta = result.asset_materializations_for_node("word_embeddings")[0].metadata
    for name in ("trained", "untrained", "pixels"):
        for key in METRIC_KEYS:
            for end in ("", "_lo", "_hi"):
                assert isinstance(meta[f"{name}/{key}{end}"], dg.FloatMetadataValue), f"{name}/{key}{end}"
    assert meta["margin_over_pixels/auc"].value == pytest.approx(meta["trained/auc"].value - meta["pixels/auc"].value)
    assert meta["n_writers"].value == 3 and meta["n_words"].value == trained.height and meta["n_boot"].value > 0
    assert "| pixels |" in meta["embedding_quality"].value

    # a baseline table of another model is refused, not compared
    pixels = io / "pixel_embeddings" / "val.parquet"
    pl.read_parquet(pixels).with_columns(pl.lit("pixels@old").alias("model_id")).write_parquet(pixels)
    again = dg.materialize(graph, partition_key="val", instance=instance, resources=resources,
                           selection=["word_embeddings"], raise_on_error=False)
    assert not again.success
    message = again.get_step_failure_events()[0].step_failure_data.error.to_string()
    assert "pixel_embeddings[val] is not the pixels baseline of model" in message


def test_classical_method_through_arcface_model_and_word_embeddings(world) -> None:
    """``method: classical``: arcface_model saves the training-free embedding in the model format, and
    the per-split chain (controls, word_embeddings, their checks and figures) takes it unchanged."""
    resources, io, instance = world
    config = {"ops": {"arcface_model": {"config": {"preset": "demo", **TINY, "method": "classical"}}}}
    fitted = dg.materialize([RAW, SPLIT, embeddings.arcface_model], instance=instance, resources=resources,
                            run_config=config)
    ref = fitted.output_for_node("arcface_model")
    meta = fitted.asset_materializations_for_node("arcface_model")[0].metadata
    assert ref["method"] == "classical" and meta["method"].value == "classical"
    assert meta["val_n_writers"].value == 3 and meta["val_auc"].value > 0.8  # hand-drawn writers: easy for it
    arcface = dg.AssetSpec("arcface_model").with_io_manager_key("json_io")
    graph = [RAW, SPLIT, arcface, embeddings.baseline_embeddings, embeddings.word_embeddings]
    result = dg.materialize(graph, partition_key="val", instance=instance, resources=resources)
    assert result.success and all(e.passed for e in result.get_asset_check_evaluations())
    table = pl.read_parquet(io / "word_embeddings" / "val.parquet")
    assert set(table["model_id"]) == {ref["model_id"]} and table.schema["emb"].size == ref["emb_dim"]
    wmeta = result.asset_materializations_for_node("word_embeddings")[0].metadata
    assert wmeta["trained/auc"].value > 0.8 and wmeta["n_words"].value == table.height


def test_fused_model_through_the_assets(tmp_path: Path) -> None:
    """classical_weight > 0: arcface_model records the fused vectors' length and val figures beside the
    network part's, and word_embeddings' check accepts the fused vectors."""
    settings, io, _ = split_assets(tmp_path)
    resources = build_resources(settings)
    config = {"ops": {"arcface_model": {"config": {"preset": "demo", **TINY, "classical_weight": 0.4}}}}
    with dg.DagsterInstance.ephemeral() as instance:
        first = dg.materialize([RAW, SPLIT, embeddings.arcface_model], instance=instance, resources=resources,
                               run_config=config)
        meta = first.asset_materializations_for_node("arcface_model")[0].metadata
        assert meta["classical_weight"].value == 0.4 and "network_val_auc" in meta
        arcface = dg.AssetSpec("arcface_model").with_io_manager_key("json_io")
        graph = [RAW, SPLIT, arcface, embeddings.baseline_embeddings, embeddings.word_embeddings]
        result = dg.materialize(graph, partition_key="val", instance=instance, resources=resources)
    assert all(e.passed for e in result.get_asset_check_evaluations())
    table = pl.read_parquet(io / "word_embeddings" / "val.parquet")
    assert table.schema["emb"] == pl.Array(pl.Float32, 16 + 3)  # network 16 + LDA of 4 train writers (3)
