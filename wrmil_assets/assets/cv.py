"""Writer-fold cross-validation: the whole chain once per writer fold, pooled over every writer.

``cv_folds`` cuts the writers into k folds (each writer tested once) and registers one partition
per fold; ``cv_fold[fold_i]`` trains the embedding and the detectors on that fold's split and
evaluates them on its test writers (``wrmil_core.cv.fold``); ``cv_summary`` pools every fold's test
results over all writers, with the spread across folds, and writes ``<artifact_dir>/cv/cv_report.md``.
"""

from types import SimpleNamespace
from typing import Any

import dagster as dg
import polars as pl
import pydantic

from wrmil_core.bags import config as bag_config
from wrmil_core.cv.fold import FoldSetup, require_bag_donors, run_fold
from wrmil_core.cv.pool import check_current, load_fold_tables, pool_folds
from wrmil_core.cv.report import first_line, report_markdown, write_report
from wrmil_core.data.folds import check_folds, fold_split, writer_folds
from wrmil_core.data.split import split_metadata, split_summary
from wrmil_core.embedding import config as embedding_config
from wrmil_core.embedding.baselines import MIN_AUC_MARGIN, check_beats_pixels
from wrmil_core.embedding.evaluate import METRIC_KEYS
from wrmil_core.mil import config as mil_config

from ..config import preset_config_class, resolve
from ..metadata import check_result, table_md, to_metadata
from ..partitions import (
    FOLD_PARTITIONS_NAME,
    fold_index,
    fold_partition_key,
    fold_partitions,
)
from ..resources import WrmilSettings, default_preset

GROUP = "cross_validation"


class CvFoldsConfig(dg.Config):
    """How the writers are cut into folds."""

    k: int = pydantic.Field(default=5, description="number of writer folds; each writer is a test writer in one")
    val_fraction: float = pydantic.Field(default=0.2, description="share of each fold's non-test writers that validate")
    seed: int = pydantic.Field(default=0, description="seed of the writer shuffle")


def _overrides(name: str, dc: type, presets: dict[str, Any], exclude: tuple[str, ...] = ()) -> type[dg.Config]:
    """A stage's launchpad overrides inside ``cv_fold``'s config; its preset defaults to ``cv_fold``'s."""
    base = preset_config_class(name + "Base", dc, presets, default_preset(), exclude=exclude)
    return pydantic.create_model(name, __base__=base, preset=(str | None, pydantic.Field(
        default=None, description=f"empty: cv_fold's preset; else one of {sorted(presets)}")))


CvArcFace = _overrides("CvArcFace", embedding_config.EmbeddingConfig, embedding_config.PRESETS)


CvBags = _overrides("CvBags", bag_config.BagConfig, bag_config.PRESETS)
CvMil = _overrides("CvMil", mil_config.MILConfig, mil_config.PRESETS, exclude=("hparams",))


class CvFoldConfig(dg.Config):
    """Every stage of a fold: one preset for all (``wrmil run --preset``), per-stage field overrides."""

    preset: str = pydantic.Field(default=default_preset(), description="preset of every stage of the fold")
    arcface: CvArcFace = pydantic.Field(default_factory=CvArcFace)  # type: ignore[valid-type]
    bags: CvBags = pydantic.Field(default_factory=CvBags)  # type: ignore[valid-type]
    mil: CvMil = pydantic.Field(default_factory=CvMil)  # type: ignore[valid-type]
    quality_pairs: int = 20000
    quality_queries: int = 1000
    quality_boot: int = 200


def fold_setup(config: CvFoldConfig, device: str) -> FoldSetup:
    """The core configs of a fold: each stage's preset (its own, else ``config.preset``) plus overrides."""
    def stage(sub: dg.Config, dc: type, presets: dict[str, Any], dev: str | None = None) -> Any:
        view = SimpleNamespace(**{**sub.model_dump(), "preset": sub.preset or config.preset})
        return resolve(view, dc, presets, device=dev)  # type: ignore[arg-type]

    return FoldSetup(
        embedding=stage(config.arcface, embedding_config.EmbeddingConfig, embedding_config.PRESETS, device),
        bags=stage(config.bags, bag_config.BagConfig, bag_config.PRESETS),
        mil=stage(config.mil, mil_config.MILConfig, mil_config.PRESETS, device),
        quality_pairs=config.quality_pairs, quality_queries=config.quality_queries, quality_boot=config.quality_boot)


