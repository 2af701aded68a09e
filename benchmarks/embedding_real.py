"""Writer embeddings on real handwriting: writer-fold cross-validation with the shortcut baselines.

    .venv/bin/python benchmarks/embedding_real.py DATA_ROOT --metadata-csv metadata.csv --folds 5 \\
        --preset cpu [--max-folds N | --fold F ...] [--set FIELD=VALUE ...] [--out DIR]

The writers of DATA_ROOT (wrmil's raw layout) are cut into ``--folds`` writer folds
(``wrmil_core.data.folds``): in fold f, one group of writers is the test part, validation writers
(early stopping) are drawn from the rest, and the others train. Per fold the embedding is fitted on
the train writers by ``fit_embedding``, the function ``arcface_model`` and ``cv_fold`` call (the
preset's ``method``: a trained network, the frozen pretrained features, or the classical embedding),
then every test word is embedded by

* ``trained``: that model (``--preset``, with ``--set`` overrides) as the pipeline embeds with it
  (``embed_words``): with ``classical_weight`` > 0 the fused embedding (``fusion.py``), with
  ``content_prior`` > 0 with the content offsets removed (``content.py``),
* ``unfused``: its network or frozen part alone (only when the model is fused),
* ``untrained``: the same network with random weights: what the architecture gives for free,
* ``imagenet``: the pretrained backbone's pooled features by plain cosine (centred), not fine-tuned
  and not projected (only with pretrained ``weights``): what ImageNet gives before any writer is seen,
* raw pixels (16x64 area-downsampled, centred): what capture conditions alone give,
* the classical embedding (``wrmil_core.embedding.classical``; PCA fitted on the train words),
* ``classical_lda``: the same features projected by the shrinkage LDA of the train writers (the
  fused model's classical part, alone).

Test figures are pooled over the folds (``evaluate.pooled_metrics``: verification pairs and
retrieval queries stay within a fold's test writers), so every writer is a test writer once; the
per-fold spread of the AUC follows. A second table gives, per method, the verification AUC/EER of the
mean embedding of n = 1, 3, 5, 10 words of one document against n words of another document
(``evaluate.pooled_multiword_metrics``, pair scores pooled over the folds), with the writers behind
them. ``--max-folds`` runs only the first N folds (figures then rest
on those folds' test writers, as the table says); ``--no-train`` measures the baselines alone (all
five folds of AHAWP in a few minutes), ``--no-baselines`` the trained network alone. Prints the table and writes ``results.json``
under ``--out``. Never reads anything but DATA_ROOT; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from wrmil_core.data.folds import fold_split, writer_folds
from wrmil_core.data.ingest import ingest
from wrmil_core.data.split import words_of_split
from wrmil_core.embedding.baselines import pretrained_start, untrained_network
from wrmil_core.embedding.classical import ClassicalConfig, extract_features, fit_projection
from wrmil_core.embedding.classical import preset as classical_preset
from wrmil_core.embedding.config import EmbeddingConfig, preset
from wrmil_core.embedding.content import pair_kind_metrics
from wrmil_core.embedding.evaluate import (
    MULTIWORD_SIZES,
    pooled_metrics,
    pooled_multiword_metrics,
    verification_metrics,
)
from wrmil_core.embedding.fit import fit_embedding
from wrmil_core.embedding.infer import embed_images, embedding_matrix
from wrmil_core.embedding.models import ContentNormalised, FusedEmbedding, embed_words, load_embedding
from wrmil_core.embedding.model import build_model

METHODS = ("trained", "no_content", "unfused", "untrained", "imagenet", "raw_pixels", "classical", "classical_lda")


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``--set FIELD=VALUE`` items as config overrides (JSON values, else strings)."""
    out = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep:
            sys.exit(f"--set expects FIELD=VALUE, got {item!r}")
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def _say(fold: int):
    def say(msg: str) -> None:
        print(f"[fold {fold}] {msg}", flush=True)
    return say


