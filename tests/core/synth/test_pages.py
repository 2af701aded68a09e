"""Synthetic pages: deterministic, truth boxes around the words' ink in reading order, ruled paper,
skew, and the mixed-writer page's foreign passage."""

from __future__ import annotations

import numpy as np
import pytest

from wrmil_core.errors import WrmilInputError
from wrmil_core.pages.skew import deskew
from wrmil_core.synth.pages import PAGE_TEXT, make_page, mixed_writer_page, page_preset

SMALL = page_preset("small")


def test_deterministic_and_seed_dependent() -> None:
    a, b = make_page(SMALL, 3, seed=1), make_page(SMALL, 3, seed=1)
    assert (a.image == b.image).all() and a.truth.equals(b.truth) and a.skew_deg == b.skew_deg
    assert not (make_page(SMALL, 3, seed=2).image == a.image).all()


def test_truth_boxes_hold_the_ink_in_reading_order() -> None:
    page = make_page(page_preset("small", noise=0.0), 5, seed=0)
    img, t = page.image, page.truth
    assert t["text"].to_list() == PAGE_TEXT.split()[:t.height]  # the text, in order
    assert t["word_index"].to_list() == list(range(t.height))
    dark = img < 128
    inside = np.zeros_like(dark)
    for x0, y0, x1, y1 in t.select("x0", "y0", "x1", "y1").iter_rows():
        assert 0 <= x0 < x1 <= img.shape[1] and 0 <= y0 < y1 <= img.shape[0]
        assert dark[y0:y1, x0:x1].any()
        inside[y0:y1, x0:x1] = True
    assert dark[inside].sum() / dark.sum() > 0.99  # (almost) all ink lies in some word's box
    # reading order: lines top to bottom, words left to right in the page's deskewed frame
    cx, cy = (t["x0"] + t["x1"]).to_numpy() / 2, (t["y0"] + t["y1"]).to_numpy() / 2
    xr, yr = deskew(cx, cy, page.skew_deg)
    for line in range(t["line"].max() + 1):
        sel = (t["line"] == line).to_numpy()
        assert (np.diff(xr[sel]) > 0).all()
        assert t.filter(t["line"] == line)["position"].to_list() == list(range(sel.sum()))
    line_y = [yr[(t["line"] == k).to_numpy()].mean() for k in range(t["line"].max() + 1)]
    assert (np.diff(line_y) > 0).all()


def test_skew_and_rules() -> None:
    flat = make_page(page_preset("small", ruled=True, noise=0.0), 0, seed=0, skew_deg=0.0)
    assert flat.skew_deg == 0.0
    # ruled lines: rows that are grey across most of the page width, none on blank paper
    grey_rows = ((flat.image < 230).mean(axis=1) > 0.8).sum()
    assert grey_rows >= flat.truth["line"].max()
    blank = make_page(page_preset("small", noise=0.0), 0, seed=0, skew_deg=0.0)
    assert ((blank.image < 230).mean(axis=1) > 0.8).sum() == 0
    tilted = make_page(SMALL, 0, seed=0, skew_deg=2.5)
    assert tilted.skew_deg == 2.5
    assert -3.0 <= make_page(SMALL, 0, seed=7).skew_deg <= 3.0


def test_mixed_writer_page_marks_the_foreign_passage() -> None:
    page = mixed_writer_page(SMALL, writer=2, foreign_writer=9, start=10, n_foreign=12, seed=0)
    t = page.truth
    assert t.filter(t["foreign"])["word_index"].to_list() == list(range(10, 22))
    assert set(t.filter(t["foreign"])["writer"].to_list()) == {9}
    assert set(t.filter(~t["foreign"])["writer"].to_list()) == {2}
    with pytest.raises(WrmilInputError, match="own writer"):
        mixed_writer_page(SMALL, writer=2, foreign_writer=2)


def test_page_config_is_validated() -> None:
    with pytest.raises(WrmilInputError, match="word_height"):
        page_preset("small", word_height=400)
    with pytest.raises(WrmilInputError, match="unknown"):
        page_preset("letter")
