"""Outputs of a scored document: ``score.json``, ``strip.png`` and ``case_report.html``.

The strip shows the word images in reading order, each tinted by its evidence (its raw word score)
on a diverging colour scale centred on the 5 %-FPR threshold (green below, yellow at, red above),
labelled with its position, its own log10 LR and, for the most suspicious words, their rank; the
estimated foreign passage is framed in blue. The header gives the document's log10 LR with its
verbal equivalent, the decisions at the 1 % and 5 % FPR thresholds and the passage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.colors import Colormap, TwoSlopeNorm
from PIL import Image, ImageDraw, ImageFont

from wrmil_core.errors import WrmilInputError
from wrmil_core.imaging import open_image, save_png
from wrmil_core.scoring.case_report import CASE_REPORT, write_case_report
from wrmil_core.scoring.score import DocumentScore, fpr_percent

SCORE_JSON = "score.json"
STRIP_PNG = "strip.png"

_PAD, _LABEL_H, _HEADER_H, _GAP = 6, 12, 58, 2  # tile padding, label line, header, space between tiles
_PASSAGE_RGB = (0, 70, 255)  # the passage frame (page.py outlines it in the same blue)
_BAR_W = 300  # colour bar width in the header


@dataclass(frozen=True)
class _Scale:
    """Score -> colour: ``RdYlGn_r`` with its midpoint at the decision threshold."""

    cmap: Colormap
    norm: TwoSlopeNorm
    key: str
    threshold: float

    def rgb(self, value: float) -> np.ndarray:
        """The colour of ``value`` as float RGB in 0..255."""
        return np.asarray(self.cmap(self.norm(value))[:3]) * 255


def _scale(score: DocumentScore, shown: np.ndarray) -> _Scale:
    """The colour scale of the shown word scores (never degenerate around the threshold)."""
    key, thr = score.decision_threshold
    eps = 1e-3
    norm = TwoSlopeNorm(vcenter=thr, vmin=min(float(shown.min()), thr - eps), vmax=max(float(shown.max()), thr + eps))
    return _Scale(matplotlib.colormaps["RdYlGn_r"], norm, key, thr)


def _word_tile(image_path: Path, rgb: np.ndarray, label: str, word_height: int, max_width: int,
               font: ImageFont.ImageFont) -> Image.Image:
    """One word image scaled to ``word_height``, ink kept dark on a light tint of ``rgb``, framed
    in ``rgb`` with ``label`` above it."""
    with open_image(image_path) as im:
        g = im.convert("L")
    w = max(1, round(g.width * word_height / max(g.height, 1)))
    g = g.resize((min(w, max_width), word_height), Image.BILINEAR)
    bg = 0.55 * rgb + 0.45 * 255  # light tint; ink (dark) stays dark
    a = np.asarray(g, dtype=np.float32)[..., None] / 255.0
    tile_rgb = (a * bg + (1 - a) * (0.35 * rgb)).clip(0, 255).astype(np.uint8)
    tile = Image.new("RGB", (g.width + 2 * _PAD, word_height + _LABEL_H + 2 * _PAD), tuple(int(c) for c in rgb))
    tile.paste(Image.fromarray(tile_rgb, "RGB"), (_PAD, _PAD + _LABEL_H))
    ImageDraw.Draw(tile).text((_PAD, 1), label, fill=(0, 0, 0), font=font)
    return tile


def _flow(widths: list[int], row_width: int) -> list[tuple[int, int]]:
    """``(x, row)`` of each tile, left to right, wrapping to a new row when one would overflow."""
    places: list[tuple[int, int]] = []
    x, row = 0, 0
    for w in widths:
        if x > 0 and x + w > row_width:
            x, row = 0, row + 1
        places.append((x, row))
        x += w + _GAP
    return places


def _draw_header(canvas: Image.Image, score: DocumentScore, scale: _Scale, row_width: int,
                 font: ImageFont.ImageFont) -> None:
    """Evidence, decisions, passage, legend and a colour bar with its range across the top of the strip."""
    d = ImageDraw.Draw(canvas)
    thr, norm = scale.threshold, scale.norm
    for k, line in enumerate(header_lines(score)):
        d.text((6, 4 + 13 * k), line, fill=(0, 0, 0) if k < 2 else (60, 60, 60), font=font)
    left = row_width - _BAR_W - 20
    for j in range(_BAR_W):
        v = norm.vmin + (norm.vmax - norm.vmin) * j / (_BAR_W - 1)
        d.line([(left + j, 32), (left + j, 40)], fill=tuple(int(255 * c) for c in scale.cmap(norm(v))[:3]))
    d.text((left, 18), f"raw score {norm.vmin:.2f} .. {scale.key} {thr:.2f} .. {norm.vmax:.2f}", fill=(0, 0, 0),
           font=font)


def header_lines(score: DocumentScore) -> list[str]:
    """The strip's header text: evidence, decisions and passage, then the legend."""
    name = Path(score.document).name
    lr = (f"log10 LR = {score.log10_lr:+.2f}: {score.verbal}" if score.log10_lr is not None
          else f"raw score {score.probability:.3f} (uncalibrated)")
    flags = "; ".join(f"flagged at {fpr_percent(k)} FPR: {'yes' if v else 'no'}" for k, v in score.decisions.items())
    passage = score.passage_range
    where = f"; estimated foreign passage: words {passage[0]}-{passage[1]} (blue frame)" if passage else ""
    if score.writers is not None:
        where += f"; estimated writers: {score.writers['estimate']}"
    return [f"{name}: {lr} (H1 more than one writer vs H0 one writer); model {score.model_name}",
            f"{flags}{where}",
            ("word colour = its evidence: green below the 5 %-FPR threshold, yellow at it, red above; label: "
             "position, word log10 LR, m = posterior of the main writer (when diarized), #k = rank among the "
             "most suspicious words")]


