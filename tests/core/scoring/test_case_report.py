"""The case report of a scored document: ``wrmil_core.scoring.case_report`` (case_report.html)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import pytest
from PIL import Image

from tests.support.scoring import scoring_setup
from wrmil_core.scoring.case_report import CASE_REPORT, conclusion, limitations, render_case_report
from wrmil_core.scoring.score import DocumentScore, score_document
from wrmil_core.scoring.strip import write_outputs
from wrmil_core.scoring.verbal import H0, H1

WHEN = datetime(2026, 3, 4, 10, 30, tzinfo=timezone.utc)
CALIBRATION = {"source": "length", "calibrated_length_words": 50, "length_method": "runs", "n_h1": 160, "n_h0": 40,
               "n_writers": 8, "kind": "logistic", "cllr_val_pav": 0.4321, "cllr_val_logistic": 0.3456,
               "llr_bounds": [-2.0, 3.0], "warning": None}
SECTIONS = ("1. Case and item", "2. Question and propositions", "3. Examination", "4. Results", "5. Evaluation",
            "6. Limitations", "7. Conclusion")


def _models(tmp_path: Path) -> tuple[Path, Path]:
    """An embedding and a MIL model directory with the config.json keys the pipeline saves."""
    emb, mil = tmp_path / "emb", tmp_path / "mil"
    emb.mkdir(parents=True)
    mil.mkdir()
    (emb / "config.json").write_text(json.dumps({"backbone": "resnet18d", "emb_dim": 128, "method": "arcface",
                                                 "n_train_writers": 123, "val_metrics": {"auc": 0.9512}}))
    (mil / "config.json").write_text(json.dumps({"model_name": "fused", "trainable": False, "val_auc": 0.8766}))
    return emb, mil


def _score(tmp_path: Path, n_words: int = 60, **kw: object) -> DocumentScore:
    """A calibrated DocumentScore of a folder ``n_words`` long, flagged at 5 % but not at 1 % FPR."""
    emb, mil = _models(tmp_path)
    fields = dict(
        document=str(tmp_path / "doc"), files=[f"w{i}.png" for i in range(n_words)], probability=0.7,
        thresholds={"fpr_1": 0.81, "fpr_5": 0.62}, decisions={"fpr_1": False, "fpr_5": True},
        window_starts=[0], window_scores=[0.7], window_raw=[0.7], bag_probabilities=[0.7],
        word_scores=[0.5] * n_words, word_distances=[0.1] * n_words,
        top_words=[{"rank": 1, "index": 3, "file": "w3.png", "score": 0.9, "log10_lr": 1.25}],
        model_name="fused", mil_model_dir=str(mil), mil_model_id="milid123", embedding_model_dir=str(emb),
        embedding_model_id="embid456", window_size=5, bag_size=10, short_document=False, log10_lr=2.345,
        verbal="moderately strong support for more than one writer", calibration=dict(CALIBRATION),
        passage={"first": 20, "last": 29, "first_file": "w20.png", "last_file": "w29.png", "n_words": 10},
        writers={"count": 2, "estimate": "2"}, word_main_posterior=[0.9] * (n_words - 2) + [0.2, 0.1])
    fields.update(kw)
    return DocumentScore(**fields)  # type: ignore[arg-type]


def _section(text: str, title: str) -> str:
    """The HTML of one section (from its heading to the next)."""
    return text.split(f"<h2>{title}</h2>", 1)[1].split("<h2>", 1)[0]


def test_the_report_holds_every_section_and_its_key_values(tmp_path: Path) -> None:
    strip = tmp_path / "strip.png"
    Image.new("RGB", (20, 10), (255, 0, 0)).save(strip)
    text = render_case_report(_score(tmp_path), strip, when=WHEN)
    positions = [text.index(f"<h2>{s}</h2>") for s in SECTIONS]
    assert positions == sorted(positions)  # in ENFSI order
    case = _section(text, SECTIONS[0])
    assert str(tmp_path / "doc") in case and "60" in case and "2026-03-04" in case
    assert f"wrmil {version('wrmil')}" in case
    question = _section(text, SECTIONS[1])
    assert f"{H1} wrote this document" in question and f"{H0} wrote it" in question
    exam = _section(text, SECTIONS[2])
    for value in ("embid456", "milid123", "fused", "resnet18d", "123", "0.951", "0.877", "not recorded"):
        assert value in exam, value
    results = _section(text, SECTIONS[3])
    assert "data:image/png;base64," in results and "words 20-29" in results and ">2<" in results
    assert "2 of 60: 58, 59" in results and "<td>w3.png</td><td>+1.25</td><td>0.90</td>" in results
    evaluation = _section(text, SECTIONS[4])
    assert "log10 LR = +2.35" in evaluation and "moderately strong support for more than one writer" in evaluation
    assert "not the probability of either proposition" in evaluation
    assert "0.810" in evaluation and "0.620" in evaluation and "1 % FPR" in evaluation and "5 % FPR" in evaluation
    assert "at most 5 % of 40 genuine validation documents" in evaluation
    assert "measured in the difficulty report" in evaluation  # no test-writer figure recorded here
    assert "0.432" in evaluation and "0.346" in evaluation and "logistic" in evaluation
    assert "8" in evaluation and "40 genuine (H0), 160 mixed (H1)" in evaluation
    limits = _section(text, SECTIONS[5])
    assert "Few validation writers (8" in limits and "validation population" in limits
    assert "Short document" not in limits and "Uncalibrated" not in limits
    verdict = _section(text, SECTIONS[6])  # 10 ** 2.345 = 221
    assert "about 221 times more probable if more than one writer wrote the questioned document" in verdict
    assert "moderately strong support for the proposition that more than one writer wrote" in verdict


def test_limitations_of_a_short_small_writing_document(tmp_path: Path) -> None:
    small = "small writing: median word height 20 px, under 32 px"
    extrapolated = "the document has 12 words, fewer than the shortest calibrated length (25 words)"
    score = _score(tmp_path, n_words=12, short_document=True, warnings=[extrapolated, small],
                   calibration={**CALIBRATION, "n_writers": 45, "calibrated_length_words": 25})
    lines = limitations(score)
    assert lines[0].startswith("Short document: 12 words, fewer than the calibrated length (25 words)")
    assert "shorter than one bag (10 windows)" in lines[0]
    assert any(small in x for x in lines) and any(extrapolated in x for x in lines)
    assert not any("Few validation writers" in x for x in lines)  # 45 writers
    text = render_case_report(score, None, when=WHEN)
    assert "small writing: median word height 20 px" in _section(text, SECTIONS[5])


def test_uncalibrated_and_negative_conclusions(tmp_path: Path) -> None:
    bare = _score(tmp_path, log10_lr=None, verbal="", calibration={})
    assert any(x.startswith("Uncalibrated") for x in limitations(bare))
    assert conclusion(bare).startswith("No evaluative conclusion")
    assert "No likelihood ratio" in render_case_report(bare, None, when=WHEN)
    against = _score(tmp_path / "b", log10_lr=-1.5)
    assert conclusion(against).startswith("The findings are about 31.6 times more probable if one writer wrote")
    assert "moderate support for the proposition that one writer wrote" in conclusion(against)


def test_the_report_is_self_contained_and_escapes_file_names(tmp_path: Path) -> None:
    evil = '<script>alert("x")</script>&"q\'.png'
    score = _score(tmp_path, document=str(tmp_path / '<doc name="x">'),
                   top_words=[{"rank": 1, "index": 0, "file": evil, "score": 0.9, "log10_lr": 1.0}],
                   passage={"first": 0, "last": 1, "first_file": evil, "last_file": "w1.png", "n_words": 2})
    strip = tmp_path / "s<t>.png"
    Image.new("RGB", (4, 4)).save(strip)
    text = render_case_report(score, strip, when=WHEN)
    assert "<script" not in text and '<doc name="x">' not in text and evil not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&quot;q&#x27;.png" in text
    assert "alt='s&lt;t&gt;.png'" in text
    refs = re.findall(r"""(?:src|href)\s*=\s*['"]?([^'" >]*)""", text, flags=re.IGNORECASE)
    assert refs and all(r.startswith("data:") for r in refs)
    assert "<link" not in text and "@import" not in text and "url(" not in text
    assert "@media print" in text


def test_write_outputs_writes_the_report_beside_score_json(tmp_path_factory: pytest.TempPathFactory,
                                                         tmp_path: Path) -> None:
    setup = scoring_setup(tmp_path_factory)
    score = score_document(setup["mixed"], setup["emb_dir"], setup["mil"]["distance"])
    paths = write_outputs(score, tmp_path / "out")
    assert paths["case_report"] == tmp_path / "out" / CASE_REPORT and paths["case_report"].is_file()
    assert json.loads(paths["json"].read_text())["outputs"]["case_report"] == str(paths["case_report"])
    assert f"case report: {paths['case_report']}" in score.summary()
    text = paths["case_report"].read_text()
    assert f"log10 LR = {score.log10_lr:+.2f}" in text and score.embedding_model_id in text
    assert str(score.mil_model_id) in text and "data:image/png;base64," in text
