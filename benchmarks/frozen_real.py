"""The frozen-feature recipe (the ``cpu`` preset) on real handwriting: writer-fold CV in minutes.

    .venv/bin/python benchmarks/frozen_real.py DATA_ROOT --metadata-csv metadata.csv --folds 5 \\
        [--preset cpu] [--set FIELD=VALUE ...] [--out DIR] [--save-embeddings DIR] [--features-cache F.npz]

The frozen backbone's features of a word do not depend on the fold, so they are extracted once for
every word (one pass of the pretrained backbone, ``frozen.features``), with the raw pixels of the
same input images. Per writer fold (``wrmil_core.data.folds``, as ``embedding_real.py`` cuts them)
the model is then fitted on the train writers exactly as ``fit_embedding``'s frozen fit does it, with
the same functions: ``frozen.fit_projection`` (PCA + shrinkage LDA), the classical LDA part
(``classical`` preset ``lda``, as ``fusion.fit_classical_part``), ``fusion.fuse`` at
``classical_weight``, and the content offsets of the train words' fused vectors
(``content.fit_content_offsets`` with ``content_prior``). ``embedding_real.py`` runs the whole
pipeline path per fold (``fit_embedding``, ``embed_words``) for the same figures at several times the
cost. Rows, on each fold's test writers, pooled over the folds:

* ``trained``: the recipe as the pipeline embeds with it (fused, content offsets removed),
* ``no_content``: the same without the content offsets, ``unfused``: the frozen part alone,
* ``imagenet``: the backbone's pooled features by plain cosine (centred): ImageNet, not fitted,
* ``raw_pixels``: the input image at 16x64 (centred): what capture conditions alone give,
* ``classical_lda``: the classical part alone.

Prints the single-word table, same-word against different-word pairs, and the multi-word table
(n words of one document against n of another), each with the writers behind it, the seconds the
features took, and writes ``results.json`` under ``--out``. Nothing is downloaded. ``--save-embeddings``
writes each fold's val and test vectors of the ``trained`` row as embedding tables, the input of
``benchmarks/evidence_cv.py`` (detectors and evidence over the same folds).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from embedding_real import (  # sibling script: python puts benchmarks/ on sys.path
    Features,
    pair_kind_summary,
    parse_sets,
    print_multiword,
    print_pair_kinds,
    print_table,
    summarise,
)

from wrmil_core.data.folds import fold_split, writer_folds
from wrmil_core.data.ingest import ingest
from wrmil_core.data.split import words_of_split
from wrmil_core.embedding import frozen
from wrmil_core.embedding.classical import fit_projection as fit_classical_projection
from wrmil_core.embedding.classical import preset as classical_preset
from wrmil_core.embedding.config import EmbeddingConfig, preset
from wrmil_core.embedding.content import fit_content_offsets
from wrmil_core.embedding.fusion import CLASSICAL_PRESET, fuse
from wrmil_core.embedding.infer import embeddings_table

METHODS = ("trained", "no_content", "unfused", "imagenet", "raw_pixels", "classical_lda")


def backbone_features(words: pl.DataFrame, config: EmbeddingConfig) -> tuple[np.ndarray, np.ndarray]:
    """Style features and raw pixels of every word (``words`` sorted by word_id; all must be readable)."""
    out = frozen.features(frozen.backbone(config), words["path"].to_list(), log=print, with_pixels=True)
    if out.skipped:
        raise SystemExit(f"{len(out.skipped)} unreadable images, e.g. {out.skipped[0][1]}; fix the data root")
    return out.emb, out.pixels


def run_fold(words: pl.DataFrame, split: pl.DataFrame, fold: int, config: EmbeddingConfig, feats: np.ndarray,
             pixels: np.ndarray, classical: Features, save_dir: Path | None = None) -> dict[str, Any]:
    """Fit the recipe on the fold's train writers; every row's vectors of its test words. With
    ``save_dir``, the recipe's val and test embedding tables go to ``save_dir/fold_<k>/``."""
    part = {s: words_of_split(words, split, s).sort("word_id") for s in ("train", "val", "test")}
    rows = {s: np.searchsorted(words["word_id"].to_numpy(), part[s]["word_id"].to_numpy()) for s in part}
    writers = {s: part[s]["writer"].to_numpy() for s in part}
    projection = frozen.fit_projection(feats[rows["train"]], writers["train"], config.frozen_pca_dim,
                                       config.frozen_lda_dim, config.frozen_shrinkage)
    cl = fit_classical_projection(classical.rows(part["train"])[0], classical_preset(CLASSICAL_PRESET),
                                  writers["train"])
    vec = {s: projection(feats[rows[s]]) for s in part}
    cvec = {s: cl.project(classical.rows(part[s])[0]) for s in part}
    fused = {s: fuse(vec[s], cvec[s], config.classical_weight) if config.classical_weight > 0 else vec[s]
             for s in part}
    content = fit_content_offsets(fused["train"], part["train"]["text"].to_list(), writers["train"],
                                  shrinkage=config.content_prior or 10.0)
    test_pixels = pixels[rows["test"]] - pixels[rows["test"]].mean(0)
    imagenet = feats[rows["test"]] - feats[rows["test"]].mean(0)
    trained = content.apply(fused["test"], part["test"]["text"].to_list()) if config.content_prior > 0 else fused["test"]
    if save_dir is not None:
        save_tables(part, fused, content if config.content_prior > 0 else None, save_dir / f"fold_{fold}", fold)
    test = part["test"]
    parts = {"trained": trained, "no_content": fused["test"], "unfused": vec["test"], "imagenet": imagenet,
             "raw_pixels": test_pixels, "classical_lda": cvec["test"]}
    where = (test["doc_id"].to_numpy(), test["position"].to_numpy())
    print(f"[fold {fold}] {part['train']['writer'].n_unique()} train / {test['writer'].n_unique()} test writers",
          flush=True)
    return {"fold": fold, "parts": {m: (v, writers["test"]) for m, v in parts.items()},
            "where": {m: where for m in parts}}


