"""Stage 1: the ArcFace writer-embedding model, one embedding table per split, and the shortcut
controls beside it (untrained network, raw pixels) with the quality figures that compare them."""

import time

import dagster as dg
import polars as pl
import pydantic

from wrmil_core.data.split import words_of_split
from wrmil_core.embedding.baselines import (
    MIN_AUC_MARGIN,
    baseline_model_id,
    check_beats_pixels,
    embed_baselines,
    quality_by_embedding,
)
from wrmil_core.embedding.checkpoint import training_set_key
from wrmil_core.embedding.config import PRESETS, EmbeddingConfig
from wrmil_core.embedding.evaluate import METRIC_KEYS
from wrmil_core.embedding.fit import Trainer, fit_embedding
from wrmil_core.embedding.infer import check_embeddings, embedding_stats
from wrmil_core.embedding.models import embed_words
from wrmil_core.embedding.model_quality import model_quality, multiword_quality
from wrmil_core.embedding.train import TrainResult
from wrmil_core.errors import WrmilInputError

from ..config import preset_config_class, resolve
from ..metadata import check_result, png_md, table_md, to_metadata
from ..partitions import split_partitions
from ..resources import WrmilSettings, default_preset
from ..training_launch import LaunchConfig, launch_training


class ArcFaceConfig(preset_config_class("ArcFaceConfigBase", EmbeddingConfig, PRESETS, default_preset())):
    """Hyper-parameters of EmbeddingConfig (a preset plus per-field overrides: ``method`` picks arcface,
    classical or frozen, ``wrmil_core/embedding/fit.py``) and the check's margin."""

    min_auc_margin_over_pixels: float = pydantic.Field(
        default=MIN_AUC_MARGIN, description="beats_raw_pixels warns when the trained embedding's val verification "
                                            "AUC is not at least this much above raw pixels'")
    launch: LaunchConfig = pydantic.Field(default_factory=LaunchConfig, description="where to train: in_process, "
                                          "torchrun or kubernetes (wrmil_assets/training_launch.py)")


# Each baseline's asset (embedding/baselines.py): the same words through the same chain, without training.
BASELINE_ASSETS = {"untrained": "untrained_embeddings", "pixels": "pixel_embeddings"}
# arcface_model's metadata prefix of each embedding's val figures (as the training log names them).
VAL_PREFIXES = {"trained": "val", "untrained": "baseline", "pixels": "pixels"}


@dg.asset(group_name="embedding", io_manager_key="json_io", kinds={"pytorch", "timm"}, pool="training",
          check_specs=[dg.AssetCheckSpec(
              "beats_raw_pixels", asset="arcface_model",
              description="Warns when the val verification AUC does not beat raw pixels' by "
                          "min_auc_margin_over_pixels: a capture or scanner shortcut could explain the embedding.")])
def arcface_model(context: dg.AssetExecutionContext, config: ArcFaceConfig, settings: WrmilSettings,
                  raw_words: pl.DataFrame, writer_split: pl.DataFrame):
    """The writer-embedding model: an ArcFace network trained on the train writers (``method: arcface``),
    the training-free classical embedding fitted on their words (``method: classical``), or the
    pretrained backbone's frozen features projected by an LDA of the train writers (``method: frozen``).

    Weights (safetensors + JSON config), TensorBoard logs and the training curve live under
    ``<artifact_dir>/arcface/<training-set key>`` (classical: ``classical/<key>``); an interrupted
    training resumes from its last epoch. Metadata, on the unseen val writers' words (at most
    ``max_val_images``): verification AUC, EER, TAR@FAR, retrieval top-1 and mAP with writer-bootstrap
    95% intervals (``_lo``, ``_hi``) and the writers and words behind them, for the model (``val_*``),
    the untrained network (``baseline_*``) and raw pixels (``pixels_*``).
    """
    cfg = resolve(config, EmbeddingConfig, PRESETS, device=settings.device)
    train, val = words_of_split(raw_words, writer_split, "train"), words_of_split(raw_words, writer_split, "val")
    # One directory per method and training set: a checkpoint resumes only the training it belongs to,
    # never one made from other data or another split.
    out_dir = settings.artifact_path(cfg.method, training_set_key(train, val))
    fitted = fit_embedding(cfg, train, val, out_dir, resume=True, log=context.log.info,
                           num_workers=settings.num_workers, trainer=_trainer(context, config))
    model_dir, model_id, quality = fitted.model_dir, fitted.model_id, fitted.quality
    if quality is None:  # no figures from training's own val passes (see TrainResult.quality): embed again
        quality = model_quality(model_dir, val, max_words=cfg.max_val_images, n_pairs=cfg.val_pairs,
                                n_queries=cfg.val_queries, seed=cfg.seed, device=settings.device,
                                num_workers=settings.num_workers, log=context.log.info)
    ref = {"model_dir": str(model_dir), "model_id": model_id, "emb_dim": fitted.emb_dim, "method": cfg.method,
           "val_metrics": quality["trained"], "baseline_metrics": quality["untrained"]}
    meta = {"model_id": model_id, "model_dir": dg.MetadataValue.path(str(model_dir)), "method": cfg.method,
            **fitted.metadata, **_training_files_metadata(fitted.train_result), **_val_quality_metadata(quality)}
    meta.update(_val_multiword_metadata(str(model_dir), val, cfg, settings, context))
    yield dg.Output(ref, metadata=meta)
    passed, check_md = check_beats_pixels(quality["trained"], quality["pixels"], quality["untrained"],
                                          config.min_auc_margin_over_pixels)
    yield check_result("beats_raw_pixels", passed, check_md, asset="arcface_model",
                       severity=dg.AssetCheckSeverity.WARN)


