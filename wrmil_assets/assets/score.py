"""Questioned-document scoring as an asset: launch it from the UI with a document path as config.

Not part of the pipeline jobs (it needs a document path); materialise it on its own from the
launchpad. Its JSON record keeps the last result; ``score.json`` and ``strip.png`` of every
scored document stay under ``<artifact_dir>/scores/<document folder name>/``.
"""

from pathlib import Path

import dagster as dg
import polars as pl
import pydantic

from wrmil_core.scoring.score import score_document
from wrmil_core.scoring.strip import write_outputs

from ..metadata import png_md, table_md, to_metadata
from ..model_records import report_record, select_models
from ..resources import WrmilSettings


class QuestionedDocumentConfig(dg.Config):
    """Which document to score and with which MIL model."""

    document_path: str = pydantic.Field(description="folder of word images in reading order (natural file-name "
                                                    "order), or a CSV with columns image_path,order")
    order_csv: str = pydantic.Field(default="", description="optional CSV image_path,order (relative to the folder)")
    model: str = pydantic.Field(default="", description="MIL model name; empty = the best calibrated whole-document "
                                                        "detector (see docs/scoring-and-comparison.md)")
    out_dir: str = pydantic.Field(default="", description="output folder; empty = <artifact_dir>/scores/<folder name>")
    top_k: int = pydantic.Field(default=10, description="how many suspicious words to list")


@dg.asset(group_name="scoring", io_manager_key="json_io", kinds={"pytorch"})
def questioned_document_score(context: dg.AssetExecutionContext, config: QuestionedDocumentConfig,
                              settings: WrmilSettings, mil_model: dict, arcface_model: dict) -> dg.Output[dict]:
    """log10 LR of "more than one writer" vs "one writer" for one questioned document, with its
    verbal equivalent, the decisions at the validated 1 % / 5 % FPR thresholds, the estimated foreign
    passage, each word's evidence and a strip of the word images coloured by it, with the latest
    materialised (calibrated) models."""
    # The report only picks the default model and may be absent, so it is read, not an asset input.
    emb_dir, mil_dir = select_models(arcface_model, mil_model, report_record(settings.artifact_dir),
                                     config.model or None)
    result = score_document(config.document_path, emb_dir, mil_dir, order_csv=config.order_csv or None,
                            device=settings.device, top_k=config.top_k, log=context.log.info)
    out_dir = Path(config.out_dir) if config.out_dir else settings.artifact_path("scores", Path(result.document).name)
    paths = write_outputs(result, out_dir)
    context.log.info(result.summary())
    top = pl.DataFrame([{"rank": w["rank"], "position": w["index"], "file": w["file"], "score": w["score"],
                         "log10_lr": w.get("log10_lr")} for w in result.top_words])
    return dg.Output(
        result.to_dict(),
        metadata={
            **to_metadata(result.metadata),
            "document": dg.MetadataValue.path(result.document),
            "top_words": dg.MetadataValue.md(table_md(top)),
            "strip": png_md(paths["strip"], "word images coloured by score"),
            "score_json": dg.MetadataValue.path(str(paths["json"])),
            "strip_png": dg.MetadataValue.path(str(paths["strip"])),
        },
    )
