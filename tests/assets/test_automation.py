"""The job -> stage mapping has one home (``automation.JOB_STAGES``); everything else derives from it."""

from __future__ import annotations

import dagster as dg

from wrmil_assets import run
from wrmil_assets.automation import CROSS_VALIDATION, JOB_STAGES, STAGES, SCORING, dead_run_sweeper
from wrmil_assets.definitions import defs


def _stage_assets(job: str) -> set[dg.AssetKey]:
    return {dg.AssetKey(a) for stage in JOB_STAGES[job] for a in stage.assets}


def test_each_job_selects_exactly_its_stages_assets() -> None:
    graph = defs.resolve_asset_graph()
    for job in JOB_STAGES:
        selected = defs.resolve_job_def(job).asset_layer.selected_asset_keys
        assert selected == _stage_assets(job), job
        assert selected <= graph.get_all_asset_keys()


def test_full_pipeline_covers_every_asset_but_scoring() -> None:
    """A new asset must join a stage, or `wrmil run` and the jobs would silently skip it; writer-fold
    cross-validation (k trainings) is its own job, writer_cv, which holds every one of its assets."""
    graph = defs.resolve_asset_graph()
    scoring, cv = SCORING.resolve(graph), CROSS_VALIDATION.resolve(graph)
    assert cv and cv <= _stage_assets("writer_cv")
    assert _stage_assets("full_pipeline") == graph.get_all_asset_keys() - scoring - cv
    assert JOB_STAGES["full_pipeline"] == STAGES


def test_stages_respect_the_graph_order() -> None:
    """No stage needs an asset that a later stage materialises."""
    graph = defs.resolve_asset_graph()
    seen: set[dg.AssetKey] = set()
    for stage in STAGES:
        keys = {dg.AssetKey(a) for a in stage.assets}
        for key in keys:
            assert graph.get(key).parent_keys <= seen | keys, (stage.name, key)
        seen |= keys


def test_runner_uses_the_automation_stages() -> None:
    assert run.run_stages.__kwdefaults__["stages"] is STAGES
    assert not hasattr(run, "JOB_STAGES")  # one home


def test_dead_run_sweeper_is_on_by_default() -> None:
    sensor = defs.resolve_sensor_def("dead_run_sweeper")
    assert sensor is dead_run_sweeper
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
