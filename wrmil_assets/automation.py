"""Jobs, the weekly retraining schedule and the raw-data sensor."""

from __future__ import annotations

import dagster as dg

from wrmil_core.data.fingerprint import is_partially_written, metadata_fingerprint

from .resources import WrmilSettings

# Scoring a questioned document needs a document path, so it is never part of a pipeline job.
SCORING = dg.AssetSelection.groups("scoring")
PIPELINE = dg.AssetSelection.all() - SCORING
INGEST = dg.AssetSelection.assets("raw_words", "writer_split")
RETRAIN = dg.AssetSelection.assets("arcface_model").downstream() - SCORING
RETRAIN_MIL = dg.AssetSelection.assets("mil_model", "difficulty_report")

# Launched from the UI as a backfill over the three split partitions (the daemon orders the
# unpartitioned and per-split steps); `wrmil run` runs the same selection stage by stage.
full_pipeline = dg.define_asset_job("full_pipeline", selection=PIPELINE,
                                    description="Everything, from raw data to the difficulty report.")
ingest_job = dg.define_asset_job("ingest", selection=INGEST,
                                 description="Re-read the raw data and re-split the writers.")
retrain = dg.define_asset_job("retrain", selection=RETRAIN,
                              description="The embedding model and everything after it.")
retrain_mil = dg.define_asset_job("retrain_mil", selection=RETRAIN_MIL,
                                  description="The MIL models and the difficulty report only.")

score_document = dg.define_asset_job("score_document", selection=SCORING,
                                     description="Score one questioned document (set its path in the launchpad).")

JOBS = [full_pipeline, ingest_job, retrain, retrain_mil, score_document]

# Off by default: turn on in the UI (Automation -> weekly_retrain) or set default_status=RUNNING.
weekly_retrain = dg.ScheduleDefinition(
    name="weekly_retrain", job=retrain_mil, cron_schedule="0 3 * * 1",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Mondays 03:00: retrain the MIL models on the current bags and rebuild the report.",
)


@dg.sensor(job=ingest_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Re-ingests when the metadata CSV's content changes (cursor = its fingerprint).")
def raw_data_sensor(context: dg.SensorEvaluationContext, settings: WrmilSettings) -> dg.SensorResult | dg.SkipReason:
    """Request ``raw_words`` + ``writer_split`` when the raw metadata file has new content.

    A file still being copied is left alone and looked at again on the next tick; the cursor holds
    the last fingerprint seen, so the same data never triggers twice.
    """
    path = settings.metadata_path
    if not path.exists():
        return dg.SkipReason(f"no metadata file at {path}")
    if is_partially_written(path):
        return dg.SkipReason(f"{path} is still being written; retrying on the next tick")
    fingerprint = metadata_fingerprint(path)
    if fingerprint == context.cursor:
        return dg.SkipReason(f"raw data unchanged (fingerprint {fingerprint[:12]})")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=fingerprint, tags={"wrmil/metadata_fingerprint": fingerprint})],
        cursor=fingerprint,
    )
