"""The single Dagster ``Definitions`` of wrmil: assets, checks, resources, jobs, schedules, sensors."""

from __future__ import annotations

import dagster as dg

from .assets import bags, cv, embeddings, mil, pages, raw, score
from .automation import JOBS, dead_run_sweeper, raw_data_sensor, weekly_retrain
from .io_managers import JsonIOManagerFactory, ParquetIOManagerFactory, io_base_dir
from .resources import WrmilSettings

ASSET_MODULES = [pages, raw, embeddings, bags, mil, score, cv]


def all_assets() -> list[dg.AssetsDefinition]:
    """Every asset (with its in-asset checks) in graph order."""
    return list(dg.load_assets_from_modules(ASSET_MODULES))


def build_resources(settings: WrmilSettings | None = None) -> dict[str, object]:
    """Resources for a settings object (defaults: ``WRMIL_*`` environment variables)."""
    settings = settings or WrmilSettings.from_env()
    io_dir = str(io_base_dir(settings.artifact_dir))
    return {
        "settings": settings,
        "parquet_io": ParquetIOManagerFactory(base_dir=io_dir),
        "json_io": JsonIOManagerFactory(base_dir=io_dir),
    }


defs = dg.Definitions(
    assets=all_assets(),
    resources=build_resources(),
    jobs=JOBS,
    schedules=[weekly_retrain],
    sensors=[raw_data_sensor, dead_run_sweeper],
    executor=dg.in_process_executor,  # torch imports once per run, not once per step
)
