"""Score a page scan: cut it into words (:mod:`wrmil_core.pages`), score the words in reading order
with the same models as a folder of word crops (:func:`~wrmil_core.scoring.score.score_document`),
and draw the evidence back onto the page.

The overlay colours each word box by its evidence ranked within the page (:func:`word_evidence`: the
word's log10 LR when the score is calibrated, else its raw word score; green the page's weakest, red
its strongest): a segment-scan detector puts nearly every word of a flagged page above the decision
threshold, so a fixed threshold scale would paint it all red. The legend gives the document's log10
LR with its verbal equivalent (the raw score when uncalibrated). The overlay outlines the estimated
foreign passage, a ``(first, last)``
word range in reading order: the caller's when given, else the document score's own estimate
(``DocumentScore.passage_range``, from the segment-scan detector), else :func:`flagged_passage`,
the longest run of consecutive windows at or above the decision threshold.

Outputs in ``out_dir``: ``words/`` (the crops), ``words.parquet`` (the page map) and
``words.overlay.png`` (numbered boxes, to check the cut), ``score.json`` and ``strip.png`` (as for a
folder), ``page_overlay.png`` (the scored page), ``page_scores.parquet`` (boxes with word scores and
the passage flag) and ``page.json`` (page, passage, doubts, paths).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
import polars as pl
from PIL import Image, ImageDraw, ImageFont
from scipy.stats import rankdata

from wrmil_core import pages
from wrmil_core.data.pages_input import PAGE_SUFFIXES
from wrmil_core.errors import WrmilInputError
from wrmil_core.runtime import Log, speaker
from wrmil_core.scoring.score import DocumentScore, read_model_pair, score_document
from wrmil_core.scoring.strip import write_outputs

WORDS_DIR = "words"
PAGE_OVERLAY = "page_overlay.png"
PAGE_SCORES = "page_scores.parquet"
PAGE_JSON = "page.json"
PASSAGE_COLOUR = (0, 70, 255)
WORD_CMAP = "RdYlGn_r"  # green (weakest evidence on the page) .. yellow .. red (strongest), as the strip


def is_page_path(path: str | Path) -> bool:
    """True when ``path`` names a page image (by its suffix) rather than a folder or an order CSV."""
    p = Path(path)
    return p.suffix.lower() in PAGE_SUFFIXES and not p.is_dir()


def flagged_passage(score: DocumentScore) -> tuple[int, int] | None:
    """``(first, last)`` word (reading order, inclusive) of the longest run of consecutive windows whose
    score reaches the decision threshold (ties: the run with the highest window score); ``None`` when
    no window does."""
    _, thr = score.decision_threshold
    ws = np.asarray(score.window_scores, dtype=np.float64)
    best: tuple[int, float, int, int] | None = None
    i = 0
    while i < len(ws):
        if ws[i] < thr:
            i += 1
            continue
        j = i
        while j + 1 < len(ws) and ws[j + 1] >= thr:
            j += 1
        run = (j - i + 1, float(ws[i:j + 1].max()), i, j)
        best = run if best is None or run[:2] > best[:2] else best
        i = j + 1
    if best is None:
        return None
    starts = score.window_starts[best[2]:best[3] + 1]
    return int(min(starts)), int(min(max(starts) + score.window_size, score.n_words) - 1)


@dataclass
class PageScore:
    """A scored page: the document score of its words, the page map, the outlined passage, the files."""

    page: Path
    score: DocumentScore
    boxes: pl.DataFrame
    doubtful: list[str]
    skew_deg: float
    passage: tuple[int, int] | None
    outputs: dict[str, Path] = field(default_factory=dict)

    def summary(self) -> str:
        """The document summary plus the page's lines (passage, doubts)."""
        lines = [self.score.summary()]
        if self.passage is not None:
            lines.append(f"outlined passage: words {self.passage[0]}-{self.passage[1]} (reading order)")
        if self.doubtful:
            lines.append("segmentation doubtful: " + "; ".join(self.doubtful) + " (check words.overlay.png)")
        return "\n".join(lines)


