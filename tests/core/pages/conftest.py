"""Small synthetic pages shared by the page tests (made once per session: ~0.3 s each)."""

from __future__ import annotations

import pytest

from wrmil_core.synth.pages import SynthPage, make_page, page_preset

# A cursive hand (0), a print hand with wide letter spacing (21) and a cursive hand on ruled paper (14).
PAGES = {"cursive": (0, False), "print": (21, False), "ruled": (14, True)}


@pytest.fixture(scope="session")
def small_pages() -> dict[str, SynthPage]:
    """Three small (900 x 1000) noisy synthetic pages with random skew in +-3 degrees."""
    return {name: make_page(page_preset("small", ruled=ruled), writer, seed=i)
            for i, (name, (writer, ruled)) in enumerate(PAGES.items())}
