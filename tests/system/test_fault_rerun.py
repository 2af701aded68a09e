"""kill -9 in the middle of a run, then run again: the rerun finishes, keeps what was done, and
computes what an uninterrupted run computes; and two runs with the same seed write the same bytes.

Every run is the real ``wrmil run`` command in its own process group, with its own
``DAGSTER_HOME`` (made by ``wrmil run``, so the ``training`` concurrency pool is limited to one
slot, as in ``make demo``) and its own artifact directory. The kill is SIGKILL to the whole
group, as the OOM killer or a power cut would end it: nothing gets to clean up. A rerun that
waits forever (for the pool slot of the dead run) fails at ``RUN_TIMEOUT_S``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PIPELINE_SYNTH
from tests.support.processes import (assert_no_tailers, file_digests, read_record, run_wrmil, start_wrmil, wait_until,
                                     wrmil_env)
from tests.support.run_configs import write_run_config

pytestmark = pytest.mark.slow

# An uninterrupted run takes ~1 min on an idle 2-core machine; a rerun that hangs fails here.
RUN_TIMEOUT_S = 480
# Until a killed run reaches the step to kill.
REACH_TIMEOUT_S = 360
# Everything an asset materialisation leaves: tables and JSON records, embedding model weights.
MATERIALISED = ("assets/**/*.parquet", "assets/**/*.json", "arcface/*/model/*")
# A line of the MIL training (``[abmil] epoch 1/3 ...``): mil_model is inside its training loop.
MIL_EPOCH_LINE = re.compile(r"\[\w+\] epoch \d+/\d+")


def _env(tmp: Path, data_root: Path) -> dict[str, str]:
    return wrmil_env(tmp / "dagster_home", tmp / "artifacts", WRMIL_DATA_ROOT=str(data_root),
                     WRMIL_REPS_PER_SESSION=str(PIPELINE_SYNTH.reps_per_session))


def _run(tmp: Path, data_root: Path, log_name: str) -> str:
    """``wrmil run --config <fast>`` to completion in ``tmp``; returns its output (asserts exit 0)."""
    config = write_run_config(tmp / "run_config.json")
    rc, out = run_wrmil(["run", "--config", str(config)], _env(tmp, data_root), tmp / log_name, RUN_TIMEOUT_S)
    assert rc == 0, f"wrmil run exited with {rc}:\n{out[-4000:]}"
    return out


def _comparable(record: dict[str, Any], artifact_dir: Path) -> dict[str, Any]:
    """A JSON record with the artifact directory written as ``<ART>`` and durations dropped."""
    text = json.dumps(record, sort_keys=True).replace(str(artifact_dir.resolve()), "<ART>")

    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if "seconds" not in k and not k.endswith("_time")}
        return [strip(x) for x in v] if isinstance(v, list) else v

    return strip(json.loads(text))


def assert_same_results(reference: Path, got: Path) -> None:
    """The model records (ids = content hashes of the weights, val metrics, thresholds) are equal."""
    for asset in ("arcface_model", "mil_model"):
        ref, new = _comparable(read_record(reference, asset), reference), _comparable(read_record(got, asset), got)
        assert new == ref, f"{asset} differs from the uninterrupted run:\n{new}\n!=\n{ref}"


def assert_kept(before: dict[str, str], after: dict[str, str]) -> None:
    """Every file materialised before the kill is still there, byte for byte."""
    changed = sorted(k for k in before if after.get(k) != before[k])
    assert not changed, f"files materialised before the kill were lost or changed by the rerun: {changed}"


def kill_when(tmp: Path, data_root: Path, condition, what: str) -> None:
    """Start ``wrmil run``, SIGKILL its process group as soon as ``condition(process)`` holds."""
    config = write_run_config(tmp / "run_config.json")
    run = start_wrmil(["run", "--config", str(config)], _env(tmp, data_root), tmp / "killed_run.log")
    try:
        wait_until(lambda: condition(run), what, REACH_TIMEOUT_S, run)
    finally:
        run.kill9()
    assert run.proc.returncode == -9, run.log_tail()
    assert_no_tailers(tmp / "dagster_home")  # Dagster's `tail -F` of the step's compute logs went with it


@pytest.fixture(scope="module")
def reference(synth_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The artifact directory of one uninterrupted run (the numbers every other run must reproduce)."""
    tmp = tmp_path_factory.mktemp("uninterrupted")
    _run(tmp, synth_root, "run.log")
    return tmp / "artifacts"


def test_kill9_during_arcface_training_then_rerun_resumes_to_the_same_model(reference, synth_root, tmp_path):
    art = tmp_path / "artifacts"
    # Killed after the embedding training committed its first epoch's checkpoint, mid-epoch 2.
    kill_when(tmp_path, synth_root, lambda run: any((art / "arcface").rglob("checkpoint/state.json")),
              "arcface_model's first checkpoint")
    assert not (art / "assets" / "arcface_model.json").exists(), "killed too late: arcface_model had finished"
    before = file_digests(art, MATERIALISED)
    assert {"assets/raw_words.parquet", "assets/writer_split.parquet"} <= set(before), before

    out = _run(tmp_path, synth_root, "rerun.log")
    assert "resum" in out.lower(), f"the rerun trained arcface_model from scratch:\n{out[-4000:]}"
    assert_kept(before, file_digests(art, MATERIALISED))
    assert_same_results(reference, art)


def test_kill9_during_mil_training_then_rerun_finishes_with_the_same_metrics(reference, synth_root, tmp_path):
    art = tmp_path / "artifacts"
    kill_when(tmp_path, synth_root, lambda run: MIL_EPOCH_LINE.search(run.log()) is not None,
              "the first MIL training epoch")
    assert not (art / "assets" / "mil_model.json").exists(), "killed too late: mil_model had finished"
    before = file_digests(art, MATERIALISED)
    expected = {"assets/arcface_model.json",
                *(f"assets/{a}/{s}.parquet" for a in ("word_embeddings", "bags_by_difficulty")
                  for s in ("train", "val", "test"))}
    assert expected <= set(before), sorted(before)

    _run(tmp_path, synth_root, "rerun.log")
    assert_kept(before, file_digests(art, MATERIALISED))
    assert_same_results(reference, art)
    assert (art / "report" / "report.html").is_file()


def test_same_seed_rematerialises_byte_identical_tables_and_weights(reference, synth_root, tmp_path):
    _run(tmp_path, synth_root, "run.log")
    patterns = ("**/*.parquet", "**/*.safetensors")
    ref, got = file_digests(reference, patterns), file_digests(tmp_path / "artifacts", patterns)
    assert any(k.endswith(".safetensors") for k in ref) and any(k.endswith(".parquet") for k in ref), ref
    assert set(got) == set(ref), f"different files: {sorted(set(got) ^ set(ref))}"
    differ = sorted(k for k in ref if got[k] != ref[k])
    assert not differ, f"same seed, different bytes: {differ}"
