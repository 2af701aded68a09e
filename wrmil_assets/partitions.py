"""Partitions: one per writer-disjoint split; one per writer fold of cross-validation."""

from __future__ import annotations

import dagster as dg

from wrmil_core.errors import WrmilInputError
from wrmil_core.schema import SPLITS

split_partitions = dg.StaticPartitionsDefinition(list(SPLITS))

# Downstream unpartitioned assets read these partitions of a per-split asset.
TRAIN_VAL = dg.SpecificPartitionsPartitionMapping(["train", "val"])
TEST_ONLY = dg.SpecificPartitionsPartitionMapping(["test"])

# Writer folds of cross-validation (fold_0 .. fold_{k-1}): registered by the cv_folds asset, whose
# config sets k, so the UI shows one partition per fold and a rerun with another k drops the rest.
FOLD_PARTITIONS_NAME = "writer_folds"
fold_partitions = dg.DynamicPartitionsDefinition(name=FOLD_PARTITIONS_NAME)
FOLD_PREFIX = "fold_"


def fold_partition_key(fold: int) -> str:
    """The partition key of fold number ``fold``: ``fold_<fold>``."""
    return f"{FOLD_PREFIX}{int(fold)}"


def fold_index(key: str) -> int:
    """The fold number of a partition key ``fold_<n>``."""
    number = key.removeprefix(FOLD_PREFIX)
    if not key.startswith(FOLD_PREFIX) or not number.isdigit():
        raise WrmilInputError(f"partition {key!r} is not a writer fold (expected {FOLD_PREFIX}0, {FOLD_PREFIX}1, ...)")
    return int(number)


def fold_partition_keys(instance: dg.DagsterInstance) -> list[str]:
    """The registered fold partitions in fold order (empty before cv_folds was materialised)."""
    return sorted(instance.get_dynamic_partitions(FOLD_PARTITIONS_NAME), key=fold_index)
