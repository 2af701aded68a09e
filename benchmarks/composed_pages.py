"""Questioned page crops composed from real word images: ``wrmil score --batch`` as the issue's examiners used it.

The held-out check of issue 21 scored 43 real questioned documents of 15 writers: 28 genuine and 15
composites, each with two lines pasted in from another writer's page, many cropped to the passage
(162-306 px high, 5-10 lines). This benchmark builds documents of that shape from the TEST writers
of a trained run (``<artifact-dir>/assets/writer_split.parquet`` and ``raw_words.parquet``: writers
no model has seen), so it works on any word-image set the pipeline was run on, AHAWP included:

* each word image is cleaned (Otsu threshold, ``skimage``: background to white, form-cell
  rulings removed, cut to its ink left and right), scaled to ``--word-height`` px (the source image's height: words keep their sizes) and laid out in lines right to left or left to right (``--rtl``),
  5-10 lines per document, the words of one of the writer's documents (one sitting: a page never
  mixes two sessions of its writer) in reading order from a random start;
* a composite's two consecutive lines (never the first) come from another test writer;
* every document is scored in one ``wrmil score --batch`` process, and the summary is read back:
  documents refused, AUC of log10 LR (composites against genuine), distinct LR values, the
  decisions at the validation 1 % / 5 % FPR thresholds, the writer estimates, and the wall time.

    .venv/bin/python benchmarks/composed_pages.py --artifact-dir /tmp/ahawp_run --rtl --word-height 40
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image
from skimage.filters import threshold_otsu
from skimage.measure import label, regionprops
from sklearn.metrics import roc_auc_score

from wrmil_core.imaging import grey_array, open_image


@dataclass(frozen=True)
class Layout:
    """Page geometry: ``width`` px, ink height of a word, gaps and margins in px."""

    width: int = 600
    word_height: int = 30
    margin: int = 16
    rtl: bool = False

    @property
    def gap(self) -> int:
        return max(4, self.word_height // 2)

    @property
    def pitch(self) -> int:
        return int(self.word_height * 1.15)


def clean_word(path: str, height: int) -> np.ndarray:
    """A word image as grey ink on white, cut to its ink left and right (its full height kept, so words
    keep their relative size and baseline) and scaled to ``height`` px."""
    with open_image(path) as im:
        grey = grey_array(im)
    ink = grey < threshold_otsu(grey) if grey.min() < grey.max() else np.zeros(grey.shape, bool)
    ink = _without_rulings(ink)
    if not ink.any():
        return np.full((height, height), 255, np.uint8)
    cols = np.flatnonzero(ink.any(axis=0))
    crop = np.where(ink, grey, 255)[:, cols[0]:cols[-1] + 1].astype(np.uint8)
    width = max(1, round(crop.shape[1] * height / crop.shape[0]))
    return np.asarray(Image.fromarray(crop).resize((width, height), Image.Resampling.LANCZOS))


def _without_rulings(ink: np.ndarray) -> np.ndarray:
    """``ink`` without form-cell rulings: components at least 80 % as long as the crop in one direction
    and at most 6 % of it in the other (straight lines, not the writer's ink)."""
    labels = label(ink)
    h, w = ink.shape
    for r in regionprops(labels):
        rh, rw = r.bbox[2] - r.bbox[0], r.bbox[3] - r.bbox[1]
        if (rw >= 0.8 * w and rh <= 0.06 * h) or (rh >= 0.8 * h and rw <= 0.06 * w):
            ink[labels == r.label] = False
    return ink


def lines_of(words: list[np.ndarray], layout: Layout, n_lines: int) -> list[list[np.ndarray]]:
    """Fill ``n_lines`` lines with ``words`` in order (a line holds what fits the page width)."""
    out, line, used = [], [], 0
    room = layout.width - 2 * layout.margin
    for w in words:
        if line and used + w.shape[1] > room:
            out.append(line)
            line, used = [], 0
            if len(out) == n_lines:
                return out
        line.append(w)
        used += w.shape[1] + layout.gap
    return out + ([line] if line and len(out) < n_lines else [])


def render(lines: list[list[np.ndarray]], layout: Layout) -> np.ndarray:
    """The page: lines top to bottom, words in reading order from the left (or right, ``rtl``)."""
    page = np.full((2 * layout.margin + len(lines) * layout.pitch, layout.width), 255, np.uint8)
    for k, line in enumerate(lines):
        top, x = layout.margin + k * layout.pitch, layout.margin
        for w in line:
            left = layout.width - x - w.shape[1] if layout.rtl else x
            page[top:top + w.shape[0], left:left + w.shape[1]] = np.minimum(
                page[top:top + w.shape[0], left:left + w.shape[1]], w)
            x += w.shape[1] + layout.gap
    return page


def test_writer_words(artifact_dir: Path) -> dict[int, list[list[str]]]:
    """Each test writer's documents: their word image paths in reading order."""
    split = pl.read_parquet(artifact_dir / "assets" / "writer_split.parquet")
    words = pl.read_parquet(artifact_dir / "assets" / "raw_words.parquet")
    test = split.filter(pl.col("split") == "test")["writer"].to_list()
    words = words.filter(pl.col("writer").is_in(test)).sort("writer", "doc_id", "position")
    docs: dict[int, list[list[str]]] = {}
    for (w, _), g in words.group_by(["writer", "doc_id"], maintain_order=True):
        docs.setdefault(int(w), []).append(g["path"].to_list())
    return docs


def compose(writers: dict[int, list[list[str]]], layout: Layout, n_docs: int, n_composite: int, out: Path,
            seed: int = 0) -> list[dict]:
    """Write ``n_docs`` documents (the first ``n_composite`` of them composites) as PNGs; their truth."""
    rng = np.random.default_rng(seed)
    ids, truth = sorted(writers), []
    out.mkdir(parents=True, exist_ok=True)
    for d in range(n_docs):
        host = ids[d % len(ids)]
        n_lines = int(rng.integers(5, 11))
        words = _run_of(writers[host], 12 * n_lines, rng, layout)
        lines = lines_of(words, layout, n_lines)
        donor, at = None, None
        if d < n_composite and len(lines) >= 3:
            donor = ids[(ids.index(host) + 1 + int(rng.integers(len(ids) - 1))) % len(ids)]
            at = int(rng.integers(1, len(lines) - 1))
            foreign = lines_of(_run_of(writers[donor], 30, rng, layout), layout, 2)
            lines[at:at + 2] = foreign[:2]
        image = render(lines, layout)
        name = f"doc{d:03d}_{'composite' if donor is not None else 'genuine'}.png"
        Image.fromarray(image).save(out / name)
        truth.append({"id": Path(name).stem, "writer": host, "donor": donor, "lines": len(lines), "foreign_line": at,
                      "height": image.shape[0]})
    return truth


def _run_of(docs: list[list[str]], n: int, rng: np.random.Generator, layout: Layout) -> list[np.ndarray]:
    """Up to ``n`` consecutive words of one of a writer's documents (one page is one sitting), from a
    random start (wrapping within the document), cleaned and scaled."""
    paths = docs[int(rng.integers(len(docs)))]
    start = int(rng.integers(len(paths)))
    return [clean_word(paths[(start + i) % len(paths)], layout.word_height) for i in range(min(n, len(paths)))]


def score_batch(pages: Path, artifact_dir: Path, out: Path) -> float:
    """``wrmil score --batch`` in a fresh process; its wall-clock seconds."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                                      os.environ.get("PYTHONPATH")]))}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "wrmil_assets.cli", "score", "--batch", str(pages), "--out", str(out),
                           "--artifact-dir", str(artifact_dir)], env=env, capture_output=True, text=True, check=False)
    if proc.returncode not in (0, 2):
        sys.exit(f"composed_pages: wrmil score --batch failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - t0


def report(truth: list[dict], summary: Path, seconds: float) -> None:
    """Print the figures of the scored batch against the truth."""
    rows = {r["id"]: r for r in csv.DictReader(summary.open())}
    ok = [t for t in truth if rows.get(t["id"], {}).get("status") == "ok"]
    refused = [f"{t['id']}: {rows.get(t['id'], {}).get('error', 'missing')}" for t in truth if t not in ok]
    y = np.array([t["donor"] is not None for t in ok], int)
    lr = np.array([float(rows[t["id"]]["log10_lr"]) for t in ok])
    heights = [t["height"] for t in truth]
    print(f"{len(truth)} documents ({int(sum(t['donor'] is not None for t in truth))} composites) of "
          f"{len({t['writer'] for t in truth})} test writers, {min(heights)}-{max(heights)} px high; "
          f"{os.cpu_count()} CPU(s); batch wall time {seconds:.1f} s ({60 * len(truth) / seconds:.1f} documents/min)")
    print(f"refused: {len(refused)}" + "".join(f"\n  {r}" for r in refused))
    if y.any() and (y == 0).any():
        print(f"AUC composite vs genuine (log10 LR): {roc_auc_score(y, lr):.3f} on {int(y.sum())} composites / "
              f"{int((y == 0).sum())} genuine")
    print(f"distinct log10 LR values: {np.unique(np.round(lr, 3)).size} of {lr.size}; range {lr.min():+.2f} .. "
          f"{lr.max():+.2f}")
    for flag in ("flagged_fpr_1", "flagged_fpr_5"):
        f = np.array([rows[t["id"]][flag].lower() in ("true", "yes", "1") for t in ok])
        print(f"{flag}: genuine {f[y == 0].mean() if (y == 0).any() else float('nan'):.3f}, "
              f"composites {f[y == 1].mean() if y.any() else float('nan'):.3f}")
    estimates = [rows[t["id"]]["writers"] for t in ok]
    print("writer estimates, genuine: " + _counts([e for e, t in zip(estimates, ok) if t["donor"] is None])
          + "; composites: " + _counts([e for e, t in zip(estimates, ok) if t["donor"] is not None]))
    small = sum("small writing" in rows[t["id"]]["warnings"] for t in ok)
    print(f"small-writing warnings: {small} of {len(ok)}")


def _counts(values: list[str]) -> str:
    return ", ".join(f"{v or 'n/a'}: {values.count(v)}" for v in sorted(set(values))) or "none"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--artifact-dir", type=Path, default=Path("data/artifacts"), help="a trained run's artifacts")
    ap.add_argument("--out", type=Path, help="pages and scores go here (default a new temporary folder)")
    ap.add_argument("--docs", type=int, default=43)
    ap.add_argument("--composites", type=int, default=15)
    ap.add_argument("--word-height", type=int, default=40,
                    help="height of a source word image once scaled, in px (its ink is smaller; default 40)")
    ap.add_argument("--width", type=int, default=600)
    ap.add_argument("--rtl", action="store_true", help="lay lines out right to left (Arabic, Hebrew)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    args.out = args.out or Path(tempfile.mkdtemp(prefix="wrmil_composed_"))
    writers = test_writer_words(args.artifact_dir)
    if len(writers) < 2:
        sys.exit(f"composed_pages: {args.artifact_dir} has {len(writers)} test writer(s); composites need two")
    layout = Layout(width=args.width, word_height=args.word_height, rtl=args.rtl)
    truth = compose(writers, layout, args.docs, args.composites, args.out / "pages", args.seed)
    seconds = score_batch(args.out / "pages", args.artifact_dir, args.out / "scores")
    report(truth, args.out / "scores" / "summary.csv", seconds)
    print(f"pages and scores: {args.out}")


if __name__ == "__main__":
    main()
