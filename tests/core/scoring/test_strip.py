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
from wrmil_core.scoring.strip import _flow, write_outputs


def test_outputs_json_and_png(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    setup = scoring_setup(tmp_path_factory)
    score = score_document(setup["mixed"], setup["emb_dir"], setup["mil"]["distance"])
    paths = write_outputs(score, tmp_path / "out")
    doc = json.loads(paths["json"].read_text())
    assert doc["probability"] == pytest.approx(score.probability)
    assert doc["n_words"] == N_WORDS and len(doc["window_scores"]) == 12 and doc["top_words"][0]["rank"] == 1
    assert set(doc["decisions"]) == set(THRESHOLDS) and doc["embedding_model_id"]
    assert score.outputs == {"json": str(paths["json"]), "strip": str(paths["strip"])}
    assert not list((tmp_path / "out").glob("*.tmp"))
    with Image.open(paths["strip"]) as im:
        assert im.format == "PNG" and im.width == 1600 and im.height > 100
        rgb = np.asarray(im.convert("RGB"), dtype=np.int32)
    # Foreign (red) tiles: some pixels far redder than green.
    assert ((rgb[..., 0] - rgb[..., 1]) > 80).any()
    # the document folder itself is refused as output (CLI and asset alike): it would gain a "word"
    n_files = len(list(Path(score.document).iterdir()))
    with pytest.raises(WrmilInputError, match="is the document folder"):
        write_outputs(score, score.document)
    assert len(list(Path(score.document).iterdir())) == n_files


def test_tiles_flow_into_rows() -> None:
    assert _flow([700, 700, 700, 100], 1600) == [(0, 0), (702, 0), (0, 1), (702, 1)]
    assert _flow([1700], 1600) == [(0, 0)]  # a tile wider than a row still gets one
