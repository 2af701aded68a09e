"""Stage 2: windows of consecutive words and contaminated/genuine document bags, per split."""


import dagster as dg
import polars as pl

from wrmil_core.bags import checks as bag_checks
from wrmil_core.bags.build import PRESETS, BagConfig, build_bags
from wrmil_core.errors import WrmilInputError
from wrmil_core.bags.windows import make_windows

from ..config import preset_config_class, resolve
from ..metadata import check_result, to_metadata
from ..partitions import split_partitions
from ..resources import default_preset

BagsConfig = preset_config_class("BagsConfig", BagConfig, PRESETS, default_preset())


@dg.asset(group_name="bags", io_manager_key="parquet_io", partitions_def=split_partitions, kinds={"polars", "parquet"})
def instance_windows(context: dg.AssetExecutionContext, config: BagsConfig, word_embeddings: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    """Windows of ``window_size`` consecutive words per document (word ids, not vectors)."""
    cfg = resolve(config, BagConfig, PRESETS)
    res = make_windows(word_embeddings, window_size=cfg.window_size, stride=cfg.effective_window_stride, log=context.log.info)
    return dg.Output(res.windows, metadata={"split": context.partition_key, **to_metadata(res.metadata)})


BLOCKING = tuple(bag_checks.BLOCKING_CHECKS)
WARNING = tuple(bag_checks.NON_BLOCKING_CHECKS)


@dg.asset(
    group_name="bags", io_manager_key="parquet_io", partitions_def=split_partitions, kinds={"polars", "parquet"},
    check_specs=[dg.AssetCheckSpec(n, asset="bags_by_difficulty", blocking=True) for n in BLOCKING]
    + [dg.AssetCheckSpec(n, asset="bags_by_difficulty") for n in WARNING],
)
def bags_by_difficulty(context: dg.AssetExecutionContext, config: BagsConfig, instance_windows: pl.DataFrame,
                       word_embeddings: pl.DataFrame):
    """Genuine (one writer) and contaminated (two writers) bags at every difficulty, 1:2 balanced."""
    cfg = resolve(config, BagConfig, PRESETS)
    split = context.partition_key
    # Word mode cuts windows from the mixed word sequence, so build_bags reads the embedding table's
    # layout; instance_windows is an input for lineage (same split, same model) and is checked here.
    if instance_windows.height and instance_windows["model_id"][0] != word_embeddings["model_id"][0]:
        raise WrmilInputError(f"instance_windows[{split}] was built from another embedding model; "
                              f"re-materialise instance_windows[{split}]")
    res = build_bags(word_embeddings, split, cfg, log=context.log.info)
    yield dg.Output(res.bags, metadata={"split": split, **to_metadata(res.metadata)})
    results = bag_checks.run_bag_checks(res.bags, word_embeddings, split=split, bag_size=cfg.bag_size,
                                        window_size=cfg.window_size)
    for name, (passed, meta) in results.items():
        sev = dg.AssetCheckSeverity.ERROR if name in BLOCKING else dg.AssetCheckSeverity.WARN
        yield check_result(name, passed, meta, asset="bags_by_difficulty", severity=sev)
