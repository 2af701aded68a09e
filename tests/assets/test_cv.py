"""Writer-fold cross-validation in the asset graph: `wrmil run --job writer_cv`'s stages on a
generated 10-writer set, k = 2 folds, tiny presets. Every writer is tested in exactly one fold,
the summary pools all of them, the report's first line says so, and a rerun retrains nothing
that finished (one fold redone leaves the other as it was)."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from tests.conftest import PIPELINE_SYNTH
from wrmil_assets.automation import CV_STAGES, JOB_STAGES
from wrmil_assets.definitions import defs
from wrmil_assets.partitions import fold_index, fold_partition_key, fold_partition_keys
from wrmil_assets.resources import WrmilSettings
from wrmil_assets.run import run_stages
from wrmil_core.cv.fold import RESULT_FILE
from wrmil_core.errors import WrmilInputError

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