def _embed_network(model: torch.nn.Module, test: pl.DataFrame,
                   with_pixels: bool) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Network embeddings (and raw-pixel features) of the readable test words, and their writers."""
    out = embed_images(model, test["path"].to_list(), 64, torch.device("cpu"), 0, with_pixels=with_pixels,
                       desc="embedding test words")
    pixels = None if out.pixels is None else out.pixels - out.pixels.mean(0)
    return out.emb, pixels, test["writer"].to_numpy()[out.index]


@dataclass(frozen=True)
class Features:
    """Classical features of every readable word, computed once for all folds (rows follow ``word_ids``)."""

    values: np.ndarray
    word_ids: np.ndarray  # sorted

    @classmethod
    def of(cls, words: pl.DataFrame, config: ClassicalConfig) -> Features:
        words = words.sort("word_id")
        values, ok, _ = extract_features(words["path"].to_list(), config, log=print)
        return cls(values, words["word_id"].to_numpy()[ok])

    def rows(self, words: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Feature rows of the readable ``words`` (in ``words`` order) and their writers."""
        wid = words["word_id"].to_numpy()
        pos = np.clip(np.searchsorted(self.word_ids, wid), 0, len(self.word_ids) - 1)
        hit = self.word_ids[pos] == wid
        return self.values[pos[hit]], words["writer"].to_numpy()[hit]


def run_fold(words: pl.DataFrame, split: pl.DataFrame, fold: int, config: EmbeddingConfig, out_dir: Path,
             features: Features | None, train_net: bool = True) -> dict[str, Any]:
    """Train on the fold's train writers (``train_net``) and embed its test words with the trained
    network and, given classical ``features``, the baselines."""
    say = _say(fold)
    train, val, test = (words_of_split(words, split, s).sort("word_id") for s in ("train", "val", "test"))
    say(f"{train['writer'].n_unique()} train / {val['writer'].n_unique()} val / {test['writer'].n_unique()} "
        f"test writers; {train.height} / {val.height} / {test.height} words")
    parts, info = {}, {"fold": fold, "n_test_writers": int(test["writer"].n_unique()), "n_test_words": test.height}
    if train_net:
        t0 = time.perf_counter()
        fitted = fit_embedding(config, train, val, out_dir / f"fold{fold}", resume=False, log=say, num_workers=0)
        res = fitted.train_result
        info.update(train_minutes=(time.perf_counter() - t0) / 60, epochs_run=fitted.metadata["epochs_run"],
                    best_epoch=res.best_epoch if res else 0, val_auc=res.val_metrics["auc"] if res else float("nan"))
        model = load_embedding(fitted.model_dir, "cpu")
        parts["trained"] = _table_part(embed_words(model, test))
        inner = model.inner if isinstance(model, ContentNormalised) else model
        if inner is not model:
            parts["no_content"] = _table_part(embed_words(inner, test))
        if isinstance(inner, FusedEmbedding):
            parts["unfused"] = _table_part(embed_words(inner.inner, test))
        say(f"fitted ({config.method}) in {info['train_minutes']:.1f} min ({info['epochs_run']} epochs)")
    if features is not None:
        parts.update(_baselines(train, test, config, features))
    say(", ".join(f"{m} AUC {verification_metrics(*parts[m], seed=fold)['auc']:.3f}" for m in parts))
    return {"parts": parts, "where": _where(test, parts, features), **info}


def _baselines(train: pl.DataFrame, test: pl.DataFrame, config: EmbeddingConfig,
               features: Features) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Untrained network, raw pixels and the classical embedding (PCA fitted on ``train``) on the test words."""
    emb, pixels, writers = _embed_network(untrained_network(config), test, with_pixels=True)
    out = {}
    if pretrained_start(config):
        imagenet = embed_images(build_model(config).eval(), test["path"].to_list(), 64, torch.device("cpu"), 0,
                                desc="imagenet features", backbone_only=True)
        out["imagenet"] = (imagenet.emb - imagenet.emb.mean(0), test["writer"].to_numpy()[imagenet.index])
    x_train, train_writers = features.rows(train)
    x_test, test_writers = features.rows(test)
    classical = fit_projection(x_train, features_config()).project(x_test)
    lda = fit_projection(x_train, classical_preset("lda"), train_writers).project(x_test)
    return {"untrained": (emb, writers), **out, "raw_pixels": (pixels, writers),
            "classical": (classical, test_writers), "classical_lda": (lda, test_writers)}


def _table_part(table: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return embedding_matrix(table), table["writer"].to_numpy()


def _where(test: pl.DataFrame, parts: dict[str, tuple[np.ndarray, np.ndarray]],
           features: Features | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``(doc_id, position)`` of each method's embedded test words (rows as in ``parts``); a method whose
    rows cannot be matched to the words (some images unreadable) is left out of the multi-word table."""
    out = {}
    for m, (emb, _) in parts.items():
        rows = test
        if m.startswith("classical") and features is not None:  # the words Features.rows found
            rows = test.filter(pl.col("word_id").is_in(features.word_ids.tolist()))
        if rows.height == len(emb):
            out[m] = (rows["doc_id"].to_numpy(), rows["position"].to_numpy())
    return out


