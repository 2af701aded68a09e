"""Page-scan data roots and questioned pages for the page tests (helpers only; no tests here).

``write_csafe_root`` writes small synthetic pages (``wrmil_core.synth.pages``, ~50 words each) named
as in the CSAFE database; ``write_scoring_page`` sets the scoring tests' host and forger words
(``tests/support/scoring.py``) on lines of a white page, with known boxes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image

from tests.support.scoring import WORDS, forger_style, host_style
from wrmil_core import synth
from wrmil_core.synth.pages import make_page, page_preset

# ~50 words, ~0.4 s to make and ~0.1 s to segment.
TINY_PAGE = page_preset("small", width=640, height=480, margin=40)


def csafe_name(writer: int, session: int, prompt: str, rep: int, suffix: str = ".png") -> str:
    """``w0003_s01_pLND_r2.png``."""
    return f"w{writer:04d}_s{session:02d}_p{prompt}_r{rep}{suffix}"


def write_csafe_root(root: Path, writers: tuple[int, ...] = (1, 2, 3, 4, 5), prompts: tuple[str, ...] = ("LND",),
                     session: int = 1) -> Path:
    """A page-scan data root: one tiny synthetic page per writer and prompt, CSAFE names, no CSV."""
    root.mkdir(parents=True, exist_ok=True)
    for w in writers:
        for k, prompt in enumerate(prompts):
            page = make_page(TINY_PAGE, writer=w, seed=k)
            Image.fromarray(page.image).save(root / csafe_name(w, session, prompt, 1))
    return root


def write_scoring_page(path: Path, n: int = 60, foreign: range | None = None, seed: int = 0,
                       size: tuple[int, int] = (1200, 1000)) -> pl.DataFrame:
    """A white page (``size`` = width, height) of ``n`` words by the scoring tests' host, the positions
    in ``foreign`` by the forger, set on lines left to right; returns the true boxes (word_index, line,
    x0, y0, x1, y1)."""
    (width, height), margin, gap, pitch = size, 60, 40, 90
    page = np.full((height, width), 250, dtype=np.uint8)
    host, forger = host_style(10), forger_style(11)
    x, top, line, rows = margin, margin, 0, []
    for i in range(n):
        style = forger if foreign is not None and i in foreign else host
        word = np.asarray(synth.render_word(WORDS[i % len(WORDS)], style, np.random.default_rng([seed, i])))
        h, w = word.shape
        if x + w > width - margin:
            x, top, line = margin, top + pitch, line + 1
        np.minimum(page[top:top + h, x:x + w], word, out=page[top:top + h, x:x + w])
        rows.append((i, line, x, top, x + w, top + h))
        x += w + gap
    Image.fromarray(page).save(path)
    return pl.DataFrame(rows, schema=["word_index", "line", "x0", "y0", "x1", "y1"], orient="row")