def _register_folds(instance: dg.DagsterInstance, k: int) -> list[str]:
    """Make the fold partitions exactly fold_0..fold_{k-1} (a smaller k drops the others)."""
    keys = [fold_partition_key(f) for f in range(k)]
    have = set(instance.get_dynamic_partitions(FOLD_PARTITIONS_NAME))
    instance.add_dynamic_partitions(FOLD_PARTITIONS_NAME, [key for key in keys if key not in have])
    for stale in sorted(have - set(keys)):
        instance.delete_dynamic_partition(FOLD_PARTITIONS_NAME, stale)
    return keys


@dg.asset(group_name=GROUP, io_manager_key="parquet_io", kinds={"polars", "parquet"},
          check_specs=[dg.AssetCheckSpec("folds_valid", asset="cv_folds", blocking=True,
                                         description="Every writer once per fold, tested in exactly one fold.")])
def cv_folds(context: dg.AssetExecutionContext, config: CvFoldsConfig, raw_words: pl.DataFrame):
    """Writer folds (fold, writer, split): in fold f one group of writers is the test part, validation
    writers are drawn from the rest, the others train. Registers the partitions fold_0..fold_{k-1}."""
    folds = writer_folds(raw_words["writer"].unique().sort().to_list(), config.k, config.val_fraction, config.seed)
    require_bag_donors(folds)
    keys = _register_folds(context.instance, config.k)
    rows = [{"fold": key, **split_metadata(split_summary(raw_words, fold_split(folds, f)))}
            for f, key in enumerate(keys)]
    yield dg.Output(folds, metadata={"n_folds": config.k, "n_writers": folds["writer"].n_unique(),
                                     "folds": dg.MetadataValue.md(table_md(pl.DataFrame(rows)))})
    yield check_result("folds_valid", *check_folds(folds), asset="cv_folds")


def _auc_tag(row: dict[str, Any]) -> str:
    """``<model>/auc_<pct>`` (``_<geometry>`` added for a geometry other than contiguous)."""
    geometry = row.get("geometry", "contiguous")
    return f"{row['model']}/auc_{row['ratio'] * 100:.6g}" + ("" if geometry == "contiguous" else f"_{geometry}")


def _fold_metadata(record: dict[str, Any]) -> dict[str, Any]:
    """A fold's figures for the UI: embedding quality (with CIs) per embedding, detector AUC per difficulty."""
    flat: dict[str, Any] = {f"{name}/{key}{end}": fig.get(f"{key}{end}") for name, fig in record["embedding"].items()
                            for key in METRIC_KEYS for end in ("", "_lo", "_hi")}
    flat.update({_auc_tag(d): d["auc"] for d in record["detection"]})
    counts = record["counts"]
    flat.update({"n_test_writers": len(record["test_writers"]), "n_test_documents": counts["test_documents"],
                 "n_test_words": counts["test_words"], "n_train_writers": counts["train_writers"],
                 "n_val_writers": counts["val_writers"], "reused": bool(record["reused"]),
                 "model_id": record["model_id"], "fold_dir": record["fold_dir"]})
    cols = ("model", "geometry", "ratio", "auc", "n_genuine", "n_contaminated", "n_documents", "n_writers")
    table = pl.DataFrame([{c: d.get(c) for c in cols} for d in record["detection"]])
    return {**to_metadata(flat), "detection": dg.MetadataValue.md(table_md(table))}


@dg.asset(group_name=GROUP, io_manager_key="json_io", partitions_def=fold_partitions, kinds={"pytorch", "timm"},
          pool="training")
def cv_fold(context: dg.AssetExecutionContext, config: CvFoldConfig, settings: WrmilSettings,
            raw_words: pl.DataFrame, cv_folds: pl.DataFrame) -> dg.Output[dict]:
    """One fold: the embedding trained on its train writers, its words embedded, windows and bags cut,
    every detector trained, all evaluated on its test writers. Artifacts under
    ``<artifact_dir>/cv/<fold>/<key>``; a fold finished before with the same words, split and configs
    is returned as it is (nothing retrained). Metadata: the embedding's verification and retrieval
    figures on the test writers (trained, untrained, pixels) and each detector's AUC per difficulty."""
    key = context.partition_key
    record = run_fold(raw_words, fold_split(cv_folds, fold_index(key)), fold_setup(config, settings.device),
                      settings.artifact_path("cv", key), fold=key, device=settings.device,
                      num_workers=settings.num_workers, log=context.log.info)
    return dg.Output(record, metadata=_fold_metadata(record))