def pair_kind_summary(folds: list[dict[str, Any]], test_texts: list[list[str | None]],
                      methods: list[str]) -> dict[str, dict[str, float]]:
    """Per method: verification AUC on same-word and on different-word pairs (``content.pair_kind_metrics``),
    the mean over folds, for the methods whose rows are the fold's test words."""
    out = {}
    for m in methods:
        if not all(m in f.get("where", {}) for f in folds):
            continue
        per = [pair_kind_metrics(*f["parts"][m], texts, seed=f["fold"]) for f, texts in zip(folds, test_texts)]
        out[m] = {k: float(np.nanmean([p[k] for p in per])) for k in ("auc_same_word", "auc_diff_word")}
        out[m].update(n_pairs_same_word=int(sum(p["n_pairs_same_word"] for p in per)),
                      n_pairs_diff_word=int(sum(p["n_pairs_diff_word"] for p in per)))
    return out


def print_pair_kinds(s: dict[str, dict[str, float]]) -> None:
    """Same-word against different-word pairs: what the words' content does to each embedding."""
    if not s:
        return
    print("\nverification AUC on pairs of the same word (transcription) and of different words, mean over folds")
    print(f"{'method':<17} {'same-word':>9} {'diff-word':>9}  pairs (same / different word)")
    for m, r in s.items():
        print(f"{m:<17} {r['auc_same_word']:9.3f} {r['auc_diff_word']:9.3f}  {r['n_pairs_same_word']} / "
              f"{r['n_pairs_diff_word']}")


def multiword_summary(folds: list[dict[str, Any]], methods: list[str]) -> dict[str, dict[str, Any]]:
    """Per method: multi-word AUC/EER at each n of MULTIWORD_SIZES, pair scores pooled over the folds."""
    return {m: pooled_multiword_metrics([(*f["parts"][m], *f["where"][m]) for f in folds])
            for m in methods if all(m in f.get("where", {}) for f in folds)}


def print_multiword(s: dict[str, Any]) -> None:
    """The multi-word table: one document's n words against another document's, per method."""
    sizes = "/".join(map(str, MULTIWORD_SIZES))
    print(f"\nmean embedding of n words of one document vs n words of another document, n = {sizes} "
          "(pooled over folds; n/a: no writer has two documents of n words)")
    print(f"{'method':<17} " + " ".join(f"{'AUC' + str(n):>7}" for n in MULTIWORD_SIZES) + "  "
          + " ".join(f"{'EER' + str(n):>7}" for n in MULTIWORD_SIZES) + f"  writers with a doc of n words ({sizes})")
    for m, r in s.get("multiword", {}).items():
        figs = [r[f"{k}_n{n}"] for k in ("auc", "eer") for n in MULTIWORD_SIZES]
        cells = [f"{'n/a' if v is None else f'{v:.3f}':>7}" for v in figs]
        half = len(MULTIWORD_SIZES)
        print(f"{m:<17} " + " ".join(cells[:half]) + "  " + " ".join(cells[half:]) + "  "
              + "/".join(str(r[f"n_writers_n{n}"]) for n in MULTIWORD_SIZES) + f" of {r['n_writers']}")


def features_config() -> ClassicalConfig:
    """The classical embedding's settings in this benchmark (its default preset)."""
    return classical_preset("default")