def save_tables(part: dict[str, pl.DataFrame], fused: dict[str, np.ndarray], content: Any, out: Path,
                fold: int) -> None:
    """The recipe's val and test vectors as embedding tables (what ``evidence_cv.py`` reads)."""
    out.mkdir(parents=True, exist_ok=True)
    for s in ("val", "test"):
        vec = content.apply(fused[s], part[s]["text"].to_list()) if content is not None else fused[s]
        embeddings_table(part[s], vec, f"frozen_real_fold_{fold}").write_parquet(out / f"{s}.parquet")


def cached_features(words: pl.DataFrame, config: EmbeddingConfig, cache: str | None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`backbone_features`, read from / written to ``cache`` (an .npz) when one is given."""
    if cache and Path(cache).is_file():
        with np.load(cache) as z:
            if np.array_equal(z["word_id"], words["word_id"].to_numpy()):
                return z["feats"], z["pixels"]
    feats, pixels = backbone_features(words, config)
    if cache:
        np.savez(cache, word_id=words["word_id"].to_numpy(), feats=feats, pixels=pixels)
    return feats, pixels


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data_root")
    p.add_argument("--metadata-csv", default="naver_ocr.csv")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--val-fraction", type=float, default=0.2, help="of the non-test writers, per fold")
    p.add_argument("--seed", type=int, default=0, help="fold assignment seed")
    p.add_argument("--preset", default="cpu", help="embedding preset (its method must be frozen)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a config field")
    p.add_argument("--out", help="directory for results.json (default: a temporary directory)")
    p.add_argument("--save-embeddings", type=Path, help="write each fold's val/test embeddings to DIR/fold_<k>/")
    p.add_argument("--features-cache", help="an .npz to keep the backbone features in between runs")
    a = p.parse_args()
    config = preset(a.preset, device="cpu", **parse_sets(a.set))
    if config.method != "frozen":
        raise SystemExit(f"preset {a.preset!r} has method {config.method!r}; use benchmarks/embedding_real.py")
    words = ingest(a.data_root, metadata_csv=a.metadata_csv).words.sort("word_id")
    folds = writer_folds(words["writer"].unique().to_list(), a.folds, a.val_fraction, a.seed)
    t0 = time.perf_counter()
    feats, pixels = cached_features(words, config, a.features_cache)
    seconds = time.perf_counter() - t0
    classical = Features.of(words, classical_preset(CLASSICAL_PRESET))
    done = [run_fold(words, fold_split(folds, f), f, config, feats, pixels, classical, a.save_embeddings)
            for f in range(a.folds)]
    summary = summarise(done, words["writer"].n_unique(), a.folds, METHODS)
    texts = [words_of_split(words, fold_split(folds, f), "test").sort("word_id")["text"].to_list()
             for f in range(a.folds)]
    summary["pair_kinds"] = pair_kind_summary(done, texts, summary["methods"])
    print_table(summary)
    print_pair_kinds(summary["pair_kinds"])
    print_multiword(summary)
    print(f"\nbackbone features of {words.height} words: {seconds:.0f} s ({1000 * seconds / words.height:.0f} ms a "
          f"word; {config.backbone} at {config.img_h}x{config.img_w})")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(a.out or tmp)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps({"config": config.to_dict(), "feature_seconds": seconds,
                                                      **summary}, indent=1, default=float))


if __name__ == "__main__":
    main()
