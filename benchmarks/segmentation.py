"""How well does the page segmenter cut synthetic handwritten pages into words? Prints measured figures.

Generates synthetic A4 pages at 300 dpi (2480 x 3508, :mod:`wrmil_core.synth.pages`): one
synthetic writer per page (writers spread over the 40 of the demo set: cursive and print hands),
skew uniform in +-3 degrees, scanner noise (uneven light, blur, grain, dust), uneven line
spacing, every other page ruled. Each page is segmented with the default preset and scored
against the true word boxes (:mod:`wrmil_core.pages.evaluate`):

* word-box precision and recall at IoU >= 0.5, one-to-one matching (scipy's
  ``linear_sum_assignment`` maximising total IoU);
* reading-order accuracy: among the matched words, the share whose successor in the predicted
  reading order is their successor in the true order (the last word: last in both);
* pages flagged as doubtful (with their reasons);
* seconds per page for ``segment_page`` alone (the image in memory; reading a PNG adds ~0.1 s),
  wall clock and CPU time of this process (the CPU time is what an idle machine's wall clock
  would show: the segmenter runs on one core), a measured figure, not a test.

Rows: all pages, blank vs ruled, |skew| under vs over 1.5 degrees, and clean scans (noise 0) for
comparison. Targets (issue 13): precision and recall >= 0.95, reading order >= 0.98, <= 2 s per page.

Run:  .venv/bin/python benchmarks/segmentation.py [--pages 20] [--preset a4] [--seed 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from collections import defaultdict

import numpy as np

from wrmil_core.pages import SegmentConfig, segment_page
from wrmil_core.pages.evaluate import PageScore, score_page
from wrmil_core.synth.pages import make_page, page_preset

N_WRITERS = 40  # the demo synthetic set's writers


def run(n_pages: int, preset: str, seed: int,
        noise: float) -> tuple[dict[str, PageScore], list[float], list[float], list[str]]:
    """Segment ``n_pages`` synthetic pages; scores by condition, wall and CPU seconds per page, doubtful-page lines."""
    scores: dict[str, PageScore] = defaultdict(lambda: PageScore(0, 0, 0, 0))
    seconds, cpu, doubtful = [], [], []
    config = SegmentConfig()
    for i in range(n_pages):
        writer = (i * 7 + seed) % N_WRITERS  # a stride coprime to 40: every writer before any repeats
        page_cfg = page_preset(preset, ruled=bool(i % 2), noise=noise)
        page = make_page(page_cfg, writer, seed=seed * 1000 + i)
        t0, c0 = time.perf_counter(), time.process_time()
        seg = segment_page(page.image, config)
        seconds.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        s = score_page(seg.boxes, page.truth)
        for key in ("all", "ruled" if page_cfg.ruled else "blank",
                    "|skew| >= 1.5" if abs(page.skew_deg) >= 1.5 else "|skew| < 1.5"):
            scores[key] = scores[key] + s
        if seg.doubtful:
            doubtful.append(f"page {i} (writer {writer}, skew {page.skew_deg:+.1f}): {'; '.join(seg.doubtful)}")
        print(f"  page {i:2d} writer {writer:2d} {'ruled' if page_cfg.ruled else 'blank'} skew {page.skew_deg:+.2f} "
              f"(est {seg.skew_deg:+.2f}) words {s.n_true:3d} P {s.precision:.3f} R {s.recall:.3f} "
              f"order {s.order:.3f} {seconds[-1]:.2f} s", flush=True)
    return dict(scores), seconds, cpu, doubtful


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--preset", default="a4", help="synthetic page preset: a4 (300 dpi) or small")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clean-pages", type=int, default=4, help="extra pages without scanner noise")
    args = ap.parse_args()
    cfg = page_preset(args.preset)
    print(f"segmentation benchmark: {args.pages} synthetic {args.preset} pages ({cfg.width} x {cfg.height} px), "
          f"skew +-{cfg.max_skew_deg:g} deg, noise {cfg.noise:g}, every other page ruled")
    scores, seconds, cpu, doubtful = run(args.pages, args.preset, args.seed, cfg.noise)
    if args.clean_pages:
        clean, _, _, _ = run(args.clean_pages, args.preset, args.seed + 1, 0.0)
        scores["clean scans (noise 0)"] = clean["all"]
    print(f"\n{'pages':<24} {'words':>6} {'precision':>9} {'recall':>7} {'order':>6}")
    for key, s in scores.items():
        print(f"{key:<24} {s.n_true:>6} {s.precision:>9.3f} {s.recall:>7.3f} {s.order:>6.3f}")
    print(f"\ndoubtful pages: {len(doubtful)} of {args.pages}")
    for line in doubtful:
        print(f"  {line}")
    sec, cpu_sec = np.array(seconds), np.array(cpu)
    print(f"seconds per {cfg.width} x {cfg.height} page (segment_page): wall median {np.median(sec):.2f}, "
          f"max {sec.max():.2f}; CPU median {np.median(cpu_sec):.2f}, max {cpu_sec.max():.2f} "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"config: {dataclasses.asdict(SegmentConfig())}")


if __name__ == "__main__":
    main()