def summarise(folds: list[dict[str, Any]], n_writers_total: int, k: int,
              methods: tuple[str, ...] = METHODS) -> dict[str, Any]:
    """Pooled figures per method, the per-fold AUCs, and the counts behind them."""
    summary: dict[str, Any] = {"methods": [m for m in methods if all(m in f["parts"] for f in folds)]}
    for m in summary["methods"]:
        pooled = pooled_metrics([f["parts"][m] for f in folds])
        per_fold = [verification_metrics(*f["parts"][m], seed=f["fold"])["auc"] for f in folds]
        summary[m] = {**pooled, "fold_auc": per_fold}
    summary["folds_run"], summary["folds"], summary["n_writers_total"] = len(folds), k, n_writers_total
    summary["fold_ids"] = [f["fold"] for f in folds]
    summary["multiword"] = multiword_summary(folds, summary["methods"])
    if "train_minutes" in folds[0]:
        summary["train_minutes"] = [round(f["train_minutes"], 2) for f in folds]
        summary["val_auc"] = [round(f["val_auc"], 4) for f in folds]
    return summary


def print_table(s: dict[str, Any]) -> None:
    """The results table: pooled figures, per-fold AUC spread, writers and words behind each row."""
    t = s[s["methods"][0]]
    few = " -- few writers: expect +-0.03-0.05 AUC between repeats" if t["n_writers"] < 100 else ""
    print(f"\n{t['n_writers']} test writers ({t['n_images']} words) of {s['n_writers_total']}, pooled over "
          f"{s['folds_run']} of {s['folds']} writer folds{few}")
    print(f"{'method':<17} {'AUC':>6} {'EER':>6} {'top-1':>6} {'mAP':>6} {'TAR@1e-2':>8}  per-fold AUC")
    for m in s["methods"]:
        r = s[m]
        fa = np.array(r["fold_auc"])
        spread = f"{fa.mean():.3f} +- {fa.std():.3f} [{fa.min():.3f}, {fa.max():.3f}]" if len(fa) > 1 else f"{fa[0]:.3f}"
        print(f"{m:<17} {r['auc']:6.3f} {r['eer']:6.3f} {r['top1']:6.3f} {r['map']:6.3f} {r['tar_far_1e-2']:8.3f}  "
              + spread)
    if "train_minutes" in s:
        print(f"training minutes per fold: {s['train_minutes']}; best val AUC per fold: {s['val_auc']}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data_root")
    p.add_argument("--metadata-csv", default="naver_ocr.csv")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--max-folds", type=int, default=None, help="run only the first N folds")
    p.add_argument("--fold", type=int, action="append", help="run only this fold (repeatable); overrides --max-folds")
    p.add_argument("--val-fraction", type=float, default=0.2, help="of the non-test writers, per fold")
    p.add_argument("--seed", type=int, default=0, help="fold assignment seed")
    p.add_argument("--preset", default="cpu", help="embedding preset (demo | cpu | gpu | paper)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a config field")
    p.add_argument("--no-baselines", action="store_true", help="trained network only (quicker, for tuning)")
    p.add_argument("--no-train", action="store_true", help="baselines only: untrained network, raw pixels, classical")
    p.add_argument("--out", help="directory for models and results.json (default: a temporary directory)")
    a = p.parse_args()
    config = preset(a.preset, **parse_sets(a.set))
    words = ingest(a.data_root, metadata_csv=a.metadata_csv).words
    folds = writer_folds(words["writer"].unique().to_list(), a.folds, a.val_fraction, a.seed)
    if a.no_train and a.no_baselines:
        sys.exit("--no-train and --no-baselines leave nothing to measure")
    features = None if a.no_baselines else Features.of(words, features_config())
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(a.out or tmp)
        chosen = a.fold or range(min(a.folds, a.max_folds or a.folds))
        done = [run_fold(words, fold_split(folds, f), f, config, out, features, not a.no_train) for f in chosen]
        summary = summarise(done, words["writer"].n_unique(), a.folds)
        texts = [words_of_split(words, fold_split(folds, f), "test").sort("word_id")["text"].to_list() for f in chosen]
        summary["pair_kinds"] = pair_kind_summary(done, texts, summary["methods"])
        print_table(summary)
        print_pair_kinds(summary["pair_kinds"])
        print_multiword(summary)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps({"config": config.to_dict(), **summary}, indent=1, default=float))
        print(f"results: {out / 'results.json'}" if a.out else "")


if __name__ == "__main__":
    main()