def score_page(page: str | Path, embedding_model_dir: str | Path, mil_model_dir: str | Path, out_dir: str | Path,
               *, segment_config: pages.SegmentConfig | None = None, passage: tuple[int, int] | None = None,
               device: str = "cpu", top_k: int = 10, log: Log = None) -> PageScore:
    """Segment ``page``, score its words and write the outputs (module docstring) to ``out_dir``.

    ``passage``: the foreign passage to outline (default: the score's estimate, else
    :func:`flagged_passage`). Raises
    :class:`WrmilInputError` for an unreadable file, an image that is not a page, a page with fewer
    words than two windows, or a model pair that does not fit.
    """
    page, out_dir = Path(page), Path(out_dir)
    window_size = read_model_pair(embedding_model_dir, mil_model_dir).window_size  # refuse bad models first
    image = pages.read_page(page)
    seg = pages.segment_page(image, segment_config, name=str(page))
    if seg.boxes.height < 2 * window_size:
        raise WrmilInputError(f"page {page}: {seg.boxes.height} word(s) found, scoring needs at least "
                              f"{2 * window_size} (two windows of {window_size}); is it a page of handwriting?")
    paths = pages.write_segmentation(seg, image, out_dir, WORDS_DIR)
    speaker(log)(f"score: {page.name}: {seg.boxes.height} words on {seg.boxes['line'].n_unique()} lines")
    score = score_document(paths["crops"], embedding_model_dir, mil_model_dir, device=device, top_k=top_k, log=log)
    result = PageScore(page=page, score=score, boxes=seg.boxes, doubtful=list(seg.doubtful), skew_deg=seg.skew_deg,
                       passage=passage or score.passage_range or flagged_passage(score))
    cut = {"crops": paths["crops"], "page_map": paths["page_map"], "cut_overlay": paths["overlay"]}
    result.outputs = {**cut, **write_outputs(score, out_dir), **write_page_outputs(result, image, out_dir)}
    return result


def page_scores_table(result: PageScore) -> pl.DataFrame:
    """The page map with each word's score, its evidence (:func:`word_evidence`) and whether it lies in
    the outlined passage."""
    first, last = result.passage if result.passage is not None else (-1, -2)
    return result.boxes.with_columns(
        pl.Series("score", result.score.word_scores, dtype=pl.Float64),
        pl.Series("evidence", word_evidence(result.score)[0], dtype=pl.Float64),  # what the overlay ranks
        pl.col("word_index").is_between(first, last).alias("in_passage"))


def write_page_outputs(result: PageScore, image: np.ndarray, out_dir: Path) -> dict[str, Path]:
    """``page_overlay.png``, ``page_scores.parquet`` and ``page.json`` of a scored page."""
    overlay = draw_scored_page(image, result.boxes, result.score, result.passage)
    out = {"overlay": out_dir / PAGE_OVERLAY, "page_scores": out_dir / PAGE_SCORES, "page_json": out_dir / PAGE_JSON}
    overlay.save(out["overlay"])
    page_scores_table(result).write_parquet(out["page_scores"])
    record = {"page": str(result.page), "n_words": result.boxes.height, "raw_score": result.score.probability,
              "log10_lr": result.score.log10_lr, "verbal": result.score.verbal,
              "passage": list(result.passage) if result.passage else None, "doubtful": result.doubtful,
              "skew_deg": result.skew_deg, **{k: str(v) for k, v in out.items()}}
    out["page_json"].write_text(json.dumps(record, indent=2))
    return out


def word_evidence(score: DocumentScore) -> tuple[np.ndarray, str]:
    """Each word's evidence for a second writer and its name: the word's log10 LR when the score is
    calibrated (one per word), else its raw word score."""
    if score.word_log10_lr and len(score.word_log10_lr) == len(score.word_scores):
        return np.asarray(score.word_log10_lr, dtype=np.float64), "word log10 LR"
    return np.asarray(score.word_scores, dtype=np.float64), "word score"


def word_colours(evidence: np.ndarray) -> list[tuple[int, int, int]]:
    """One RGB colour per word from its evidence's rank within the page (ties share a colour): the
    weakest green, the median yellow, the strongest red, however the values bunch together."""
    if len(evidence) == 0:
        return []
    rank = (rankdata(evidence) - 1) / max(len(evidence) - 1, 1)
    rgb = np.rint(255 * matplotlib.colormaps[WORD_CMAP](rank)[:, :3]).astype(int)
    return [(int(r), int(g), int(b)) for r, g, b in rgb]


