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

A PDF or multi-page TIFF is one document (:mod:`wrmil_core.data.multipage`): its pages (all, or
those ``pages`` selects) are cut one by one and their words scored together in reading order, page
1's words first; word indices run on across pages.

Outputs in ``out_dir``: ``words/`` (the crops), ``words.parquet`` (the page map) and
``words.overlay.png`` (numbered boxes, to check the cut), ``score.json``, ``strip.png`` and
``case_report.html`` (as for a folder; the report shows the overlay), ``page_overlay.png`` (the scored
page), ``page_scores.parquet`` (boxes with word scores and the passage flag) and ``page.json`` (page,
passage, doubts, paths). A document of several pages has ``words/pNNN/`` crops with
``words/pNNN.parquet`` and ``words/pNNN.overlay.png`` per page, ``page_overlay_pNNN.png`` per page (NNN
its page number) and a ``page`` column in ``page_scores.parquet``.
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
from wrmil_core.data.multipage import DEFAULT_DPI, PDF_SUFFIX, is_multipage_path, parse_page_spec, read_document_pages
from wrmil_core.data.pages_input import PAGE_SUFFIXES
from wrmil_core.errors import WrmilInputError
from wrmil_core.imaging import save_png
from wrmil_core.runtime import Log, speaker
from wrmil_core.scoring.score import DocumentScore, ScoringModels, read_model_pair, score_words
from wrmil_core.scoring.strip import write_outputs

WORDS_DIR = "words"
PAGE_OVERLAY = "page_overlay.png"
PAGE_SCORES = "page_scores.parquet"
PAGE_JSON = "page.json"
PASSAGE_COLOUR = (0, 70, 255)
WORD_CMAP = "RdYlGn_r"  # green (weakest evidence on the page) .. yellow .. red (strongest), as the strip
# Both word featurisers (the CNN embeddings, EmbeddingConfig.img_h, and the classical features) read a
# word at 64 px high. Words under half that (median word-box height, ascenders and descenders included)
# are enlarged over 2x: the features then rest on interpolated, not scanned, stroke detail. Such a
# document (a passage cropped from a low-resolution scan) is scored, with a warning saying so.
SMALL_WRITING_PX = 32
DOCUMENT_SUFFIXES: tuple[str, ...] = (*PAGE_SUFFIXES, PDF_SUFFIX)  # files that are scored as pages


def is_page_path(path: str | Path) -> bool:
    """True when ``path`` names a page image or a PDF (by its suffix) rather than a folder or an order CSV."""
    p = Path(path)
    return p.suffix.lower() in DOCUMENT_SUFFIXES and not p.is_dir()


def read_scan(path: str | Path, pages_spec: str | None = None, dpi: int = DEFAULT_DPI) -> list[tuple[int, np.ndarray]]:
    """The pages of a scanned document, ``(1-based page number, grey array)`` in page order: every
    page of a PDF or TIFF (or those ``pages_spec`` selects, e.g. ``"1,3-4"``), or the one page of
    any other image."""
    if is_multipage_path(path):
        return read_document_pages(path, pages_spec, dpi)
    if pages_spec:
        parse_page_spec(pages_spec, 1, where=f"--pages for {path}")  # one page: only "1" is in range
    return [(1, pages.read_page(path))]


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
    # one box table per page (word_index runs on across pages) and each one's 1-based page number;
    # ``boxes`` is their concatenation
    page_boxes: list[pl.DataFrame] = field(default_factory=list)
    page_numbers: list[int] = field(default_factory=lambda: [1])

    @property
    def n_pages(self) -> int:
        return len(self.page_numbers)

    def summary(self) -> str:
        """The document summary plus the page's lines (passage, doubts)."""
        lines = [self.score.summary()]
        if self.passage is not None:
            lines.append(f"outlined passage: words {self.passage[0]}-{self.passage[1]} (reading order)")
        if self.doubtful:
            lines.append("segmentation doubtful: " + "; ".join(self.doubtful) + " (check words.overlay.png)")
        return "\n".join(lines)


