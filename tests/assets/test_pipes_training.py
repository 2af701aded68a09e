"""arcface_model trained through Dagster Pipes: torchrun with 2 gloo processes on CPU.

The materialisation recorded in the instance carries the metadata rank 0 reported (the same keys
and model as the in-process path's), each epoch becomes an observation, and a worker that dies
(rank 1 SIGKILLs itself through the worker's test fault hook) fails the step with one line naming
the rank and the exit code.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from tests.support.embedding import TINY_CONFIG, split_assets
from wrmil_assets.assets import embeddings
from wrmil_assets.definitions import build_resources
from wrmil_assets.run import failure_of
from wrmil_core.artifacts import read_config
from wrmil_core.embedding.infer import check_embeddings
from wrmil_core.embedding.models import embed_words
from wrmil_core.embedding.worker import KILL_ENV

pytestmark = [pytest.mark.slow,  # tiny trainings under torchrun (about 40 s each on 2 cores)
              pytest.mark.filterwarnings("ignore:AssetExecutionContext.run_id is deprecated")]  # Dagster's own call

RAW = dg.AssetSpec("raw_words").with_io_manager_key("parquet_io")
SPLIT = dg.AssetSpec("writer_split").with_io_manager_key("parquet_io")
TINY = {k: getattr(TINY_CONFIG, k) for k in ("backbone", "img_h", "img_w", "emb_dim", "hidden_dim", "epochs",
                                              "batch_size", "lr", "max_lr", "s", "m", "num_workers", "cpu_threads",
                                              "val_pairs", "val_queries")}
TORCHRUN = {"mode": "torchrun", "nproc_per_node": 2}


def _world(tmp: Path) -> tuple[dict, pl.DataFrame]:
    """Resources over a tiny word set (4 train, 3 val writers) and its val words."""
    settings, _, val = split_assets(tmp)
    return build_resources(settings), val


def _materialize(resources: dict, instance: dg.DagsterInstance, launch: dict) -> dg.ExecuteInProcessResult:
    config = {"ops": {"arcface_model": {"config": {"preset": "demo", **TINY, "launch": launch}}}}
    return dg.materialize([RAW, SPLIT, embeddings.arcface_model], instance=instance, resources=resources,
                          run_config=config, raise_on_error=False)


def test_torchrun_through_pipes_records_the_metadata(tmp_path: Path) -> None:
    resources, val = _world(tmp_path)
    with dg.DagsterInstance.ephemeral() as instance:
        result = _materialize(resources, instance, TORCHRUN)
        assert result.success, failure_of(result, "arcface_model").cause
        record = instance.get_latest_materialization_event(dg.AssetKey("arcface_model"))
        meta = record.asset_materialization.metadata
        observations = instance.fetch_observations(dg.AssetKey("arcface_model"), limit=10).records
    model_dir = Path(meta["model_dir"].value)
    assert model_dir.parent.name.endswith("-world2")  # one training directory per world size
    saved = read_config(model_dir)
    # What rank 0 reported is what it saved: same model id, the val figures of the saved config.
    assert meta["model_id"].value == saved["model_id"]
    assert meta["val_auc"].value == pytest.approx(saved["val_metrics"]["auc"])
    assert meta["pixels_auc"].value == pytest.approx(saved["pixel_metrics"]["auc"])
    assert meta["epochs_run"].value == TINY_CONFIG.epochs and "training_curve" in meta
    history = json.loads((model_dir.parent / "history.json").read_text())
    assert sorted(o.asset_observation.metadata["epoch"].value for o in observations) == [1.0, 2.0]
    assert {o.asset_observation.metadata["loss"].value for o in observations} == {h["loss"] for h in history}
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "beats_raw_pixels" and check.metadata["trained/auc"].value == meta["val_auc"].value
    # The launched model is a model like any other: it embeds the val words to unit vectors.
    emb = embed_words(model_dir, val, device="cpu")
    assert check_embeddings(emb, TINY_CONFIG.emb_dim)[0] and emb["model_id"][0] == meta["model_id"].value


def test_torchrun_with_one_rank_saves_the_in_process_model(tmp_path: Path) -> None:
    """Same seed, same data, one rank: the launched training writes the in-process path's weights."""
    resources, _ = _world(tmp_path / "a")
    other, _ = _world(tmp_path / "b")
    with dg.DagsterInstance.ephemeral() as instance:
        launched = _materialize(resources, instance, {"mode": "torchrun", "nproc_per_node": 1})
        in_process = _materialize(other, instance, {"mode": "in_process"})
    assert launched.success and in_process.success
    a, b = (r.asset_materializations_for_node("arcface_model")[0].metadata for r in (launched, in_process))
    assert a["model_id"].value == b["model_id"].value
    assert set(a) == set(b) and a["val_auc"].value == b["val_auc"].value


def test_a_killed_rank_fails_the_step_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    resources, _ = _world(tmp_path)
    monkeypatch.setenv(KILL_ENV, "1")  # rank 1 SIGKILLs itself at its second training step
    with dg.DagsterInstance.ephemeral() as instance:
        result = _materialize(resources, instance, TORCHRUN)
    assert not result.success
    failure = failure_of(result, "arcface_model")
    assert failure.step == "arcface_model" and not failure.bad_input
    assert "\n" not in failure.cause
    assert failure.cause.startswith("training rank 1 (local rank 1, pid ")
    assert "died with exit code -9 (SIGKILL)" in failure.cause and "-world2" in failure.cause


def test_a_rank_refusing_its_input_fails_the_step_as_bad_input(tmp_path: Path) -> None:
    """A rank's own WrmilInputError (here: 2 x 64 images per step, 48 per rank per epoch) reaches the step."""
    resources, _ = _world(tmp_path)
    with dg.DagsterInstance.ephemeral() as instance:
        config = {"ops": {"arcface_model": {"config": {"preset": "demo", **TINY, "batch_size": 64, "launch": TORCHRUN}}}}
        result = dg.materialize([RAW, SPLIT, embeddings.arcface_model], instance=instance, resources=resources,
                                run_config=config, raise_on_error=False)
    failure = failure_of(result, "arcface_model")
    assert failure.bad_input and failure.cause.startswith("training rank ")
    assert "WrmilInputError: batch_size=64 x 2 process(es) exceeds" in failure.cause and "\n" not in failure.cause


def test_unknown_launch_mode_is_refused(tmp_path: Path) -> None:
    resources, _ = _world(tmp_path)
    with dg.DagsterInstance.ephemeral() as instance:
        result = _materialize(resources, instance, {"mode": "slurm"})
    failure = failure_of(result, "arcface_model")
    assert failure.bad_input and "launch.mode='slurm'" in failure.cause


def test_kubernetes_mode_without_dagster_k8s_says_what_to_install(tmp_path: Path) -> None:
    try:
        import dagster_k8s  # noqa: F401  # type: ignore[import-not-found]
    except ImportError:
        pass
    else:
        pytest.skip("dagster-k8s is installed: the kubernetes mode would start a pod")
    resources, _ = _world(tmp_path)
    with dg.DagsterInstance.ephemeral() as instance:
        result = _materialize(resources, instance, {"mode": "kubernetes", "image": "reg.example/wrmil:1"})
    failure = failure_of(result, "arcface_model")
    assert failure.bad_input and "launch.mode=kubernetes needs dagster-k8s of dagster" in failure.cause
