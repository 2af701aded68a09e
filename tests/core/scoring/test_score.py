"""Questioned-document scoring: ``wrmil_core.scoring.score``, ``wrmil score`` and its Dagster asset.

The embedding here is a deterministic toy, not a trained network (training one that separates
synthetic writers takes minutes on a CPU): a randomly initialised timm CNN whose BatchNorm
statistics are estimated on synthetic words, so its features are standardised random conv
features. Those separate hands that differ in ink darkness, stroke width and slant, so the
questioned documents below are written by a light, thin, back-slanted host and a forger with
heavy, black, forward-slanted strokes (each with its own synthetic letter shapes). The MIL model
is the training-free ``distance`` model saved with thresholds; an untrained ``abmil`` covers the
attention-model branch.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from wrmil_core import synth
from wrmil_core.artifacts import save_model
from wrmil_core.errors import WrmilInputError
from wrmil_core.scoring.score import (DocumentScore, list_document_images, natural_key, resolve_model_dirs, score_document,
                              sliding_bags, window_starts, write_outputs)

WORDS = list(synth.DEMO.words)
EMB_DIM = 32
WINDOW, BAG = 5, 10
N_WORDS = 60                 # 12 windows -> 3 sliding bags of 10
FOREIGN = range(25, 35)      # a 10-word passage: windows 5 and 6
# A cosine distance of 0.45 of a window from the rest of its bag, on the bag-probability scale.
THRESHOLDS = {"max_f1": float(1 / (1 + np.exp(-0.45))), "fpr_5": float(1 / (1 + np.exp(-0.6)))}


def host_style(writer: int) -> synth.WriterStyle:
    return dataclasses.replace(synth.sample_writer_style(writer, 0), ink=70.0, stroke_width=1.3, slant=-0.1)


def forger_style(writer: int) -> synth.WriterStyle:
    return dataclasses.replace(synth.sample_writer_style(writer, 0), ink=0.0, stroke_width=3.0, slant=0.45)


def write_document(folder: Path, n: int = N_WORDS, foreign: range | None = None, seed: int = 0,
                   host: int = 10, forger: int = 11) -> Path:
    """Word images ``w0.png .. w{n-1}.png`` (the prompts' words in order) by one host, with the
    positions in ``foreign`` written by the forger."""
    folder.mkdir(parents=True, exist_ok=True)
    a, b = host_style(host), forger_style(forger)
    for i in range(n):
        style = b if foreign is not None and i in foreign else a
        synth.render_word(WORDS[i % len(WORDS)], style, np.random.default_rng([seed, i])).save(folder / f"w{i}.png")
    return folder


def toy_embedding_model(directory: Path) -> str:
    """Save the toy embedding (random CNN, BatchNorm statistics from synthetic words); return its id."""
    from wrmil_core.embedding.config import preset
    from wrmil_core.embedding.data import WordTransform
    from wrmil_core.embedding.model import build_model

    torch.manual_seed(0)
    # pinned backbone: the toy embedding must not change when the demo preset is retuned
    cfg = preset("demo", backbone="lcnet_050", device="cpu", num_workers=0, emb_dim=EMB_DIM, hidden_dim=64,
                 img_h=32, img_w=128)
    model = build_model(cfg)
    tf = WordTransform(cfg, train=False)
    styles = [host_style(w) if w % 2 else forger_style(w) for w in range(4)]
    x = torch.stack([tf(synth.render_word(WORDS[i], s, np.random.default_rng([9, k, i])))
                     for k, s in enumerate(styles) for i in range(len(WORDS))])
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batch
    model.train()
    with torch.no_grad():
        model(x)
    return save_model(directory, model.state_dict(), cfg.to_dict())


def save_mil(directory: Path, name: str, dim: int, embedding_model_id: str,
             thresholds: dict[str, float] = THRESHOLDS) -> Path:
    """Save an untrained MIL model the way ``mil.train`` does (config keys included)."""
    from wrmil_core.mil.models import build_mil_model

    torch.manual_seed(0)
    model = build_mil_model(name, dim)
    config = {"model_name": name, "hparams": model.hparams, "dim": dim, "bag_size": BAG, "window_size": WINDOW,
              "embedding_model_id": embedding_model_id, "thresholds": thresholds, "trainable": model.trainable,
              "val_auc": 0.9}
    save_model(directory, {k: v.float() for k, v in model.state_dict().items()}, config)
    return directory


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Models (toy embedding, distance + abmil MIL, mismatching MIL models), the records of a
    materialised artifact dir, and a genuine and a mixed document."""
    base = tmp_path_factory.mktemp("score")
    art = base / "artifacts"
    emb_dir = art / "arcface" / "model"
    emb_id = toy_embedding_model(emb_dir)
    mil = {n: save_mil(art / "mil" / n, n, EMB_DIM, emb_id) for n in ("distance", "abmil")}
    (art / "assets").mkdir(parents=True)
    (art / "assets" / "arcface_model.json").write_text(json.dumps(
        {"model_dir": str(emb_dir), "model_id": emb_id, "emb_dim": EMB_DIM}))
    (art / "assets" / "mil_model.json").write_text(json.dumps(
        {"embedding_model_id": emb_id,
         "models": {n: {"model_dir": str(d), "thresholds": THRESHOLDS, "val_auc": 0.9} for n, d in mil.items()}}))
    (art / "assets" / "difficulty_report.json").write_text(json.dumps({"best_model": "distance"}))
    return {
        "art": art, "emb_dir": emb_dir, "emb_id": emb_id, "mil": mil,
        "mil_wrong_dim": save_mil(base / "wrong_dim", "distance", 2 * EMB_DIM, emb_id),
        "mil_wrong_id": save_mil(base / "wrong_id", "distance", EMB_DIM, "0123456789abcdef"),
        "genuine": write_document(base / "genuine"),
        "mixed": write_document(base / "mixed", foreign=FOREIGN),
        "base": base,
    }


@pytest.fixture(scope="module")
def scored(setup: dict) -> dict[str, DocumentScore]:
    return {d: score_document(setup[d], setup["emb_dir"], setup["mil"]["distance"]) for d in ("genuine", "mixed")}


# ---------------------------------------------------------------------------------------------
# Geometry and reading order


def test_window_and_bag_geometry() -> None:
    assert window_starts(60, 5).tolist() == list(range(0, 60, 5))
    assert window_starts(62, 5).tolist() == [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 57]  # tail covered
    assert window_starts(4, 5).tolist() == []
    bags = sliding_bags(12, 10)
    assert bags.shape == (3, 10) and bags[0, 0] == 0 and bags[-1, -1] == 11
    assert sliding_bags(6, 10).tolist() == [list(range(6))]  # short document: one bag of what there is


def test_reading_order_natural_and_csv(tmp_path: Path) -> None:
    for name in ("w10.png", "w2.png", "w1.png", "notes.txt", ".hidden.png"):
        (tmp_path / name).write_bytes(b"x")
    _, files = list_document_images(tmp_path)
    assert [p.name for p in files] == ["w1.png", "w2.png", "w10.png"]
    assert sorted(["p10", "p9", "P1"], key=natural_key) == ["P1", "p9", "p10"]
    order = tmp_path / "order.csv"
    order.write_text("image_path,order\nw1.png,3\nw10.png,1\nw2.png,2\n")
    _, files = list_document_images(tmp_path, order)
    assert [p.name for p in files] == ["w10.png", "w2.png", "w1.png"]
    _, files = list_document_images(order)  # the CSV itself as PATH
    assert [p.name for p in files] == ["w10.png", "w2.png", "w1.png"]


# ---------------------------------------------------------------------------------------------
# Scoring genuine and mixed documents


def test_mixed_document_scores_higher_and_foreign_words_top(scored: dict[str, DocumentScore]) -> None:
    gen, mix = scored["genuine"], scored["mixed"]
    assert (mix.n_words, mix.n_windows, mix.n_bags, mix.short_document) == (N_WORDS, 12, 3, False)
    assert mix.probability > gen.probability + 0.05, (gen.probability, mix.probability)
    assert mix.decisions["max_f1"] and not gen.decisions["max_f1"], (gen.probability, mix.probability)
    for s in (gen, mix):
        assert s.decisions == {k: s.probability >= v for k, v in THRESHOLDS.items()}
        assert s.probability == pytest.approx(max(s.bag_probabilities))
        assert len(s.word_scores) == s.n_words and len(s.window_scores) == s.n_windows
    # The two windows of the foreign passage are the two highest-scored windows.
    assert set(np.argsort(mix.window_scores)[-2:].tolist()) == {5, 6}, mix.window_scores
    top = [w["index"] for w in mix.top_words]
    assert len(top) == 10 and sum(i in FOREIGN for i in top) >= 9, top
    assert mix.top_words[0]["file"] == f"w{mix.top_words[0]['index']}.png"
    # Word score = score of its (best) window.
    assert mix.word_scores[27] == pytest.approx(mix.window_scores[5])


def test_unaligned_passage_is_found(setup: dict) -> None:
    """A passage that straddles window boundaries (positions 22..33) is still found."""
    doc = write_document(setup["base"] / "unaligned", foreign=range(22, 34), seed=1)
    s = score_document(doc, setup["emb_dir"], setup["mil"]["distance"], top_k=15)
    top = [w["index"] for w in s.top_words]
    assert sum(i in range(22, 34) for i in top) >= 10, top
    assert int(np.argmax(s.window_scores)) in (4, 5, 6)


def test_short_document_scored_as_one_bag(setup: dict) -> None:
    doc = write_document(setup["base"] / "short", n=30, foreign=range(10, 15))
    s = score_document(doc, setup["emb_dir"], setup["mil"]["distance"])
    assert s.short_document and s.n_bags == 1 and s.n_windows == 6
    assert int(np.argmax(s.window_scores)) == 2
    assert "shorter than one bag" in s.summary()


def test_attention_model_scores_on_probability_scale(setup: dict) -> None:
    s = score_document(setup["mixed"], setup["emb_dir"], setup["mil"]["abmil"])
    assert s.model_name == "abmil" and 0.0 <= s.probability <= 1.0
    assert all(0.0 <= v <= s.probability + 1e-9 for v in s.window_scores)


def test_outputs_json_and_png(scored: dict[str, DocumentScore], tmp_path: Path) -> None:
    paths = write_outputs(scored["mixed"], tmp_path / "out")
    doc = json.loads(paths["json"].read_text())
    assert doc["probability"] == pytest.approx(scored["mixed"].probability)
    assert doc["n_words"] == N_WORDS and len(doc["window_scores"]) == 12 and doc["top_words"][0]["rank"] == 1
    assert set(doc["decisions"]) == set(THRESHOLDS) and doc["embedding_model_id"]
    with Image.open(paths["strip"]) as im:
        assert im.format == "PNG" and im.width == 1600 and im.height > 100
        rgb = np.asarray(im.convert("RGB"), dtype=np.int32)
    # Foreign (red) tiles: some pixels far redder than green.
    assert ((rgb[..., 0] - rgb[..., 1]) > 80).any()


# ---------------------------------------------------------------------------------------------
# Model resolution and the CLI


def test_resolve_latest_models(setup: dict) -> None:
    emb, mil = resolve_model_dirs(setup["art"])
    assert emb == setup["emb_dir"] and mil == setup["mil"]["distance"]  # the report's best model
    assert resolve_model_dirs(setup["art"], "abmil")[1] == setup["mil"]["abmil"]
    with pytest.raises(WrmilInputError, match="not among the trained models"):
        resolve_model_dirs(setup["art"], "nope")


def test_cli_scores_with_latest_models(setup: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from wrmil_assets.cli import main

    rc = main(["score", str(setup["mixed"]), "--artifact-dir", str(setup["art"]), "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "P(more than one writer)" in out and "MORE THAN ONE WRITER" in out
    assert (tmp_path / "score.json").is_file() and (tmp_path / "strip.png").is_file()
    assert str(tmp_path / "strip.png") in out


def _bad_cases(setup: dict, tmp: Path) -> dict[str, tuple[list[str], str]]:
    few = write_document(tmp / "few", n=3)
    one_window = write_document(tmp / "one_window", n=7)
    broken = write_document(tmp / "broken", n=20)
    (broken / "w7.png").write_bytes(b"not a png at all")
    bad_csv = tmp / "bad.csv"
    bad_csv.write_text("file,position\nw0.png,0\n")
    missing_csv = tmp / "missing.csv"
    missing_csv.write_text("image_path,order\nw0.png,0\nw99.png,1\n")
    models = ["--embedding-model", str(setup["emb_dir"])]
    return {
        "fewer words than one window": ([str(few), *models, "--mil-model", str(setup["mil"]["distance"])],
                                        "fewer than one window"),
        "a single window": ([str(one_window), *models, "--mil-model", str(setup["mil"]["distance"])],
                            "only one window"),
        "unreadable image": ([str(broken), *models, "--mil-model", str(setup["mil"]["distance"])],
                             "w7.png"),
        "other embedding dimension": ([str(setup["mixed"]), *models, "--mil-model", str(setup["mil_wrong_dim"])],
                                      "64-d embeddings"),
        "other embedding model": ([str(setup["mixed"]), *models, "--mil-model", str(setup["mil_wrong_id"])],
                                  "0123456789abcdef"),
        "missing folder": ([str(tmp / "nowhere"), *models, "--mil-model", str(setup["mil"]["distance"])],
                           "does not exist"),
        "order CSV without columns": ([str(setup["mixed"]), "--order-csv", str(bad_csv), *models,
                                       "--mil-model", str(setup["mil"]["distance"])], "image_path and order"),
        "order CSV naming a missing file": ([str(setup["mixed"]), "--order-csv", str(missing_csv), *models,
                                             "--mil-model", str(setup["mil"]["distance"])], "line 3"),
        "no materialised models": ([str(setup["mixed"]), "--artifact-dir", str(tmp / "empty_artifacts")],
                                   "wrmil run"),
        "models swapped": ([str(setup["mixed"]), "--embedding-model", str(setup["mil"]["distance"]),
                            "--mil-model", str(setup["emb_dir"])], "not an embedding model directory"),
        "unknown model name": ([str(setup["mixed"]), "--artifact-dir", str(setup["art"]), "--model", "nope"],
                               "not among the trained models"),
    }


def test_cli_bad_input_exits_2_with_clear_message(setup: dict, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    from wrmil_assets.cli import main

    for case, (args, needle) in _bad_cases(setup, tmp_path).items():
        rc = main(["score", *args, "--out", str(tmp_path / "out")])
        captured = capsys.readouterr()
        assert rc == 2, (case, captured.out, captured.err)
        assert needle in captured.err, (case, captured.err)
        assert captured.err.startswith("wrmil score: error:") and "Traceback" not in captured.err, case
    assert not (tmp_path / "out" / "score.json").exists()


# ---------------------------------------------------------------------------------------------
# Dagster asset


def test_questioned_document_score_asset(setup: dict, tmp_path: Path) -> None:
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
    assert md["probability"].value > THRESHOLDS["max_f1"] and md["model"].value == "distance"
    assert md["decision_max_f1"].value == "several writers"
    assert (tmp_path / "asset_out" / "strip.png").is_file()
    record = json.loads((setup["art"] / "assets" / "questioned_document_score.json").read_text())
    assert record["probability"] == pytest.approx(md["probability"].value)
    assert "data:image/png;base64," in md["strip"].value and record["top_words"][0]["file"] in md["top_words"].value
