"""Where ``arcface_model`` trains: in the step's process, under torchrun, or in a Kubernetes GPU pod.

``launch.mode`` in the asset's config picks one:

* ``in_process`` (default): ``train_embedding`` in the Dagster step, one device.
* ``torchrun``: ``python -m wrmil_core.embedding.launch`` (torchrun, ``nproc_per_node`` ranks: one
  per GPU over NCCL, or gloo processes on CPU) through Dagster Pipes' ``PipesSubprocessClient``.
* ``kubernetes``: the same command in the pod of ``wrmil_assets/k8s.py`` through dagster-k8s'
  ``PipesK8sClient`` (deploy/k8s/README.md).

A launched training writes exactly what the in-process one writes (the workers run the same
``train_embedding``); rank 0 hands its :class:`TrainResult` back through Pipes (``worker.py``), so the
asset builds the metadata and the check from it with the in-process path's own code. Epoch records
become ``AssetObservation`` events of ``arcface_model``. With more than one rank the training
directory gets a ``-world<N>`` suffix: a checkpoint resumes only a job of its own world size.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pydantic

from wrmil_core.embedding.config import EmbeddingConfig
from wrmil_core.embedding.train import TrainResult
from wrmil_core.embedding.worker import EPOCH_KEY, RESULT_KEY
from wrmil_core.errors import WrmilInputError

from .k8s import TrainingPod, training_pod
from .metadata import to_metadata

MODES = ("in_process", "torchrun", "kubernetes")


class LaunchConfig(dg.Config):
    """Where ``arcface_model`` trains (see this module's docstring)."""

    mode: str = pydantic.Field(default="in_process", description=f"one of {list(MODES)}")
    nproc_per_node: int = pydantic.Field(default=2, description="torchrun ranks: one per GPU (CPU: gloo processes)")
    image: str = pydantic.Field(default="", description="kubernetes: container image holding wrmil")
    namespace: str = "wrmil"
    node_selector: dict[str, str] = pydantic.Field(default_factory=dict, description="kubernetes: node pool labels")
    volume_claim: str = pydantic.Field(default="wrmil-data", description="kubernetes: PVC holding data and artifacts")
    mount_path: str = pydantic.Field(default="/data",
                                     description="kubernetes: where the PVC is mounted (as in Dagster's pods)")


class TrainingLaunchError(RuntimeError):
    """A launched training failed; the message names the rank and its exit code when torchrun knew them."""


def job_dir(out_dir: Path, launch: LaunchConfig) -> Path:
    """The training directory of a launched job: ``out_dir``, suffixed ``-world<N>`` for N > 1 ranks."""
    return out_dir if launch.nproc_per_node == 1 else out_dir.with_name(f"{out_dir.name}-world{launch.nproc_per_node}")


def write_inputs(run_dir: Path, train: pl.DataFrame, val: pl.DataFrame, cfg: EmbeddingConfig) -> dict[str, Path]:
    """The worker's inputs under ``run_dir/launch``: words and writer split (Parquet), resolved config (JSON)."""
    d = run_dir / "launch"
    d.mkdir(parents=True, exist_ok=True)
    paths = {name: d / f"{name}.{ext}" for name, ext in
             (("words", "parquet"), ("splits", "parquet"), ("config", "json"), ("failure", "txt"))}
    pl.concat([train, val], how="vertical_relaxed").write_parquet(paths["words"])
    splits = [("train", w) for w in train["writer"].unique().sort()]
    splits += [("val", w) for w in val["writer"].unique().sort()]
    pl.DataFrame({"writer": [w for _, w in splits], "split": [s for s, _ in splits]}).write_parquet(paths["splits"])
    paths["config"].write_text(json.dumps(cfg.to_dict(), indent=1))
    paths["failure"].unlink(missing_ok=True)  # an earlier attempt's failure is not this one's
    return paths


def launch_command(launch: LaunchConfig, run_dir: Path, paths: dict[str, Path], python: str = sys.executable
                   ) -> list[str]:
    """``python -m wrmil_core.embedding.launch ... -- <worker args> --pipes``."""
    worker = ["--words", str(paths["words"]), "--splits", str(paths["splits"]), "--out", str(run_dir),
              "--config", str(paths["config"]), "--pipes"]
    return [python, "-m", "wrmil_core.embedding.launch", "--nproc-per-node", str(launch.nproc_per_node),
            "--failure-file", str(paths["failure"]), "--", *worker]


def pod_of(launch: LaunchConfig) -> TrainingPod:
    """The Kubernetes pod settings of ``launch`` (one GPU per rank)."""
    return TrainingPod(image=launch.image, namespace=launch.namespace, gpus=launch.nproc_per_node,
                       node_selector=dict(launch.node_selector), volume_claim=launch.volume_claim,
                       mount_path=launch.mount_path)


def _run_pipes(context: dg.AssetExecutionContext, launch: LaunchConfig, command: list[str]
               ) -> dg.PipesClientCompletedInvocation:
    if launch.mode == "torchrun":
        return dg.PipesSubprocessClient().run(context=context, command=command)
    try:
        from dagster_k8s import PipesK8sClient  # type: ignore[import-not-found]
    except ImportError:
        major, minor, patch = (dg.__version__.split(".") + ["0", "0"])[:3]
        raise WrmilInputError(
            f"launch.mode=kubernetes needs dagster-k8s of dagster {dg.__version__}'s release (pip install "
            f"dagster-k8s=={int(major) - 1}.{int(minor) + 16}.{patch} into the image), or train with "
            "launch.mode=torchrun in a run on a GPU node (deploy/k8s/README.md)") from None
    pod = training_pod(pod_of(launch), ["python", *command[1:]])  # the image's python, same paths on the PVC
    return PipesK8sClient().run(context=context, image=launch.image, command=pod["spec"]["containers"][0]["command"],
                                namespace=launch.namespace, base_pod_meta={"labels": pod["metadata"]["labels"]},
                                base_pod_spec=pod["spec"])


def _result(invocation: dg.PipesClientCompletedInvocation, run_dir: Path) -> TrainResult:
    """Rank 0's reported ``TrainResult``."""
    for res in invocation.get_results():
        if isinstance(res, dg.MaterializeResult) and res.metadata and RESULT_KEY in res.metadata:
            return TrainResult.from_json(res.metadata[RESULT_KEY].value)  # type: ignore[union-attr]
    raise TrainingLaunchError(f"the training in {run_dir} exited cleanly without reporting a result through "
                              "Dagster Pipes; see the step's stdout/stderr")


def _observe_epochs(context: dg.AssetExecutionContext, invocation: dg.PipesClientCompletedInvocation) -> int:
    """One ``AssetObservation`` per epoch record rank 0 reported; how many."""
    records = [m[EPOCH_KEY] for m in invocation.get_custom_messages() if isinstance(m, dict) and EPOCH_KEY in m]
    for record in records:
        context.log_event(dg.AssetObservation(asset_key=context.asset_key, metadata=to_metadata(record)))
    return len(records)


def launch_training(context: dg.AssetExecutionContext, launch: LaunchConfig, train: pl.DataFrame, val: pl.DataFrame,
                    cfg: EmbeddingConfig, out_dir: Path) -> TrainResult:
    """Train under torchrun or on Kubernetes through Dagster Pipes; what ``train_embedding`` returns."""
    if launch.mode not in MODES:
        raise WrmilInputError(f"launch.mode={launch.mode!r}: choose one of {list(MODES)}")
    if launch.nproc_per_node < 1:
        raise WrmilInputError(f"launch.nproc_per_node={launch.nproc_per_node}: use at least 1")
    if launch.mode == "kubernetes":
        pod_of(launch)  # a bad pod setting fails here, before anything is written
    run_dir = job_dir(out_dir, launch)
    paths = write_inputs(run_dir, train, val, cfg)
    command = launch_command(launch, run_dir, paths)
    context.log.info(f"launching the training ({launch.mode}, {launch.nproc_per_node} rank(s)): {' '.join(command)}")
    try:
        invocation = _run_pipes(context, launch, command)
    except Exception:  # the client's own error says only "failed with code 1"; the launcher wrote why
        if not paths["failure"].is_file():
            raise
        failure = json.loads(paths["failure"].read_text())
        error = WrmilInputError if failure["bad_input"] else TrainingLaunchError
        raise error(f"{failure['summary']} (training directory {run_dir})") from None
    epochs = _observe_epochs(context, invocation)
    result = _result(invocation, run_dir)
    context.log.info(f"launched training finished: {epochs} epoch record(s) this run, model {result.model_id}")
    return result

