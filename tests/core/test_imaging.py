"""Every image reader opens files through ``wrmil_core.imaging``: an image over the size limit (or a
decompression bomb) is one WrmilInputError line naming the file, its size, the limit and the fix;
a large scan within the limit is read (past PIL's own 89 Mpx limit) and shrunk to the working size."""

from __future__ import annotations

import re
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.scoring import scoring_setup
from wrmil_assets.cli import main
from wrmil_core import imaging
from wrmil_core.data.images import image_status
from wrmil_core.embedding.classical import _features_of
from wrmil_core.embedding.data import WordImageDataset
from wrmil_core.errors import WrmilInputError
from wrmil_core.imaging import MAX_IMAGE_PIXELS, open_image, reduce_to
from wrmil_core.pages.io import read_page
from wrmil_core.scoring.strip import _word_tile


def png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width x height`` grey pixels and holds none: a bomb, made cheaply."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def test_the_limit_is_an_a3_page_at_1200_dpi() -> None:
    assert 270e6 < MAX_IMAGE_PIXELS < 290e6  # 297 x 420 mm at 1200 dpi
    assert MAX_IMAGE_PIXELS > 2 * Image.MAX_IMAGE_PIXELS  # PIL alone would refuse it with a traceback


@pytest.mark.parametrize("size, shown", [((15_000, 20_000), "15000x20000 px (300 Mpx)"),  # over the limit
                                         ((100_000, 100_000), "100000x100000 px (10000 Mpx)")])  # a bomb to PIL
def test_an_oversized_image_is_one_line_naming_file_size_limit_and_fix(tmp_path: Path, size: tuple[int, int],
                                                                       shown: str) -> None:
    path = png_header(tmp_path / "scan.png", *size)
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(WrmilInputError) as e:
        read_page(path)
    msg = str(e.value)
    assert msg == (f"{path}: the image is {shown}, over the limit of 278 Mpx (an A3 page at 1200 dpi); "
                   "rescan at 300-600 dpi (or downscale the file) and try again")
    assert Image.MAX_IMAGE_PIXELS == before  # PIL's limit is raised for the open only


def test_every_reader_refuses_an_oversized_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.png"
    Image.new("L", (60, 40), 200).save(path)
    monkeypatch.setattr(imaging, "MAX_IMAGE_PIXELS", 1000)  # 60 x 40 = 2400 px is now over the limit
    needle = "60x40 px (0.002 Mpx), over the limit of 0.001 Mpx"
    with pytest.raises(WrmilInputError, match=r"w\.png: the image is 60x40 px"):
        read_page(path)
    status, why = image_status(path)
    assert status == "corrupt_image" and why.startswith("the image is 60x40 px") and "300-600 dpi" in why
    item = WordImageDataset([str(path)], None, lambda im: im.convert("L"))[0]
    assert item[0] is None and needle in item[3]
    err = _features_of((str(path), {}))
    assert isinstance(err, str) and needle in err
    with pytest.raises(WrmilInputError, match=re.escape(needle)):
        _word_tile(path, np.array([200.0, 0, 0]), "w", 40, 200, None)


def test_a_large_scan_within_the_limit_is_read_and_shrunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = np.full((300, 200), 240, np.uint8)
    page[100:140, 40:160] = 20
    Image.fromarray(page).save(tmp_path / "p.png")
    Image.fromarray(page).save(tmp_path / "p.jpg", quality=95)
    # PIL's own limit stands for its 89 Mpx default: this image is a "bomb" to PIL alone.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(tmp_path / "p.png")
    assert read_page(tmp_path / "p.png").shape == (300, 200)  # read whole under wrmil's limit
    for name in ("p.png", "p.jpg"):
        small = read_page(tmp_path / name, max_pixels=20_000)  # 60,000 px: halved (15,000 px)
        assert small.shape == (150, 100), name
        assert small[60, 50] < 80 and small[5, 5] > 200  # the ink and the paper where they were
    assert Image.MAX_IMAGE_PIXELS == 10_000


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "1", "I;16"])
def test_reduce_to_keeps_every_mode_readable(mode: str) -> None:
    im = Image.new("L", (90, 60), 255).convert(mode) if mode != "I;16" else Image.new("I;16", (90, 60), 4000)
    out = reduce_to(im, 1500)  # 5400 px: halved
    assert out.size == (45, 30)
    assert np.asarray(out.convert("L")).std() == 0  # a uniform image stays uniform (no palette mix-up)
    assert reduce_to(im, 10_000) is im


def test_open_image_is_lazy_and_closes(tmp_path: Path) -> None:
    Image.new("L", (30, 20), 0).save(tmp_path / "a.png")
    with open_image(tmp_path / "a.png") as im:
        assert im.size == (30, 20) and im.format == "PNG"
    with pytest.raises(FileNotFoundError):
        with open_image(tmp_path / "missing.png"):
            pass


@pytest.mark.parametrize("command", ["segment", "score"])
def test_cli_refuses_an_oversized_scan_with_exit_2(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    path = png_header(tmp_path / "huge_scan.png", 30_000, 40_000)
    args = ["--out", str(tmp_path / "out")]
    if command == "score":  # the page is read only after the models are found: give a model pair
        setup = scoring_setup(tmp_path_factory)
        args += ["--embedding-model", str(setup["emb_dir"]), "--mil-model", str(setup["mil"]["distance"])]
    assert main([command, str(path), *args]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert lines[0].startswith(f"wrmil {command}: error: {path}: the image is 30000x40000 px (1200 Mpx)"), lines[0]
    assert "over the limit of 278 Mpx" in lines[0] and "rescan at 300-600 dpi" in lines[0]


@pytest.mark.slow
def test_a_12000_by_16000_scan_is_segmented(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's scan (192 Mpx, over twice PIL's default limit): read, shrunk 3x, cut into words."""
    from wrmil_core.pages.io import MAX_PAGE_PIXELS
    from wrmil_core.synth.pages import make_page, page_preset

    page = Image.fromarray(make_page(page_preset("small"), 3, seed=0).image)  # 900 x 1000
    scan = Image.new("L", (12_000, 16_000), 240)
    scan.paste(page.resize((9000, 10_000), Image.Resampling.NEAREST), (1500, 3000))
    scan.save(tmp_path / "scan.png", compress_level=1)
    del scan
    image = read_page(tmp_path / "scan.png")
    assert image.shape == (16_000 // 3 + 1, 12_000 // 3) and image.size <= MAX_PAGE_PIXELS
    assert main(["segment", str(tmp_path / "scan.png"), "--out", str(tmp_path / "out")]) == 0, capsys.readouterr().err
    assert "wrmil segment: 1 page(s)" in capsys.readouterr().out


def test_cli_refuses_a_folder_with_an_oversized_word_image(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           tmp_path_factory: pytest.TempPathFactory) -> None:
    setup = scoring_setup(tmp_path_factory)
    doc = tmp_path / "doc"
    shutil.copytree(setup["genuine"], doc)
    png_header(doc / "zz_huge.png", 30_000, 40_000)
    rc = main(["score", str(doc), "--embedding-model", str(setup["emb_dir"]),
               "--mil-model", str(setup["mil"]["distance"]), "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert "zz_huge.png (corrupt_image: the image is 30000x40000 px (1200 Mpx), over the limit" in lines[0]
    assert "rescan at 300-600 dpi" in lines[0]
