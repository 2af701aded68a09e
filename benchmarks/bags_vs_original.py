"""Bag building: this implementation vs a straightforward reimplementation of the original.

Synthetic embeddings the size of the original CSAFE train split (208,233 words, 180 writers,
540 documents = writer x session, dim 128, random unit vectors). Both sides build the same
like-for-like set: ``instance`` mode (stride-1 windows of 5 words, bags of 10 consecutive
windows, ``k = max(1, int(10 * r))`` windows replaced by another writer's), 4,321 genuine bags and
the same number of contaminated bags per ratio (1 : 2 balance), then write them to disk.

* ours: ``wrmil_core.bags.build.build_bags`` (numpy index arithmetic, word ids) -> Parquet
* ORIGINAL-STYLE BASELINE: Python loops, a (5, 128) float copy per window, a (10, 5, 128)
  copy per bag in a list of dicts, one positive and four negatives per base bag then balanced,
  pickled to disk. Pickle is used *only here*, to measure the original approach; wrmil itself
  never pickles or unpickles anything.

Also prints the default ``word``-mode figures and the cost of gathering vectors for training.

    .venv/bin/python benchmarks/bags_vs_original.py            # full size (~1 min, ~1.5 GB RAM)
    .venv/bin/python benchmarks/bags_vs_original.py --quick    # 1/10 size smoke run
"""

from __future__ import annotations

import argparse
import os
import pickle  # ORIGINAL-STYLE BASELINE ONLY: dumps, never loads  # nosec B403
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from wrmil_core.bags.tensors import gather_bags
from wrmil_core.bags.build import build_bags
from wrmil_core.bags.config import BagConfig

RATIOS = (0.05, 0.10, 0.20, 0.30)


