"""Stage 3 and report: MIL detectors trained on train/val bags, evaluated per difficulty on test bags."""

import dagster as dg
import polars as pl

from wrmil_core.bags.tensors import gather_bags
from wrmil_core.evidence.fit import bag_writers, fit_detectors, results_metadata
from wrmil_core.evidence.scored import score_saved_models
from wrmil_core.mil.config import PRESETS, MILConfig
from wrmil_core.report import (
    build_report,
    check_beats_distance,
    evaluate_compare,
    evaluate_controls,
    evaluate_length,
    forensic_text,
)
from wrmil_core.report.compare import compare_table
from wrmil_core.report.forensic import best_training_free

from ..config import preset_config_class, resolve
from ..metadata import check_result, png_md, to_metadata
from ..partitions import TEST_ONLY, TRAIN_VAL
from ..resources import WrmilSettings, default_preset

MilConfig = preset_config_class("MilConfig", MILConfig, PRESETS, default_preset(), exclude=("hparams",))


def _by_split(value, split: str):
    """A SpecificPartitionsPartitionMapping input: dict keyed by partition (bare value for one)."""
    return value[split] if isinstance(value, dict) and split in value else value


@dg.asset(
    group_name="mil", io_manager_key="json_io", kinds={"pytorch"}, pool="training",
    ins={"bags_by_difficulty": dg.AssetIn(partition_mapping=TRAIN_VAL),
         "word_embeddings": dg.AssetIn(partition_mapping=TRAIN_VAL)},
    check_specs=[dg.AssetCheckSpec("beats_distance_baseline", asset="mil_model",
                                   description="Warns when no learned model beats the best training-free detector on val.")],
)
def mil_model(context: dg.AssetExecutionContext, config: MilConfig, settings: WrmilSettings,
              bags_by_difficulty: dict, word_embeddings: dict):
    """Every MIL detector (abmil baseline, gated, set models, training-free ones), thresholds fixed on val,
    and each detector's evidence (score -> log10 LR calibration, 1%/5%-FPR thresholds) fitted on val."""
    cfg = resolve(config, MILConfig, PRESETS, device=settings.device)
    # every detector, then wrmil score's calibration per document length on the validation writers'
    # documents (never test writers): the same call as each writer fold's (wrmil_core/cv/fold.py)
    fitted = fit_detectors(_by_split(bags_by_difficulty, "train"), _by_split(word_embeddings, "train"),
                           _by_split(bags_by_difficulty, "val"), _by_split(word_embeddings, "val"), cfg,
                           settings.artifact_path("mil"), device=settings.device, log=context.log.info)
    results, train, val = fitted.results, fitted.train, fitted.val
    ref = {"embedding_model_id": train.model_id,
           "models": {n: {"model_dir": str(r.model_dir), "model_id": r.model_id, "val_auc": r.val_auc,
                          "thresholds": r.thresholds,
                          "evidence_thresholds": r.evidence.thresholds if r.evidence else None}
                      for n, r in results.items()}}
    yield dg.Output(ref, metadata={"n_train_bags": len(train), "n_val_bags": len(val),
                                   "n_val_writers": fitted.val_writers,
                                   "embedding_model_id": train.model_id, **to_metadata(results_metadata(results))})
    val_auc = {n: r.val_auc for n, r in results.items()}
    # the learned models' baseline: the best training-free detector on val (distance when it is the only one)
    passed, meta = check_beats_distance(val_auc, baseline=best_training_free(val_auc) or "distance")
    yield check_result("beats_distance_baseline", passed, meta, asset="mil_model",
                       severity=dg.AssetCheckSeverity.WARN)


