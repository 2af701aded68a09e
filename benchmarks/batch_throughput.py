"""Documents per minute of ``wrmil score``: one batch process against one process per page.

Generates N synthetic pages (``wrmil_core.synth.pages``, about 600 x 680 px, every other one with a
passage by a second writer), scores them once as a batch in one process (``wrmil score --batch``,
the models loaded once) and once as one ``wrmil score PAGE`` process per page, and prints documents
per minute for both (wall clock, process start-up included). Needs trained models (``make demo``
fills data/artifacts):

    .venv/bin/python benchmarks/batch_throughput.py --artifact-dir data/artifacts --pages 43

``--single-pages K`` times the one-process-per-page way on the first K pages only (a rate, so a
subset measures it; default all).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from wrmil_core.synth.pages import make_page, page_preset

PAGE = page_preset("small", width=600, height=680, margin=40)


def write_pages(folder: Path, n: int) -> list[Path]:
    """``n`` synthetic pages, writer ``k``'s page; odd ones with words 15-29 by writer ``k + 1``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        mixed = {"foreign_writer": k + 1, "foreign_words": range(15, 30)} if k % 2 else {}
        page = make_page(PAGE, writer=k, seed=k, **mixed)
        paths.append(folder / f"page{k:03d}.png")
        Image.fromarray(page.image).save(paths[-1])
    return paths


def wrmil(*args: str) -> float:
    """Run ``wrmil`` in a fresh process; its wall-clock seconds (exit code 2: a page failed, still timed)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                                      os.environ.get("PYTHONPATH")]))}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "wrmil_assets.cli", "score", *args], env=env, capture_output=True,
                          text=True, check=False)
    if proc.returncode not in (0, 2):
        sys.exit(f"batch_throughput: wrmil score {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--artifact-dir", type=Path, default=Path("data/artifacts"))
    ap.add_argument("--pages", type=int, default=43, help="synthetic pages to score (default 43)")
    ap.add_argument("--single-pages", type=int, help="pages scored one process each (default all)")
    ap.add_argument("--work-dir", type=Path, help="where pages and outputs go (default a temporary folder)")
    args = ap.parse_args()
    if not (args.artifact_dir / "assets" / "mil_model.json").is_file():
        sys.exit(f"batch_throughput: no trained models in {args.artifact_dir} (assets/mil_model.json missing); "
                 "run `make demo` first or pass --artifact-dir")
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="wrmil_batch_"))
    pages = write_pages(work / "pages", args.pages)
    art = ["--artifact-dir", str(args.artifact_dir)]
    batch_s = wrmil("--batch", str(work / "pages"), "--out", str(work / "batch"), *art)
    single = pages[:args.single_pages or len(pages)]
    single_s = sum(wrmil(str(p), "--out", str(work / "single" / p.stem), *art) for p in single)
    batch_rate, single_rate = 60 * len(pages) / batch_s, 60 * len(single) / single_s
    print(f"pages: {len(pages)} of {PAGE.width} x {PAGE.height} px; {os.cpu_count()} CPU(s); outputs in {work}")
    print(f"one batch process:     {len(pages)} documents in {batch_s:6.1f} s = {batch_rate:6.1f} documents/min")
    print(f"one process per page:  {len(single)} documents in {single_s:6.1f} s = {single_rate:6.1f} documents/min")
    print(f"batch speed-up: {batch_rate / single_rate:.1f}x; summary: {work / 'batch' / 'summary.html'}")


if __name__ == "__main__":
    main()
