"""Embedding throughput (images/s) of the demo backbone: batched DataLoader pipeline vs one image at a time.

    .venv/bin/python benchmarks/embed_throughput.py                      # ~1,000 synthetic words
    .venv/bin/python benchmarks/embed_throughput.py --model runs/embedding/model --num-workers 2

* batched: ``wrmil_core.embedding.infer.embed_words`` (DataLoader decoding and resizing PNGs, in
  process by default or in ``--num-workers`` worker processes, batches of ``--batch-size`` through
  the network in eval mode)
* one at a time: open, transform and embed each image in its own forward pass, the way a simple
  script would loop over files

Both use the same network, transform and threads; the untrained demo network has the same cost
as a trained one (``--model`` loads a trained one instead). Images come from the synthetic
generator (written to a temporary directory) unless ``--data`` points to a data root.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from wrmil_core.data.ingest import ingest
from wrmil_core.embedding.config import preset
from wrmil_core.embedding.data import WordTransform
from wrmil_core.embedding.infer import load_embedding_model
from wrmil_core.embedding.models import embed_words
from wrmil_core.embedding.model import build_model
from wrmil_core.imaging import open_image
from wrmil_core.runtime import available_cores
from wrmil_core.synth import SynthConfig, generate_dataset


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="data root in the raw layout (default: generate synthetic words)")
    p.add_argument("--model", help="trained model directory (default: untrained demo network)")
    p.add_argument("--n-images", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = cores left after the workers)")
    a = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(a.data) if a.data else Path(tmp) / "raw"
        if not a.data:
            n_writers = max(2, -(-a.n_images // (9 * 14)))  # 9 repetitions x 14 prompt words per writer
            generate_dataset(root, SynthConfig(n_writers=n_writers, n_sessions=1, reps_per_session=9))
        words = ingest(root, verify_images=False).words.head(a.n_images)
        if a.model:
            model, config = load_embedding_model(a.model, "cpu")
        else:
            config = preset("demo")
            model = build_model(config).eval()
        n_cores = available_cores()
        threads = a.threads or max(1, n_cores - a.num_workers)
        torch.set_num_threads(threads)
        print(f"{words.height} images, backbone {config.backbone} at {config.img_h}x{config.img_w}, "
              f"{threads} torch thread(s), {n_cores} cores")

        embed_words(model, words.head(64), batch_size=32, num_workers=0)  # warm-up (kernel selection)
        t = time.perf_counter()
        embed_words(model, words, batch_size=a.batch_size, num_workers=a.num_workers)
        torch.set_num_threads(threads)  # embed_words restores the previous setting; keep ours
        batched = words.height / (time.perf_counter() - t)

        transform = WordTransform(config, train=False)
        t = time.perf_counter()
        with torch.no_grad():
            for path in words["path"]:
                with open_image(path) as im:
                    x = transform(im)
                model.embed(x[None])
        single = words.height / (time.perf_counter() - t)

    print(f"batched pipeline (batch {a.batch_size}, {a.num_workers} worker(s)): {batched:8.1f} images/s")
    print(f"one image at a time:                        {single:8.1f} images/s")
    print(f"speed-up: {batched / single:.1f}x")


if __name__ == "__main__":
    main()
