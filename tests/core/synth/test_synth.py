"""Synthetic handwriting generator: layout, CSV contract, determinism, and that style is a real signal."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wrmil_core.errors import WrmilInputError
from wrmil_core.synth import (
    CSV_COLUMNS,
    DEMO,
    METADATA_FILE,
    PRESETS,
    TINY,
    SynthConfig,
    dataset_exists,
    file_stems,
    generate_dataset,
    render_word,
    sample_writer_style,
)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    messages: list[str] = []
    csv_path = generate_dataset(root, TINY, log=messages.append)
    assert csv_path == root / METADATA_FILE
    assert messages, "progress messages go to the log callback"
    return root


def _rows(root: Path) -> list[dict[str, str]]:
    with (root / METADATA_FILE).open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        return list(reader)


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_tiny_layout_csv_columns_and_reading_order(tiny_root: Path) -> None:
    rows = _rows(tiny_root)
    cfg = TINY
    assert len(rows) == cfg.n_writers * cfg.n_sessions * cfg.reps_per_session * len(cfg.words)
    # Reading order: writer, then repetition, then the prompts' word order.
    expected = [
        (w, rep, word)
        for w in range(cfg.n_writers)
        for rep in range(cfg.n_repetitions)
        for word in cfg.words
    ]
    got = [(int(r["label"]), int(r["repetition"]), r["detected_word"]) for r in rows]
    assert got == expected
    for r in rows:
        writer_dir, name = r["image_path"].split("/")
        assert writer_dir == r["label"]
        assert name.endswith(f"_{r['repetition']}.png")
        assert (tiny_root / r["image_path"]).is_file()
    # Words carry their punctuation in the CSV but not in file names.
    assert "prairie." in cfg.words and "0/prairie_0.png" in {r["image_path"] for r in rows}
    assert dataset_exists(tiny_root, TINY)


def test_file_names_unique_per_writer_and_safe(tiny_root: Path) -> None:
    rows = _rows(tiny_root)
    paths = [r["image_path"] for r in rows]
    assert len(paths) == len(set(p.lower() for p in paths))
    assert all(all(c.isalnum() or c in "_-./" for c in p) for p in paths)
    # "the" occurs twice per repetition in the default prompts.
    assert "0/the_0.png" in paths and "0/the-2_0.png" in paths
    on_disk = {str(p.relative_to(tiny_root)) for p in tiny_root.rglob("*.png")}
    assert on_disk == set(paths)


def test_file_stems_sanitise_and_disambiguate() -> None:
    assert file_stems(["the", "cat's", "The", "the", "?!", "a/b", "..", "x-1"]) == [
        "the",
        "cat_s",
        "The-2",
        "the-3",
        "word",
        "a_b",
        "word-2",
        "x_1",
    ]


def test_images_are_nonempty_grayscale_word_crops(tiny_root: Path) -> None:
    heights = []
    for r in _rows(tiny_root)[:: 7]:
        with Image.open(tiny_root / r["image_path"]) as img:
            assert img.mode == "L"
            a = np.asarray(img)
        heights.append(a.shape[0])
        assert a.shape[1] >= 8
        assert a.min() < 128, "ink present"
        assert np.median(a) == 255, "white background"
        ink_cols = np.nonzero((a < 128).any(0))[0]
        assert ink_cols[0] > 0 and ink_cols[-1] < a.shape[1] - 1, "margin around the ink"
    assert 40 <= np.median(heights) <= 70


def test_generation_is_deterministic_and_independent_of_workers(tiny_root: Path, tmp_path: Path) -> None:
    two = dataclasses.replace(TINY, workers=2)
    generate_dataset(tmp_path / "w2", two)
    assert _digest(tmp_path / "w2") == _digest(tiny_root)
    other = dataclasses.replace(TINY, seed=TINY.seed + 1)
    generate_dataset(tmp_path / "s1", other)
    a, b = _digest(tiny_root), _digest(tmp_path / "s1")
    pngs = [k for k in a if k.endswith(".png")]
    assert sum(a[k] != b[k] for k in pngs) == len(pngs), "another seed draws every image differently"
    # The recorded configuration tells the two sets apart even though the row counts agree.
    assert dataset_exists(tmp_path / "s1", other) and not dataset_exists(tmp_path / "s1", TINY)


def test_dataset_exists_detects_missing_or_truncated_csv(tmp_path: Path) -> None:
    cfg = SynthConfig(n_writers=2, n_sessions=1, reps_per_session=1, prompts=("a b",), workers=1)
    assert not dataset_exists(tmp_path, cfg)
    csv_path = generate_dataset(tmp_path, cfg)
    assert dataset_exists(tmp_path, cfg)
    assert not dataset_exists(tmp_path, dataclasses.replace(cfg, n_writers=3))
    lines = csv_path.read_text().splitlines()
    csv_path.write_text("\n".join(lines[:-1]) + "\n")  # a crash mid-write
    assert not dataset_exists(tmp_path, cfg)
    csv_path.unlink()
    assert not dataset_exists(tmp_path, cfg)


def _pixels(img: Image.Image, h: int = 32, w: int = 128) -> np.ndarray:
    s = min(h / img.height, w / img.width)
    small = img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.BILINEAR)
    canvas = Image.new("L", (w, h), 255)
    canvas.paste(small, (0, (h - small.height) // 2))
    return 1.0 - np.asarray(canvas, dtype=np.float64).ravel() / 255.0


def _style_signal(style_of) -> tuple[float, float]:
    """(mean within-writer / mean between-writer pixel distance, leave-one-out 1-NN accuracy)
    over 8 writers x 6 samples of the same words; ``style_of(writer, rep)`` gives the style."""
    writers, reps, words = range(8), 6, ("Kansas", "London", "business")
    within, between, correct, total = [], [], 0, 0
    for word in words:
        x = np.array(
            [
                _pixels(render_word(word, style_of(w, r), np.random.default_rng([w, r])))
                for w in writers
                for r in range(reps)
            ]
        )
        y = np.repeat(np.array(writers), reps)
        d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
        same = y[:, None] == y[None]
        off_diag = ~np.eye(len(y), dtype=bool)
        assert d[off_diag].min() > 0, "every sample is drawn afresh"
        within.append(d[same & off_diag].mean())
        between.append(d[~same].mean())
        np.fill_diagonal(d, np.inf)
        correct += int((y[d.argmin(1)] == y).sum())
        total += len(y)
    return float(np.mean(within) / np.mean(between)), correct / total


def test_writer_style_is_stable_but_samples_vary() -> None:
    """Same word, same writer: closer in pixel space than the same word by other writers."""
    styles = {w: sample_writer_style(w, seed=123) for w in range(8)}
    ratio, acc = _style_signal(lambda w, r: styles[w])
    # Control: a fresh random hand for every sample, so "writer" labels carry no style.
    ctrl_ratio, ctrl_acc = _style_signal(lambda w, r: sample_writer_style(1000 + 10 * w + r, seed=123))
    chance = 1 / 8
    assert ratio < 0.985 and ratio < ctrl_ratio - 0.02
    assert acc > 2 * chance and acc > ctrl_acc + 0.1
    assert ctrl_acc < 2 * chance


def test_sample_writer_style_is_a_pure_function() -> None:
    a, b, c = sample_writer_style(5, 7), sample_writer_style(5, 7), sample_writer_style(6, 7)
    assert np.array_equal(a.letter_field, b.letter_field) and a.slant == b.slant
    assert not np.array_equal(a.letter_field, c.letter_field)
    img1 = render_word("Dorothy", a, np.random.default_rng(1))
    img2 = render_word("Dorothy", b, np.random.default_rng(1))
    assert img1.tobytes() == img2.tobytes() and img1.size == img2.size


def test_mixed_document_words_from_two_writers() -> None:
    """The questioned-document use: words of one text drawn in two different hands."""
    s0, s1 = sample_writer_style(0, 0), sample_writer_style(1, 0)
    rng = np.random.default_rng(0)
    imgs = [render_word(w, s0 if i % 2 else s1, rng) for i, w in enumerate(DEMO.words)]
    assert all(im.mode == "L" and im.height > 20 for im in imgs)


def test_bad_inputs_are_refused_with_clear_errors() -> None:
    with pytest.raises(WrmilInputError, match="n_writers"):
        SynthConfig(n_writers=0)
    with pytest.raises(WrmilInputError, match="caf"):
        SynthConfig(prompts=("un café",))
    with pytest.raises(WrmilInputError, match="prompts"):
        SynthConfig(prompts=("   ",))
    with pytest.raises(WrmilInputError, match="cannot draw"):
        render_word("naïve", sample_writer_style(0, 0), np.random.default_rng(0))


def test_presets_follow_the_protocol() -> None:
    """DEMO: 40 writers x 3 sessions x 9 repetitions of ~13 words, about 350 words per writer."""
    assert (DEMO.n_writers, DEMO.n_sessions, DEMO.reps_per_session) == (40, 3, 9)
    assert 12 <= len(DEMO.words) <= 15 and 300 <= DEMO.n_repetitions * len(DEMO.words) <= 420
    assert PRESETS["tiny"] is TINY and PRESETS["demo"] is DEMO and PRESETS["paper"].n_writers == 300
    assert TINY.fingerprint() == dataclasses.replace(TINY, workers=2).fingerprint()


def test_preset_helper_and_shared_layout_defaults() -> None:
    """SynthConfig follows the stage-config convention; the raw layout's defaults live in schema."""
    from wrmil_core.schema import DEFAULT_METADATA_CSV, DEFAULT_REPS_PER_SESSION
    from wrmil_core.synth import preset

    assert preset("tiny") == TINY and preset("tiny", n_writers=10) == dataclasses.replace(TINY, n_writers=10)
    assert METADATA_FILE == DEFAULT_METADATA_CSV and DEMO.reps_per_session == DEFAULT_REPS_PER_SESSION
    with pytest.raises(WrmilInputError, match="unknown SynthConfig preset 'huge'"):
        preset("huge")
    with pytest.raises(WrmilInputError, match=r"no field\(s\) \['writers'\]"):
        preset("demo", writers=3)
    with pytest.raises(WrmilInputError, match="n_writers"):
        preset("demo", n_writers=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEMO.n_writers = 3  # type: ignore[misc]
