"""Opening image files safely: one size limit and one open for every image reader in wrmil; and the
one way wrmil writes the PNGs it makes (:func:`save_png`).

Every reader (page scans, word crops, the strip's tiles, the embedding and feature loaders) opens
files through :func:`open_image`, so an oversized scan or a decompression bomb is one
:class:`WrmilInputError` line naming the file, its size, the limit and the fix, never a traceback.
:func:`reduce_to` shrinks a large scan to a working resolution while decoding as little as possible.
This module imports nothing else of wrmil_core but the errors, so every package can use it.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from wrmil_core.errors import WrmilInputError

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image


# The largest image any reader accepts: an A3 page (297 x 420 mm) scanned at 1200 dpi is
# 14,031 x 19,843 px (~278 Mpx). Anything bigger is no scan of a document (or a decompression bomb:
# a few kB of PNG that claims billions of pixels), and decoding it would exhaust memory.
MAX_IMAGE_PIXELS = 14_031 * 19_843
RESCAN = "rescan at 300-600 dpi (or downscale the file) and try again"
_PIL_LIMIT = threading.Lock()  # PIL's limit is module state: set and restore it for one open at a time


def too_large(path: str | Path, size: tuple[int, int], limit: int) -> WrmilInputError:
    """The one-line refusal of an image over ``limit`` pixels, naming the file, its size and the fix."""
    return WrmilInputError(f"{path}: the image is {size[0]}x{size[1]} px ({_mpx(size[0] * size[1])} Mpx), over the "
                           f"limit of {_mpx(limit)} Mpx (an A3 page at 1200 dpi); {RESCAN}")


def _mpx(pixels: int) -> str:
    """Megapixels for a message: whole ones, or three decimals under one."""
    return f"{pixels / 1e6:.0f}" if pixels >= 1e6 else f"{pixels / 1e6:.3f}"


def _header_size(path: str | Path) -> tuple[int, int]:
    """The size an image file's header claims, read with PIL's limit off (nothing is decoded)."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # the caller holds _PIL_LIMIT and restores the limit
    with Image.open(path) as im:
        return im.size


@contextmanager
def open_image(path: str | Path, max_pixels: int | None = None) -> Iterator[Image.Image]:
    """Open ``path`` lazily (header only, pixels not decoded) like ``PIL.Image.open``, refusing an image
    over ``max_pixels`` (default :data:`MAX_IMAGE_PIXELS`) with one :class:`WrmilInputError` line.

    PIL's own bomb limit (89 Mpx) would refuse real 1200-dpi scans with a traceback; it is raised to
    ``max_pixels`` for the open only, and any bomb error PIL raises while decoding becomes the same line.
    Other errors (missing, not an image, truncated) propagate as PIL raises them.
    """
    from PIL import Image

    limit = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    with _PIL_LIMIT:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = limit
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, by size
                im = Image.open(path)
        except Image.DecompressionBombError:  # over twice the limit: PIL's error gives no width and height
            raise too_large(path, _header_size(path), limit) from None
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    with im:
        w, h = im.size
        if w * h > limit:
            raise too_large(path, (w, h), limit)
        try:
            yield im
        except Image.DecompressionBombError:  # a frame or tile over PIL's default limit, met while decoding
            raise too_large(path, (w, h), limit) from None


def grey_array(im: Image.Image) -> np.ndarray:
    """One image (or one frame of a multi-page file) as a uint8 grey array: EXIF rotation applied,
    transparency flattened onto white, 16-bit and float images stretched to 0..255."""
    import numpy as np
    from PIL import Image, ImageOps

    im = ImageOps.exif_transpose(im)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = Image.alpha_composite(Image.new("RGBA", im.size, "white"), im.convert("RGBA"))
    if im.mode in ("I;16", "I;16B", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        span = max(float(np.ptp(a)), 1e-9)
        return np.round((a - a.min()) / span * 255).astype(np.uint8)
    return np.asarray(im.convert("L"), dtype=np.uint8).copy()


# zlib level of every PNG wrmil writes (word crops, overlays, strips). PIL's default, 6, encodes a
# 600 x 680 px page overlay in ~80 ms against ~25 ms at 1, for files of about the same size (scanned
# and drawn pages barely compress further): at 6, a batch of pages spent a fifth of its time in zlib.
PNG_COMPRESS_LEVEL = 1


def save_png(im: Image.Image, path: str | Path) -> Path:
    """Write ``im`` to ``path`` as PNG at :data:`PNG_COMPRESS_LEVEL` (lossless: the pixels are the same
    at every level); returns ``path``."""
    im.save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return Path(path)


def reduce_to(im: Image.Image, max_pixels: int) -> Image.Image:
    """``im`` shrunk by the smallest integer factor that brings it to at most ``max_pixels`` (itself when
    it fits). JPEGs are decoded at the reduced scale (``draft``), others decoded then box-averaged
    (``reduce``), so a large scan never needs more than one full-size copy in memory."""
    w, h = im.size
    factor = math.ceil(math.sqrt(w * h / max_pixels))
    if factor <= 1:
        return im
    im.draft(None, (math.ceil(w / factor), math.ceil(h / factor)))  # JPEG: scale 1/2, 1/4 or 1/8 at decode
    factor = math.ceil(math.sqrt(im.size[0] * im.size[1] / max_pixels))
    if factor <= 1:
        return im
    if im.mode == "P":  # palette indices cannot be averaged
        im = im.convert("RGBA")
    elif im.mode in ("1", "I;16", "I;16B", "I;16L"):
        im = im.convert("L" if im.mode == "1" else "I")
    return im.reduce(factor)
