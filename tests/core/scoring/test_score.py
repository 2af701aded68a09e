"""Scoring questioned documents: ``wrmil_core.scoring.score`` (models and documents from
``tests/support/scoring.py``, each MIL model with a crafted ``calibration.json``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.support.scoring import (
    CALIBRATIONS,
    EMB_DIM,
    FOREIGN,
    N_WORDS,
    THRESHOLDS,
    crafted_evidence,
    save_mil,
    scoring_setup,
    sigmoid,
    write_document,
)
from wrmil_core.errors import WrmilInputError
from wrmil_core.evidence import EVIDENCE_FILE, save_evidence
from wrmil_core.mil.documents import whole_document
from wrmil_core.scoring.document import list_document_images
from wrmil_core.scoring.score import (
    DocumentScore,
    embed_images,
    load_scoring_models,
    read_model_pair,
    score_document,
)
from wrmil_core.scoring.strip import write_outputs
from wrmil_core.scoring.verbal import verbal_label


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return scoring_setup(tmp_path_factory)


@pytest.fixture(scope="module")
def scored(setup: dict[str, Any]) -> dict[str, DocumentScore]:
    return {d: score_document(setup[d], setup["emb_dir"], setup["mil"]["distance"]) for d in ("genuine", "mixed")}


@pytest.fixture(scope="module")
def scanned(setup: dict[str, Any]) -> dict[str, DocumentScore]:
    """The two documents scored by the word-level segment_scan detector (whole document)."""
    return {d: score_document(setup[d], setup["emb_dir"], setup["mil"]["segment_scan"]) for d in ("genuine", "mixed")}


def test_mixed_document_scores_higher_and_foreign_words_top(scored: dict[str, DocumentScore]) -> None:
    gen, mix = scored["genuine"], scored["mixed"]
    assert (mix.n_words, mix.n_windows, mix.n_bags, mix.short_document) == (N_WORDS, 12, 3, False)
    assert mix.scoring == "sliding bags"
    assert mix.probability > gen.probability + 0.05, (gen.probability, mix.probability)
    # the decisions use the validation FPR thresholds of calibration.json, not the model's max-F1
    val = {k: sigmoid(CALIBRATIONS["distance"][k]) for k in ("fpr_1", "fpr_5")}
    assert mix.thresholds == pytest.approx(val) and mix.model_thresholds == THRESHOLDS
    assert mix.decisions["fpr_5"] and not gen.decisions["fpr_5"], (gen.probability, mix.probability)
    assert mix.log10_lr > 0 > gen.log10_lr, (gen.log10_lr, mix.log10_lr)
    for s in (gen, mix):
        assert s.decisions == {k: s.probability >= v for k, v in val.items()}
        assert s.probability == pytest.approx(max(s.bag_probabilities))
        assert len(s.word_scores) == s.n_words and len(s.window_scores) == s.n_windows
    # The two windows of the foreign passage are the two highest-scored windows.
    assert set(np.argsort(mix.window_scores)[-2:].tolist()) == {5, 6}, mix.window_scores
    top = [w["index"] for w in mix.top_words]
    assert len(top) == 10 and sum(i in FOREIGN for i in top) >= 9, top
    assert mix.top_words[0]["file"] == f"w{mix.top_words[0]['index']}.png"
    # Word score = score of its (best) window.
    assert mix.word_scores[27] == pytest.approx(mix.window_scores[5])
    assert all(mix.word_scores[w["index"]] == mix.window_scores[w["window"]] for w in mix.top_words)


def test_logit_model_windows_are_sigmoid_of_their_scores(scored: dict[str, DocumentScore]) -> None:
    """``distance`` declares window_output "logit": its window scores are sigmoid(raw)."""
    s = scored["mixed"]
    np.testing.assert_allclose(s.window_scores, 1 / (1 + np.exp(-np.asarray(s.window_raw))), rtol=1e-12)


def test_unaligned_passage_is_found(setup: dict[str, Any]) -> None:
    """A passage that straddles window boundaries (positions 22..33) is still found."""
    doc = write_document(setup["base"] / "unaligned", foreign=range(22, 34), seed=1)
    s = score_document(doc, setup["emb_dir"], setup["mil"]["distance"], top_k=15)
    top = [w["index"] for w in s.top_words]
    assert sum(i in range(22, 34) for i in top) >= 10, top
    assert int(np.argmax(s.window_scores)) in (4, 5, 6)


def test_short_document_scored_as_one_bag(setup: dict[str, Any]) -> None:
    doc = write_document(setup["base"] / "short", n=30, foreign=range(10, 15))
    s = score_document(doc, setup["emb_dir"], setup["mil"]["distance"])
    assert s.short_document and s.n_bags == 1 and s.n_windows == 6
    assert int(np.argmax(s.window_scores)) == 2
    assert "shorter than one bag" in s.summary()


def test_attention_model_scores_on_probability_scale(setup: dict[str, Any]) -> None:
    """``abmil`` declares window_output "attention": the most attended window of a bag scores
    the bag's probability, the others a share of it."""
    s = score_document(setup["mixed"], setup["emb_dir"], setup["mil"]["abmil"])
    assert s.model_name == "abmil" and 0.0 <= s.probability <= 1.0
    assert all(0.0 <= v <= s.probability + 1e-9 for v in s.window_scores)
    assert max(s.window_scores) == pytest.approx(s.probability)


