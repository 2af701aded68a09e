"""The in-memory form of a split's bags that MIL models train and evaluate on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


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
    """

    x: torch.Tensor
    label: torch.Tensor
    window_foreign: torch.Tensor
    ratio: np.ndarray
    foreign_word_frac: np.ndarray
    bag_id: np.ndarray
    model_id: str

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, index: np.ndarray | torch.Tensor) -> "BagTensors":
        """Rows ``index`` of every field (used by samplers and per-difficulty evaluation)."""
        idx = torch.as_tensor(np.asarray(index), dtype=torch.long)
        npi = idx.numpy()
        return BagTensors(
            x=self.x[idx], label=self.label[idx], window_foreign=self.window_foreign[idx],
            ratio=self.ratio[npi], foreign_word_frac=self.foreign_word_frac[npi],
            bag_id=self.bag_id[npi], model_id=self.model_id,
        )