class CvSummaryConfig(dg.Config):
    """Sample sizes of the pooled figures."""

    pairs_per_fold: int = pydantic.Field(default=20000, description="verification word pairs drawn per fold")
    queries_per_fold: int = pydantic.Field(default=1000, description="retrieval queries drawn per fold")
    n_boot: int = pydantic.Field(default=1000, description="bootstrap resamples of each pooled detector AUC")
    min_auc_margin_over_pixels: float = pydantic.Field(
        default=MIN_AUC_MARGIN, description="beats_raw_pixels warns when the pooled trained verification AUC is not "
                                            "at least this much above raw pixels'")


def _records(cv_fold: dict) -> tuple[list[dict], list[int]]:
    """The fold records in fold order, and their fold numbers (one partition may arrive bare)."""
    by_key = {cv_fold["fold"]: cv_fold} if "key" in cv_fold and "fold" in cv_fold else cv_fold
    keys = sorted(by_key, key=fold_index)
    return [by_key[k] for k in keys], [fold_index(k) for k in keys]


def _summary_metadata(summary: dict[str, Any]) -> dict[str, Any]:
    """Pooled figures for the UI (numeric: they chart across runs) and the counts behind them."""
    flat: dict[str, Any] = dict(summary["counts"])
    flat.pop("folds")
    for name, e in summary["embedding"].items():
        flat.update({f"{name}/{k}": e[k] for k in ("auc", "eer", "tar_far_1e-2", "top1", "map")})
        flat.update({f"{name}/fold_auc_{s}": e["spread"]["auc"][s] for s in ("min", "max", "sd")})
    for d in summary["detection"]:
        tag = _auc_tag(d)
        flat.update({tag: d["auc"], f"{tag}_lo": d["auc_lo"], f"{tag}_hi": d["auc_hi"],
                     f"{tag}_fold_sd": d["spread"]["sd"]})
    return to_metadata(flat)


@dg.asset(group_name=GROUP, io_manager_key="json_io", kinds={"markdown"},
          check_specs=[dg.AssetCheckSpec(
              "beats_raw_pixels", asset="cv_summary",
              description="Warns when the pooled test verification AUC of the trained embedding does not beat raw "
                          "pixels' by min_auc_margin_over_pixels: a capture shortcut could explain it.")])
def cv_summary(context: dg.AssetExecutionContext, config: CvSummaryConfig, settings: WrmilSettings,
               cv_fold: dict, cv_folds: pl.DataFrame):
    """Every fold's test results pooled over all writers (not a mean of fold figures), with the spread
    across folds: the embedding's verification/retrieval figures and the shortcut controls, each
    detector's AUC per difficulty. Report: ``<artifact_dir>/cv/cv_report.md`` (and ``.json``); its first
    line says how many writers and documents stand behind the figures, and when they are few."""
    records, fold_of = _records(cv_fold)
    check_current(records, cv_folds, fold_of)
    summary = pool_folds(records, [load_fold_tables(r) for r in records], config.pairs_per_fold,
                         config.queries_per_fold, config.n_boot)
    summary["counts"]["n_writers_in_data"] = cv_folds["writer"].n_unique()
    paths = write_report(summary, settings.artifact_path("cv"))
    context.log.info(f"{first_line(summary['counts'])} Report: {paths['md']}")
    value = {"first_line": first_line(summary["counts"]), "paths": {k: str(v) for k, v in paths.items()}, **summary}
    yield dg.Output(value, metadata={"first_line": dg.MetadataValue.text(value["first_line"]),
                                     "report": dg.MetadataValue.md(report_markdown(summary)),
                                     "report_path": dg.MetadataValue.path(str(paths["md"])),
                                     **_summary_metadata(summary)})
    emb = summary["embedding"]
    passed, meta = check_beats_pixels(emb["trained"], emb["pixels"], emb["untrained"], config.min_auc_margin_over_pixels)
    yield check_result("beats_raw_pixels", passed, meta, asset="cv_summary", severity=dg.AssetCheckSeverity.WARN)
