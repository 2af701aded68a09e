"""IO managers: one UPath base, Parquet for polars tables, JSON for small records.

dagster-polars 0.27 cannot read with polars 2 (``scan_parquet(rechunk=...)`` was removed), so
the few lines it would give us are written here. Partitioned assets get one file per partition
(``<asset>/<partition>.parquet``); a downstream asset that maps several partitions receives a
dict keyed by partition. Writes are atomic (temporary sibling, then rename); a file that is
missing or unreadable anyway (a disk filled up, a hand edit) raises ``UnreadableArtifactError``
naming the asset, the partition and the command that rebuilds it, instead of a polars traceback.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import psutil
from upath import UPath

from .automation import JOB_STAGES


def io_base_dir(artifact_dir: str | Path) -> Path:
    """Where the IO managers keep every asset value of ``artifact_dir`` (``<artifact_dir>/assets``):
    one home for the layout that the writers (``definitions``) and the readers (``model_records``) share."""
    return Path(artifact_dir) / "assets"


class UnreadableArtifactError(RuntimeError):
    """A stored asset value is missing or unreadable (cut short, overwritten, edited by hand)."""


def rebuild_hint(asset: str, partition: str | None) -> str:
    """How to materialise ``asset`` again: the smallest ``wrmil run`` job that covers it, or the UI."""
    jobs = sorted((sum(len(s.assets) for s in stages), name) for name, stages in JOB_STAGES.items()
                  if any(asset in s.assets for s in stages))
    where = f"{asset} (partition {partition})" if partition else asset
    cli = f"`wrmil run --job {jobs[0][1]}` with the --data-root/--config you used" if jobs else "its job"
    return f"rebuild it: {cli}, or Materialize {where} in the UI (`make ui`)"


def _unreadable(context: dg.InputContext, path: UPath, problem: str) -> UnreadableArtifactError:
    """The named error for an upstream artifact that cannot be loaded."""
    asset = context.asset_key.to_user_string()
    # one file per partition: <base>/<asset>/<partition><ext>
    partition = path.stem if path.parent.name == context.asset_key.path[-1] else None
    where = f"asset {asset}" + (f", partition {partition}" if partition else "")
    return UnreadableArtifactError(f"{where}: {path} {problem}; {rebuild_hint(asset, partition)}")


class _AtomicUPathIOManager(dg.UPathIOManager):
    """Writes to a temporary sibling, then renames: a failed step never leaves half a file."""

    def _tmp(self, path: UPath) -> UPath:
        return path.with_name(path.name + f".tmp{os.getpid()}")

    def _sweep_orphans(self, path: UPath) -> None:
        """Delete temporary siblings left by writers that were killed (their pid no longer runs)."""
        for tmp in path.parent.glob(path.name + ".tmp*"):
            pid = tmp.name.rsplit(".tmp", 1)[1]
            if pid.isdigit() and int(pid) != os.getpid() and not psutil.pid_exists(int(pid)):
                tmp.unlink(missing_ok=True)

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._sweep_orphans(path)
        tmp = self._tmp(path)
        try:
            self.write(obj, tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a half-written temporary file is of no use to anyone
            raise
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
            raise _unreadable(context, path, "is missing (never materialised, or deleted)")
        try:
            return pl.read_parquet(str(path))
        except (pl.exceptions.PolarsError, OSError) as e:
            raise _unreadable(context, path, f"is not a readable Parquet file ({' '.join(str(e).split())[:160]}): "
                              "it was cut short or overwritten") from e


class JsonIOManager(_AtomicUPathIOManager):
    """JSON-serialisable dicts (model references: paths, ids, metrics)."""

    extension = ".json"

    def write(self, obj: dict, path: UPath) -> None:
        path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))

    def load_from_path(self, context: dg.InputContext, path: UPath) -> dict:
        if not path.exists():
            raise _unreadable(context, path, "is missing (never materialised, or deleted)")
        try:
            record = json.loads(path.read_text())
        except (ValueError, OSError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise _unreadable(context, path, f"is not a readable JSON record ({e}): it was cut short or "
                              "overwritten") from e
        if not isinstance(record, dict):
            raise _unreadable(context, path, f"holds a JSON {type(record).__name__}, not a record")
        return record


class ParquetIOManagerFactory(dg.ConfigurableIOManagerFactory):
    """``ParquetIOManager`` under ``base_dir`` (the ``parquet_io`` resource)."""

    base_dir: str

    def create_io_manager(self, context: dg.InitResourceContext) -> ParquetIOManager:
        return ParquetIOManager(base_path=UPath(self.base_dir))


class JsonIOManagerFactory(dg.ConfigurableIOManagerFactory):
    """``JsonIOManager`` under ``base_dir`` (the ``json_io`` resource)."""

    base_dir: str

    def create_io_manager(self, context: dg.InitResourceContext) -> JsonIOManager:
        return JsonIOManager(base_path=UPath(self.base_dir))
