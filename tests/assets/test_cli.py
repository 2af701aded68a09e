"""``wrmil run`` end to end: its flags reach the assets, and a failure is one line with an exit code."""

from __future__ import annotations

import os
import subprocess
import sys
import shutil
from pathlib import Path

import dagster as dg
import pytest

from tests.conftest import PIPELINE_SYNTH
from wrmil_assets.automation import JOB_STAGES
from wrmil_assets.cli import build_parser, main

REPO_ROOT = Path(__file__).resolve().parents[2]
TRACE_MARKERS = ("Traceback", "Stack Trace", 'File "')


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh DAGSTER_HOME and artifact dir; ``WRMIL_DATA_ROOT`` points at a decoy folder, so a
    run that ignored ``--data-root`` would fail."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("WRMIL_ARTIFACT_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("WRMIL_DATA_ROOT", str(tmp_path / "decoy"))
    monkeypatch.setenv("WRMIL_DEVICE", "cpu")
    (tmp_path / "decoy").mkdir()
    return tmp_path


def _raw_words_metadata() -> dict:
    with dg.DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("raw_words"))
    assert event is not None, "raw_words was not materialised"
    return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("wrmil run: error:")]
    assert len(lines) == 1, err
    assert not any(marker in err for marker in TRACE_MARKERS), err
    return lines[0]


