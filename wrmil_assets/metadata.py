"""Helpers that turn core results into Dagster metadata (one place for the conversions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import dagster as dg
import polars as pl

from wrmil_core.plots import png_data_uri


def to_metadata(values: Mapping[str, Any]) -> dict[str, Any]:
    """Plain values -> Dagster metadata; floats and ints stay numeric so the UI charts them."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            out[key] = dg.MetadataValue.text("n/a")
        elif isinstance(value, bool):
            out[key] = dg.MetadataValue.bool(value)
        elif isinstance(value, int):
            out[key] = dg.MetadataValue.int(value)
        elif isinstance(value, float):
            out[key] = dg.MetadataValue.float(value)
        elif isinstance(value, Path):
            out[key] = dg.MetadataValue.path(str(value))
        elif isinstance(value, pl.DataFrame):
            out[key] = dg.MetadataValue.md(table_md(value))
        elif isinstance(value, (dict, list, tuple)):
            out[key] = dg.MetadataValue.json(value)
        else:
            out[key] = dg.MetadataValue.text(str(value))
    return out


def table_md(df: pl.DataFrame) -> str:
    """A polars frame as a Markdown table."""
    cols = df.columns
    rows = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.iter_rows():
        rows.append("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(rows)


def png_md(path: str | Path, alt: str = "plot") -> dg.MetadataValue:
    """Embed a PNG in Markdown metadata (a base64 data URI renders as an image in the UI)."""
    return dg.MetadataValue.md(f"![{alt}]({png_data_uri(path)})")


def check_result(name: str, passed: bool, meta: Mapping[str, Any], *, asset: str,
                 severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR) -> dg.AssetCheckResult:
    """An AssetCheckResult from a core check's ``(passed, metadata)``."""
    return dg.AssetCheckResult(check_name=name, asset_key=asset, passed=bool(passed),
                               metadata=to_metadata(meta), severity=severity)
