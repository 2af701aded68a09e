"""How good an embedding model is on a set of words, beside its shortcut controls.

One call gives what ``arcface_model`` records on the val writers: the model's words embedded by
:func:`~wrmil_core.embedding.infer.embed_words` (a trained network or the classical embedding),
its controls by :func:`~wrmil_core.embedding.baselines.embed_baselines`, and for each table the
figures of :func:`~wrmil_core.embedding.evaluate.embedding_quality` (verification AUC, EER,
TAR@FAR, retrieval top-1 and mAP, writer-bootstrap intervals, and the writers and words behind
them) through :func:`~wrmil_core.embedding.baselines.quality_by_embedding`. :func:`multiword_quality`
gives the model's multi-word figures on the same words (one document's mean embedding against another's).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from wrmil_core.embedding.baselines import embed_baselines, quality_by_embedding
from wrmil_core.embedding.data import stratified_subset
from wrmil_core.embedding.evaluate import MULTIWORD_SIZES, multiword_metrics
from wrmil_core.embedding.infer import embedding_matrix
from wrmil_core.embedding.models import embed_words
from wrmil_core.runtime import Log


def model_quality(model_dir: str | Path, words: pl.DataFrame, *, max_words: int | None = None,
                  n_pairs: int = 20000, n_queries: int = 1000, seed: int = 0, n_boot: int = 200,
                  device: str = "auto", num_workers: int = 0,
                  log: Log = None) -> dict[str, dict[str, float | int | None]]:
    """``{"trained": figures, "untrained": ..., "pixels": ...}`` on ``words`` (at most ``max_words``,
    the writer-stratified subset training validates on for the same ``seed``: ``data.stratified_subset``).

    The three tables hold the same words, so their figures rest on the same pairs and queries.
    """
    words = stratified_subset(words.sort("word_id"), max_words, seed)
    tables = {"trained": embed_words(model_dir, words, device=device, num_workers=num_workers, log=log),
              **embed_baselines(model_dir, words, device=device, num_workers=num_workers, log=log)}
    return quality_by_embedding(tables, n_pairs, n_queries, seed=seed, n_boot=n_boot)


def multiword_quality(model_dir: str | Path, words: pl.DataFrame, *, max_words: int | None = None,
                      sizes: tuple[int, ...] = MULTIWORD_SIZES, n_pairs: int = 4000, seed: int = 0,
                      device: str = "auto", num_workers: int = 0, log: Log = None) -> dict[str, float | int | None]:
    """:func:`multiword_of_table` of the model's embeddings of ``words`` (the same writer-stratified
    subset as :func:`model_quality` for ``max_words`` and ``seed``; a subset's runs skip missing words)."""
    words = stratified_subset(words.sort("word_id"), max_words, seed)
    table = embed_words(model_dir, words, device=device, num_workers=num_workers, log=log)
    return multiword_of_table(table, sizes, n_pairs, seed)


def multiword_of_table(table: pl.DataFrame, sizes: tuple[int, ...] = MULTIWORD_SIZES, n_pairs: int = 4000,
                       seed: int = 0) -> dict[str, float | int | None]:
    """:func:`~wrmil_core.embedding.evaluate.multiword_metrics` of an embeddings table (its writer,
    doc_id and position columns), every key prefixed ``multiword_`` (``multiword_auc_n5``, ...)."""
    fig = multiword_metrics(embedding_matrix(table), table["writer"].to_numpy(), table["doc_id"].to_numpy(),
                            table["position"].to_numpy(), sizes, n_pairs, seed)
    return {f"multiword_{k}": v for k, v in fig.items()}
