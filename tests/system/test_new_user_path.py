"""A new user's first hour, as docs/data.md's "Your own data" walk-through tells it, on a fresh
``DAGSTER_HOME`` and artifact directory: ``wrmil check DIR``, ``wrmil run --data-root DIR`` killed
with kill -9 half-way, then ``wrmil run --data-root DIR`` again.

DIR is a generated data set laid out like a user's own: a folder name with a space, and a
metadata CSV with columns the pipeline does not know (a transcription, the scan each word was
cut from) between and after the required ones.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import dagster as dg
import pytest

from tests.conftest import PIPELINE_SYNTH
from tests.support.processes import assert_no_tailers, run_wrmil, start_wrmil, wait_until, wrmil_env
from tests.support.run_configs import write_run_config

pytestmark = pytest.mark.slow

EXTRA_COLUMNS = ("transcription", "source_path")
CHECK_TIMEOUT_S = 120
RUN_TIMEOUT_S = 480
REACH_TIMEOUT_S = 360


def add_extra_columns(csv_path: Path) -> None:
    """Rewrite the metadata CSV as image_path,transcription,label,detected_word,repetition,source_path."""
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    header = ["image_path", "transcription", "label", "detected_word", "repetition", "source_path"]
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        out = csv.DictWriter(f, fieldnames=header)
        out.writeheader()
        for r in rows:
            out.writerow({**r, "transcription": r["detected_word"].lower(),
                          "source_path": f"scans/writer {r['label']}/page_{r['repetition']}.tif"})


def raw_words_metadata(home: Path) -> dict[str, object]:
    """The latest ``raw_words`` materialisation's metadata values in the instance at ``home``."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("raw_words"))
    assert event is not None, "raw_words was never materialised"
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_check_run_kill9_run_again_on_own_data_with_extra_columns(synth_root, tmp_path):
    data = Path(shutil.copytree(synth_root, tmp_path / "my word images"))
    add_extra_columns(data / "naver_ocr.csv")
    home, art = tmp_path / "dagster_home", tmp_path / "artifacts"
    # The one setting this data set needs: 4 repetitions make a document (docs/data.md, "Your own data").
    env = wrmil_env(home, art, WRMIL_REPS_PER_SESSION=str(PIPELINE_SYNTH.reps_per_session))
    config = str(write_run_config(tmp_path / "fast.json"))  # small epochs: the demo preset takes minutes

    rc, out = run_wrmil(["check", str(data)], env, tmp_path / "check.log", CHECK_TIMEOUT_S)
    assert rc == 0, out[-4000:]
    assert "writers" in out and str(PIPELINE_SYNTH.n_writers) in out, out
    assert all(c in out for c in EXTRA_COLUMNS), f"the summary does not name the extra columns:\n{out}"

    run = start_wrmil(["run", "--data-root", str(data), "--config", config], env, tmp_path / "killed_run.log")
    try:
        wait_until(lambda: any((art / "arcface").rglob("checkpoint/state.json")),
                   "arcface_model's first checkpoint", REACH_TIMEOUT_S, run)
    finally:
        run.kill9()
    assert_no_tailers(home)  # Dagster's `tail -F` of the step's compute logs went with it
    assert not (art / "assets" / "arcface_model.json").exists(), "killed too late: arcface_model had finished"

    rc, out = run_wrmil(["run", "--data-root", str(data), "--config", config], env, tmp_path / "rerun.log",
                        RUN_TIMEOUT_S)
    assert rc == 0, out[-4000:]
    assert (art / "report" / "report.html").is_file(), out[-4000:]
    metadata = raw_words_metadata(home)
    assert str(metadata["data_root"]) == str(data.resolve()), metadata
    said = " ".join(str(v) for v in metadata.values())
    assert all(c in said for c in EXTRA_COLUMNS), \
        f"raw_words metadata does not say what happened to the extra columns: {metadata}"