@dg.asset(
    group_name="mil", io_manager_key="json_io", kinds={"html"},
    ins={name: dg.AssetIn(partition_mapping=TEST_ONLY)
         for name in ("bags_by_difficulty", "word_embeddings", "untrained_embeddings", "pixel_embeddings")},
    check_specs=[dg.AssetCheckSpec("never_misleading", asset="difficulty_report",
                                   description="Warns when the default detector's test AUC, in any geometry x difficulty "
                                               "cell, is not above 0.5 or is more than 0.02 below the best single "
                                               "detector there.")],
)
def difficulty_report(context: dg.AssetExecutionContext, settings: WrmilSettings, mil_model: dict, bags_by_difficulty,
                      word_embeddings, untrained_embeddings, pixel_embeddings):
    """Per-difficulty detection quality of every model on the unseen test writers (HTML, Markdown, JSON):
    calibrated log10 LRs in the forensic convention (Cllr, misleading evidence, Tippett, reliability,
    detection at the val 1%/5%-FPR thresholds) per difficulty, geometry and overall, detection against
    document length, the two-document comparison (`wrmil compare`) per words per side, and the shortcut controls: the distance detector and verification with the
    untrained network and raw pixels beside the trained embedding, on the same test bags and words."""
    bags, emb = _by_split(bags_by_difficulty, "test"), _by_split(word_embeddings, "test")
    test = gather_bags(bags, emb)
    dirs = {n: m["model_dir"] for n, m in mil_model["models"].items()}
    scored, val_auc = score_saved_models(dirs, test, device=settings.device)
    tables = {"trained": emb, "untrained": _by_split(untrained_embeddings, "test"),
              "pixels": _by_split(pixel_embeddings, "test")}
    controls = evaluate_controls(bags, tables)
    fpr5 = {n: s.evidence.thresholds["fpr_5"] for n, s in scored.items() if s.evidence is not None}
    lengths = evaluate_length(dirs, fpr5, emb, device=settings.device)
    comparison = evaluate_compare(dirs, emb, device=settings.device)
    report = build_report(scored, test, settings.artifact_path("report"), val_auc=val_auc, shortcuts=controls,
                          writers=bag_writers(bags), length_rows=lengths, compare_rows=comparison)
    context.log.info(f"report written to {report.paths['html']}")
    for cell in report.failing_cells:
        context.log.warning(f"never-misleading check: {cell.describe()}")
    yield dg.Output(
        {"paths": {k: str(v) for k, v in report.paths.items()}, "best_model": report.best_model,
         "headline_model": report.headline_model, "headline": report.headline},
        metadata={**_forensic_metadata(report),
                  "per_difficulty": dg.MetadataValue.md(report.markdown_table),
                  "best_model": report.best_model, "headline_model": report.headline_model or "n/a",
                  "report_html": dg.MetadataValue.path(str(report.paths["html"])),
                  "main_plot": png_md(report.main_plot_png, "detection rate vs contamination"),
                  "shortcut_controls": dg.MetadataValue.md(report.shortcut_table),
                  **({"comparison": dg.MetadataValue.md(compare_table(comparison))} if comparison else {}),
                  "n_test_bags": len(test), **to_metadata(report.headline), **to_metadata(controls.headline)},
    )
    cells = report.checks or []
    yield check_result("never_misleading", not report.failing_cells,
                       {"cells": len(cells), "failing": len(report.failing_cells),
                        "failing_cells": "; ".join(c.describe() for c in report.failing_cells) or "none"},
                       asset="difficulty_report", severity=dg.AssetCheckSeverity.WARN)


def _forensic_metadata(report) -> dict:
    """The forensic section in the asset's metadata: overall table, baseline verdict, plots, writers."""
    fe = report.forensic
    if fe is None or not fe.models:
        return {}
    md = {"forensic_overall": dg.MetadataValue.md(forensic_text.group_table(fe, "overall")),
          "forensic_verdict": dg.MetadataValue.text(forensic_text.comparison(fe)),
          "n_test_writers": fe.n_writers, "few_data": fe.few_data,
          "tippett_plot": png_md(report.paths["tippett_plot"], "Tippett plots")}
    return {k: v for k, v in md.items() if v is not None}