def _trainer(context: dg.AssetExecutionContext, config: ArcFaceConfig) -> Trainer | None:
    """The network's training launched by torchrun or on Kubernetes through Dagster Pipes (the same
    TrainResult, so the same metadata); None: in this process."""
    if config.launch.mode == "in_process":
        return None
    return lambda train, val, cfg, out_dir: launch_training(context, config.launch, train, val, cfg, out_dir)


def _training_files_metadata(res: TrainResult | None) -> dict:
    """The network training's TensorBoard directory and curve (nothing for a training-free method)."""
    if res is None:
        return {}
    return {"tensorboard_dir": dg.MetadataValue.path(str(res.tb_dir)),
            "training_curve": png_md(res.curve_png, "training curve")}


def _val_quality_metadata(quality: dict[str, dict]) -> dict:
    """Numeric metadata (charted across runs) of ``model_quality``'s figures, and their table."""
    flat = {}
    for name, prefix in VAL_PREFIXES.items():
        fig = quality[name]
        flat.update({f"{prefix}_{key}{end}": fig[f"{key}{end}"] for key in METRIC_KEYS for end in ("", "_lo", "_hi")})
        flat.update({f"{prefix}_n_writers": fig["n_writers"], f"{prefix}_n_words": fig["n_images"]})
    return {**to_metadata(flat), "val_quality": dg.MetadataValue.md(_quality_table(quality))}


def _val_multiword_metadata(model_dir: str, val: pl.DataFrame, cfg: EmbeddingConfig, settings: WrmilSettings,
                            context: dg.AssetExecutionContext) -> dict:
    """``val_multiword_auc_n{n}``, ``_eer_n{n}`` and the pairs, writers and documents behind them: the
    model's mean embedding of n words of one val document against another's
    (``model_quality.multiword_quality``, on the words ``model_quality`` uses; "n/a" where no writer has
    two documents of n words)."""
    fig = multiword_quality(model_dir, val, max_words=cfg.max_val_images, seed=cfg.seed, device=settings.device,
                            num_workers=settings.num_workers, log=context.log.info)
    return to_metadata({f"val_{k}": v for k, v in fig.items()})


def _quality_table(quality: dict[str, dict]) -> str:
    """Markdown table: one row per embedding, point figures and the writers and words behind them."""
    rows = [{"embedding": name, **{k: fig[k] for k in METRIC_KEYS}, "n_writers": fig["n_writers"],
             "n_words": fig["n_images"]} for name, fig in quality.items()]
    return table_md(pl.DataFrame(rows))


class EmbedConfig(dg.Config):
    batch_size: int = 64  # per-image fastest on CPU for the demo network (benchmarks/embed_throughput.py)
    norm_tolerance: float = 1e-3
    # Quality figures (the trained embedding beside the baselines, writer-bootstrap CIs)
    quality_pairs: int = 20000
    quality_queries: int = 1000
    quality_boot: int = 200