def _tile_label(score: DocumentScore, i: int, rank: dict[int, int]) -> str:
    """``12 +1.3 m.93 #2``: position, the word's log10 LR (when calibrated), its posterior of being the
    main writer's (when the detector diarizes), its rank (when among the top)."""
    llr = f" {score.word_log10_lr[i]:+.1f}" if i < len(score.word_log10_lr) else ""
    main = f" m{score.word_main_posterior[i]:.2f}".replace("m0.", "m.") if i < len(score.word_main_posterior) else ""
    return f"{i}{llr}{main}" + (f" #{rank[i]}" if i in rank else "")


def render_strip(score: DocumentScore, out_path: str | Path, *, row_width: int = 1600, word_height: int = 48,
                 max_words: int = 1000) -> Path:
    """A PNG of the (first ``max_words``) word images in reading order, each tinted by its score
    (green below the decision threshold, yellow at it, red above) and labelled with its log10 LR;
    top-scored words carry their rank, the estimated foreign passage a blue frame."""
    shown = np.asarray(score.word_scores[:max_words], dtype=np.float64)
    scale = _scale(score, shown)
    font = ImageFont.load_default()
    rank = {w["index"]: w["rank"] for w in score.top_words}
    folder = Path(score.document)
    tiles = [_word_tile(folder / rel, scale.rgb(shown[i]), _tile_label(score, i, rank), word_height,
                        row_width - 2 * _PAD, font)
             for i, rel in enumerate(score.files[:max_words])]
    places = _flow([t.width for t in tiles], row_width)
    row_h = word_height + _LABEL_H + 2 * _PAD + _GAP
    n_rows = places[-1][1] + 1 if places else 1
    canvas = Image.new("RGB", (row_width, _HEADER_H + row_h * n_rows), (255, 255, 255))
    _draw_header(canvas, score, scale, row_width, font)
    first, last = score.passage_range or (-1, -2)
    draw = ImageDraw.Draw(canvas)
    for i, (tile, (x, row)) in enumerate(zip(tiles, places)):
        canvas.paste(tile, (x, _HEADER_H + row * row_h))
        if first <= i <= last:  # the estimated foreign passage: a blue frame over the tile's edge
            y = _HEADER_H + row * row_h
            draw.rectangle([x, y, x + tile.width - 1, y + tile.height - 1], outline=_PASSAGE_RGB, width=3)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    save_png(canvas, out_path)
    return out_path


def write_outputs(score: DocumentScore, out_dir: str | Path, *, page: Path | None = None,
                  overlay: Path | None = None) -> dict[str, Path]:
    """Write ``score.json``, ``strip.png`` and ``case_report.html`` (:mod:`.case_report`: it shows
    ``overlay`` for a ``page`` scan, else the strip) to ``out_dir``; record the paths in ``score.outputs``.

    ``out_dir`` must not be the document folder: an examiner's evidence stays untouched, and
    ``strip.png`` would be taken as a word the next time the folder is scored.
    """
    out_dir = Path(out_dir)
    if out_dir.resolve() == Path(score.document).resolve():
        raise WrmilInputError(f"output folder {out_dir} is the document folder: strip.png would be taken as a "
                              "word next time; choose another output folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    strip = render_strip(score, out_dir / STRIP_PNG)
    json_path, report = out_dir / SCORE_JSON, out_dir / CASE_REPORT
    score.outputs = {"json": str(json_path), "strip": str(strip), "case_report": str(report)}
    write_case_report(score, report, overlay or strip, page=page)  # before score.json, which names it
    tmp = json_path.with_suffix(".json.tmp")  # written whole, then renamed: never half a file
    tmp.write_text(score.to_json())
    tmp.replace(json_path)
    return {"json": json_path, "strip": strip, "case_report": report}
