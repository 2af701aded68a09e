"""The overlay a person checks a cut by: the page in grey, every word box in its line's colour,
numbered in reading order."""

from __future__ import annotations

import numpy as np
import polars as pl
from PIL import Image, ImageDraw, ImageFont

# matplotlib's tab10: neighbouring lines get clearly different colours.
LINE_COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
                (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))


def draw_overlay(image: np.ndarray, boxes: pl.DataFrame, max_side: int = 2400,
                 colours: list[tuple[int, int, int]] | None = None) -> Image.Image:
    """RGB picture of ``image`` with the word boxes drawn on it, scaled to at most ``max_side`` px.

    ``colours`` (one per box) overrides the line colours, e.g. to colour words by a score.
    """
    page = Image.fromarray(image).convert("RGB")
    scale = min(1.0, max_side / max(page.size))
    if scale < 1.0:
        page = page.resize((round(page.width * scale), round(page.height * scale)), Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(page)
    size = max(10, int(min(page.size) / 70))
    font = ImageFont.load_default(size=size)
    width = max(1, round(2 * max(scale, 0.5)))
    rows = boxes.select("word_index", "line", "x0", "y0", "x1", "y1").iter_rows()
    for i, (index, line, x0, y0, x1, y1) in enumerate(rows):
        colour = colours[i] if colours is not None else LINE_COLOURS[line % len(LINE_COLOURS)]
        box = [x0 * scale, y0 * scale, (x1 - 1) * scale, (y1 - 1) * scale]
        draw.rectangle(box, outline=colour, width=width)
        draw.text((box[0] + 1, box[1] - size - 1), str(index), fill=colour, font=font)
    return page
