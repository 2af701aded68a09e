"""Pooling the folds' test results over every writer, with the spread across folds.

Pooled figures are computed on the union of the folds' test data, never as a mean of per-fold
figures: verification AUC/EER/TAR from all folds' word-pair scores together, top-1 and mAP over
all folds' retrieval queries (``evaluate.pooled_metrics``; pairs and queries stay inside one
fold's test writers, whose embedding model is that fold's), and each detector's AUC per difficulty
over all folds' test bags. The spread (min, max, mean, sd over folds) of the per-fold figures says
how much one split's figure would have moved. The multi-word figures (``multiword_*``: the mean
embedding of n words of one document against another document's, ``evaluate.pooled_multiword_metrics``)
pool the folds' pair scores the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from wrmil_core.embedding.evaluate import pooled_metrics, pooled_multiword_metrics
from wrmil_core.embedding.infer import embedding_matrix
from wrmil_core.errors import WrmilInputError
from wrmil_core.metrics import bootstrap_auc_ci, roc_auc

EMBEDDINGS: tuple[str, ...] = ("trained", "untrained", "pixels")
SPREAD_KEYS: tuple[str, ...] = ("auc", "eer", "tar_far_1e-2", "top1", "map")


def spread(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """min, max, mean and sample sd (ddof 1; None for one fold) of the per-fold values that exist."""
    v = np.array([x for x in values if x is not None], dtype=np.float64)
    if v.size == 0:
        return {"min": None, "max": None, "mean": None, "sd": None, "n_folds": 0}
    return {"min": float(v.min()), "max": float(v.max()), "mean": float(v.mean()),
            "sd": float(v.std(ddof=1)) if v.size > 1 else None, "n_folds": int(v.size)}


def detection_rows(scores: pl.DataFrame, n_boot: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """Per model, geometry and difficulty: AUC of the genuine bags against the contaminated bags of
    that geometry (where the foreign words sit; ``contiguous`` when the table has no ``geometry``)
    and contamination ratio.

    ``scores``: the ``score_table`` columns (bag_id, doc_id, base_writer, donor_writer, label,
    ratio, geometry, model, prob), of one fold or of several stacked. Each row also counts the bags,
    the documents and the writers (hosts and donors) behind it; ``auc_lo``/``auc_hi`` are a
    stratified bootstrap 95% interval (``n_boot`` 0: none).
    """
    if "geometry" not in scores.columns:
        scores = scores.with_columns(pl.lit("contiguous").alias("geometry"))
    rows = []
    for model in scores["model"].unique(maintain_order=True).to_list():
        of = scores.filter(pl.col("model") == model)
        genuine, contaminated = of.filter(pl.col("label") == 0), of.filter(pl.col("label") == 1)
        for geometry in contaminated["geometry"].unique(maintain_order=True).to_list():
            mine = contaminated.filter(pl.col("geometry") == geometry)
            for r in sorted({round(r, 9) for r in mine["ratio"].to_list()}):
                sel = pl.concat([genuine, mine.filter((pl.col("ratio") - r).abs() < 1e-9)])
                rows.append({"model": model, "geometry": geometry, "ratio": float(r),
                             **_auc_row(sel, genuine.height, n_boot, seed)})
    return rows


def _auc_row(sel: pl.DataFrame, n_genuine: int, n_boot: int, seed: int) -> dict[str, Any]:
    """AUC (with its bootstrap interval) of genuine vs contaminated bags in ``sel``, and what stands behind it."""
    y, p = sel["label"].to_numpy(), sel["prob"].to_numpy()
    ci = bootstrap_auc_ci(y, p, n_boot=n_boot, seed=seed) if n_boot else None
    writers = set(sel["base_writer"].to_list())
    for donors in ("donor_writer", "donor_writer_2"):   # the second donor of two_donors bags, when recorded
        if donors in sel.columns:
            writers |= set(sel[donors].drop_nulls().to_list())
    return {"auc": roc_auc(y, p), "auc_lo": ci[0] if ci else None, "auc_hi": ci[1] if ci else None,
            "n_genuine": n_genuine, "n_contaminated": sel.height - n_genuine,
            "n_documents": sel["doc_id"].n_unique(), "n_writers": len(writers - {None})}


def same_row(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Do two detection rows measure the same model, geometry and difficulty?"""
    return (a["model"], a.get("geometry", "contiguous")) == (b["model"], b.get("geometry", "contiguous")) \
        and abs(a["ratio"] - b["ratio"]) < 1e-9


def load_fold_tables(record: dict[str, Any]) -> dict[str, pl.DataFrame]:
    """A finished fold's test tables: ``trained``/``untrained``/``pixels`` embeddings and ``scores``."""
    fold_dir = Path(record["fold_dir"])
    paths = {e: fold_dir / "embeddings" / ("test.parquet" if e == "trained" else f"test_{e}.parquet")
             for e in EMBEDDINGS}
    paths["scores"] = fold_dir / "test_scores.parquet"
    try:
        return {name: pl.read_parquet(path) for name, path in paths.items()}
    except (OSError, pl.exceptions.PolarsError) as e:
        raise WrmilInputError(f"{record.get('fold')}: cannot read its test tables under {fold_dir} "
                              f"({' '.join(str(e).split())[:160]}); re-materialise that fold") from e


