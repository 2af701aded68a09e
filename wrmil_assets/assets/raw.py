"""Stage 0 and split: ingest the raw word images and split writers into train/val/test."""


from typing import Literal

import dagster as dg
import polars as pl

from wrmil_core.data.ingest import ingest
from wrmil_core.data.split import check_disjoint, check_fractions, check_nonempty, split_metadata, split_summary, split_writers

from ..metadata import check_result, table_md, to_metadata
from ..resources import WrmilSettings


class IngestConfig(dg.Config):
    """How to read the raw data root (paths come from the ``settings`` resource)."""

    min_doc_words: int = 5
    verify_images: bool = True


@dg.asset(group_name="ingest", io_manager_key="parquet_io", kinds={"polars", "parquet"})
def raw_words(context: dg.AssetExecutionContext, config: IngestConfig, settings: WrmilSettings) -> dg.Output[pl.DataFrame]:
    """Every usable word image of the data root as a tidy table (word_id, writer, doc_id, position, path, ...).

    The data version is the content fingerprint of the metadata CSV, so the UI marks everything
    downstream stale when the raw data change.
    """
    res = ingest(settings.data_root, metadata_csv=settings.metadata_csv,
                 reps_per_session=settings.reps_per_session, min_doc_words=config.min_doc_words,
                 verify_images=config.verify_images, log=context.log.info)
    for reason, n in res.skipped.items():
        if n:
            context.log.warning(f"skipped {n} input(s): {reason}; e.g. {res.skipped_examples.get(reason, [])[:3]}")
    return dg.Output(
        res.words,
        data_version=dg.DataVersion(res.fingerprint),
        metadata={**to_metadata(res.metadata), "data_root": dg.MetadataValue.path(settings.data_root),
                  "fingerprint": res.fingerprint},
    )


class SplitConfig(dg.Config):
    """Writer-disjoint split: seeded shuffle by fractions, or the original fixed id ranges."""

    mode: Literal["random", "fixed_ranges"] = "random"
    train_fraction: float = 0.6
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    seed: int = 0
    tolerance: float = 0.05


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
    fractions = (config.train_fraction, config.val_fraction, config.test_fraction)
    writers = raw_words["writer"].unique().sort().to_list()
    splits = split_writers(writers, fractions=fractions, seed=config.seed, mode=config.mode)
    summary = split_summary(raw_words, splits)
    yield dg.Output(splits, metadata={
        "summary": dg.MetadataValue.md(table_md(summary)),
        **to_metadata(split_metadata(summary)),
    })
    yield check_result("writers_disjoint", *check_disjoint(splits), asset="writer_split")
    yield check_result("fractions_within_tolerance", *check_fractions(splits, fractions, config.tolerance),
                       asset="writer_split", severity=dg.AssetCheckSeverity.WARN)
    yield check_result("splits_nonempty", *check_nonempty(splits), asset="writer_split")

