"""Partitions: one per writer-disjoint split."""

from __future__ import annotations

import dagster as dg

from wrmil_core.schema import SPLITS

split_partitions = dg.StaticPartitionsDefinition(list(SPLITS))

# Downstream unpartitioned assets read these partitions of a per-split asset.
TRAIN_VAL = dg.SpecificPartitionsPartitionMapping(["train", "val"])
TEST_ONLY = dg.SpecificPartitionsPartitionMapping(["test"])