@dg.multi_asset(
    name="baseline_embeddings", group_name="embedding", partitions_def=split_partitions,
    outs={asset: dg.AssetOut(io_manager_key="parquet_io", kinds={"pytorch", "parquet"},
                             description=f"Shortcut control: the {b} baseline's word embeddings of the split (the "
                                         "words and table of word_embeddings; wrmil_core/embedding/baselines.py).")
          for b, asset in BASELINE_ASSETS.items()},
    check_specs=[dg.AssetCheckSpec("embeddings_valid", asset=asset, blocking=True,
                                   description="Every vector finite, of one dimension, with unit L2 norm (±1e-3).")
                 for asset in BASELINE_ASSETS.values()],
)
def baseline_embeddings(context: dg.AssetExecutionContext, settings: WrmilSettings, arcface_model: dict,
                        raw_words: pl.DataFrame, writer_split: pl.DataFrame):
    """The split's words embedded by the untrained network and as raw pixels (one pass gives both)."""
    split = context.partition_key
    words = words_of_split(raw_words, writer_split, split)
    t0 = time.perf_counter()
    tables = embed_baselines(arcface_model["model_dir"], words, device=settings.device,
                             num_workers=settings.num_workers, log=context.log.info)
    seconds = time.perf_counter() - t0
    context.log.info(f"baselines of split {split}: {words.height} words in {seconds:.1f} s")
    for baseline, table in tables.items():
        asset = BASELINE_ASSETS[baseline]
        yield dg.Output(table, output_name=asset, metadata={
            "split": split, "n_words": table.height, "model_id": table["model_id"][0] if table.height else "",
            "seconds": float(seconds), **to_metadata(embedding_stats(table))})
    for baseline, table in tables.items():
        dim = table.schema["emb"].size  # type: ignore[union-attr]
        yield check_result("embeddings_valid", *check_embeddings(table, dim), asset=BASELINE_ASSETS[baseline])


@dg.asset(
    group_name="embedding", io_manager_key="parquet_io", partitions_def=split_partitions,
    kinds={"pytorch", "parquet"},
    check_specs=[
        dg.AssetCheckSpec("embeddings_valid", asset="word_embeddings", blocking=True,
                          description="Every vector finite, of the configured dimension, with unit L2 norm (±tol)."),
        dg.AssetCheckSpec("embedding_statistics", asset="word_embeddings",
                          description="Mean/std of norms and components, recorded for comparison across runs."),
    ],
)
def word_embeddings(context: dg.AssetExecutionContext, config: EmbedConfig, settings: WrmilSettings,
                    arcface_model: dict, raw_words: pl.DataFrame, writer_split: pl.DataFrame,
                    untrained_embeddings: pl.DataFrame, pixel_embeddings: pl.DataFrame):
    """One L2-normalised writer embedding per word of this split (Parquet).

    Metadata: verification AUC, EER, TAR@FAR and retrieval top-1/mAP with writer-bootstrap 95% CIs
    of the trained embedding and of each baseline on this split's words (``<embedding>/<figure>``),
    with the writers and words behind them.
    """
    split = context.partition_key
    words = words_of_split(raw_words, writer_split, split)
    emb = embed_words(arcface_model["model_dir"], words, batch_size=config.batch_size,
                      device=settings.device, num_workers=settings.num_workers, log=context.log.info)
    stats = embedding_stats(emb)
    baselines = {"untrained": untrained_embeddings, "pixels": pixel_embeddings}
    quality = _quality(config, split, arcface_model["model_id"], {"trained": emb, **baselines})
    yield dg.Output(emb, metadata={"split": split, "n_words": emb.height, "model_id": arcface_model["model_id"],
                                   **to_metadata(stats), **quality})
    yield check_result("embeddings_valid", *check_embeddings(emb, arcface_model["emb_dim"], config.norm_tolerance),
                       asset="word_embeddings")
    yield check_result("embedding_statistics", True, stats, asset="word_embeddings",
                       severity=dg.AssetCheckSeverity.WARN)


def _quality(config: EmbedConfig, split: str, model_id: str, tables: dict[str, pl.DataFrame]) -> dict:
    """Quality metadata of the trained table and the baselines (refused when a baseline is of another model)."""
    for name, table in tables.items():
        if name != "trained" and set(table["model_id"].unique()) != {baseline_model_id(name, model_id)}:
            raise WrmilInputError(
                f"{BASELINE_ASSETS[name]}[{split}] is not the {name} baseline of model {model_id!r} (it holds "
                f"{table['model_id'].unique().to_list()[:3]}): re-materialise it with word_embeddings[{split}]")
    q = quality_by_embedding(tables, config.quality_pairs, config.quality_queries, seed=0, n_boot=config.quality_boot)
    flat = {f"{name}/{key}{end}": fig[f"{key}{end}"] for name, fig in q.items()
            for key in METRIC_KEYS for end in ("", "_lo", "_hi")}
    flat.update({f"margin_over_{b}/auc": q["trained"]["auc"] - q[b]["auc"] for b in tables if b != "trained"})
    trained = q["trained"]
    flat.update({k: trained[k] for k in ("n_writers", "n_pairs", "n_queries", "n_boot")})
    table = pl.DataFrame([{"embedding": name, **{k: fig[k] for k in METRIC_KEYS}} for name, fig in q.items()])
    return {**to_metadata(flat), "embedding_quality": dg.MetadataValue.md(table_md(table))}
