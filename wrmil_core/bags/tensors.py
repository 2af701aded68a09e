"""The in-memory form of a split's bags (:class:`BagTensors`) and the one gather that builds it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import torch

from wrmil_core.bags.layout import index_word_ids, single_model_id
from wrmil_core.errors import WrmilInputError


@dataclass
class BagTensors:
    """Bags of a split gathered against its embedding table (one gather, no per-bag copies on disk).

    x               float32 (B, bag_size, window_size, dim) word embeddings
    label           int64   (B,) 0 = genuine, 1 = contaminated
    window_foreign  bool    (B, bag_size) window holds at least one foreign word
    ratio           float64 (B,) nominal contamination ratio (0.0 for genuine)
    foreign_word_frac float64 (B,) true foreign fraction of the bag's words
    bag_id          int64   (B,)
    model_id        id of the embedding model the vectors come from
    geometry        str     (B,) "none" (genuine), "contiguous", "scattered" or "two_donors"; None
                    given: "none" for genuine bags and "contiguous" for the others
    n_writers       int64   (B,) writers whose words the bag holds: 1 genuine, 2 one donor, 3 two
                    donors (the truth a writer-count estimator is scored against); None given:
                    from the label and geometry
    base_writer     int64   (B,) the writer of each bag's base document (-1: unknown): folds over
                    writers, for fits that must score bags of writers they did not see
    """

    x: torch.Tensor
    label: torch.Tensor
    window_foreign: torch.Tensor
    ratio: np.ndarray
    foreign_word_frac: np.ndarray
    bag_id: np.ndarray
    model_id: str
    geometry: np.ndarray | None = None
    n_writers: np.ndarray | None = None
    base_writer: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.geometry is None:
            self.geometry = np.where(self.label.numpy() == 0, "none", "contiguous").astype(str)
        self.geometry = np.asarray(self.geometry, dtype=str)
        if self.n_writers is None:
            self.n_writers = 1 + self.label.numpy().astype(np.int64) + (self.geometry == "two_donors")
        self.n_writers = np.asarray(self.n_writers, dtype=np.int64)
        if self.base_writer is None:
            self.base_writer = np.full(len(self.label), -1, dtype=np.int64)
        self.base_writer = np.asarray(self.base_writer, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, index: np.ndarray | torch.Tensor) -> "BagTensors":
        """Rows ``index`` of every field (used by samplers and per-difficulty evaluation)."""
        idx = torch.as_tensor(np.asarray(index), dtype=torch.long)
        npi = idx.numpy()
        return BagTensors(
            x=self.x[idx], label=self.label[idx], window_foreign=self.window_foreign[idx],
            ratio=self.ratio[npi], foreign_word_frac=self.foreign_word_frac[npi],
            bag_id=self.bag_id[npi], model_id=self.model_id, geometry=self.geometry[npi],
            n_writers=self.n_writers[npi], base_writer=self.base_writer[npi],
        )


def _split_name(bags: pl.DataFrame) -> str:
    if "split" in bags.columns and bags.height:
        names = bags["split"].unique().sort().to_list()
        return names[0] if len(names) == 1 else "/".join(map(str, names))
    return "<split>"


def writers_per_bag(bags: pl.DataFrame) -> np.ndarray | None:
    """(B,) distinct writers among each bag's base writer and donors (nulls skipped); None without
    a ``base_writer`` column."""
    cols = [c for c in ("base_writer", "donor_writer", "donor_writer_2") if c in bags.columns]
    if "base_writer" not in cols:
        return None
    w = np.stack([bags[c].cast(pl.Int64).fill_null(-1).to_numpy() for c in cols], axis=1)
    w = np.sort(w, axis=1)
    # count distinct non-null entries per row: a new value after sorting, ignoring the -1 fill
    new = np.ones(w.shape, bool)
    new[:, 1:] = w[:, 1:] != w[:, :-1]
    return (new & (w >= 0)).sum(1).astype(np.int64)


def gather_bags(bags: pl.DataFrame, emb: pl.DataFrame) -> BagTensors:
    """Gather the word vectors of every bag: ``x`` is (B, bag_size, window_size, dim) float32.

    Word ids are mapped to rows of ``emb`` by one sorted lookup and ``x`` is built by one index
    into the (N, dim) embedding matrix. Refuses (``WrmilInputError``) bags built against another
    embedding model than ``emb`` (stale upstream), word ids missing from ``emb``, duplicate word
    ids in ``emb``, and an empty bag table.
    """
    split = _split_name(bags)
    if bags.height == 0:
        raise WrmilInputError(f"bags of split {split!r} are empty: re-materialise bags_by_difficulty[{split}].")
    emb_model = single_model_id(emb, f"embeddings of split {split!r}")
    bag_model = single_model_id(bags, f"bags of split {split!r}")
    if bag_model != emb_model:
        raise WrmilInputError(
            f"bags of split {split!r} were built against embedding model {bag_model!r}, but the embeddings "
            f"table is from model {emb_model!r}: the bags are stale. Re-materialise "
            f"instance_windows[{split}] and bags_by_difficulty[{split}] from the current word_embeddings[{split}]."
        )
    table_ids = emb["word_id"].cast(pl.Int64).to_numpy()
    if np.unique(table_ids).shape[0] != table_ids.shape[0]:
        raise WrmilInputError(
            f"embeddings of split {split!r} repeat word ids; each word must have one vector. "
            f"Re-materialise word_embeddings[{split}]."
        )
    bag_size = bags.schema["window_foreign"].size  # Array(Boolean, bag_size)
    ids = bags["word_ids"].to_numpy()              # (B, bag_size * window_size) int32
    B, L = ids.shape
    if L % bag_size:
        raise WrmilInputError(
            f"bags of split {split!r}: {L} word ids per bag do not split into {bag_size} windows; "
            f"re-materialise bags_by_difficulty[{split}]."
        )
    rows, found = index_word_ids(table_ids, ids.reshape(-1))
    if not found.all():
        missing = np.unique(ids.reshape(-1)[~found])
        raise WrmilInputError(
            f"bags of split {split!r} reference {missing.shape[0]} word id(s) absent from the embeddings "
            f"table, e.g. {missing[:5].tolist()}: the bags and embeddings are out of step. Re-materialise "
            f"bags_by_difficulty[{split}] from the current word_embeddings[{split}]."
        )
    matrix = np.asarray(emb["emb"].to_numpy(), dtype=np.float32)  # (N, dim), zero-copy when possible
    # one fancy-index gather; numpy returns a fresh writable array, so torch can own it
    x = torch.from_numpy(matrix[rows].reshape(B, bag_size, L // bag_size, matrix.shape[1]))
    return BagTensors(
        x=x,
        label=torch.from_numpy(bags["label"].cast(pl.Int64).to_numpy().copy()),
        window_foreign=torch.from_numpy(bags["window_foreign"].to_numpy().astype(bool)),
        ratio=bags["ratio"].cast(pl.Float64).to_numpy().copy(),
        foreign_word_frac=bags["foreign_word_frac"].cast(pl.Float64).to_numpy().copy(),
        bag_id=bags["bag_id"].cast(pl.Int64).to_numpy().copy(),
        model_id=emb_model or "",
        geometry=np.asarray(bags["geometry"].to_list(), dtype=str) if "geometry" in bags.columns else None,
        n_writers=writers_per_bag(bags),
        base_writer=(bags["base_writer"].cast(pl.Int64).fill_null(-1).to_numpy().copy()
                     if "base_writer" in bags.columns else None),
    )
