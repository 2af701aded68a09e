"""Materialise the whole graph stage by stage, recorded in the persistent Dagster instance.

Dagster's CLI refuses ``--select '*'`` across partitioned and unpartitioned assets, so the
stages run in order from here: unpartitioned ingest, the embedding model, each split's
partitioned assets, then the MIL models and the report. Runs land in ``DAGSTER_HOME`` so the
UI (``make ui``) shows them afterwards.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import dagster as dg

from wrmil_core.schema import SPLITS

from .resources import PROJECT_ROOT, WrmilSettings


@dataclass(frozen=True)
class Stage:
    """Assets materialised together in one run (``per_split``: one run per split partition)."""

    name: str
    assets: tuple[str, ...]
    per_split: bool = False


STAGES: tuple[Stage, ...] = (
    Stage("ingest", ("raw_words", "writer_split")),
    Stage("embedding model", ("arcface_model",)),
    Stage("per-split tables", ("word_embeddings", "instance_windows", "bags_by_difficulty"), per_split=True),
    Stage("MIL models and report", ("mil_model", "difficulty_report")),
)

# The stages each Dagster job of ``automation.py`` covers, in order.
JOB_STAGES: dict[str, tuple[Stage, ...]] = {
    "full_pipeline": STAGES,
    "ingest": STAGES[:1],
    "retrain": STAGES[1:],
    "retrain_mil": STAGES[3:],
}


def ensure_dagster_home(path: str | Path | None = None) -> Path:
    """An absolute, existing ``DAGSTER_HOME`` with telemetry off (default ``data/dagster_home``)."""
    home = Path(path or os.environ.get("DAGSTER_HOME") or PROJECT_ROOT / "data" / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "dagster.yaml"
    if not cfg.exists():
        # One training step at a time across all runs (the "training" pool): two trainings never
        # fight over one GPU.
        cfg.write_text("telemetry:\n  enabled: false\nconcurrency:\n  pools:\n    default_limit: 1\n")
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


def run_stages(
    settings: WrmilSettings,
    *,
    preset: str = "demo",
    run_config: dict[str, Any] | None = None,
    stages: Sequence[Stage] = STAGES,
    instance: dg.DagsterInstance | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, float]:
    """Materialise ``stages`` in order; stop at the first failed run. Returns seconds per stage."""
    from .definitions import all_assets, build_resources

    assets = all_assets()
    known = {k.to_user_string() for a in assets for k in a.keys}
    # INFO on the terminal: the DEBUG event stream is in the UI's run log anyway.
    base = {**preset_run_config(preset, assets), "loggers": {"console": {"config": {"log_level": "INFO"}}}}
    config = merge_run_config(base, run_config or {})
    resources = build_resources(settings)
    instance = instance or dg.DagsterInstance.get()
    timings: dict[str, float] = {}
    for stage in stages:
        names = [n for n in stage.assets if n in known]
        if not names:
            continue
        selection = dg.AssetSelection.assets(*names)
        for partition in (SPLITS if stage.per_split else (None,)):
            label = stage.name + (f" [{partition}]" if partition else "")
            log(f"wrmil: materialising {', '.join(names)}" + (f" for split {partition}" if partition else ""))
            t0 = time.perf_counter()
            ops = {k: v for k, v in config.get("ops", {}).items() if k in names}
            result = dg.materialize(assets, selection=selection, partition_key=partition, instance=instance,
                                    resources=resources, run_config={**config, "ops": ops}, raise_on_error=False)
            timings[label] = time.perf_counter() - t0
            if not result.success:
                failed = [e.step_key for e in result.all_events if e.is_step_failure]
                raise RuntimeError(f"stage {label!r} failed in step(s) {failed}; run id {result.run_id} "
                                   f"(open `make ui` to see its log). Assets materialised before it are kept.")
            log(f"wrmil: {label} done in {timings[label]:.1f} s (run {result.run_id})")
    return timings


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A run-config file (JSON or YAML) in Dagster's ``{"ops": {asset: {"config": ...}}}`` form."""
    text = Path(path).read_text()
    if str(path).endswith((".yaml", ".yml")):
        import yaml

        return yaml.safe_load(text) or {}
    return json.loads(text)