def draw_scored_page(image: np.ndarray, boxes: pl.DataFrame, score: DocumentScore,
                     passage: tuple[int, int] | None, max_side: int = 2400) -> Image.Image:
    """The page with each word box coloured by its evidence's rank on the page (:func:`word_colours`),
    the passage outlined and a legend (the document's log10 LR and verbal equivalent, what the colours
    mean) wrapped to the canvas width."""
    evidence, name = word_evidence(score)
    canvas = pages.draw_overlay(image, boxes, max_side=max_side, colours=word_colours(evidence))
    factor = canvas.width / image.shape[1]
    draw = ImageDraw.Draw(canvas)
    width = max(2, round(5 * factor))
    if passage is not None:
        for box in passage_outline(boxes, passage, pad=round(0.2 * float((boxes["y1"] - boxes["y0"]).median()))):
            draw.rectangle([c * factor for c in box], outline=PASSAGE_COLOUR, width=width)
    _legend(draw, canvas, legend_lines(score, evidence, name, passage))
    return canvas


def passage_outline(boxes: pl.DataFrame, passage: tuple[int, int], pad: int) -> list[tuple[int, int, int, int]]:
    """One rectangle per text line around the passage's words on it (page pixels, ``pad`` around)."""
    first, last = passage
    part = boxes.filter(pl.col("word_index").is_between(first, last))
    per_line = part.group_by("line").agg(pl.col("x0").min(), pl.col("y0").min(), pl.col("x1").max(),
                                         pl.col("y1").max()).sort("line")
    return [(x0 - pad, y0 - pad, x1 + pad, y1 + pad) for _, x0, y0, x1, y1 in per_line.iter_rows()]


def legend_lines(score: DocumentScore, evidence: np.ndarray, name: str, passage: tuple[int, int] | None) -> list[str]:
    """The overlay's legend: the document's evidence (log10 LR and its verbal equivalent, or the raw
    score when uncalibrated), then what the box colours and the outline mean."""
    key, thr = score.decision_threshold
    flagged = "flagged" if score.probability >= thr else "not flagged"
    if score.log10_lr is not None:
        head = f"log10 LR = {score.log10_lr:+.2f}: {score.verbal} (H1 more than one writer vs H0 one writer)"
    else:
        head = f"uncalibrated: raw score {score.probability:.2f} (not a probability)"
    where = f"blue outline: estimated foreign passage, words {passage[0]}-{passage[1]}" if passage else \
        "no foreign passage estimated"
    span = f"{evidence.min():+.2f} .. {evidence.max():+.2f}" if len(evidence) else "none"
    if score.writers is not None:
        head += f"; estimated writers: {score.writers['estimate']}"
    return [f"{head}; {flagged} at threshold {key}",
            f"box colour = {name} ({span}) ranked within this page: green weakest, red strongest; {where}"]


def legend_font(canvas_width: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The legend's font for a canvas ``canvas_width`` pixels wide (scaled with the page, 12 px at least)."""
    return ImageFont.load_default(size=max(12, canvas_width // 90))


def wrap_text(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, max_width: float) -> list[str]:
    """``text`` broken into lines at most ``max_width`` pixels wide in ``font``: at spaces, and inside a
    word only when the word alone is wider (one character per line at the very least). Joining the
    lines with spaces gives ``text`` back, up to the breaks inside such words."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if font.getlength(candidate) <= max_width:
            current = candidate
            continue
        if current:
            lines.append(current)
        # a word too wide for a line of its own is cut between characters
        while font.getlength(word) > max_width and len(word) > 1:
            cut = 1
            while cut < len(word) and font.getlength(word[:cut + 1]) <= max_width:
                cut += 1
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    if current:
        lines.append(current)
    return lines


def _legend(draw: ImageDraw.ImageDraw, canvas: Image.Image, lines: list[str]) -> None:
    """A white band at the top of the canvas holding ``lines``, each wrapped to the canvas width (a
    narrow page would cut them off at its right edge); the band grows to hold every wrapped line."""
    font = legend_font(canvas.width)
    size = font.size if isinstance(font, ImageFont.FreeTypeFont) else 12
    margin, step = size // 2, round(1.3 * size)
    wrapped = [part for line in lines for part in wrap_text(line, font, canvas.width - 2 * margin)]
    draw.rectangle([0, 0, canvas.width, round(0.4 * size) + step * len(wrapped)], fill=(255, 255, 255))
    for k, line in enumerate(wrapped):
        draw.text((margin, size // 3 + k * step), line, fill=(0, 0, 0), font=font)


__all__ = ["PageScore", "draw_scored_page", "flagged_passage", "is_page_path", "legend_font", "legend_lines",
           "passage_outline", "score_page", "word_colours", "word_evidence", "wrap_text"]
