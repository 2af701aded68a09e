"""Materialise a job's stages in order, recorded in the persistent Dagster instance.

Dagster's CLI refuses ``--select '*'`` across partitioned and unpartitioned assets, so the
stages (``automation.JOB_STAGES``) run in order from here: unpartitioned ingest, the embedding
model, each split's partitioned assets, then the MIL models and the report. Runs land in
``DAGSTER_HOME`` so the UI (``make ui``) shows them afterwards, with their full logs.

Before each run, and every few seconds while it runs, runs whose process is gone are marked
failed and their concurrency slots freed (``run_health``); a run waiting for a slot says which
run holds it.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import dagster as dg
import yaml

from wrmil_core.errors import WrmilInputError

from .automation import STAGES, Stage
from .console import terminal_logger
from .resources import PROJECT_ROOT, WrmilSettings, preset_choice
from .run_health import HOST_TAG, sweep_dead_runs, watching_slots

# Written into DAGSTER_HOME/dagster.yaml, each section only when the file lacks it (a user's own
# settings win). docs/operations.md ("Runs that die") explains them.
DAGSTER_YAML_SECTIONS: dict[str, str] = {
    "telemetry": "telemetry:\n  enabled: false\n",
    "concurrency": (
        "# One training step at a time across all runs (the 'training' pool): two trainings never\n"
        "# fight over one GPU.\n"
        "concurrency:\n  pools:\n    default_limit: 1\n"),
    "run_monitoring": (
        "# The daemon of `make ui` fails a run stuck in STARTING for 3 minutes and frees the slots a\n"
        "# finished run still holds after 30 s. A run whose process died while STARTED is failed by\n"
        "# wrmil's dead_run_sweeper sensor and by `wrmil run`.\n"
        "run_monitoring:\n  enabled: true\n  start_timeout_seconds: 180\n  free_slots_after_run_end_seconds: 30\n"),
}
STAGE_TAG = "wrmil/stage"


class StageFailed(Exception):
    """A stage's run failed. ``cause``: the failing step's own error message, one line;
    ``bad_input``: the step refused its input (``WrmilInputError``)."""

    def __init__(self, label: str, run_id: str, step: str | None, cause: str, bad_input: bool) -> None:
        self.label, self.run_id, self.step, self.cause, self.bad_input = label, run_id, step, cause, bad_input
        where = f"{step}: " if step else ""
        super().__init__(f"{where}{cause} (stage {label}, run {run_id[:8]}; full log: `make ui`, Runs)")


def ensure_dagster_home(path: str | Path | None = None) -> Path:
    """An absolute, existing ``DAGSTER_HOME`` (default ``data/dagster_home``) whose ``dagster.yaml``
    has every section of ``DAGSTER_YAML_SECTIONS`` (missing ones are appended); sets the env var."""
    home = Path(path or os.environ.get("DAGSTER_HOME") or PROJECT_ROOT / "data" / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "dagster.yaml"
    text = cfg.read_text() if cfg.exists() else ""
    present = yaml.safe_load(text) or {}
    missing = [section for key, section in DAGSTER_YAML_SECTIONS.items() if key not in present]
    if missing:
        cfg.write_text(text + ("\n" if text and not text.endswith("\n") else "") + "".join(missing))
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def preset_run_config(preset: str, assets: Sequence[dg.AssetsDefinition]) -> dict[str, Any]:
    """``{"ops": {asset: {"config": {"preset": preset}}}}`` for every asset whose config has a preset."""
    ops: dict[str, Any] = {}
    for a in assets:
        op = a.op
        schema = op.config_schema.as_field().config_type if op.config_schema else None
        fields = getattr(schema, "fields", {}) if schema is not None else {}
        if "preset" in fields:
            ops[op.name] = {"config": {"preset": preset}}
    return {"ops": ops}


def merge_run_config(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``extra`` into ``base`` (user config wins)."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge_run_config(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A run-config file (JSON or YAML) in Dagster's ``{"ops": {asset: {"config": ...}}}`` form."""
    path = Path(path)
    try:
        text = path.read_text()
        data = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
    except OSError as e:
        raise WrmilInputError(f"--config {path}: cannot read it ({e.strerror})") from e
    except (yaml.YAMLError, json.JSONDecodeError) as e:
        raise WrmilInputError(f"--config {path}: not valid {'YAML' if path.suffix != '.json' else 'JSON'}: "
                              f"{' '.join(str(e).split())}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise WrmilInputError(f"--config {path}: expected a mapping like {{ops: {{asset: {{config: ...}}}}}}, "
                              f"got a {type(data).__name__}")
    return data


def _user_error(error: Any) -> Any:
    """The first error of a failure's cause chain that is not one of Dagster's wrappers."""
    chain = []
    while error is not None:
        chain.append(error)
        error = error.cause
    return next((e for e in chain if not e.cls_name.startswith("Dagster")), chain[-1])


def _one_line(error: Any) -> str:
    """An error's own message without its ``module.Class:`` prefix, on one line."""
    message = error.message
    head, sep, rest = message.partition(": ")
    if sep and head.split(".")[-1] == error.cls_name:
        message = rest
    return " ".join(message.split())