def score_page(page: str | Path, embedding_model_dir: str | Path | None, mil_model_dir: str | Path | None,
               out_dir: str | Path, *, segment_config: pages.SegmentConfig | None = None,
               passage: tuple[int, int] | None = None, device: str = "cpu", top_k: int = 10, log: Log = None,
               models: ScoringModels | None = None, pages_spec: str | None = None,
               dpi: int = DEFAULT_DPI) -> PageScore:
    """Segment ``page`` (a page image, or a PDF/TIFF of several pages: ``pages_spec`` selects them,
    PDFs are rendered at ``dpi``), score its words and write the outputs (module docstring) to ``out_dir``.

    ``passage``: the foreign passage to outline (default: the score's estimate, else
    :func:`flagged_passage`). ``models``: the loaded model pair (a batch loads it once); else the
    two directories are loaded here. A page, a crop of a passage or one line are all scored; writing
    under :data:`SMALL_WRITING_PX` adds a warning (``score.warnings``: score.json, the overlay legend
    and the summary). Raises :class:`WrmilInputError` for an unreadable or oversized file, an image
    that holds no text (see :func:`wrmil_core.pages.segment_page`), fewer words than two windows, or
    a model pair that does not fit.
    """
    page, out_dir = Path(page), Path(out_dir)
    pair = models.pair if models is not None else read_model_pair(embedding_model_dir, mil_model_dir)  # refuse bad models first
    window_size = pair.window_size
    scans = read_scan(page, pages_spec, dpi)
    multi = len(scans) > 1
    segs = [pages.segment_page(image, segment_config, name=f"{page} page {n}" if multi else str(page))
            for n, image in scans]
    if not multi:  # one image must hold text; a blank page inside a longer scan is not refused
        pages.check_text(segs[0], scans[0][1], name=str(page))
    n_words = sum(seg.boxes.height for seg in segs)
    if n_words < 2 * window_size:
        raise WrmilInputError(f"page {page}: {n_words} word(s) found, scoring needs at least "
                              f"{2 * window_size} (two windows of {window_size}); is it a page of handwriting?")
    crops, page_boxes, cut = _write_cuts(segs, scans, out_dir)
    speaker(log)(f"score: {page.name}: {n_words} words on {sum(s.boxes['line'].n_unique() for s in segs)} lines"
                 + (f" of {len(scans)} pages" if multi else ""))
    score = score_words(out_dir / WORDS_DIR, crops, embedding_model_dir, mil_model_dir, device=device, top_k=top_k,
                        log=log, models=models)
    small = small_writing_warning(pl.concat([seg.boxes for seg in segs]))
    if small:
        score.warnings.append(small)
        speaker(log)(f"score: {page.name}: warning: {small}")
    result = PageScore(page=page, score=score, boxes=pl.concat(page_boxes), skew_deg=segs[0].skew_deg,
                       doubtful=[d if not multi else f"page {n}: {d}" for (n, _), s in zip(scans, segs)
                                 for d in s.doubtful],
                       passage=passage or score.passage_range or flagged_passage(score),
                       page_boxes=page_boxes, page_numbers=[n for n, _ in scans])
    drawn = write_page_outputs(result, [image for _, image in scans], out_dir)  # first: the case report shows it
    result.outputs = {**cut, **write_outputs(score, out_dir, page=page, overlay=drawn["overlay"]), **drawn}
    return result


def cut_scan(page: str | Path, out_dir: str | Path, *, pages_spec: str | None = None, dpi: int = DEFAULT_DPI,
             segment_config: pages.SegmentConfig | None = None) -> list[Path]:
    """Segment a page image or a PDF/TIFF (``pages_spec``: its pages) into word crops under
    ``out_dir/words`` as :func:`score_page` does; return them in reading order (for ``wrmil compare``).
    Refuses an unreadable file and a single image that holds no text."""
    page = Path(page)
    scans = read_scan(page, pages_spec, dpi)
    segs = [pages.segment_page(image, segment_config, name=f"{page} page {n}" if len(scans) > 1 else str(page))
            for n, image in scans]
    if len(scans) == 1:
        pages.check_text(segs[0], scans[0][1], name=str(page))
    return _write_cuts(segs, scans, Path(out_dir))[0]


