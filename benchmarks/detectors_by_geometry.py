"""Training-free detectors by contamination geometry and difficulty, on the classical embedding.

No network is trained: every word gets the classical ink-shape embedding
(``wrmil_core.embedding.classical``, PCA fitted on the words' own features, labels unused), the
bags are built with a bags preset (default ``demo``: 50-word bags, contiguous and scattered
geometries) over every writer as one split (no detector here learns anything, so every writer
can be a test writer), and ``distance``, ``segment_scan`` and ``scattered`` score them. Prints
the AUC of genuine against contaminated bags per geometry and ratio, the top-1 localisation hit,
and, when the words carry transcriptions, how often a foreign word's text differs from the word
it replaced (a content cue, not a handwriting one).

    .venv/bin/python benchmarks/detectors_by_geometry.py --data-root /tmp/ahawp --metadata-csv metadata.csv
    .venv/bin/python benchmarks/detectors_by_geometry.py --synthetic /tmp/wrmil_synth   # generates the demo set

With ``--embeddings`` it scores given embedding tables instead, e.g. the trained embeddings of the
test writers of each writer fold of ``wrmil run --job writer_cv`` (bags are built per table, as
each fold's embedding is its own space, and the AUCs pool every table's bags):

    .venv/bin/python benchmarks/detectors_by_geometry.py --embeddings <artifact_dir>/cv/fold_*/*/embeddings/test.parquet
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl

from wrmil_core.bags.build import build_bags
from wrmil_core.bags.config import preset as bag_preset
from wrmil_core.bags.tensors import gather_bags
from wrmil_core.data.ingest import ingest
from wrmil_core.detectors.run import score_bags
from wrmil_core.embedding.classical import (
    ClassicalConfig,
    extract_features,
    fit_projection,
)
from wrmil_core.embedding.infer import embeddings_table
from wrmil_core.metrics import localisation, roc_auc
from wrmil_core.mil.registry import MODEL_NAMES, build_mil_model, is_training_free

MODELS = tuple(n for n in MODEL_NAMES if is_training_free(n))  # distance, segment_scan, scattered


def words_table(args: argparse.Namespace) -> pl.DataFrame:
    """The ingested words of the data root (generating the synthetic demo set first if asked)."""
    if args.synthetic:
        from wrmil_core.synth.dataset import DEMO, dataset_exists, generate_dataset

        if not dataset_exists(args.synthetic, DEMO):
            generate_dataset(args.synthetic, DEMO, log=print)
        return ingest(args.synthetic, log=print).words
    return ingest(args.data_root, metadata_csv=args.metadata_csv, log=print).words


def embeddings(words: pl.DataFrame, cache: Path | None, workers: int) -> pl.DataFrame:
    """Classical embeddings of every word (cached as Parquet when ``cache`` is given)."""
    if cache is not None and cache.is_file():
        return pl.read_parquet(cache)
    config = ClassicalConfig(num_workers=workers)
    feats, _, errors = extract_features(words["path"].to_list(), config, log=print)
    if errors:
        raise SystemExit(f"{len(errors)} unreadable image(s), e.g. {errors[0]}")
    model = fit_projection(feats, config)             # centring + PCA fitted on the words' features, no labels
    z = (feats - model.mean) @ (model.components.T if model.components is not None else np.eye(feats.shape[1]))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    emb = embeddings_table(words, z.astype(np.float32), model.model_id)
    if cache is not None:
        emb.write_parquet(cache)
    return emb


def text_mismatch(bags: pl.DataFrame, words: pl.DataFrame, bag_size: int, window_size: int) -> np.ndarray:
    """Per bag: share of its foreign words whose transcription differs from the replaced word's
    (NaN for genuine bags). Word mode, non-overlapping windows: the flattened ids are the span."""
    text = dict(zip(words["word_id"].to_list(), words["text"].to_list()))
    writer = dict(zip(words["word_id"].to_list(), words["writer"].to_list()))
    by_pos = {(d, p): w for w, d, p in zip(words["word_id"], words["doc_id"], words["position"])}
    pos = dict(zip(words["word_id"].to_list(), words["position"].to_list()))
    out = np.full(bags.height, np.nan)
    for i, row in enumerate(bags.iter_rows(named=True)):
        if row["label"] == 0:
            continue
        ids = list(row["word_ids"])
        base = next(w for w in ids if writer[w] == row["base_writer"])
        start = pos[base] - ids.index(base)
        foreign = [t for t, w in enumerate(ids) if writer[w] != row["base_writer"]]
        out[i] = np.mean([text[ids[t]] != text[by_pos[(row["doc_id"], start + t)]] for t in foreign])
    return out


def report(bags: pl.DataFrame, emb: pl.DataFrame, mismatch: np.ndarray | None) -> list[dict]:
    """AUC and top-1 localisation per model, geometry and ratio (and per text match when known)."""
    t = gather_bags(bags, emb)
    y, geometry, ratio = t.label.numpy(), t.geometry, t.ratio
    rows = []
    for name in MODELS:
        probs, ws = score_bags(build_mil_model(name, t.x.shape[-1]), t)
        for g in sorted(set(geometry) - {"none"}):
            for r in sorted(set(ratio[ratio > 0])):
                pos = (geometry == g) & (ratio == r)
                keep = (y == 0) | pos
                loc = localisation(ws[pos], t.window_foreign.numpy()[pos])
                row = {"model": name, "geometry": g, "ratio": r, "auc": roc_auc(y[keep], probs[keep]),
                       "top1": loc["top1"], "n_pos": int(pos.sum())}
                if mismatch is not None:
                    for what, m in (("same_text", mismatch < 0.5), ("other_text", mismatch >= 0.5)):
                        k = (y == 0) | (pos & m)
                        row[f"auc_{what}"] = roc_auc(y[k], probs[k]) if (pos & m).any() else None
                        row[f"n_{what}"] = int((pos & m).sum())
                rows.append(row)
    return rows


def pooled_report(tables: list[Path], cfg) -> pl.DataFrame:
    """AUC per model, geometry and ratio over the bags of every embedding table (bags built per table)."""
    parts: dict[str, list[np.ndarray]] = {"y": [], "geometry": [], "ratio": []}
    scores: dict[str, list[np.ndarray]] = {m: [] for m in MODELS}
    for path in tables:
        emb = pl.read_parquet(path)
        t = gather_bags(build_bags(emb, "test", cfg).bags, emb)
        parts["y"].append(t.label.numpy()), parts["geometry"].append(t.geometry), parts["ratio"].append(t.ratio)
        for name in MODELS:
            scores[name].append(score_bags(build_mil_model(name, t.x.shape[-1]), t)[0])
    y, geometry, ratio = (np.concatenate(parts[k]) for k in ("y", "geometry", "ratio"))
    rows = []
    for name in MODELS:
        probs = np.concatenate(scores[name])
        for g in sorted(set(geometry) - {"none"}):
            for r in sorted(set(ratio[ratio > 0])):
                keep = (y == 0) | ((geometry == g) & (ratio == r))
                rows.append({"model": name, "geometry": g, "ratio": r, "auc": roc_auc(y[keep], probs[keep]),
                             "n_pos": int(keep.sum() - (y == 0).sum()), "n_neg": int((y == 0).sum())})
    return pl.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", type=Path)
    ap.add_argument("--metadata-csv", default="naver_ocr.csv")
    ap.add_argument("--synthetic", type=Path, help="generate (if missing) and use the demo synthetic set here")
    ap.add_argument("--bags-preset", default="demo")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, help="Parquet file caching the classical embeddings")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--embeddings", type=Path, nargs="+", help="embedding tables (Parquet) to score instead")
    args = ap.parse_args()
    if args.embeddings:
        table = pooled_report(args.embeddings, bag_preset(args.bags_preset, seed=args.seed))
        writers = sum(pl.read_parquet(p)["writer"].n_unique() for p in args.embeddings)
        print(f"\n{len(args.embeddings)} embedding tables, {writers} writers, bags preset {args.bags_preset!r}")
        with pl.Config(tbl_rows=100, tbl_cols=20, float_precision=3):
            print(table)
        return
    words = words_table(args)
    emb = embeddings(words, args.cache, args.workers)
    cfg = bag_preset(args.bags_preset, seed=args.seed)
    bags = build_bags(emb, "all", cfg, log=print).bags
    has_text = "text" in words.columns and words["text"].fill_null("").str.len_chars().gt(0).all()
    mismatch = text_mismatch(bags, words, cfg.bag_size, cfg.window_size) if has_text and cfg.mode == "word" else None
    n_writers, n_gen = emb["writer"].n_unique(), int((bags["label"] == 0).sum())
    print(f"\n{n_writers} writers, {n_gen} genuine bags, bags preset {args.bags_preset!r}, seed {args.seed}")
    if mismatch is not None:
        con = bags["label"].to_numpy() == 1
        for g in cfg.ordered_geometries:
            for r in cfg.ratios:
                m = con & (bags["geometry"].to_numpy() == g) & (bags["ratio"].to_numpy() == r)
                if m.any():
                    print(f"  {g} {r:g}: foreign words whose text differs from the replaced word: "
                          f"{100 * np.nanmean(mismatch[m]):.0f} %")
    table = pl.DataFrame(report(bags, emb, mismatch))
    with pl.Config(tbl_rows=100, tbl_cols=20, float_precision=3):
        print(table)


if __name__ == "__main__":
    main()
