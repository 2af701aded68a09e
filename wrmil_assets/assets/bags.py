"""Stage 2: windows of consecutive words and contaminated/genuine document bags, per split.

``bags_by_difficulty[split]`` is built from ``instance_windows[split]`` (a base bag is a run of its
rows): a windows table cut with another window size or stride is refused, and the blocking check
``windows_match_instance_windows`` proves every bag's windows are rows of it.
"""

import dagster as dg
import polars as pl

from wrmil_core.bags import checks as bag_checks
from wrmil_core.bags.build import build_bags
from wrmil_core.bags.config import PRESETS, BagConfig
from wrmil_core.bags.windows import windows_for

from ..config import preset_config_class, resolve
from ..metadata import check_result, to_metadata
from ..partitions import split_partitions
from ..resources import default_preset

BagsConfig = preset_config_class("BagsConfig", BagConfig, PRESETS, default_preset())

BLOCKING = tuple(bag_checks.BLOCKING_CHECKS)
WARNING = tuple(bag_checks.NON_BLOCKING_CHECKS)


@dg.asset(group_name="bags", io_manager_key="parquet_io", partitions_def=split_partitions, kinds={"polars", "parquet"})
def instance_windows(context: dg.AssetExecutionContext, config: BagsConfig, word_embeddings: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    """Windows of ``window_size`` consecutive words per document (word ids, not vectors)."""
    cfg = resolve(config, BagConfig, PRESETS)
    res = windows_for(word_embeddings, cfg, log=context.log.info)
    return dg.Output(res.windows, metadata={"split": context.partition_key, **to_metadata(res.metadata)})


@dg.asset(
    group_name="bags", io_manager_key="parquet_io", partitions_def=split_partitions, kinds={"polars", "parquet"},
    check_specs=[dg.AssetCheckSpec(n, asset="bags_by_difficulty", blocking=True) for n in BLOCKING]
    + [dg.AssetCheckSpec(n, asset="bags_by_difficulty") for n in WARNING],
)
def bags_by_difficulty(context: dg.AssetExecutionContext, config: BagsConfig, instance_windows: pl.DataFrame,
                       word_embeddings: pl.DataFrame):
    """Genuine (one writer) and contaminated (two writers) bags at every difficulty, 1:2 balanced,
    built from runs of ``instance_windows`` rows."""
    cfg = resolve(config, BagConfig, PRESETS)
    split = context.partition_key
    res = build_bags(word_embeddings, split, cfg, log=context.log.info, windows=instance_windows)
    yield dg.Output(res.bags, metadata={"split": split, **to_metadata(res.metadata)})
    results = bag_checks.run_bag_checks(res.bags, word_embeddings, instance_windows, split=split,
                                        bag_size=cfg.bag_size, window_size=cfg.window_size)
    for name, (passed, meta) in results.items():
        sev = dg.AssetCheckSeverity.ERROR if name in BLOCKING else dg.AssetCheckSeverity.WARN
        yield check_result(name, passed, meta, asset="bags_by_difficulty", severity=sev)