def failure_of(result: dg.ExecuteInProcessResult, label: str) -> StageFailed:
    """The user-facing cause of a failed run: its first failed step's own error, else the run's."""
    events = result.all_events
    failures = [(e.step_key, e.step_failure_data.error) for e in events if e.is_step_failure]
    failures += [(None, e.job_failure_data.error) for e in events if e.is_job_failure and e.job_failure_data]
    for step, error in failures:
        if error is not None:
            cause = _user_error(error)
            return StageFailed(label, result.run_id, step, _one_line(cause),
                               bad_input=cause.cls_name == WrmilInputError.__name__)
    return StageFailed(label, result.run_id, None, "the run failed without an error message", bad_input=False)


def stage_job(assets: Sequence[dg.AssetsDefinition], resources: dict[str, Any], stage: Stage,
              names: Sequence[str]) -> dg.JobDefinition:
    """The job that materialises ``names`` of ``stage`` (``assets``: the whole graph, for loading
    inputs), logging to the terminal through ``console.terminal_logger``."""
    defs = dg.Definitions(assets=assets, resources=resources, loggers={"console": terminal_logger},
                          jobs=[dg.define_asset_job(stage.job_name, selection=dg.AssetSelection.assets(*names))])
    return defs.resolve_job_def(stage.job_name)


def _config_error(e: dg.DagsterInvalidConfigError) -> WrmilInputError:
    """A run-config error as one line naming each bad field."""
    details = "; ".join(" ".join(err.message.split()) for err in e.errors) or " ".join(str(e).split())
    return WrmilInputError(f"invalid run config (check --config and the preset names): {details}")


def run_stage(job: dg.JobDefinition, label: str, partition: str | None, *, instance: dg.DagsterInstance,
              run_config: dict[str, Any], log: Callable[[str], None], poll_s: float = 5.0) -> str:
    """Execute one stage run; dead runs are swept before and while it runs. Returns the run id;
    raises ``StageFailed`` (or ``WrmilInputError`` for a bad run config)."""
    run_id = str(uuid.uuid4())
    sweep_dead_runs(instance, log)
    tags = {HOST_TAG: socket.gethostname(), STAGE_TAG: label}
    try:
        with watching_slots(instance, run_id, log, poll_s=poll_s):
            result = job.execute_in_process(run_config=run_config, instance=instance, partition_key=partition,
                                            raise_on_error=False, tags=tags, run_id=run_id)
    except dg.DagsterInvalidConfigError as e:
        raise _config_error(e) from e
    if not result.success:
        raise failure_of(result, label)
    return run_id


def _stage_runs(stages: Sequence[Stage], known: set[str],
                instance: dg.DagsterInstance) -> Iterator[tuple[Stage, list[str], str | None]]:
    """``(stage, asset names, partition)`` for every run, in order (per-split stages once per split,
    per-fold stages once per fold: a stage's partitions are read when the stage is reached)."""
    for stage in stages:
        names = [n for n in stage.assets if n in known]
        if names:
            for partition in stage.partition_keys(instance):
                yield stage, names, partition


def run_stages(
    settings: WrmilSettings,
    *,
    preset: str | None = None,
    run_config: dict[str, Any] | None = None,
    stages: Sequence[Stage] = STAGES,
    instance: dg.DagsterInstance | None = None,
    log: Callable[[str], None] = print,
    poll_s: float = 5.0,
) -> dict[str, float]:
    """Materialise ``stages`` in order; stop at the first failed run (``StageFailed``).
    Returns seconds per stage run. ``preset``: every stage's, default :func:`resources.preset_choice`
    for ``settings.data_root`` (``demo`` for a synthetic set, ``cpu`` for a user's own data).
    ``instance``: default the one of ``DAGSTER_HOME``."""
    from .definitions import all_assets, build_resources

    if instance is None:
        with dg.DagsterInstance.get() as home_instance:
            return run_stages(settings, preset=preset, run_config=run_config, stages=stages,
                              instance=home_instance, log=log, poll_s=poll_s)
    preset = preset or preset_choice(settings.data_root)[0]
    assets = all_assets()
    known = {k.to_user_string() for a in assets for k in a.keys}
    # INFO on the terminal: the DEBUG event stream is in the UI's run log anyway.
    base = {**preset_run_config(preset, assets), "loggers": {"console": {"config": {"log_level": "INFO"}}}}
    config = merge_run_config(base, run_config or {})
    resources = build_resources(settings)
    timings: dict[str, float] = {}
    for stage, names, partition in _stage_runs(stages, known, instance):
        label = stage.name + (f" [{partition}]" if partition else "")
        log(f"wrmil: materialising {', '.join(names)}" + (f" for partition {partition}" if partition else ""))
        t0 = time.perf_counter()
        ops = {k: v for k, v in config.get("ops", {}).items() if k in names}
        run_id = run_stage(stage_job(assets, resources, stage, names), label, partition, instance=instance,
                           run_config={**config, "ops": ops}, log=log, poll_s=poll_s)
        timings[label] = time.perf_counter() - t0
        log(f"wrmil: {label} done in {timings[label]:.1f} s (run {run_id})")
    return timings
