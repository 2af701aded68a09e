"""IO managers: one UPath base, Parquet for polars tables, JSON for small records.

dagster-polars 0.27 cannot read with polars 2 (``scan_parquet(rechunk=...)`` was removed), so
the few lines it would give us are written here. Partitioned assets get one file per partition
(``<asset>/<partition>.parquet``); a downstream asset that maps several partitions receives a
dict keyed by partition.
"""

from __future__ import annotations

import json
import os
from typing import Any

import dagster as dg
import polars as pl
from upath import UPath


class _AtomicUPathIOManager(dg.UPathIOManager):
    """Writes to a temporary sibling, then renames: a failed step never leaves half a file."""

    def _tmp(self, path: UPath) -> UPath:
        return path.with_name(path.name + f".tmp{os.getpid()}")

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp(path)
        self.write(obj, tmp)
        tmp.rename(path)

    def write(self, obj: Any, path: UPath) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class ParquetIOManager(_AtomicUPathIOManager):
    """polars DataFrame <-> Parquet."""

    extension = ".parquet"

    def write(self, obj: pl.DataFrame, path: UPath) -> None:
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(f"ParquetIOManager stores polars DataFrames, got {type(obj).__name__}")
        obj.write_parquet(str(path))

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pl.DataFrame:
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: materialise the upstream asset {context.asset_key.to_user_string()} first")
        return pl.read_parquet(str(path))


class JsonIOManager(_AtomicUPathIOManager):
    """JSON-serialisable dicts (model references: paths, ids, metrics)."""

    extension = ".json"

    def write(self, obj: dict, path: UPath) -> None:
        path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))

    def load_from_path(self, context: dg.InputContext, path: UPath) -> dict:
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: materialise the upstream asset {context.asset_key.to_user_string()} first")
        return json.loads(path.read_text())


class ParquetIOManagerFactory(dg.ConfigurableIOManagerFactory):
    base_dir: str

    def create_io_manager(self, context: dg.InitResourceContext) -> ParquetIOManager:
        return ParquetIOManager(base_path=UPath(self.base_dir))


class JsonIOManagerFactory(dg.ConfigurableIOManagerFactory):
    base_dir: str

    def create_io_manager(self, context: dg.InitResourceContext) -> JsonIOManager:
        return JsonIOManager(base_path=UPath(self.base_dir))
