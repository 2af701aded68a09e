"""`make demo`'s page step: segment a few synthetic pages, then score a mixed-writer page.

Runs after `wrmil run --preset demo` on the synthetic set. The pages are written by writers of that
set's test split (the embedding never saw them) in the same synthetic hands
(``wrmil_core.synth.pages``); the mixed page is one test writer's page with a passage written in
by another. Prints the segmentation's word-box precision and recall (IoU >= 0.5) and reading-order
accuracy per page, the page score, how much of the outlined passage is foreign, and where the
overlay is. Outputs go to ``<artifact dir>/page_demo/``.

    .venv/bin/python scripts/page_demo.py [--data-root data/synthetic] [--artifact-dir data/artifacts] [--preview PNG]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import polars as pl
from PIL import Image

from wrmil_assets.model_records import latest_models
from wrmil_assets.resources import default_artifact_dir, default_data_root
from wrmil_core import pages
from wrmil_core.errors import WrmilInputError
from wrmil_core.imaging import open_image
from wrmil_core.pages.evaluate import score_page as score_cut
from wrmil_core.scoring.page import PageScore, score_page
from wrmil_core.synth.dataset import CONFIG_FILE
from wrmil_core.synth.pages import PageConfig, SynthPage, make_page, mixed_writer_page, page_preset

# Where the foreign passage starts and how long it is, per page size (an A4 page holds ~220 words).
PASSAGE = {"a4": (80, 40), "small": (40, 30)}


def split_test_writers(artifact_dir: Path) -> list[int]:
    """The test-split writers of the materialised ``writer_split`` (the embedding was not trained on them)."""
    path = artifact_dir / "assets" / "writer_split.parquet"
    if not path.is_file():
        raise WrmilInputError(f"{path} is missing; run `wrmil run --preset demo` first")
    writers = pl.read_parquet(path).filter(pl.col("split") == "test")["writer"].sort().to_list()
    if len(writers) < 2:
        raise WrmilInputError(f"{path}: the test split has {len(writers)} writer(s); the mixed page needs two")
    return writers


def synth_seed(data_root: Path) -> int:
    """The seed of the synthetic set in ``data_root``: the pages' hands are that set's writers."""
    path = data_root / CONFIG_FILE
    if not path.is_file():
        raise WrmilInputError(f"{data_root} is not a generated synthetic set ({CONFIG_FILE} missing); the page demo "
                              "draws writers of the synthetic demo set")
    return int(json.loads(path.read_text()).get("seed", 0))


def cut_report(name: str, page: SynthPage, boxes: pl.DataFrame) -> str:
    """One line: the cut of a synthetic page against its true boxes."""
    s = score_cut(boxes, page.truth)
    return (f"page demo: {name}: {page.truth.height} words, skew {page.skew_deg:+.1f} deg: precision {s.precision:.3f}, "
            f"recall {s.recall:.3f}, reading order {s.order:.3f}")


def segment_demo(out: Path, config: PageConfig, writers: list[int], seed: int) -> None:
    """Segment a plain and a ruled page by two test writers; print how well each was cut."""
    out.mkdir(parents=True, exist_ok=True)
    for k, (writer, ruled) in enumerate(zip(writers, (False, True))):
        page = make_page(dataclasses.replace(config, ruled=ruled), writer=writer, seed=k, synth_seed=seed)
        name = f"writer{writer}_{'ruled' if ruled else 'blank'}"
        Image.fromarray(page.image).save(out / f"{name}.png")
        seg = pages.segment_page(page.image, name=name)
        paths = pages.write_segmentation(seg, page.image, out, name)
        print(cut_report(name, page, seg.boxes) + f"; overlay {paths['overlay']}")


def passage_report(result: PageScore, page: SynthPage) -> str:
    """How many outlined words the foreign writer wrote (matched by box centre to the true boxes)."""
    n_foreign = int(page.truth["foreign"].sum())
    if result.passage is None:
        return f"page demo: no passage outlined (the page's {n_foreign} foreign words were not found)"
    first, last = result.passage
    outlined = result.boxes.filter(pl.col("word_index").is_between(first, last))
    centres = outlined.select(((pl.col("x0") + pl.col("x1")) / 2).alias("cx"), ((pl.col("y0") + pl.col("y1")) / 2).alias("cy"))
    foreign = page.truth.filter("foreign")
    hits = sum(foreign.filter((pl.col("x0") <= cx) & (cx < pl.col("x1")) & (pl.col("y0") <= cy) & (cy < pl.col("y1"))).height > 0
               for cx, cy in centres.iter_rows())
    return (f"page demo: outlined words {first}-{last}: {hits} of {outlined.height} written by the foreign writer "
            f"(the passage has {n_foreign} words)")


def score_demo(out: Path, config: PageConfig, size: str, writers: list[int], seed: int, artifact_dir: Path,
               device: str) -> PageScore:
    """Score a test writer's page with a passage by another test writer; print the result and the overlay."""
    start, n_foreign = PASSAGE[size]
    host, foreign = writers[-1], writers[-2]
    page = mixed_writer_page(config, writer=host, foreign_writer=foreign, start=start, n_foreign=n_foreign,
                             seed=1, synth_seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(page.image).save(out / "mixed_page.png")
    emb_dir, mil_dir = latest_models(artifact_dir)
    result = score_page(out / "mixed_page.png", emb_dir, mil_dir, out, device=device)
    print(f"page demo: mixed-writer page: writer {host}'s page, words {start}-{start + n_foreign - 1} by writer {foreign}")
    print(cut_report("mixed page", page, result.boxes))
    print(result.summary())
    print(passage_report(result, page))
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the page demo; exit code 2 with one line when its inputs are missing."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default=default_data_root(), help="the synthetic set (default: WRMIL_DATA_ROOT)")
    p.add_argument("--artifact-dir", default=default_artifact_dir(), help="materialised models and writer_split")
    p.add_argument("--page", default="a4", choices=sorted(PASSAGE), help="page size (small: tests)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--preview", metavar="PNG", help="also save the overlay 1000 px high, 64 colours (the README's)")
    args = p.parse_args(argv)
    t0, art = time.perf_counter(), Path(args.artifact_dir)
    try:
        writers, seed = split_test_writers(art), synth_seed(Path(args.data_root))
        config = page_preset(args.page)
        segment_demo(art / "page_demo" / "segmented", config, writers, seed)
        result = score_demo(art / "page_demo" / "mixed_page", config, args.page, writers, seed, art, args.device)
    except WrmilInputError as e:
        print(f"page demo: error: {e}", file=sys.stderr)
        return 2
    print(f"page demo: {time.perf_counter() - t0:.0f} s")
    print(f"page demo: overlay of the scored mixed-writer page: {result.outputs['overlay']}")
    if args.preview:
        save_preview(result.outputs["overlay"], Path(args.preview))
    return 0


def save_preview(overlay: Path, out: Path, height: int = 1000, colours: int = 64) -> None:
    """A small copy of the overlay (palette PNG) for documentation."""
    with open_image(overlay) as im:
        small = im.resize((round(im.width * height / im.height), height), Image.Resampling.LANCZOS)
    # octree keeps the few saturated colours (boxes, outline) that median cut merges into the greys
    small.quantize(colors=colours, method=Image.Quantize.FASTOCTREE).save(out, optimize=True)
    print(f"page demo: preview {out} ({out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    sys.exit(main())
