"""Writer-fold cross-validation's numbers: pooled on the union of the folds (not a mean of fold
figures), the spread across folds, the counts behind each figure, the report's first line, and the
fold key that decides whether a finished fold is reused."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from wrmil_core.bags.config import BagConfig
from wrmil_core.cv.fold import FoldSetup, fold_key, load_result, require_bag_donors
from wrmil_core.cv.pool import check_current, detection_rows, pool_folds, spread
from wrmil_core.cv.report import (
    difficulty_label,
    few_writers,
    first_line,
    report_markdown,
    write_report,
)
from wrmil_core.data.folds import writer_folds
from wrmil_core.embedding.config import preset as embedding_preset
from wrmil_core.embedding.infer import embeddings_table
from wrmil_core.errors import WrmilInputError
from wrmil_core.mil.config import MILConfig


def _scores(offset: float, writers: tuple[int, int], doc_prefix: str) -> pl.DataFrame:
    """Bags of one fold: genuine at ``offset``, contaminated (10% and 30%) at ``offset + 0.1``: a
    perfect ranking inside the fold, on a scale of its own."""
    rows = []
    for i in range(4):
        rows.append((i, f"{doc_prefix}{i % 2}", writers[i % 2], None, 0, 0.0, offset + 0.01 * i))
    for i, r in enumerate((0.1, 0.1, 0.3, 0.3)):
        rows.append((4 + i, f"{doc_prefix}{i % 2}", writers[i % 2], writers[1 - i % 2], 1, r, offset + 0.1 + 0.01 * i))
    cols = ["bag_id", "doc_id", "base_writer", "donor_writer", "label", "ratio", "prob"]
    df = pl.DataFrame(rows, schema=cols, orient="row")
    return df.with_columns(pl.lit("distance").alias("model"))


def test_detection_rows_match_sklearn_and_count_writers_and_documents() -> None:
    scores = _scores(0.0, (1, 2), "d")
    rows = detection_rows(scores, n_boot=50)
    assert [r["ratio"] for r in rows] == [0.1, 0.3]
    sel = scores.filter((pl.col("label") == 0) | (pl.col("ratio") == 0.1))
    assert rows[0]["auc"] == pytest.approx(roc_auc_score(sel["label"], sel["prob"]))
    counts = tuple(rows[0][k] for k in ("n_genuine", "n_contaminated", "n_documents", "n_writers"))
    assert counts == (4, 2, 2, 2)
    assert rows[0]["auc_lo"] <= rows[0]["auc"] <= rows[0]["auc_hi"]


def test_detection_rows_keep_geometries_apart() -> None:
    """Scattered foreign words are another difficulty than one passage: their own rows, same genuine bags."""
    contiguous = _scores(0.0, (1, 2), "d").with_columns(
        pl.when(pl.col("label") == 0).then(pl.lit("none")).otherwise(pl.lit("contiguous")).alias("geometry"))
    scattered = contiguous.filter(pl.col("label") == 1).with_columns(
        pl.lit("scattered").alias("geometry"), pl.col("prob") - 0.2, pl.col("bag_id") + 100)
    rows = detection_rows(pl.concat([contiguous, scattered]), n_boot=0)
    assert [(r["geometry"], r["ratio"]) for r in rows] == [("contiguous", 0.1), ("contiguous", 0.3),
                                                          ("scattered", 0.1), ("scattered", 0.3)]
    assert [r["auc"] for r in rows] == [1.0, 1.0, 0.0, 0.0]
    assert all(r["n_genuine"] == 4 and r["n_contaminated"] == 2 for r in rows)
    assert difficulty_label(rows[0]) == "10%" and difficulty_label(rows[2]) == "10% scattered"


def test_detection_is_pooled_over_all_bags_not_averaged_over_folds() -> None:
    """Two folds each rank perfectly (AUC 1) on different scales: pooled, their genuine bags of the
    high fold outrank the contaminated bags of the low fold."""
    a, b = _scores(0.0, (1, 2), "a"), _scores(0.5, (3, 4), "b")
    assert all(r["auc"] == 1.0 for r in detection_rows(a, 0) + detection_rows(b, 0))
    both = pl.concat([a, b])
    pooled = detection_rows(both, 0)
    sel = both.filter((pl.col("label") == 0) | (pl.col("ratio") == 0.1))
    assert pooled[0]["auc"] == pytest.approx(roc_auc_score(sel["label"], sel["prob"]))
    assert pooled[0]["auc"] < 1.0
    assert pooled[0]["n_writers"] == 4 and pooled[0]["n_documents"] == 4


def test_spread_is_min_max_mean_and_sample_sd() -> None:
    s = spread([0.6, 0.8, None, 0.7])
    assert (s["min"], s["max"], s["n_folds"]) == (0.6, 0.8, 3)
    assert s["mean"] == pytest.approx(0.7) and s["sd"] == pytest.approx(np.std([0.6, 0.8, 0.7], ddof=1))
    assert spread([0.5])["sd"] is None and spread([])["mean"] is None


def _fold(fold: str, writers: list[int], scale: float, rng: np.random.Generator) -> tuple[dict, dict]:
    """A finished fold's record and test tables: writer w's words point along axis w, scaled so
    same-writer cosines are high within the fold but every fold has its own cosine level."""
    n = 6
    wid = np.repeat(writers, n)
    emb = np.full((len(wid), 16), scale, np.float32)
    emb[np.arange(len(wid)), wid % 16] += 1.0
    emb += rng.normal(0, 0.01, emb.shape).astype(np.float32)
    words = pl.DataFrame({"word_id": np.arange(len(wid)) + 1000 * writers[0], "writer": wid,
                          "doc_id": [f"{w}_d" for w in wid], "position": np.tile(np.arange(n), len(writers))})
    table = embeddings_table(words, emb / np.linalg.norm(emb, axis=1, keepdims=True), "m")
    tables = {"trained": table, "untrained": table, "pixels": table,
              "scores": _scores(scale, (writers[0], writers[1]), fold)}
    fig = {"auc": 1.0, "eer": 0.0, "tar_far_1e-2": 1.0, "top1": 1.0, "map": 1.0}
    record = {"fold": fold, "test_writers": writers, "embedding": {e: fig for e in ("trained", "untrained", "pixels")},
              "counts": {"test_documents": len(writers), "test_words": len(wid), "train_writers": 5,
                         "val_writers": 2},
              "detection": detection_rows(tables["scores"], 0)}
    return record, tables


def test_pool_folds_pools_every_test_writer_and_spreads_per_fold() -> None:
    rng = np.random.default_rng(0)
    (ra, ta), (rb, tb) = _fold("fold_0", [1, 2, 3], 0.0, rng), _fold("fold_1", [4, 5, 6, 7], 3.0, rng)
    summary = pool_folds([ra, rb], [ta, tb], n_pairs=400, n_queries=30, n_boot=20)
    counts = summary["counts"]
    assert (counts["n_test_writers"], counts["n_test_documents"], counts["n_folds"]) == (7, 7, 2)
    assert (counts["min_test_writers_per_fold"], counts["max_test_writers_per_fold"]) == (3, 4)
    trained = summary["embedding"]["trained"]
    assert trained["n_writers"] == 7 and trained["n_images"] == 42
    assert trained["spread"]["auc"]["n_folds"] == 2
    assert {d["ratio"] for d in summary["detection"]} == {0.1, 0.3}
    assert all(d["spread"]["n_folds"] == 2 for d in summary["detection"])
    assert [r["fold"] for r in summary["per_fold"]] == ["fold_0", "fold_1"]
    with pytest.raises(WrmilInputError, match="writer 3 is a test writer of both"):
        pool_folds([ra, {**rb, "test_writers": [3, 4]}], [ta, tb])


def test_records_of_another_fold_table_are_refused() -> None:
    folds = writer_folds(range(12), k=3, val_fraction=0.25)
    test0 = folds.filter((pl.col("fold") == 0) & (pl.col("split") == "test"))["writer"].to_list()
    check_current([{"fold": "fold_0", "test_writers": test0}], folds, [0])
    with pytest.raises(WrmilInputError, match="another fold table"):
        check_current([{"fold": "fold_0", "test_writers": test0}], folds, [1])


def _counts(per_fold: list[int]) -> dict:
    return {"n_folds": len(per_fold), "n_test_writers": sum(per_fold), "n_test_documents": 2 * sum(per_fold),
            "n_test_words": 100 * sum(per_fold), "min_test_writers_per_fold": min(per_fold),
            "max_test_writers_per_fold": max(per_fold)}


def test_first_line_states_the_counts_and_warns_when_few() -> None:
    few = first_line(_counts([17, 17, 16, 16, 16]))
    assert few.startswith("82 test writers (164 documents, 8200 words)")
    assert "noisy" in few and few_writers(_counts([17, 17, 16, 16, 16]))
    assert "noisy" in first_line(_counts([40, 40]))  # 80 in all: fewer than 100
    assert "noisy" in first_line(_counts([29, 40, 40]))  # one fold under 30
    many = first_line(_counts([30, 30, 30, 30]))
    assert many.startswith("120 test writers") and "noisy" not in many


def test_report_first_line_and_json(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    (ra, ta), (rb, tb) = _fold("fold_0", [1, 2], 0.0, rng), _fold("fold_1", [3, 4], 1.0, rng)
    summary = pool_folds([ra, rb], [ta, tb], n_pairs=200, n_queries=10, n_boot=10)
    paths = write_report(summary, tmp_path)
    md = paths["md"].read_text()
    assert md.splitlines()[0] == first_line(summary["counts"]) and md == report_markdown(summary)
    assert md.startswith("4 test writers")
    assert json.loads(paths["json"].read_text())["first_line"] == md.splitlines()[0]


def test_bag_donors_need_two_writers_in_every_part() -> None:
    require_bag_donors(writer_folds(range(10), k=2, val_fraction=0.4))
    with pytest.raises(WrmilInputError, match="at least 2 writers in every part"):
        require_bag_donors(writer_folds(range(10), k=2, val_fraction=0.2))  # 1 val writer per fold


def test_fold_key_follows_what_is_computed_not_where(tmp_path: Path) -> None:
    words = pl.DataFrame({"word_id": [1, 2, 3, 4], "writer": [1, 1, 2, 2], "doc_id": ["a", "a", "b", "b"],
                          "position": [0, 1, 0, 1], "path": ["p1", "p2", "p3", "p4"]})
    split = pl.DataFrame({"writer": [1, 2], "split": ["train", "test"]})
    setup = FoldSetup(embedding_preset("demo"), BagConfig(), MILConfig())
    key = fold_key(words, split, setup)
    assert fold_key(words, split, dataclasses.replace(setup, embedding=embedding_preset("demo", device="cpu"))) == key
    assert fold_key(words, split, dataclasses.replace(setup, embedding=embedding_preset("demo", epochs=1))) != key
    assert fold_key(words, split.with_columns(pl.Series("split", ["test", "train"])), setup) != key
    assert fold_key(words, split, dataclasses.replace(setup, embedding=embedding_preset("demo", method="classical"))) != key  # another embedding
    (tmp_path / "result.json").write_text(json.dumps({"key": key}))
    assert load_result(tmp_path, key) == {"key": key} and load_result(tmp_path, "other") is None
    with pytest.raises(WrmilInputError):
        FoldSetup(embedding_preset("demo"), BagConfig(), MILConfig(), quality_pairs=1)
    with pytest.raises(WrmilInputError, match="method"):
        embedding_preset("demo", method="no_such_method")
