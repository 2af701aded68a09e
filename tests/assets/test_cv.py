"""Writer-fold cross-validation in the asset graph: `wrmil run --job writer_cv`'s stages on a
generated 10-writer set, k = 2 folds, tiny presets. Every writer is tested in exactly one fold,
the summary pools all of them, the report's first line says so, and a rerun retrains nothing
that finished (one fold redone leaves the other as it was)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

import wrmil_core.evidence.fit as evidence_fit
from tests.conftest import PIPELINE_SYNTH
from tests.support.embedding import make_words
from wrmil_assets.assets import embeddings
from wrmil_assets.assets.cv import CvFoldConfig, fold_setup
from wrmil_assets.automation import CV_STAGES, JOB_STAGES
from wrmil_assets.definitions import build_resources, defs
from wrmil_assets.partitions import fold_index, fold_partition_key, fold_partition_keys
from wrmil_assets.resources import WrmilSettings
from wrmil_assets.run import run_stages
from wrmil_core.artifacts import read_config
from wrmil_core.cv.fold import RESULT_FILE, run_fold
from wrmil_core.errors import WrmilInputError
from wrmil_core.evidence import load_evidence
from wrmil_core.evidence.length_calibration import fit_length_calibrations, load_length_calibration

K = 2
ARCFACE_TINY = {"backbone": "test_resnet", "emb_dim": 16, "hidden_dim": 32, "img_h": 32, "img_w": 96, "epochs": 1,
                "batch_size": 32, "max_train_images_per_epoch": 64, "patience": 0, "max_val_images": 60,
                "val_pairs": 500, "val_queries": 30, "num_workers": 0}
CV_RUN = {"ops": {
    # 10 writers, 2 folds: 5 test, 2 val (bags need a donor in every part), 3 train writers per fold
    "cv_folds": {"config": {"k": K, "val_fraction": 0.4}},
    "cv_fold": {"config": {"arcface": ARCFACE_TINY, "mil": {"epochs": 1, "max_batches_per_epoch": 2},
                           "quality_pairs": 1000, "quality_queries": 50, "quality_boot": 10}},
    "cv_summary": {"config": {"pairs_per_fold": 1000, "queries_per_fold": 50, "n_boot": 50}},
}}


def test_fold_keys_round_trip() -> None:
    assert [fold_index(fold_partition_key(f)) for f in range(12)] == list(range(12))
    with pytest.raises(WrmilInputError, match="not a writer fold"):
        fold_index("test")


def test_writer_cv_stages_respect_the_graph_order() -> None:
    graph = defs.resolve_asset_graph()
    seen: set[dg.AssetKey] = set()
    for stage in JOB_STAGES["writer_cv"]:
        keys = {dg.AssetKey(a) for a in stage.assets}
        for key in keys:
            assert graph.get(key).parent_keys <= seen | keys, (stage.name, key)
        seen |= keys
    assert [s.per_fold for s in CV_STAGES] == [False, True, False]


def _records(art: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((art / "assets" / "cv_fold").glob("fold_*.json"))}


def _mtimes(directory: Path, pattern: str = "*") -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in directory.rglob(pattern) if p.is_file()}


def _weights(record: dict) -> dict[str, int]:
    """mtime (ns) of every weights file the fold wrote: unchanged means not retrained."""
    return _mtimes(Path(record["fold_dir"]), "model.safetensors")


def _check_evaluations(instance: dg.DagsterInstance) -> list:
    return [e.dagster_event.event_specific_data for record in instance.get_run_records()
            for e in instance.all_logs(record.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)]


@pytest.mark.slow
def test_writer_cv_pools_every_writer_and_resumes(synth_root: Path, tmp_path: Path) -> None:
    art = tmp_path / "artifacts"
    settings = WrmilSettings(data_root=str(synth_root), artifact_dir=str(art),
                             reps_per_session=PIPELINE_SYNTH.reps_per_session, device="cpu")
    with dg.DagsterInstance.ephemeral() as instance:
        run_stages(settings, preset="demo", run_config=CV_RUN, stages=JOB_STAGES["writer_cv"], instance=instance,
                   log=lambda m: None)
        assert fold_partition_keys(instance) == [f"fold_{f}" for f in range(K)]
        records = _records(art)
        # every writer is in exactly one fold's test part
        tested = [w for r in records.values() for w in r["test_writers"]]
        writers = pl.read_parquet(art / "assets" / "raw_words.parquet")["writer"].unique().to_list()
        assert sorted(tested) == sorted(writers) and len(writers) == PIPELINE_SYNTH.n_writers
        assert not any(r["reused"] for r in records.values())
        summary = json.loads((art / "assets" / "cv_summary.json").read_text())
        counts = summary["counts"]
        assert counts["n_test_writers"] == counts["n_writers_in_data"] == len(writers)
        assert counts["n_test_documents"] == PIPELINE_SYNTH.n_writers * PIPELINE_SYNTH.n_sessions
        assert summary["embedding"]["trained"]["n_writers"] == len(writers)
        assert summary["embedding"]["trained"]["spread"]["auc"]["n_folds"] == K
        assert {d["n_writers"] for d in summary["detection"]} == {len(writers)}
        first = (art / "cv" / "cv_report.md").read_text().splitlines()[0]
        assert first.startswith(f"{len(writers)} test writers (") and "noisy" in first
        checks = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in _check_evaluations(instance)}
        assert checks[("cv_folds", "folds_valid")] and ("cv_summary", "beats_raw_pixels") in checks

        # a rerun retrains nothing finished; a fold whose record is gone (it died after training) is
        # redone alone, and its embedding resumes from its finished checkpoint (no epoch rewrites it)
        before = {k: _weights(r) for k, r in records.items()}
        checkpoint = _mtimes(Path(records["fold_1"]["fold_dir"]) / "arcface" / "checkpoint")
        (Path(records["fold_1"]["fold_dir"]) / RESULT_FILE).unlink()
        run_stages(settings, preset="demo", run_config=CV_RUN, stages=JOB_STAGES["writer_cv"], instance=instance,
                   log=lambda m: None)
        again = _records(art)
        assert again["fold_0"]["reused"] and not again["fold_1"]["reused"]
        assert _weights(again["fold_0"]) == before["fold_0"]
        assert again["fold_1"]["model_id"] == records["fold_1"]["model_id"]
        assert checkpoint and _mtimes(Path(again["fold_1"]["fold_dir"]) / "arcface" / "checkpoint") == checkpoint
        assert json.loads((art / "assets" / "cv_summary.json").read_text())["counts"]["n_test_writers"] == len(writers)


# One fold on hand-drawn words (4 train, 3 val, 2 test writers, two 12-word documents each): 6-word bags,
# too short for two_donors at 20 % (one foreign word, two donors), so the geometries are named.
FOLD_BAGS = {"bag_size": 2, "window_size": 3, "window_stride": 3, "ratios": [0.2, 0.5],
             "geometries": ["contiguous", "scattered"]}
FOLD_MIL = {"epochs": 1, "max_batches_per_epoch": 2, "models": ["abmil", "distance"]}
RAW = dg.AssetSpec("raw_words").with_io_manager_key("parquet_io")
SPLIT = dg.AssetSpec("writer_split").with_io_manager_key("parquet_io")


@pytest.fixture(scope="module")
def fold_world(tmp_path_factory) -> tuple[WrmilSettings, pl.DataFrame, pl.DataFrame, dg.DagsterInstance]:
    """Settings with ``raw_words`` and a train/val/test ``writer_split`` in their IO dir (as the upstream
    assets leave them), the same words and split for ``run_fold``, and one instance."""
    tmp = tmp_path_factory.mktemp("cv_recipe")
    parts = {"train": (4, 0), "val": (3, 100), "test": (2, 200)}
    words = pl.concat([make_words(tmp / "words", n, 24, seed=i + 1, writer_offset=offset, word_id_offset=10_000 * i)
                       for i, (n, offset) in enumerate(parts.values())])
    split = pl.DataFrame({"writer": words["writer"].unique().sort()}).with_columns(
        pl.when(pl.col("writer") < 100).then(pl.lit("train")).when(pl.col("writer") < 200).then(pl.lit("val"))
        .otherwise(pl.lit("test")).alias("split"))
    settings = WrmilSettings(data_root=str(tmp / "words"), artifact_dir=str(tmp / "artifacts"), device="cpu")
    io = Path(settings.artifact_dir) / "assets"
    io.mkdir(parents=True)
    words.write_parquet(io / "raw_words.parquet")
    split.write_parquet(io / "writer_split.parquet")
    with dg.DagsterInstance.ephemeral() as instance:
        yield settings, words, split, instance


def _asset_and_fold(fold_world, method: str, root: Path, monkeypatch: pytest.MonkeyPatch,
                    overrides: dict | None = None) -> tuple[dict, dict]:
    """``arcface_model``'s output and ``run_fold``'s record for one recipe (the tiny network, ``method``,
    ``overrides``) on the same train and val words. The length calibration runs at lengths the tiny val set holds."""
    settings, words, split, instance = fold_world
    recipe = {**ARCFACE_TINY, "method": method, **(overrides or {})}
    config = {"ops": {"arcface_model": {"config": {"preset": "demo", **recipe}}}}
    fitted = dg.materialize([RAW, SPLIT, embeddings.arcface_model], instance=instance,
                            resources=build_resources(settings), run_config=config)
    cv_config = CvFoldConfig(preset="demo", arcface=recipe, bags=FOLD_BAGS, mil=FOLD_MIL,
                             quality_pairs=200, quality_queries=20, quality_boot=0)
    monkeypatch.setattr(evidence_fit, "fit_length_calibrations",
                        functools.partial(fit_length_calibrations, lengths=(6, 12), min_genuine=4))
    record = run_fold(words, split, fold_setup(cv_config, "cpu"), root, device="cpu")
    return fitted.output_for_node("arcface_model"), record


def test_cv_fold_fits_the_classical_embedding_and_calibrates_like_the_assets(fold_world, tmp_path, monkeypatch) -> None:
    """``method: classical`` in cv_fold: the fold fits the classical embedding ``arcface_model`` fits (same
    model id), and its detectors get mil_model's val writer count and length calibration."""
    ref, record = _asset_and_fold(fold_world, "classical", tmp_path / "cv", monkeypatch)
    assert ref["method"] == record["method"] == "classical"
    assert record["model_id"] == ref["model_id"] and record["epochs_run"] == 0 and record["val_metrics"] is None
    model_dir = Path(record["model_dir"])
    assert model_dir == Path(record["fold_dir"]) / "classical" / "model"
    assert read_config(model_dir)["backbone"] == "classical"
    table = pl.read_parquet(Path(record["fold_dir"]) / "embeddings" / "test.parquet")
    assert set(table["model_id"]) == {ref["model_id"]} and table.schema["emb"].size == ref["emb_dim"]
    assert set(record["detectors"]) == {"abmil", "distance"}
    for name, det in record["detectors"].items():
        calibration = load_length_calibration(det["model_dir"], det["model_id"])
        assert calibration is not None and sorted(calibration.buckets) == [6, 12], name
        assert calibration.n_writers == 3 and det["length_calibration"]
        assert load_evidence(det["model_dir"], det["model_id"]).calibrator.n_writers == 3  # val bags' writers