def test_data_root_flag_reaches_the_assets(env: Path, synth_root: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("WRMIL_REPS_PER_SESSION", str(PIPELINE_SYNTH.reps_per_session))
    assert main(["run", "--data-root", str(synth_root), "--job", "ingest"]) == 0, capsys.readouterr()
    meta = _raw_words_metadata()
    assert Path(meta["data_root"]) == synth_root.resolve()
    assert meta["n_writers"] == PIPELINE_SYNTH.n_writers


def test_layout_flags_reach_the_assets(env: Path, synth_root: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture) -> None:
    """``--metadata-csv`` and ``--reps-per-session`` reach ingest (no WRMIL_* variable needed)."""
    root = tmp_path / "renamed"
    shutil.copytree(synth_root, root)
    (root / "naver_ocr.csv").rename(root / "words.csv")
    code = main(["run", "--data-root", str(root), "--metadata-csv", "words.csv",
                 "--reps-per-session", str(PIPELINE_SYNTH.reps_per_session), "--job", "ingest"])
    assert code == 0, capsys.readouterr()
    meta = _raw_words_metadata()
    assert Path(meta["metadata_path"]).name == "words.csv"
    assert meta["n_documents"] == PIPELINE_SYNTH.n_writers * PIPELINE_SYNTH.n_sessions


def test_generated_set_follows_synth_preset_not_preset(env: Path, capsys: pytest.CaptureFixture) -> None:
    """``--preset paper`` (hyper-parameters) with ``--synth-preset tiny`` (data size): 6 writers,
    and the tiny set's 2 repetitions per session reach ingest (6 writers x 2 sessions = 12 docs)."""
    root = env / "new_root"
    code = main(["run", "--data-root", str(root), "--generate", "--synth-preset", "tiny", "--preset", "paper",
                 "--job", "ingest"])
    assert code == 0, capsys.readouterr()
    meta = _raw_words_metadata()
    assert Path(meta["data_root"]) == root.resolve()
    assert (meta["n_writers"], meta["n_documents"]) == (6, 12)


def test_job_choices_are_the_jobs(capsys: pytest.CaptureFixture) -> None:
    parser = build_parser()
    for job in JOB_STAGES:
        assert parser.parse_args(["run", "--job", job]).job == job
    with pytest.raises(SystemExit):  # scoring needs a document: not a `wrmil run` job
        parser.parse_args(["run", "--job", "score_document"])


def test_missing_data_root_is_one_line_exit_2(env: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["run", "--data-root", str(env / "nowhere"), "--job", "ingest"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "nowhere" in line and "--generate" in line


@pytest.mark.parametrize("text, expected", [
    ("ops: [1\n", "not valid YAML"),
    ("- just\n- a list\n", "expected a mapping"),
    ("ops: {raw_words: {config: {min_doc_words: many}}}\n", "min_doc_words"),
])
def test_bad_config_file_is_one_line_exit_2(env: Path, synth_root: Path, capsys: pytest.CaptureFixture,
                                            text: str, expected: str) -> None:
    cfg = env / "run.yaml"
    cfg.write_text(text)
    assert main(["run", "--data-root", str(synth_root), "--job", "ingest", "--config", str(cfg)]) == 2
    assert expected in _one_error_line(capsys.readouterr().err)


def test_truncated_upstream_artifact_is_one_line_exit_1(env: Path, synth_root: Path, capsys: pytest.CaptureFixture,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """raw_words.parquet cut in half after ingest: the next stage names the asset and the command
    that rebuilds it; the full trace is in the run's event log, not on the terminal."""
    monkeypatch.setenv("WRMIL_REPS_PER_SESSION", str(PIPELINE_SYNTH.reps_per_session))
    assert main(["run", "--data-root", str(synth_root), "--job", "ingest"]) == 0
    table = env / "artifacts" / "assets" / "raw_words.parquet"
    table.write_bytes(table.read_bytes()[: table.stat().st_size // 2])
    capsys.readouterr()
    assert main(["run", "--data-root", str(synth_root), "--job", "retrain"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "asset raw_words" in line and "wrmil run --job ingest" in line and "arcface_model" in line
    with dg.DagsterInstance.get() as instance:
        failed = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
        assert len(failed) == 1 and failed[0].run_id[:8] in line
        failures = instance.all_logs(failed[0].run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        assert failures and failures[0].dagster_event.step_failure_data.error.stack  # the trace, for the UI


def test_console_script_bad_input_is_one_line(tmp_path: Path) -> None:
    """The installed command as a user runs it: an image path that does not exist."""
    root = tmp_path / "data"
    root.mkdir()
    (root / "naver_ocr.csv").write_text("image_path,label,detected_word,repetition\nw1/a_0.png,1,a,0\n")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "WRMIL_ARTIFACT_DIR": str(tmp_path / "art")}
    wrmil = Path(sys.executable).parent / "wrmil"
    done = subprocess.run([str(wrmil), "run", "--data-root", str(root), "--job", "ingest"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 2, done.stdout + done.stderr
    line = _one_error_line(done.stderr)
    assert "raw_words:" in line and "w1/a_0.png" in line
    assert not any(marker in done.stdout for marker in TRACE_MARKERS), done.stdout


def _own_data(synth_root: Path, tmp_path: Path) -> Path:
    """A user's own data set: the synthetic images and CSV without the generator's marker file."""
    root = Path(shutil.copytree(synth_root, tmp_path / "own words"))
    (root / "synth_config.json").unlink()
    return root


def _latest_run_preset(asset: str = "raw_words") -> str:
    """The ``preset`` the latest run that materialised ``asset`` gave its op."""
    with dg.DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey(asset))
        run = instance.get_run_by_id(event.run_id)
    return run.run_config["ops"][asset]["config"]["preset"]


def test_preset_default_is_demo_for_synthetic_and_cpu_for_own_data(env: Path, synth_root: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from wrmil_assets.resources import preset_choice

    monkeypatch.delenv("WRMIL_PRESET", raising=False)
    own = _own_data(synth_root, tmp_path)
    assert preset_choice(synth_root)[0] == "demo"
    name, why = preset_choice(own)
    assert name == "cpu" and str(own) in why
    assert preset_choice(own, explicit="paper") == ("paper", "--preset")  # an explicit --preset wins
    monkeypatch.setenv("WRMIL_PRESET", "gpu")
    assert preset_choice(own) == ("gpu", "WRMIL_PRESET")
    assert preset_choice(own, explicit="demo")[0] == "demo"


@pytest.mark.parametrize("flags, expected", [([], "cpu"), (["--preset", "demo"], "demo")])
def test_run_on_own_data_uses_and_prints_its_preset(env: Path, synth_root: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                                                    flags: list[str], expected: str) -> None:
    """``wrmil run --data-root OWN`` runs every stage with ``cpu`` unless ``--preset`` says otherwise,
    and says which preset and why."""
    monkeypatch.delenv("WRMIL_PRESET", raising=False)
    monkeypatch.setenv("WRMIL_REPS_PER_SESSION", str(PIPELINE_SYNTH.reps_per_session))
    own = _own_data(synth_root, tmp_path)
    assert main(["run", "--data-root", str(own), "--job", "ingest", *flags]) == 0
    out = capsys.readouterr().out
    assert f"wrmil: preset {expected} (" in out and (("own data" in out) == (not flags)), out
    assert _latest_run_preset("raw_words") == _latest_run_preset("writer_split") == expected


def test_run_on_synthetic_data_uses_demo(env: Path, synth_root: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv("WRMIL_PRESET", raising=False)
    monkeypatch.setenv("WRMIL_REPS_PER_SESSION", str(PIPELINE_SYNTH.reps_per_session))
    assert main(["run", "--data-root", str(synth_root), "--job", "ingest"]) == 0
    assert "wrmil: preset demo (the default for the synthetic set" in capsys.readouterr().out
    assert _latest_run_preset() == "demo"


def test_every_run_preset_is_a_preset_of_every_stage(capsys: pytest.CaptureFixture) -> None:
    """``--preset NAME`` sets every stage's preset, so each stage must know each name; the help lists them."""
    from wrmil_assets.config import RUN_PRESETS
    from wrmil_core.bags import config as bags_config
    from wrmil_core.data import ingest, split
    from wrmil_core.embedding import config as embedding_config
    from wrmil_core.mil import config as mil_config

    for stage in (ingest, split, embedding_config, bags_config, mil_config):
        assert set(RUN_PRESETS) <= set(stage.PRESETS), stage.__name__
        for name in RUN_PRESETS:
            stage.preset(name)  # valid
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--preset", "fast"])
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--help"])
    help_text = capsys.readouterr().out
    assert all(f"{name}: " in help_text for name in RUN_PRESETS), help_text


def test_score_help_prints_percent_signs_once(capsys: pytest.CaptureFixture[str]) -> None:
    """argparse %-formats help texts but prints descriptions as written: neither may show a doubled %."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["score", "--help"])
    out = capsys.readouterr().out
    assert "1 % and 5 %" in " ".join(out.split()) and "%%" not in out
