"""Scoring from the Dagster layer: ``wrmil_assets.model_records`` (the latest models), ``wrmil score``
and the ``questioned_document_score`` asset (models and documents from ``tests/support/scoring.py``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support.scoring import FOREIGN, scoring_setup, write_document
from wrmil_assets.model_records import choose_model_name, latest_models, select_models
from wrmil_core.errors import WrmilInputError


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return scoring_setup(tmp_path_factory)


# ---------------------------------------------------------------------------------------------
# Model records


def test_resolve_latest_models(setup: dict[str, Any]) -> None:
    emb, mil = latest_models(setup["art"])
    # the calibrated whole-document detector, although the report ranks distance best
    assert emb == setup["emb_dir"] and mil == setup["mil"]["segment_scan"]
    assert latest_models(setup["art"], "abmil")[1] == setup["mil"]["abmil"]
    with pytest.raises(WrmilInputError, match="not among the trained models"):
        latest_models(setup["art"], "nope")
    # Explicit directories win over the records; a name and a directory together are refused.
    explicit = (setup["emb_dir"], setup["mil"]["abmil"])
    assert latest_models(None, None, *explicit) == explicit
    with pytest.raises(WrmilInputError, match="not both"):
        latest_models(setup["art"], "abmil", None, setup["mil"]["abmil"])


def _calibrated_dir(tmp: Path, name: str, calibrated: bool = True) -> str:
    d = tmp / name
    d.mkdir(parents=True)
    if calibrated:
        (d / "calibration.json").write_text("{}")  # choosing looks for the file; scoring reads it
    return str(d)


def test_records_choose_the_default_model(tmp_path: Path) -> None:
    def record(calibrated: set[str], val_auc: dict[str, float | None]) -> dict[str, Any]:
        base = tmp_path / str(len(list(tmp_path.iterdir())))
        return {"models": {n: {"model_dir": _calibrated_dir(base, n, n in calibrated), "val_auc": v}
                           for n, v in val_auc.items()}}

    aucs = {"abmil": 0.7, "contrast": 0.8, "distance": None, "segment_scan": 0.75, "scattered": 0.72, "fused": 0.74}
    every = record(set(aucs), aucs)
    # the default detector (its class says so), whatever the report's best or the val AUCs say
    assert choose_model_name(every, {"best_model": "contrast"}) == "fused"
    assert choose_model_name(every, {"best_model": "scattered"}) == "fused"
    assert choose_model_name(record(set(aucs), {**aucs, "scattered": 0.9}), None) == "fused"
    # records from before the default existed: the report's best whole-document detector, else the best val AUC one
    old = record(set(aucs) - {"fused"}, aucs)
    assert choose_model_name(old, {"best_model": "scattered"}) == "scattered"
    assert choose_model_name(old, {"best_model": "contrast"}) == "segment_scan"
    assert choose_model_name(every, None, name="abmil") == "abmil"  # --model wins
    learned = record({"abmil", "contrast", "distance"}, aucs)  # the word-level detectors lack calibration
    assert choose_model_name(learned, {"best_model": "abmil"}) == "abmil"
    assert choose_model_name(learned, None) == "contrast"  # no report: best val AUC
    assert choose_model_name(learned, {"best_model": "segment_scan"}) == "contrast"  # uncalibrated: skipped
    with pytest.raises(WrmilInputError, match=r"no materialised MIL model has calibration.json .*re-materialise "
                                              r"mil_model \(`wrmil run --job retrain_mil`\)"):
        choose_model_name(record(set(), aucs), {"best_model": "contrast"})
    with pytest.raises(WrmilInputError, match="materialise mil_model first"):
        choose_model_name({"models": {}})


def test_missing_records_name_the_record_and_the_command(setup: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(WrmilInputError, match=r"mil_model.json missing\); run `wrmil run`"):
        latest_models(tmp_path)
    art = tmp_path / "art"
    shutil.copytree(setup["art"] / "assets", art / "assets")
    (art / "assets" / "arcface_model.json").unlink()
    with pytest.raises(WrmilInputError, match=r"arcface_model.json is missing .*`wrmil run`"):
        latest_models(art)
    (art / "assets" / "difficulty_report.json").unlink()
    (art / "report").mkdir()
    (art / "report" / "report.json").write_text(json.dumps({"best_model": "scattered"}))  # the fallback
    record = json.loads((art / "assets" / "mil_model.json").read_text())
    record["models"]["scattered"] = {"model_dir": _calibrated_dir(tmp_path, "scattered"), "val_auc": 0.1}
    (art / "assets" / "mil_model.json").write_text(json.dumps(record))
    assert latest_models(art, embedding_model_dir=setup["emb_dir"])[1] == tmp_path / "scattered"
    (art / "assets" / "mil_model.json").write_text("{not json")
    with pytest.raises(WrmilInputError, match="mil_model.json is not valid JSON .*rebuild it: `wrmil run --job"):
        latest_models(art)
    (art / "assets" / "mil_model.json").write_text("[]")
    with pytest.raises(WrmilInputError, match="holds a JSON list, not a record"):
        latest_models(art)


def test_select_models_from_records(setup: dict[str, Any]) -> None:
    records = {n: json.loads((setup["art"] / "assets" / f"{n}.json").read_text())
               for n in ("arcface_model", "mil_model")}
    assert select_models(records["arcface_model"], records["mil_model"], None, "abmil") == (
        setup["emb_dir"], setup["mil"]["abmil"])
    with pytest.raises(WrmilInputError, match="names no model_dir"):
        select_models({}, records["mil_model"])
    gone = {"models": {"distance": {"model_dir": str(setup["base"] / "gone")}}}
    with pytest.raises(WrmilInputError, match="MIL model directory .*gone does not exist"):
        select_models(records["arcface_model"], gone, None, "distance")
    with pytest.raises(WrmilInputError, match="no materialised MIL model has calibration.json"):
        select_models(records["arcface_model"], gone)  # by default: a gone directory holds no calibration


# ---------------------------------------------------------------------------------------------
# The CLI


def test_cli_scores_with_latest_models(setup: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from wrmil_assets.cli import main

    rc = main(["score", str(setup["mixed"]), "--artifact-dir", str(setup["art"]), "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    doc = json.loads((tmp_path / "score.json").read_text())
    assert doc["model_name"] == "segment_scan" and doc["scoring"] == "whole document"
    assert doc["log10_lr"] > 0 and doc["verbal"].endswith("support for more than one writer")
    assert f"log10 LR = {doc['log10_lr']:+.2f}" in out and doc["verbal"] in out
    assert "flagged at 1 % FPR: yes" in out and "flagged at 5 % FPR: yes" in out
    assert "P(more than one writer)" not in out and "not a probability" in out
    assert "estimated foreign passage: words {first}-{last}".format(**doc["passage"]) in out
    assert (tmp_path / "score.json").is_file() and (tmp_path / "strip.png").is_file()
    assert str(tmp_path / "strip.png") in out


def test_cli_refuses_an_uncalibrated_model_in_one_line(setup: dict[str, Any], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    """A model materialised before calibrated scoring: exit 2, one line saying to re-materialise mil_model."""
    from wrmil_assets.cli import main

    rc = main(["score", str(setup["mixed"]), "--embedding-model", str(setup["emb_dir"]),
               "--mil-model", str(setup["mil_uncalibrated"]), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert err.startswith("wrmil score: error: MIL model ") and "has no calibration.json" in err
    assert "re-materialise mil_model (`wrmil run --job retrain_mil`)" in err
    assert not (tmp_path / "score.json").exists()


def _bad_cases(setup: dict[str, Any], tmp: Path) -> dict[str, tuple[list[str], str]]:
    few = write_document(tmp / "few", n=3)
    one_window = write_document(tmp / "one_window", n=7)
    broken = write_document(tmp / "broken", n=20)
    (broken / "w7.png").write_bytes(b"not a png at all")
    bad_csv = tmp / "bad.csv"
    bad_csv.write_text("file,position\nw0.png,0\n")
    missing_csv = tmp / "missing.csv"
    missing_csv.write_text("image_path,order\nw0.png,0\nw99.png,1\n")
    models = ["--embedding-model", str(setup["emb_dir"])]
    distance = ["--mil-model", str(setup["mil"]["distance"])]
    return {
        "fewer words than one window": ([str(few), *models, *distance], "fewer than one window"),
        "a single window": ([str(one_window), *models, *distance], "only one window"),
        "unreadable image": ([str(broken), *models, *distance], "w7.png"),
        "other embedding dimension": ([str(setup["mixed"]), *models, "--mil-model", str(setup["mil_wrong_dim"])],
                                      "64-d embeddings"),
        "other embedding model": ([str(setup["mixed"]), *models, "--mil-model", str(setup["mil_wrong_id"])],
                                  "0123456789abcdef"),
        "missing folder": ([str(tmp / "nowhere"), *models, *distance], "does not exist"),
        "order CSV without columns": ([str(setup["mixed"]), "--order-csv", str(bad_csv), *models, *distance],
                                      "image_path and order"),
        "order CSV naming a missing file": ([str(setup["mixed"]), "--order-csv", str(missing_csv), *models,
                                             *distance], "line 3"),
        "no materialised models": ([str(setup["mixed"]), "--artifact-dir", str(tmp / "empty_artifacts")],
                                   "wrmil run"),
        "models swapped": ([str(setup["mixed"]), "--embedding-model", str(setup["mil"]["distance"]),
                            "--mil-model", str(setup["emb_dir"])], "not an embedding model directory"),
        "unknown model name": ([str(setup["mixed"]), "--artifact-dir", str(setup["art"]), "--model", "nope"],
                               "not among the trained models"),
    }


def test_cli_bad_input_exits_2_with_clear_message(setup: dict[str, Any], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    from wrmil_assets.cli import main

    for case, (args, needle) in _bad_cases(setup, tmp_path).items():
        rc = main(["score", *args, "--out", str(tmp_path / "out")])
        captured = capsys.readouterr()
        assert rc == 2, (case, captured.out, captured.err)
        assert needle in captured.err, (case, captured.err)
        assert captured.err.startswith("wrmil score: error:") and "Traceback" not in captured.err, case
    assert not (tmp_path / "out" / "score.json").exists()


def test_cli_scores_a_batch_in_one_process(setup: dict[str, Any], tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    """--batch FOLDER: every document a summary row, a broken one with its error, exit code 2; a CSV
    list of the good ones: exit code 0."""
    import csv

    from wrmil_assets.cli import main

    batch = tmp_path / "batch"
    write_document(batch / "genuine")
    write_document(batch / "mixed", foreign=FOREIGN)
    (batch / "broken.png").write_bytes(b"not a png")
    rc = main(["score", "--batch", str(batch), "--artifact-dir", str(setup["art"]), "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert rc == 2, captured.err
    assert "2 of 3 scored, 1 failed" in captured.out and "documents/min" in captured.out
    assert captured.err.count("\n") == 1 and "wrmil score: error: broken: " in captured.err
    with (tmp_path / "out" / "summary.csv").open(newline="") as f:
        rows = {r["id"]: r for r in csv.DictReader(f)}
    assert [rows[k]["status"] for k in ("broken", "genuine", "mixed")] == ["error", "ok", "ok"]
    assert (tmp_path / "out" / "summary.html").is_file() and (tmp_path / "out" / "mixed" / "strip.png").is_file()

    listing = tmp_path / "list.csv"
    listing.write_text("path,id\nbatch/mixed,questioned\n")
    rc = main(["score", str(listing), "--artifact-dir", str(setup["art"]), "--out", str(tmp_path / "out_list")])
    assert rc == 0, capsys.readouterr().err
    assert (tmp_path / "out_list" / "questioned" / "score.json").is_file()


def test_cli_scores_a_pdf_as_one_document(setup: dict[str, Any], tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    """A 2-page PDF: both pages' words in one score, page 1's first; --pages picks, a bad one is one line."""
    from PIL import Image

    from tests.support.pages import write_scoring_page
    from wrmil_assets.cli import main

    for name, seed in (("one", 0), ("two", 1)):
        write_scoring_page(tmp_path / f"{name}.png", n=30, seed=seed)
    first, second = Image.open(tmp_path / "one.png"), Image.open(tmp_path / "two.png")
    first.save(tmp_path / "scan.pdf", save_all=True, append_images=[second], resolution=100)
    models = ["--embedding-model", str(setup["emb_dir"]), "--mil-model", str(setup["mil"]["distance"])]
    rc = main(["score", str(tmp_path / "scan.pdf"), "--dpi", "100", *models, "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert rc == 0 and "(one per page: page_overlay_pNNN.png, 2 pages)" in out, out
    files = json.loads((tmp_path / "out" / "score.json").read_text())["files"]
    assert files[0] == "p001/0000.png" and files[-1].startswith("p002/")
    assert [f[:4] for f in files] == sorted(f[:4] for f in files)  # page 1's words, then page 2's
    rc = main(["score", str(tmp_path / "scan.pdf"), "--dpi", "100", "--pages", "1-3", *models,
               "--out", str(tmp_path / "out3")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--pages '1-3': page 3 is out of range" in err, err


# ---------------------------------------------------------------------------------------------
# Dagster asset


def test_questioned_document_score_asset(setup: dict[str, Any], tmp_path: Path) -> None:
    import dagster as dg

    from wrmil_assets.assets.score import questioned_document_score
    from wrmil_assets.definitions import all_assets, build_resources
    from wrmil_assets.resources import WrmilSettings

    settings = WrmilSettings(data_root=str(tmp_path / "data"), artifact_dir=str(setup["art"]), device="cpu")
    # The upstream records are read from <artifact_dir>/assets by the JSON IO manager.
    graph = [a for a in all_assets() if questioned_document_score.key not in a.keys] + [questioned_document_score]
    result = dg.materialize(
        graph, selection=[questioned_document_score],
        resources=build_resources(settings), instance=dg.DagsterInstance.ephemeral(),
        run_config={"ops": {"questioned_document_score": {"config": {
            "document_path": str(setup["mixed"]), "out_dir": str(tmp_path / "asset_out")}}}})
    assert result.success
    mat = result.asset_materializations_for_node("questioned_document_score")[0]
    md = mat.metadata
    assert md["model"].value == "segment_scan" and md["scoring"].value == "whole document"
    assert md["log10_lr"].value > 0 and md["flagged_fpr_5"].value == "yes" and md["flagged_fpr_1"].value == "yes"
    assert md["raw_score"].value > md["threshold_fpr_5"].value
    assert (tmp_path / "asset_out" / "strip.png").is_file()
    record = json.loads((setup["art"] / "assets" / "questioned_document_score.json").read_text())
    assert record["raw_score"] == pytest.approx(md["raw_score"].value)
    assert record["log10_lr"] == pytest.approx(md["log10_lr"].value) and record["passage"]["first"] in FOREIGN
    assert "data:image/png;base64," in md["strip"].value and record["top_words"][0]["file"] in md["top_words"].value
