"""What the shortcut controls add to a run: seconds per split beside the existing embedding pass.

    .venv/bin/python benchmarks/shortcut_cost.py                 # synthetic demo set, all 40 writers
    .venv/bin/python benchmarks/shortcut_cost.py --writers 16    # a smaller cut of it (same per-word cost)
    .venv/bin/python benchmarks/shortcut_cost.py --data data/synthetic

Per split (the default 60/20/20 writer split): ``word_embeddings``' pass (``embed_words``, the
existing work), the baselines' pass (``embed_baselines``: the untrained network and raw pixels,
the added asset) and the quality figures ``word_embeddings`` now records (writer-bootstrap CIs of
three tables); then the report's shortcut controls on the test bags (``evaluate_controls``). The
demo network, untrained, stands in for the trained one (same cost). Batch 64, this process's
threads, as the assets run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from wrmil_core.artifacts import save_model
from wrmil_core.bags.build import build_bags
from wrmil_core.bags.config import preset as bag_preset
from wrmil_core.data.ingest import ingest
from wrmil_core.data.split import split_writers, words_of_split
from wrmil_core.embedding.baselines import embed_baselines, quality_by_embedding, untrained_network
from wrmil_core.embedding.config import preset
from wrmil_core.embedding.models import embed_words
from wrmil_core.report import evaluate_controls
from wrmil_core.schema import SPLITS
from wrmil_core.synth import generate_dataset
from wrmil_core.synth.dataset import preset as synth_preset


def _timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="data root in the raw layout (default: generate the synthetic demo set)")
    p.add_argument("--writers", type=int, default=40, help="writers of the generated set (demo: 40)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(a.data) if a.data else Path(tmp) / "raw"
        if not a.data:
            generate_dataset(root, synth_preset("demo", n_writers=a.writers))
        words = ingest(root, verify_images=False).words
        splits = split_writers(words["writer"].unique().sort().to_numpy())
        cfg = preset("demo", device="cpu")
        model_dir = Path(tmp) / "model"
        save_model(model_dir, untrained_network(cfg).state_dict(), cfg.to_dict())
        print(f"{words.height} words, {words['writer'].n_unique()} writers; seconds per split:")
        print(f"{'split':>6} {'words':>6} {'word_embeddings':>16} {'+ baselines':>12} {'+ quality':>10}")
        total = {"embed": 0.0, "baselines": 0.0, "quality": 0.0}
        for split in SPLITS:
            w = words_of_split(words, splits, split)
            emb, t_emb = _timed(embed_words, model_dir, w, device="cpu")
            base, t_base = _timed(embed_baselines, model_dir, w, device="cpu")
            tables = {"trained": emb, **base}
            _, t_q = _timed(quality_by_embedding, tables)
            total.update(embed=total["embed"] + t_emb, baselines=total["baselines"] + t_base,
                         quality=total["quality"] + t_q)
            print(f"{split:>6} {w.height:>6} {t_emb:>16.1f} {t_base:>12.1f} {t_q:>10.1f}")
        bags = build_bags(emb, "test", bag_preset("demo")).bags
        _, t_rep = _timed(evaluate_controls, bags, tables)
        added = total["baselines"] + total["quality"] + t_rep
        print(f"report shortcut controls ({bags.height} test bags): {t_rep:.1f} s")
        print(f"added in all: {added:.1f} s (baselines {total['baselines']:.1f}, quality {total['quality']:.1f}, "
              f"report {t_rep:.1f}) beside word_embeddings' {total['embed']:.1f} s")


if __name__ == "__main__":
    main()
