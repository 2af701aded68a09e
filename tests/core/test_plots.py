"""Shared figure helpers: a PNG saved once, embedded as a data URI that decodes to the same bytes."""

from __future__ import annotations

import base64
from pathlib import Path

from matplotlib.figure import Figure

from wrmil_core.plots import png_data_uri, save_figure


def test_save_figure_and_data_uri(tmp_path: Path) -> None:
    fig = Figure(figsize=(2, 2))
    fig.subplots().plot([0, 1], [1, 0])
    path = save_figure(fig, tmp_path / "line.png", dpi=50)
    assert path.read_bytes()[:4] == b"\x89PNG"
    uri = png_data_uri(path)
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]) == path.read_bytes()


def test_pyplot_figures_are_closed(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure()
    save_figure(fig, tmp_path / "p.png", tight=False)
    assert not plt.fignum_exists(fig.number)
