"""Stage 0 and split: ingest the raw word images and split writers into train/val/test."""


import dataclasses

import dagster as dg
import polars as pl

from wrmil_core.data import ingest as ingest_stage
from wrmil_core.data import split as split_stage
from wrmil_core.data.pages_layout import ingest_source
from wrmil_core.data.split import (
    check_disjoint,
    check_fractions,
    check_nonempty,
    split_metadata,
    split_summary,
    split_writers,
)

from ..config import preset_config_class, resolve
from ..metadata import check_result, table_md, to_metadata
from ..resources import WrmilSettings, default_preset

# How to read the raw data root (its path and layout come from the ``settings`` resource).
IngestConfig = preset_config_class("IngestConfig", ingest_stage.IngestConfig, ingest_stage.PRESETS, default_preset())
# Writer-disjoint split: seeded shuffle by fractions, or the original fixed id ranges.
SplitConfig = preset_config_class("SplitConfig", split_stage.SplitConfig, split_stage.PRESETS, default_preset())


# raw_pages (assets/pages.py) builds the word layout of a page-scan root; a word-crop root is read as is.
@dg.asset(group_name="ingest", io_manager_key="parquet_io", kinds={"polars", "parquet"}, deps=["raw_pages"])
def raw_words(context: dg.AssetExecutionContext, config: IngestConfig, settings: WrmilSettings) -> dg.Output[pl.DataFrame]:
    """Every usable word image of the data root as a tidy table (word_id, writer, doc_id, position, path, ...).

    The data version is the content fingerprint of the metadata CSV, so the UI marks everything
    downstream stale when the raw data change.
    """
    cfg = resolve(config, ingest_stage.IngestConfig, ingest_stage.PRESETS)
    root, metadata_csv = ingest_source(settings.data_root, settings.metadata_csv, settings.artifact_dir)
    res = ingest_stage.ingest(root, metadata_csv=metadata_csv,
                              reps_per_session=settings.reps_per_session, log=context.log.info,
                              **dataclasses.asdict(cfg))
    for reason, n in res.skipped.items():
        if n:
            context.log.warning(f"skipped {n} input(s): {reason}; e.g. {res.skipped_examples.get(reason, [])[:3]}")
    return dg.Output(
        res.words,
        data_version=dg.DataVersion(res.fingerprint),
        metadata={**to_metadata(res.metadata), "data_root": dg.MetadataValue.path(settings.data_root),
                  "fingerprint": res.fingerprint},
    )


@dg.asset(
    group_name="ingest",
    io_manager_key="parquet_io",
    kinds={"polars", "parquet"},
    check_specs=[
        dg.AssetCheckSpec("writers_disjoint", asset="writer_split", blocking=True,
                          description="No writer is in two splits."),
        dg.AssetCheckSpec("fractions_within_tolerance", asset="writer_split",
                          description="Split sizes are within tolerance of the requested fractions."),
        dg.AssetCheckSpec("splits_nonempty", asset="writer_split", blocking=True,
                          description="Every split has at least one writer."),
    ],
)
def writer_split(context: dg.AssetExecutionContext, config: SplitConfig, raw_words: pl.DataFrame):
    """writer -> train/val/test, writer-disjoint (default 60/20/20, seeded)."""
    cfg = resolve(config, split_stage.SplitConfig, split_stage.PRESETS)
    writers = raw_words["writer"].unique().sort().to_list()
    splits = split_writers(writers, fractions=cfg.fractions, seed=cfg.seed, mode=cfg.mode)
    summary = split_summary(raw_words, splits)
    yield dg.Output(splits, metadata={
        "summary": dg.MetadataValue.md(table_md(summary)),
        **to_metadata(split_metadata(summary)),
    })
    yield check_result("writers_disjoint", *check_disjoint(splits), asset="writer_split")
    yield check_result("fractions_within_tolerance", *check_fractions(splits, cfg.fractions, cfg.tolerance),
                       asset="writer_split", severity=dg.AssetCheckSeverity.WARN)
    yield check_result("splits_nonempty", *check_nonempty(splits), asset="writer_split")