@pytest.mark.slow
def test_cv_fold_trains_the_network_arcface_model_trains(fold_world, tmp_path, monkeypatch) -> None:
    """The default method: the fold and arcface_model train the same network (same model id) on the
    same fold, the fold's training directory staying ``<fold_dir>/arcface``."""
    ref, record = _asset_and_fold(fold_world, "arcface", tmp_path / "cv", monkeypatch)
    assert ref["method"] == record["method"] == "arcface"
    assert record["model_id"] == ref["model_id"] and record["val_metrics"]["auc"] is not None
    assert Path(record["model_dir"]).is_relative_to(Path(record["fold_dir"]) / "arcface")


@pytest.mark.slow
def test_cv_fold_fits_the_frozen_recipe_arcface_model_fits(fold_world, tmp_path, monkeypatch) -> None:
    """The cpu preset's recipe in small (frozen pretrained features + LDA, the classical part fused, content
    offsets): the fold and arcface_model save the same model (same id), the fold under ``<fold_dir>/frozen``."""
    frozen = {"backbone": "efficientnet_lite0", "weights": "efficientnet_lite0@imagenet", "pooling": "style",
              "frozen_pca_dim": 16, "frozen_lda_dim": 2, "classical_weight": 0.3, "content_prior": 10.0}
    ref, record = _asset_and_fold(fold_world, "frozen", tmp_path / "cv", monkeypatch, frozen)
    assert ref["method"] == record["method"] == "frozen" and record["model_id"] == ref["model_id"]
    cfg = read_config(record["model_dir"])
    assert cfg["kind"] == "frozen" and "classical" in cfg and "content" in cfg
    assert Path(record["model_dir"]) == Path(record["fold_dir"]) / "frozen" / "model"
