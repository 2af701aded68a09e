"""Stage 1: the ArcFace writer-embedding model and one embedding table per split."""

import dagster as dg
import polars as pl

from wrmil_core.data.split import words_of_split
from wrmil_core.embedding.checkpoint import training_set_key
from wrmil_core.embedding.config import PRESETS, EmbeddingConfig
from wrmil_core.embedding.infer import check_embeddings, embed_words, embedding_stats
from wrmil_core.embedding.train import train_embedding

from ..config import preset_config_class, resolve
from ..metadata import check_result, png_md, to_metadata
from ..partitions import split_partitions
from ..resources import WrmilSettings, default_preset

ArcFaceConfig = preset_config_class("ArcFaceConfig", EmbeddingConfig, PRESETS, default_preset())


@dg.asset(group_name="embedding", io_manager_key="json_io", kinds={"pytorch", "timm"}, pool="training")
def arcface_model(context: dg.AssetExecutionContext, config: ArcFaceConfig, settings: WrmilSettings,
                  raw_words: pl.DataFrame, writer_split: pl.DataFrame) -> dg.Output[dict]:
    """ArcFace writer-embedding network trained on the train writers, validated on the unseen val writers.

    Weights (safetensors + JSON config), TensorBoard logs and the training curve live under
    ``<artifact_dir>/arcface/<training-set key>``; an interrupted training resumes from its last epoch.
    """
    cfg = resolve(config, EmbeddingConfig, PRESETS, device=settings.device)
    train, val = words_of_split(raw_words, writer_split, "train"), words_of_split(raw_words, writer_split, "val")
    # One training directory per training set: a checkpoint resumes only the training it belongs to,
    # never one made from other data or another split.
    out_dir = settings.artifact_path("arcface", training_set_key(train, val))
    res = train_embedding(train, val, cfg, out_dir, resume=True, log=context.log.info)
    ref = {"model_dir": str(res.model_dir), "model_id": res.model_id, "emb_dim": cfg.emb_dim,
           "val_metrics": res.val_metrics, "baseline_metrics": res.baseline_metrics}
    meta = {
        "model_id": res.model_id, "model_dir": dg.MetadataValue.path(str(res.model_dir)),
        "tensorboard_dir": dg.MetadataValue.path(str(res.tb_dir)),
        "epochs_run": res.epochs_run, "train_seconds": float(res.seconds),
        "skipped_images": int(res.skipped_images),
        **to_metadata({f"val_{k}": v for k, v in res.val_metrics.items()}),
        **to_metadata({f"baseline_{k}": v for k, v in res.baseline_metrics.items()}),
        "training_curve": png_md(res.curve_png, "training curve"),
    }
    return dg.Output(ref, metadata=meta)


class EmbedConfig(dg.Config):
    batch_size: int = 64  # per-image fastest on CPU for the demo network (benchmarks/embed_throughput.py)
    norm_tolerance: float = 1e-3


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
                    arcface_model: dict, raw_words: pl.DataFrame, writer_split: pl.DataFrame):
    """One L2-normalised writer embedding per word of this split (Parquet)."""
    split = context.partition_key
    words = words_of_split(raw_words, writer_split, split)
    emb = embed_words(arcface_model["model_dir"], words, batch_size=config.batch_size,
                      device=settings.device, num_workers=settings.num_workers, log=context.log.info)
    stats = embedding_stats(emb)
    yield dg.Output(emb, metadata={"split": split, "n_words": emb.height, "model_id": arcface_model["model_id"],
                                   **to_metadata(stats)})
    yield check_result("embeddings_valid", *check_embeddings(emb, arcface_model["emb_dim"], config.norm_tolerance),
                       asset="word_embeddings")
    yield check_result("embedding_statistics", True, stats, asset="word_embeddings",
                       severity=dg.AssetCheckSeverity.WARN)
