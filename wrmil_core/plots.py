"""Saving matplotlib figures as PNG files and embedding PNGs as data URIs (one home for both).

Figures are built with the object-oriented API (``matplotlib.figure.Figure``), which renders PNGs
through Agg without touching pyplot's global state, so plotting is safe in any thread or process
and never needs a display.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # matplotlib is imported by whoever builds the figure
    from matplotlib.figure import Figure


def save_figure(fig: Figure, path: str | Path, *, dpi: int = 110, tight: bool = True) -> Path:
    """Write ``fig`` as a PNG to ``path`` and return the path.

    ``tight`` crops the canvas to the drawn content. A figure made with pyplot is closed afterwards
    so repeated runs do not pile figures up in pyplot's registry.
    """
    path = Path(path)
    fig.savefig(path, dpi=dpi, **({"bbox_inches": "tight"} if tight else {}))
    if getattr(fig.canvas, "manager", None) is not None:  # created by pyplot, which keeps a reference
        import matplotlib.pyplot as plt

        plt.close(fig)
    return path


def png_data_uri(path: str | Path) -> str:
    """A PNG file as a ``data:image/png;base64,...`` URI (renders inline in HTML and Markdown)."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()
