"""Outputs of a scored document: ``wrmil_core.scoring.strip`` (score.json and strip.png)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.scoring import N_WORDS, THRESHOLDS, scoring_setup
from wrmil_core.errors import WrmilInputError
from wrmil_core.scoring.score import score_document
from wrmil_core.scoring.strip import _PASSAGE_RGB, _flow, header_lines, write_outputs
from wrmil_core.scoring.verbal import verbal_label


def test_outputs_json_and_png(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    setup = scoring_setup(tmp_path_factory)
    score = score_document(setup["mixed"], setup["emb_dir"], setup["mil"]["distance"])
    paths = write_outputs(score, tmp_path / "out")
    doc = json.loads(paths["json"].read_text())
    assert doc["raw_score"] == pytest.approx(score.probability) and "probability" not in doc
    assert doc["log10_lr"] == pytest.approx(score.log10_lr) and doc["verbal"] == verbal_label(score.log10_lr)
    assert doc["hypotheses"] == {"H1": "more than one writer", "H0": "one writer"} and "ENFSI" in doc["verbal_scale"]
    assert doc["n_words"] == N_WORDS and len(doc["window_scores"]) == 12 and doc["top_words"][0]["rank"] == 1
    assert len(doc["word_log10_lr"]) == len(doc["word_scores"]) == N_WORDS and "log10_lr" in doc["top_words"][0]
    assert set(doc["decisions"]) == {"fpr_1", "fpr_5"} and doc["model_thresholds"] == THRESHOLDS
    assert doc["calibration"]["source"] == "bags" and doc["calibration"]["fitted_on"] == "validation writers"
    first, last = doc["passage"]["first"], doc["passage"]["last"]
    assert doc["passage"]["first_file"] == f"w{first}.png" and doc["passage"]["last_file"] == f"w{last}.png"
    assert doc["embedding_model_id"]
    head = header_lines(score)
    assert f"log10 LR = {score.log10_lr:+.2f}" in head[0] and f"words {first}-{last}" in head[1]
    assert score.outputs == {"json": str(paths["json"]), "strip": str(paths["strip"]),
                             "case_report": str(paths["case_report"])}
    assert not list((tmp_path / "out").glob("*.tmp"))
    with Image.open(paths["strip"]) as im:
        assert im.format == "PNG" and im.width == 1600 and im.height > 100
        rgb = np.asarray(im.convert("RGB"), dtype=np.int32)
    # Foreign (red) tiles: some pixels far redder than green; the passage's blue frame.
    assert ((rgb[..., 0] - rgb[..., 1]) > 80).any()
    assert (rgb == np.array(_PASSAGE_RGB)).all(axis=-1).sum() > 100
    # the document folder itself is refused as output (CLI and asset alike): it would gain a "word"
    n_files = len(list(Path(score.document).iterdir()))
    with pytest.raises(WrmilInputError, match="is the document folder"):
        write_outputs(score, score.document)
    assert len(list(Path(score.document).iterdir())) == n_files


def test_tiles_flow_into_rows() -> None:
    assert _flow([700, 700, 700, 100], 1600) == [(0, 0), (702, 0), (0, 1), (702, 1)]
    assert _flow([1700], 1600) == [(0, 0)]  # a tile wider than a row still gets one