def test_segment_scan_scores_the_whole_document_and_finds_the_passage(scanned: dict[str, DocumentScore]) -> None:
    gen, mix = scanned["genuine"], scanned["mixed"]
    assert mix.scoring == "whole document" and mix.n_bags == 1 and not mix.short_document
    assert len(mix.word_scores) == len(mix.word_log10_lr) == N_WORDS
    # the planted passage (words 25..34) is covered by the estimate, which stays about that long
    first, last = mix.passage_range
    planted = set(FOREIGN)
    found = set(range(first, last + 1))
    assert len(found & planted) >= 0.8 * len(planted) and len(found - planted) <= 2, (first, last)
    assert mix.passage["first_file"] == f"w{first}.png" and mix.passage["last_file"] == f"w{last}.png"
    # the passage's words carry more evidence than the rest
    inside = np.asarray(mix.word_log10_lr)[list(planted)]
    outside = np.delete(np.asarray(mix.word_log10_lr), list(planted))
    assert inside.min() > np.median(outside), (inside, outside)
    # log10 LR is the crafted calibration applied to the raw score; the decisions follow its thresholds
    cal = crafted_evidence("segment_scan", "x", **CALIBRATIONS["segment_scan"])
    for s in (gen, mix):
        assert s.log10_lr == pytest.approx(float(cal.log10_lr(np.array([s.probability]))[0]))
        assert s.verbal == verbal_label(s.log10_lr)
        assert s.decisions == {k: s.probability >= v for k, v in cal.thresholds.items()}
        assert s.calibration["source"] == "bags" and s.calibration["calibrated_length_words"] == 50
        assert (s.calibration["kind"], s.calibration["length_method"]) == ("pav", "bags")  # which calibrator
        assert s.metadata["calibrator"] == "pav" and "pav calibrator" in s.summary()
    assert mix.decisions == {"fpr_1": True, "fpr_5": True} and gen.decisions == {"fpr_1": False, "fpr_5": False}
    assert mix.log10_lr > 0.5 and "more than one writer" in mix.verbal
    assert "log10 LR" in mix.summary() and "flagged at 1 % FPR: yes" in mix.summary()


def _model_copy(setup: dict[str, Any], name: str, dest: Path) -> Path:
    shutil.copytree(setup["mil"][name], dest)
    return dest