def _write_cuts(segs: list[pages.PageSegmentation], scans: list[tuple[int, np.ndarray]],
                out_dir: Path) -> tuple[list[Path], list[pl.DataFrame], dict[str, Path]]:
    """Write each page's crops, page map and cut overlay; return the crops in reading order (page
    by page), each page's boxes with word indices running on across pages, and the cut's paths
    (the first page's map and overlay for a document of several pages)."""
    crops: list[Path] = []
    boxes: list[pl.DataFrame] = []
    cut: dict[str, Path] = {}
    for (number, image), seg in zip(scans, segs):
        if len(scans) == 1:  # one page: the layout of a page image (words/, words.parquet, words.overlay.png)
            paths = pages.write_segmentation(seg, image, out_dir, WORDS_DIR)
        else:
            paths = pages.write_segmentation(seg, image, out_dir / WORDS_DIR, f"p{number:03d}")
        crops += [paths["crops"] / f"{i:04d}.png" for i in seg.boxes["word_index"].to_list()]
        boxes.append(seg.boxes.with_columns(pl.col("word_index") + sum(b.height for b in boxes)))
        if not cut:
            cut = {"crops": out_dir / WORDS_DIR, "page_map": paths["page_map"], "cut_overlay": paths["overlay"]}
    return crops, boxes, cut


def small_writing_warning(boxes: pl.DataFrame) -> str | None:
    """A warning when the page's median word-box height is under :data:`SMALL_WRITING_PX`, with the
    measured figure; ``None`` for writing large enough (or no words)."""
    if boxes.height == 0:
        return None
    height = float((boxes["y1"] - boxes["y0"]).median())
    if height >= SMALL_WRITING_PX:
        return None
    return (f"small writing: median word height {height:.0f} px, under {SMALL_WRITING_PX} px (half the 64 px "
            f"the word features are read at); the words are enlarged {64 / max(height, 1):.1f}x, so the writer "
            "features and this score are less reliable; rescan at 300-600 dpi if you can")


def page_scores_table(result: PageScore) -> pl.DataFrame:
    """The page map with each word's score, its evidence (:func:`word_evidence`) and whether it lies in
    the outlined passage."""
    first, last = result.passage if result.passage is not None else (-1, -2)
    boxes = result.boxes
    if result.n_pages > 1:
        boxes = pl.concat([b.with_columns(pl.lit(n, dtype=pl.Int32).alias("page"))
                           for n, b in zip(result.page_numbers, result.page_boxes)])
    return boxes.with_columns(
        pl.Series("score", result.score.word_scores, dtype=pl.Float64),
        pl.Series("evidence", word_evidence(result.score)[0], dtype=pl.Float64),  # what the overlay ranks
        pl.col("word_index").is_between(first, last).alias("in_passage"))


