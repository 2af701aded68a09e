"""The stage runner's failure summary: the user's own message, whatever part of the run failed."""

from __future__ import annotations

import dagster as dg

from wrmil_assets.automation import Stage
from wrmil_assets.run import failure_of, stage_job
from wrmil_core.errors import WrmilInputError


@dg.resource
def _unstartable(_context: dg.InitResourceContext) -> None:
    raise WrmilInputError("the device 'cuda:3' does not exist; set WRMIL_DEVICE=cpu")


@dg.asset(required_resource_keys={"unstartable"})
def _needs_resource() -> int:
    return 1


@dg.asset
def _broken() -> int:
    raise RuntimeError("disk full while writing /tmp/x")


def _failure(asset: dg.AssetsDefinition, resources: dict) -> Exception:
    name = asset.key.to_user_string()
    job = stage_job([asset], resources, Stage("t", (name,)), [name])
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    return failure_of(result, "t")


def test_a_run_that_fails_before_any_step_gives_the_resource_error() -> None:
    failed = _failure(_needs_resource, {"unstartable": _unstartable})
    assert failed.step is None and failed.bad_input
    assert failed.cause == "the device 'cuda:3' does not exist; set WRMIL_DEVICE=cpu"


def test_a_failed_step_gives_its_own_message_without_the_class_prefix() -> None:
    failed = _failure(_broken, {})
    assert (failed.step, failed.cause, failed.bad_input) == ("_broken", "disk full while writing /tmp/x", False)
    assert str(failed).startswith("_broken: disk full while writing /tmp/x (stage t, run ")
