"""Scoring a page scan: the flagged passage, its outline, and the scored page end to end (toy models
from ``tests/support/scoring.py`` on a page of their host's and forger's words)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from PIL import Image

from tests.support.pages import write_scoring_page
from tests.support.scoring import FOREIGN, scoring_setup
from wrmil_core.errors import WrmilInputError
from wrmil_core.plots import png_data_uri
from wrmil_core.scoring.page import (
    PASSAGE_COLOUR,
    SMALL_WRITING_PX,
    draw_scored_page,
    flagged_passage,
    is_page_path,
    legend_font,
    legend_lines,
    passage_outline,
    score_page,
    small_writing_warning,
    word_colours,
    word_evidence,
    wrap_text,
)
from wrmil_core.scoring.score import DocumentScore


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return scoring_setup(tmp_path_factory)


def _score(window_scores: list[float], starts: list[int], n_words: int, window_size: int = 5) -> DocumentScore:
    """A DocumentScore with only what ``flagged_passage`` reads filled in meaningfully."""
    return DocumentScore(
        document="d", files=[f"{i}.png" for i in range(n_words)], probability=max(window_scores), thresholds={"max_f1": 0.5},
        decisions={}, window_starts=starts, window_scores=window_scores, window_raw=window_scores, bag_probabilities=[],
        word_scores=[], word_distances=[], top_words=[], model_name="m", mil_model_dir="", mil_model_id=None,
        embedding_model_dir="", embedding_model_id=None, window_size=window_size, bag_size=2, short_document=False)


def test_flagged_passage_is_the_longest_run_of_windows_at_or_above_the_threshold() -> None:
    starts = [0, 5, 10, 15, 20, 25]
    assert flagged_passage(_score([0.1, 0.2, 0.3, 0.4, 0.2, 0.1], starts, 30)) is None
    assert flagged_passage(_score([0.1, 0.6, 0.5, 0.4, 0.9, 0.1], starts, 30)) == (5, 14)  # two windows beat one
    assert flagged_passage(_score([0.1, 0.6, 0.1, 0.9, 0.1, 0.1], starts, 30)) == (15, 19)  # tie: the higher score
    # The last window ends at the last word (a final window may overlap the one before it).
    assert flagged_passage(_score([0.1, 0.1, 0.7], [0, 5, 7], 12)) == (7, 11)


def test_passage_outline_has_one_box_per_line() -> None:
    boxes = pl.DataFrame({"word_index": [0, 1, 2, 3, 4], "line": [0, 0, 0, 1, 1], "x0": [0, 50, 100, 0, 60],
                          "y0": [10, 12, 8, 60, 62], "x1": [40, 90, 140, 50, 100], "y1": [30, 31, 29, 80, 85]})
    assert passage_outline(boxes, (1, 3), pad=2) == [(48, 6, 142, 33), (-2, 58, 52, 82)]
    assert passage_outline(boxes, (4, 4), pad=0) == [(60, 62, 100, 85)]


def test_word_colours_rank_the_evidence_within_the_page() -> None:
    # Bunched evidence (every word far above any fixed threshold) still runs from green to red.
    colours = word_colours(np.array([2.02, 2.00, 2.01, 2.01]))
    (r0, g0, _), (r1, g1, _) = colours[1], colours[0]
    assert g0 > r0 and r1 > g1  # the weakest green, the strongest red
    assert colours[2] == colours[3] and colours[2] not in (colours[0], colours[1])  # ties share a colour
    assert word_colours(np.array([-1.0, 5.0])) == word_colours(np.array([0.1, 0.2]))  # only the order counts
    assert word_colours(np.zeros(0)) == []


def test_word_evidence_prefers_the_calibrated_word_lr() -> None:
    s = _score([0.9], [0], 3)
    s.word_scores = [0.9, 0.95, 0.97]
    assert word_evidence(s)[1] == "word score" and word_evidence(s)[0].tolist() == [0.9, 0.95, 0.97]
    s.word_log10_lr = [0.5, -0.2, 1.5]
    values, name = word_evidence(s)
    assert name == "word log10 LR" and values.tolist() == [0.5, -0.2, 1.5]


def test_legend_gives_the_documents_log10_lr_and_its_verbal_equivalent() -> None:
    s = _score([0.9], [0], 20)
    s.log10_lr, s.verbal = 1.5, "moderate support for more than one writer"
    lines = legend_lines(s, np.array([0.2, 1.7]), "word log10 LR", (3, 9))
    assert lines[0].startswith("log10 LR = +1.50: moderate support for more than one writer")
    assert "+0.20 .. +1.70" in lines[1] and "words 3-9" in lines[1] and "word log10 LR" in lines[1]
    assert not any("P(more than one writer)" in line for line in lines)
    s.log10_lr = None
    assert legend_lines(s, np.array([0.5]), "word score", None)[0].startswith("uncalibrated: raw score 0.90")


def test_page_paths() -> None:
    assert is_page_path("scan.PNG") and is_page_path("a/b.tif") and not is_page_path("doc/")
    assert not is_page_path("order.csv")


def test_scored_page_outlines_the_forged_passage(setup: dict[str, Any], tmp_path: Path) -> None:
    truth = write_scoring_page(tmp_path / "page.png", foreign=FOREIGN)
    out = tmp_path / "out"
    result = score_page(tmp_path / "page.png", setup["emb_dir"], setup["mil"]["distance"], out)
    assert result.score.probability >= result.score.decision_threshold[1]
    assert result.passage is not None
    first, last = result.passage
    # Every outlined word is one of the forger's (by position on the page: the cut may split a faint word).
    forged = truth.filter(pl.col("word_index").is_in(list(FOREIGN)))
    for x0, y0, x1, y1 in result.boxes.filter(pl.col("word_index").is_between(first, last)).select(
            "x0", "y0", "x1", "y1").iter_rows():
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        assert forged.filter((pl.col("x0") <= cx) & (cx <= pl.col("x1")) & (pl.col("y0") <= cy) & (cy <= pl.col("y1"))).height
    assert last - first + 1 >= 5  # at least one window
    table = pl.read_parquet(out / "page_scores.parquet")
    assert table["in_passage"].to_list() == [first <= i <= last for i in range(table.height)]
    assert table["score"].to_list() == pytest.approx(result.score.word_scores)
    assert table["evidence"].to_list() == pytest.approx(word_evidence(result.score)[0].tolist())
    record = json.loads((out / "page.json").read_text())
    assert record["passage"] == [first, last] and record["overlay"] == str(out / "page_overlay.png")
    assert record["raw_score"] == result.score.probability and record["log10_lr"] == result.score.log10_lr
    for name in ("score.json", "strip.png", "words.parquet", "words.overlay.png", "words/0000.png"):
        assert (out / name).is_file(), name
    # the case report names the page and embeds the overlay, not the strip
    report = (out / "case_report.html").read_text()
    assert result.outputs["case_report"] == out / "case_report.html" and str(tmp_path / "page.png") in report
    assert png_data_uri(out / "page_overlay.png") in report and png_data_uri(out / "strip.png") not in report
    # The outline is drawn in its colour around the passage's first word; a genuine word's box is green.
    overlay = np.asarray(Image.open(out / "page_overlay.png").convert("RGB"))
    x0, y0, x1, y1 = result.boxes.row(first)[3:]
    band = overlay[y0 - 25:y1 + 25, x0 - 25:x0]
    assert (np.abs(band.astype(int) - PASSAGE_COLOUR).sum(axis=2) < 30).any()
    gx0, gy0 = result.boxes.row(0)[3:5]
    r, g, b = overlay[gy0, gx0 + 5].astype(int)
    assert g > r and g > b


def test_pages_that_cannot_be_scored_are_refused(setup: dict[str, Any], tmp_path: Path) -> None:
    models = (setup["emb_dir"], setup["mil"]["distance"])
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(WrmilInputError, match="broken.png: not an image"):
        score_page(tmp_path / "broken.png", *models, tmp_path / "out")
    write_scoring_page(tmp_path / "short.png", n=7, size=(700, 400))
    with pytest.raises(WrmilInputError, match=r"short.png: 7 word\(s\) found, scoring needs at least 10"):
        score_page(tmp_path / "short.png", *models, tmp_path / "out")
    with pytest.raises(WrmilInputError, match="MIL model"):
        score_page(tmp_path / "short.png", setup["emb_dir"], setup["mil_wrong_dim"], tmp_path / "out")
    assert not (tmp_path / "out" / "page_overlay.png").exists()


def _crop(tmp_path: Path, word_height: int, lines: slice | None = None) -> Path:
    """A passage cropped from a scan (600 x 250 px, synthetic), or some of its ``lines``, saved as PNG."""
    from wrmil_core.synth.pages import make_page, page_preset

    page = make_page(page_preset("small", width=600, height=250, margin=15, word_height=word_height,
                                 max_skew_deg=1.0), writer=3, seed=1)
    image = page.image
    if lines is not None:
        words = page.truth.filter(pl.col("line").is_in(list(range(lines.start, lines.stop))))
        image = image[int(words["y0"].min()) - 6:int(words["y1"].max()) + 6]
    path = tmp_path / f"crop_{word_height}_{lines.start if lines else 'all'}.png"
    Image.fromarray(image).save(path)
    return path


def test_a_five_line_crop_is_scored_with_a_small_writing_warning(setup: dict[str, Any], tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from wrmil_assets.cli import main

    crop = _crop(tmp_path, word_height=36)
    assert Image.open(crop).size == (600, 250)
    out = tmp_path / "out"
    rc = main(["score", str(crop), "--embedding-model", str(setup["emb_dir"]),
               "--mil-model", str(setup["mil"]["distance"]), "--out", str(out)])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    record = json.loads((out / "score.json").read_text())
    small = [w for w in record["warnings"] if w.startswith("small writing: median word height")]
    assert len(small) == 1 and f"under {SMALL_WRITING_PX} px" in small[0]
    measured = float(pl.read_parquet(out / "words.parquet").select((pl.col("y1") - pl.col("y0")).median()).item())
    assert f"median word height {measured:.0f} px" in small[0]
    assert f"warning: {small[0]}" in printed.out  # the printed summary
    assert json.loads((out / "page.json").read_text())["n_words"] >= 30
    # The legend's band is added above the crop (no margin to draw it on), so the page is kept whole.
    overlay = Image.open(out / "page_overlay.png")
    assert overlay.width == 600 and overlay.height > 250


def test_a_single_line_crop_is_scored(setup: dict[str, Any], tmp_path: Path) -> None:
    crop = _crop(tmp_path, word_height=24, lines=slice(0, 1))
    assert Image.open(crop).height < 50
    result = score_page(crop, setup["emb_dir"], setup["mil"]["distance"], tmp_path / "out")
    assert result.boxes["line"].n_unique() == 1 and result.score.n_words >= 10
    assert any(w.startswith("small writing") for w in result.score.warnings)


def test_small_writing_warning_and_legend() -> None:
    boxes = pl.DataFrame({"y0": [0, 0, 0], "y1": [20, 24, 80]})
    warning = small_writing_warning(boxes)
    assert warning is not None and "median word height 24 px" in warning and "300-600 dpi" in warning
    assert small_writing_warning(pl.DataFrame({"y0": [0, 0], "y1": [SMALL_WRITING_PX, 90]})) is None
    s = _score([0.9], [0], 20)
    s.warnings = [warning]
    assert legend_lines(s, np.array([0.5]), "word score", None)[-1] == f"warning: {warning}"
def test_wrap_text_fits_the_width_and_loses_nothing() -> None:
    font = legend_font(300)
    text = "log10 LR = +1.50: moderate support (H1 more than one writer vs H0 one writer) " + "x" * 80
    wrapped = wrap_text(text, font, 200)
    assert len(wrapped) > 2 and all(font.getlength(line) <= 200 for line in wrapped)
    assert "".join(wrapped).replace(" ", "") == text.replace(" ", "")  # the long word is cut, not dropped
    assert " ".join(wrapped[:3]).startswith("log10 LR = +1.50: moderate support")  # broken at spaces
    assert wrap_text("fits", font, 1000) == ["fits"] and wrap_text("", font, 100) == []
    assert all(len(line) == 1 for line in wrap_text("abc", font, 1))  # narrower than a letter: one per line


def test_the_legend_of_a_narrow_page_is_wrapped_inside_the_canvas() -> None:
    s = _score([0.9], [0], 4)
    s.log10_lr, s.verbal = 1.5, "moderate support for more than one writer"
    s.word_scores = [0.2, 0.4, 0.6, 0.9]
    image = np.full((500, 300), 250, dtype=np.uint8)
    boxes = pl.DataFrame({"word_index": [0, 1, 2, 3], "line": [0, 0, 1, 1], "x0": [20, 150, 20, 150],
                          "y0": [300, 300, 400, 400], "x1": [120, 280, 120, 280], "y1": [340, 340, 440, 440]})
    canvas = draw_scored_page(image, boxes, s, (2, 3))
    assert canvas.width == 300
    font = legend_font(canvas.width)
    margin = font.size // 2
    lines = legend_lines(s, word_evidence(s)[0], word_evidence(s)[1], (2, 3))
    wrapped = [part for line in lines for part in wrap_text(line, font, canvas.width - 2 * margin)]
    # every drawn line fits inside the canvas with the same font, and the wrapped text is all the legend's
    assert all(margin + font.getlength(part) <= canvas.width - margin for part in wrapped)
    assert " ".join(wrapped).split() == " ".join(lines).split()
    # on the canvas: the band holds ink down to its last line, and nothing touches the right edge
    pixels = np.asarray(canvas.convert("L"))
    band = round(0.4 * font.size) + round(1.3 * font.size) * len(wrapped)
    ink_rows = np.flatnonzero((pixels[:band] < 128).any(axis=1))
    assert len(wrapped) > len(lines) and ink_rows.max() > band - round(1.3 * font.size)
    assert (pixels[:band, canvas.width - margin // 2:] == 255).all()