def write_page_outputs(result: PageScore, images: np.ndarray | list[np.ndarray], out_dir: Path) -> dict[str, Path]:
    """``page_overlay.png`` (``page_overlay_pNNN.png`` per page of a longer document; ``overlay`` is
    the first), ``page_scores.parquet`` and ``page.json`` of a scored page."""
    images = [images] if isinstance(images, np.ndarray) else images
    page_boxes = result.page_boxes or [result.boxes]
    names = [PAGE_OVERLAY] if len(images) == 1 else [f"page_overlay_p{n:03d}.png" for n in result.page_numbers]
    overlays = [out_dir / name for name in names]
    for image, boxes, path in zip(images, page_boxes, overlays):
        save_png(draw_scored_page(image, boxes, result.score, result.passage), path)
    out = {"overlay": overlays[0], "page_scores": out_dir / PAGE_SCORES, "page_json": out_dir / PAGE_JSON}
    page_scores_table(result).write_parquet(out["page_scores"])
    record = {"page": str(result.page), "n_words": result.boxes.height, "raw_score": result.score.probability,
              "log10_lr": result.score.log10_lr, "verbal": result.score.verbal,
              "passage": list(result.passage) if result.passage else None, "doubtful": result.doubtful,
              "skew_deg": result.skew_deg, **{k: str(v) for k, v in out.items()}}
    if len(images) > 1:
        record.update(pages=result.page_numbers, overlays=[str(p) for p in overlays])
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
    """The page with each word box coloured by its evidence's rank in the document (:func:`word_colours`),
    the passage outlined and a legend (the document's log10 LR and verbal equivalent, the colours,
    warnings). ``boxes`` may be one page's of a longer document (``word_index`` into the document's words)."""
    evidence, name = word_evidence(score)
    colours = word_colours(evidence)
    canvas = pages.draw_overlay(image, boxes, max_side=max_side,
                                colours=[colours[i] for i in boxes["word_index"].to_list()])
    factor = canvas.width / image.shape[1]
    draw = ImageDraw.Draw(canvas)
    width = max(2, round(5 * factor))
    if passage is not None:
        for box in passage_outline(boxes, passage, pad=round(0.2 * float((boxes["y1"] - boxes["y0"]).median()))):
            draw.rectangle([c * factor for c in box], outline=PASSAGE_COLOUR, width=width)
    top = float(boxes["y0"].min()) * factor if boxes.height else float(canvas.height)
    scope = "page" if boxes.height >= len(evidence) else "document"  # one page of several: ranked over all
    return _legend(canvas, legend_lines(score, evidence, name, passage, scope), top)


def passage_outline(boxes: pl.DataFrame, passage: tuple[int, int], pad: int) -> list[tuple[int, int, int, int]]:
    """One rectangle per text line around the passage's words on it (page pixels, ``pad`` around)."""
    first, last = passage
    part = boxes.filter(pl.col("word_index").is_between(first, last))
    per_line = part.group_by("line").agg(pl.col("x0").min(), pl.col("y0").min(), pl.col("x1").max(),
                                         pl.col("y1").max()).sort("line")
    return [(x0 - pad, y0 - pad, x1 + pad, y1 + pad) for _, x0, y0, x1, y1 in per_line.iter_rows()]


def legend_lines(score: DocumentScore, evidence: np.ndarray, name: str, passage: tuple[int, int] | None,
                 scope: str = "page") -> list[str]:
    """The overlay's legend: the document's evidence (log10 LR and its verbal equivalent, or the raw
    score when uncalibrated), then what the box colours and the outline mean (colours ranked within
    the ``scope``: the page, or the document of several pages), then one line per warning."""
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
            f"box colour = {name} ({span}) ranked within this {scope}: green weakest, red strongest; {where}",
            *(f"warning: {w}" for w in score.warnings)]


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


def _legend(canvas: Image.Image, lines: list[str], text_top: float) -> Image.Image:
    """``canvas`` with ``lines`` (each wrapped to its width: a narrow page would cut them off at its right
    edge) in a white band at the top: drawn over the page's top margin when the band fits above the
    writing (``text_top``, canvas px), else in a band added above the page (a crop of a passage has no
    margin to spare)."""
    font = legend_font(canvas.width)
    size = font.size if isinstance(font, ImageFont.FreeTypeFont) else 12
    margin, step = size // 2, round(1.3 * size)
    wrapped = [part for line in lines for part in wrap_text(line, font, canvas.width - 2 * margin)]
    band = round(0.4 * size) + step * len(wrapped)
    if band + margin > text_top:  # the band would cover the first line of writing
        taller = Image.new("RGB", (canvas.width, canvas.height + band), (255, 255, 255))
        taller.paste(canvas, (0, band))
        canvas = taller
    draw = ImageDraw.Draw(canvas)
    draw.rectangle([0, 0, canvas.width, band], fill=(255, 255, 255))
    for k, line in enumerate(wrapped):
        draw.text((margin, size // 3 + k * step), line, fill=(0, 0, 0), font=font)
    return canvas


__all__ = ["DOCUMENT_SUFFIXES", "PageScore", "cut_scan", "draw_scored_page", "flagged_passage", "is_page_path", "legend_font",
           "legend_lines", "passage_outline", "read_scan", "score_page", "small_writing_warning", "word_colours",
           "word_evidence", "wrap_text"]