def test_decisions_use_the_thresholds_in_calibration_json(setup: dict[str, Any], tmp_path: Path,
                                                          scanned: dict[str, DocumentScore]) -> None:
    """A calibration file whose 1 %-FPR threshold sits just above the mixed document's raw score and
    whose 5 %-FPR threshold just below it: flagged at 5 %, not at 1 %, whatever the LR."""
    raw = scanned["mixed"].probability
    model = _model_copy(setup, "segment_scan", tmp_path / "seg")
    d = json.loads((model / EVIDENCE_FILE).read_text())
    d["thresholds"] = {"fpr_1": raw + 1e-6, "fpr_5": raw - 1e-6}
    (model / EVIDENCE_FILE).write_text(json.dumps(d))
    s = score_document(setup["mixed"], setup["emb_dir"], model)
    assert s.thresholds == d["thresholds"] and s.decisions == {"fpr_1": False, "fpr_5": True}
    assert "flagged at 1 % FPR: no" in s.summary() and "flagged at 5 % FPR: yes" in s.summary()


def test_missing_calibration_is_refused_in_one_line(setup: dict[str, Any]) -> None:
    with pytest.raises(WrmilInputError, match=r"has no calibration.json .*re-materialise mil_model") as e:
        score_document(setup["mixed"], setup["emb_dir"], setup["mil_uncalibrated"])
    assert "\n" not in str(e.value)


def test_stale_calibration_is_refused(setup: dict[str, Any], tmp_path: Path) -> None:
    model = _model_copy(setup, "segment_scan", tmp_path / "seg")
    save_evidence(crafted_evidence("segment_scan", "another-model", **CALIBRATIONS["segment_scan"]), model)
    with pytest.raises(WrmilInputError, match="stale"):
        score_document(setup["mixed"], setup["emb_dir"], model)


def test_model_pair_refusals(setup: dict[str, Any]) -> None:
    emb, mil = setup["emb_dir"], setup["mil"]["distance"]
    pair = read_model_pair(emb, mil)
    assert (pair.window_size, pair.bag_size, pair.thresholds) == (5, 10, THRESHOLDS)
    with pytest.raises(WrmilInputError, match="64-d embeddings"):
        read_model_pair(emb, setup["mil_wrong_dim"])
    with pytest.raises(WrmilInputError, match="0123456789abcdef"):
        read_model_pair(emb, setup["mil_wrong_id"])
    with pytest.raises(WrmilInputError, match="not an embedding model directory"):
        read_model_pair(mil, emb)
    with pytest.raises(WrmilInputError, match="model.safetensors is missing; give a model directory written by wrmil"):
        read_model_pair(emb, setup["base"])


def test_fused_writer_count_in_score_json_is_the_detectors_own(setup: dict[str, Any], tmp_path: Path) -> None:
    """The default detector: score.json's score, writer count and word posteriors are what ``FusedMIL``
    gives the document on its own (``wrmil score`` computes its statistics once and shares them)."""
    fused_dir = save_mil(tmp_path / "fused", "fused", EMB_DIM, setup["emb_id"], calibrated=False)
    model_id = json.loads((fused_dir / "config.json").read_text())["model_id"]
    save_evidence(crafted_evidence("fused", model_id, **CALIBRATIONS["abmil"]), fused_dir)
    result = score_document(setup["mixed"], setup["emb_dir"], fused_dir)
    doc = json.loads(write_outputs(result, tmp_path / "out")["json"].read_text())

    models = load_scoring_models(setup["emb_dir"], fused_dir)
    emb, _ = embed_images(*list_document_images(setup["mixed"], None), models)
    x = torch.from_numpy(emb)[None, :, None, :]
    count, posterior = models.mil.writers(x)  # its own features, computed afresh
    prob, words, _ = whole_document(models.mil, emb)
    assert doc["scoring"] == "whole document" and doc["n_words"] == N_WORDS
    assert doc["writers"]["count"] == int(count[0]) and doc["writers"]["estimate"] == str(int(count[0]))
    assert doc["word_main_posterior"] == [round(float(p), 4) for p in posterior[0]]
    assert doc["raw_score"] == prob and doc["word_scores"] == words.tolist()