def check_disjoint_tests(records: Sequence[dict[str, Any]]) -> None:
    """Refuse folds whose test writers overlap (records of different fold tables mixed)."""
    seen: dict[int, str] = {}
    for r in records:
        for w in r["test_writers"]:
            if w in seen:
                raise WrmilInputError(f"writer {w} is a test writer of both {seen[w]} and {r['fold']}: these folds "
                                      "come from different fold tables; re-materialise cv_folds and every cv_fold")
            seen[w] = r["fold"]


def check_current(records: Sequence[dict[str, Any]], folds: pl.DataFrame, fold_of: Sequence[int]) -> None:
    """Refuse a fold record whose test writers are not that fold's in the current fold table ``folds``
    (``fold_of[i]``: the fold number of ``records[i]``): it was computed for other folds."""
    for record, f in zip(records, fold_of):
        want = sorted(folds.filter((pl.col("fold") == f) & (pl.col("split") == "test"))["writer"].to_list())
        if sorted(record["test_writers"]) != want:
            raise WrmilInputError(f"{record['fold']} was computed for another fold table (its test writers differ "
                                  f"from cv_folds' fold {f}): re-materialise cv_fold for that fold")


def pool_folds(records: Sequence[dict[str, Any]], tables: Sequence[dict[str, pl.DataFrame]], n_pairs: int = 20000,
               n_queries: int = 1000, n_boot: int = 1000) -> dict[str, Any]:
    """The pooled summary of finished folds (``records`` from ``run_fold``, ``tables`` from
    :func:`load_fold_tables`, same order): counts, pooled embedding figures per embedding with the
    per-fold spread, pooled detection AUC per model and difficulty with its spread, and a per-fold table."""
    if not records:
        raise WrmilInputError("no finished folds to pool: materialise cv_fold first")
    check_disjoint_tests(records)
    embedding = {}
    for name in EMBEDDINGS:
        parts = [(embedding_matrix(t[name]), t[name]["writer"].to_numpy()) for t in tables]
        pooled = pooled_metrics(parts, n_pairs, n_queries, seed=0)
        pooled.update(pooled_multiword([t[name] for t in tables]))
        embedding[name] = {**pooled, "spread": {k: spread([r["embedding"][name][k] for r in records])
                                                for k in SPREAD_KEYS}}
    detection = detection_rows(pl.concat([t["scores"] for t in tables]), n_boot=n_boot)
    for row in detection:
        row["spread"] = spread([d["auc"] for r in records for d in r["detection"] if same_row(d, row)])
    return {"counts": _counts(records), "embedding": embedding, "detection": detection,
            "per_fold": [_fold_row(r) for r in records]}


def pooled_multiword(tables: Sequence[pl.DataFrame], n_pairs: int = 4000) -> dict[str, float | int | None]:
    """Multi-word figures (keys prefixed ``multiword_``) pooled over the folds' test embeddings tables."""
    parts = [(embedding_matrix(t), t["writer"].to_numpy(), t["doc_id"].to_numpy(), t["position"].to_numpy())
             for t in tables]
    return {f"multiword_{k}": v for k, v in pooled_multiword_metrics(parts, n_pairs=n_pairs, seed=0).items()}


def _counts(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Test writers, documents and words in all and per fold."""
    per_fold = [len(r["test_writers"]) for r in records]
    return {"n_folds": len(records), "folds": [r["fold"] for r in records],
            "n_test_writers": int(sum(per_fold)),
            "n_test_documents": int(sum(r["counts"]["test_documents"] for r in records)),
            "n_test_words": int(sum(r["counts"]["test_words"] for r in records)),
            "min_test_writers_per_fold": min(per_fold), "max_test_writers_per_fold": max(per_fold)}


def _fold_row(r: dict[str, Any]) -> dict[str, Any]:
    """One fold's line of the report: its counts and headline figures."""
    trained = r["embedding"]["trained"]
    by_model: dict[str, list[float]] = {}
    for d in r["detection"]:
        if d["auc"] is not None:
            by_model.setdefault(d["model"], []).append(d["auc"])
    best = max(by_model, key=lambda m: float(np.mean(by_model[m]))) if by_model else None
    return {"fold": r["fold"], "test_writers": len(r["test_writers"]),
            "test_documents": r["counts"]["test_documents"], "test_words": r["counts"]["test_words"],
            "train_writers": r["counts"]["train_writers"], "val_writers": r["counts"]["val_writers"],
            **{k: trained[k] for k in SPREAD_KEYS}, "best_detector": best,
            "best_detector_mean_auc": float(np.mean(by_model[best])) if best else None,
            "reused": bool(r.get("reused", False))}
