"""Questioned documents as examiners crop them: any image with a line of handwriting is segmented,
whatever its size; what holds no text (blank, specks, a thumbnail; one word, to score) is refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from wrmil_core import synth
from wrmil_core.errors import WrmilInputError
from wrmil_core.pages import check_text, segment_page
from wrmil_core.pages.segment import MIN_TEXT_HEIGHT_PX, MIN_TEXT_WORDS
from wrmil_core.synth.pages import SynthPage, make_page, page_preset

# A passage cropped from a scan: 600 x 250 px holding 5 lines, ~8 words each (x-height ~7 px).
CROP5 = page_preset("small", width=600, height=250, margin=15, word_height=36, max_skew_deg=1.0)


@pytest.fixture(scope="module")
def crop5() -> SynthPage:
    return make_page(CROP5, writer=3, seed=1)


def line_crop(page: SynthPage, line: int = 0, pad: int = 6) -> tuple[np.ndarray, int]:
    """One text line cut out of ``page`` (all its width, ``pad`` px above and below the ink) and its word count."""
    words = page.truth.filter(page.truth["line"] == line)
    y0, y1 = max(0, int(words["y0"].min()) - pad), int(words["y1"].max()) + pad
    return page.image[y0:y1], words.height


def test_a_five_line_crop_is_segmented(crop5: SynthPage) -> None:
    assert crop5.image.shape == (250, 600) and crop5.truth["line"].n_unique() == 5
    seg = segment_page(crop5.image, name="crop5.png")
    assert seg.boxes["line"].n_unique() == 5
    assert abs(seg.boxes.height - crop5.truth.height) <= 3, (seg.boxes.height, crop5.truth.height)


def test_a_single_line_crop_is_segmented(crop5: SynthPage) -> None:
    image, n_words = line_crop(crop5)
    assert image.shape[0] < 60 and n_words >= 5  # far under the 300 px once required of a page
    seg = segment_page(image, name="line.png")
    assert seg.boxes["line"].n_unique() == 1
    assert abs(seg.boxes.height - n_words) <= 1, (seg.boxes.height, n_words)


def test_one_word_is_refused_as_a_questioned_document() -> None:
    style = synth.sample_writer_style(2, 0)
    word = np.asarray(synth.render_word("Switzerland", style, np.random.default_rng(0)))
    image = np.pad(word, 20, constant_values=255)
    seg = segment_page(image, name="word.png")  # cut (a data root's page may hold one word) but flagged
    assert seg.boxes.height == 1 and "very few words" in seg.doubtful[0]
    with pytest.raises(WrmilInputError, match=rf"^word\.png: {image.shape[1]}x{image.shape[0]} px holds 1 word, not "
                                              rf"a line of text .* {MIN_TEXT_WORDS} or more words$"):
        check_text(seg, image, name="word.png")  # ... and refused as a questioned document


@pytest.mark.parametrize("size", [(40, 30), (120, 90)])
def test_a_thumbnail_is_refused_in_one_line(size: tuple[int, int]) -> None:
    page = Image.fromarray(make_page(page_preset("small"), writer=1).image)
    thumb = np.asarray(page.resize(size, Image.Resampling.BILINEAR))
    with pytest.raises(WrmilInputError) as e:
        segment_page(thumb, name="thumb.png")
    msg = str(e.value)
    assert msg.startswith("thumb.png: ") and "\n" not in msg and "thumbnail" in msg and "300 dpi" in msg
    if size == (120, 90):  # light enough to threshold: refused by its writing's height
        assert f"under the {MIN_TEXT_HEIGHT_PX} px" in msg


def test_blank_and_specks_are_refused() -> None:
    blank = np.full((250, 600), 245, np.uint8)
    with pytest.raises(WrmilInputError, match=r"^blank\.png: the image is empty \(600x250 px.*no ink"):
        segment_page(blank, name="blank.png")
    specks = blank.copy()
    for y in range(5, 245, 12):  # 2 x 2 px dots of dust, apart: no ink mark 3 px high
        for x in range(5, 595, 12):
            specks[y:y + 2, x:x + 2] = 20
    with pytest.raises(WrmilInputError, match=r"^specks\.png: no handwriting found in 600x250 px: specks"):
        segment_page(specks, name="specks.png")
