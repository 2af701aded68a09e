"""Jobs, their stages, the weekly retraining schedule, the raw-data sensor and the dead-run sweeper.

The one home of "which assets does each job materialise, in which order": ``JOB_STAGES``. The
Dagster jobs (UI, schedule, sensor), ``wrmil run``'s stage runner and the CLI's ``--job`` choices
all derive from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from wrmil_core.data.fingerprint import (files_fingerprint, is_partially_written, metadata_fingerprint,
                                         tree_partially_written)
from wrmil_core.data.pages_input import data_root_kind, page_root_files
from wrmil_core.errors import WrmilInputError
from wrmil_core.schema import SPLITS

from .partitions import fold_partition_keys
from .resources import WrmilSettings
from .run_health import sweep_dead_runs


@dataclass(frozen=True)
class Stage:
    """Assets materialised together in one run (``per_split``: one run per split partition;
    ``per_fold``: one run per writer-fold partition registered by ``cv_folds``)."""

    name: str
    assets: tuple[str, ...]
    per_split: bool = False
    per_fold: bool = False

    def partition_keys(self, instance: dg.DagsterInstance) -> tuple[str | None, ...]:
        """The partitions this stage runs once each (``(None,)``: one unpartitioned run). Read when
        the stage is reached: the fold partitions exist once ``cv_folds`` has run."""
        if self.per_split:
            return SPLITS
        return tuple(fold_partition_keys(instance)) if self.per_fold else (None,)

    @property
    def job_name(self) -> str:
        """The name of this stage's runs in the UI, e.g. ``stage_embedding_model``."""
        return "stage_" + re.sub(r"\W+", "_", self.name).strip("_")


INGEST_STAGE = Stage("ingest", ("raw_pages", "raw_words", "writer_split"))
EMBEDDING_STAGE = Stage("embedding model", ("arcface_model",))
SPLIT_STAGE = Stage("per-split tables", ("untrained_embeddings", "pixel_embeddings", "word_embeddings",
                                         "instance_windows", "bags_by_difficulty"), per_split=True)
MIL_STAGE = Stage("MIL models and report", ("mil_model", "difficulty_report"))
STAGES: tuple[Stage, ...] = (INGEST_STAGE, EMBEDDING_STAGE, SPLIT_STAGE, MIL_STAGE)
# Writer-fold cross-validation (assets/cv.py): not part of full_pipeline, it trains k times.
CV_STAGES: tuple[Stage, ...] = (Stage("writer folds", ("cv_folds",)), Stage("cv fold", ("cv_fold",), per_fold=True),
                                Stage("cv summary", ("cv_summary",)))

# Job name -> its stages, in order; descriptions for the UI.
JOB_STAGES: dict[str, tuple[Stage, ...]] = {
    "full_pipeline": STAGES,
    "ingest": (INGEST_STAGE,),
    "retrain": (EMBEDDING_STAGE, SPLIT_STAGE, MIL_STAGE),
    "retrain_mil": (MIL_STAGE,),
    "writer_cv": (INGEST_STAGE, *CV_STAGES),
}
JOB_DESCRIPTIONS: dict[str, str] = {
    "full_pipeline": "Everything, from raw data to the difficulty report.",
    "ingest": "Re-read the raw data and re-split the writers.",
    "retrain": "The embedding model and everything after it.",
    "retrain_mil": "The MIL models and the difficulty report only.",
    "writer_cv": "Writer-fold cross-validation: the embedding and detectors trained per fold, test figures "
                 "pooled over all writers (materialise cv_folds first, then backfill cv_fold over its folds).",
}


def job_selection(job: str) -> dg.AssetSelection:
    """Every asset of ``job``'s stages."""
    return dg.AssetSelection.assets(*(a for stage in JOB_STAGES[job] for a in stage.assets))


# Launched from the UI as a backfill over the three split partitions (the daemon orders the
# unpartitioned and per-split steps); `wrmil run` runs the same stages one run at a time.
PIPELINE_JOBS = {name: dg.define_asset_job(name, selection=job_selection(name), description=JOB_DESCRIPTIONS[name])
                 for name in JOB_STAGES}
full_pipeline, ingest_job, retrain, retrain_mil = (PIPELINE_JOBS[n] for n in ("full_pipeline", "ingest", "retrain",
                                                                              "retrain_mil"))

# Scoring a questioned document needs a document path, so it is never part of a pipeline job.
SCORING = dg.AssetSelection.groups("scoring")
CROSS_VALIDATION = dg.AssetSelection.groups("cross_validation")
score_document = dg.define_asset_job("score_document", selection=SCORING,
                                     description="Score one questioned document (set its path in the launchpad).")

JOBS = [*PIPELINE_JOBS.values(), score_document]

# Off by default: turn on in the UI (Automation -> weekly_retrain) or set default_status=RUNNING.
weekly_retrain = dg.ScheduleDefinition(
    name="weekly_retrain", job=retrain_mil, cron_schedule="0 3 * * 1",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Mondays 03:00: retrain the MIL models on the current bags and rebuild the report.",
)


@dg.sensor(job=ingest_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Re-ingests when the raw data changes: the metadata CSV's content for word crops, the "
                       "page images and pages.csv for page scans (cursor = the fingerprint).")
def raw_data_sensor(context: dg.SensorEvaluationContext, settings: WrmilSettings) -> dg.SensorResult | dg.SkipReason:
    """Request the ingest job (``raw_pages``, ``raw_words``, ``writer_split``) when the raw data changed.

    The data root is read as ``wrmil run`` reads it (:func:`~wrmil_core.data.pages_input.data_root_kind`):
    word crops are fingerprinted by their metadata CSV's content, page scans by the name, size and
    mtime of ``pages.csv`` and every page image. Data still being copied is left alone and looked at
    again on the next tick; the cursor holds the last fingerprint seen, so the same data never
    triggers twice.
    """
    try:
        state = _raw_data_state(settings)
    except WrmilInputError as e:  # a root holding neither layout: say why, look again next tick
        return dg.SkipReason(str(e))
    if isinstance(state, dg.SkipReason):
        return state
    fingerprint = state
    if fingerprint == context.cursor:
        return dg.SkipReason(f"raw data unchanged (fingerprint {fingerprint[:12]})")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=fingerprint, tags={"wrmil/metadata_fingerprint": fingerprint})],
        cursor=fingerprint,
    )


def _raw_data_state(settings: WrmilSettings) -> str | dg.SkipReason:
    """The raw data's fingerprint, or why this tick skips (nothing there yet, a copy under way)."""
    if data_root_kind(settings.data_root, settings.metadata_csv) == "pages":
        root = Path(settings.data_root).expanduser()
        files = page_root_files(root)
        if tree_partially_written(root, files):
            return dg.SkipReason(f"page scans in {root} are still being written; retrying on the next tick")
        return files_fingerprint(root, files)
    path = settings.metadata_path
    if not path.exists():
        return dg.SkipReason(f"no metadata file at {path}")
    if is_partially_written(path):
        return dg.SkipReason(f"{path} is still being written; retrying on the next tick")
    return metadata_fingerprint(path)


# On by default: runs launched from the UI (`dagster dev`, its daemon) get the same protection as
# `wrmil run` against a killed run that keeps its "training" slot forever.
@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Marks runs whose process is gone (kill -9, out of memory, power loss) as failed "
                       "and frees their concurrency slots.")
def dead_run_sweeper(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """Fail the instance's dead runs and free their pool slots; the skip reason says what it did."""
    notes = sweep_dead_runs(context.instance, log=context.log.info)
    return dg.SkipReason("; ".join(notes) if notes else "no dead runs")