def synthetic_embeddings(n_words: int, n_writers: int, docs_per_writer: int, dim: int, seed: int = 0) -> pl.DataFrame:
    """An embeddings table (schema ``embeddings``) with documents of near-equal length."""
    rng = np.random.default_rng(seed)
    n_docs = n_writers * docs_per_writer
    lengths = np.full(n_docs, n_words // n_docs)
    lengths[: n_words % n_docs] += 1
    doc = np.repeat(np.arange(n_docs), lengths)
    pos = np.arange(n_words) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    writer = doc // docs_per_writer
    e = rng.standard_normal((n_words, dim), dtype=np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    return pl.DataFrame({
        "word_id": pl.Series(np.arange(n_words), dtype=pl.Int64),
        "writer": pl.Series(writer, dtype=pl.Int64),
        "doc_id": pl.Series([f"{d // docs_per_writer}_s{d % docs_per_writer}" for d in range(n_docs)],
                            dtype=pl.Utf8).gather(doc),
        "position": pl.Series(pos, dtype=pl.Int32),
        "emb": pl.Series(e, dtype=pl.Array(pl.Float32, dim)),
        "model_id": pl.Series(["synthetic"] * n_words, dtype=pl.Utf8),
    })


def original_style_bags(emb: pl.DataFrame, n_pos: int, path: Path, *, seed: int = 0,
                        window_size: int = 5, block_size: int = 10) -> int:
    """ORIGINAL-STYLE BASELINE: the research pipeline's loops and copies, pickled. Returns #bags."""
    rnd = random.Random(seed)
    E = emb["emb"].to_numpy()
    # documents in reading order (a polars group_by: kinder to the baseline than its pandas loop)
    docs = (emb.with_row_index("row").sort(["doc_id", "position"])
            .group_by("doc_id", maintain_order=True).agg(pl.col("writer").first(), pl.col("row")))
    instances: dict[str, list[np.ndarray]] = {}
    doc_writer: dict[str, int] = {}
    for doc, writer, rows in docs.iter_rows():
        rows = np.asarray(rows)
        doc_writer[doc] = writer
        instances[doc] = [E[rows[s:s + window_size]] for s in range(len(rows) - window_size + 1)]  # (5, dim) copies
    by_writer: dict[int, list[str]] = {}
    for doc, w in doc_writer.items():
        by_writer.setdefault(w, []).append(doc)
    base = []
    for doc, inst in instances.items():
        for b in range(len(inst) // block_size):
            base.append((doc, np.stack(inst[b * block_size:(b + 1) * block_size])))      # (10, 5, dim) copy
    base = rnd.sample(base, min(n_pos, len(base)))
    writers = list(by_writer)
    positives, negatives = [], {r: [] for r in RATIOS}
    for i, (doc, bag) in enumerate(base):
        w = doc_writer[doc]
        positives.append({"bag_emb": bag.copy(), "bag_label": 0, "writer": w, "doc": doc,
                          "neg_ratio": 0.0, "bag_id": f"{doc}_{i}_pos"})
        for r in RATIOS:
            k = max(1, int(block_size * r))
            mixed = bag.copy()
            donor = rnd.choice([x for x in writers if x != w])
            donor_inst = instances[rnd.choice(by_writer[donor])]
            for slot in rnd.sample(range(block_size), k):
                mixed[slot] = donor_inst[rnd.randrange(len(donor_inst))]
            negatives[r].append({"bag_emb": mixed, "bag_label": 1, "writer": w, "doc": doc,
                                 "neg_ratio": r, "bag_id": f"{doc}_{i}_neg{r}"})
    per_ratio = int(np.floor(2 * len(positives) / len(RATIOS) + 0.5))    # same rounding as ours
    bags = positives + [b for r in RATIOS for b in rnd.sample(negatives[r], min(per_ratio, len(negatives[r])))]
    rnd.shuffle(bags)
    with open(path, "wb") as f:
        pickle.dump(bags, f, protocol=pickle.HIGHEST_PROTOCOL)  # ORIGINAL-STYLE BASELINE ONLY
    return len(bags)


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--words", type=int, default=208_233)
    ap.add_argument("--writers", type=int, default=180)
    ap.add_argument("--docs-per-writer", type=int, default=3)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--n-genuine", type=int, default=4321)
    ap.add_argument("--quick", action="store_true", help="1/10 of the words, writers and genuine bags")
    args = ap.parse_args()
    if args.quick:
        args.words //= 10
        args.writers //= 10
        args.n_genuine //= 10

    emb = synthetic_embeddings(args.words, args.writers, args.docs_per_writer, args.dim)
    print(f"synthetic split: {emb.height:,} words, {args.writers} writers, "
          f"{args.writers * args.docs_per_writer} documents, dim {args.dim}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # ours, like-for-like (instance mode)
        t0 = time.perf_counter()
        res = build_bags(emb, "train", BagConfig(mode="instance", n_genuine=args.n_genuine))
        t1 = time.perf_counter()
        res.bags.write_parquet(tmp / "bags_instance.parquet")
        t_ours = time.perf_counter() - t0
        size_ours = os.path.getsize(tmp / "bags_instance.parquet")
        m = res.metadata
        print(f"\nours (instance mode): {m['n_bags']:,} bags ({m['n_genuine']:,} genuine + "
              f"{m['n_contaminated']:,} contaminated) in {t_ours:.3f} s "
              f"(build {t1 - t0:.3f} s + Parquet write {t_ours - (t1 - t0):.3f} s), {_mb(size_ours)} on disk")

        # ORIGINAL-STYLE BASELINE (pickle)
        t0 = time.perf_counter()
        n_orig = original_style_bags(emb, args.n_genuine, tmp / "bags_original_style.pkl")
        t_orig = time.perf_counter() - t0
        size_orig = os.path.getsize(tmp / "bags_original_style.pkl")
        print(f"original-style baseline (Python loops, vector copies, pickled list of dicts): "
              f"{n_orig:,} bags in {t_orig:.2f} s, {_mb(size_orig)} on disk")
        speed, small = t_orig / t_ours, size_orig / size_ours
        print(f"ratio: {speed:.0f}x faster (target >= 20x: {'met' if speed >= 20 else 'NOT met'}), "
              f"{small:.0f}x smaller (target >= 50x: {'met' if small >= 50 else 'NOT met'})")

        # gathering vectors for training is paid at load time instead of on disk
        t0 = time.perf_counter()
        bt = gather_bags(res.bags, emb)
        t_gather = time.perf_counter() - t0
        print(f"gather_bags (instance bags -> x {tuple(bt.x.shape)}): {t_gather:.3f} s")
        del bt

        # default word mode (exact word-level contamination, 50-word bags)
        t0 = time.perf_counter()
        wres = build_bags(emb, "train", BagConfig())
        t1 = time.perf_counter()
        wres.bags.write_parquet(tmp / "bags_word.parquet")
        t_word = time.perf_counter() - t0
        wm = wres.metadata
        print(f"\nours (word mode, default): {wm['n_bags']:,} bags ({wm['n_genuine']:,} genuine = every "
              f"50-word base bag + {wm['n_contaminated']:,} contaminated) in {t_word:.3f} s "
              f"(build {t1 - t0:.3f} s), {_mb(os.path.getsize(tmp / 'bags_word.parquet'))} on disk")
        for mode_name, meta in (("instance", m), ("word", wm)):
            print(f"  {mode_name:8s} mean foreign fraction per ratio, words | windows: " + ", ".join(
                f"{r:g}: {meta[f'mean_foreign_word_frac@{r:g}']:.3f} | {meta[f'mean_foreign_window_frac@{r:g}']:.3f}"
                for r in RATIOS))


if __name__ == "__main__":
    main()
