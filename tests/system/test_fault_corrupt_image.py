"""A word image that turns corrupt between ingest and training is skipped by the embedding
training and counted in ``arcface_model``'s metadata; the training still finishes.

Real Dagster (an ephemeral instance) runs the ingest stage on a copy of the synthetic data root;
then two images of train writers are damaged on disk (one truncated half-way, one overwritten
with text), and the embedding stage runs on the table ingest wrote before the damage.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from tests.conftest import PIPELINE_SYNTH
from tests.support.run_configs import ARCFACE_FAST
from wrmil_assets.resources import WrmilSettings
from wrmil_assets.run import STAGES, run_stages
from wrmil_core.data.split import words_of_split

pytestmark = pytest.mark.slow

BATCH = 32
# One epoch over every train image: no cap per epoch, so the damaged images are certainly drawn.
CONFIG = {"ops": {"arcface_model": {"config": {**ARCFACE_FAST, "epochs": 1, "batch_size": BATCH,
                                               "max_train_images_per_epoch": 1_000_000}}}}


def _stage(asset: str):
    return next(s for s in STAGES if asset in s.assets)


def test_png_corrupted_after_ingest_is_skipped_and_counted(synth_root, tmp_path):
    root = shutil.copytree(synth_root, tmp_path / "raw")
    art = tmp_path / "artifacts"
    settings = WrmilSettings(data_root=str(root), artifact_dir=str(art), device="cpu",
                             reps_per_session=PIPELINE_SYNTH.reps_per_session)
    with dg.DagsterInstance.ephemeral() as instance:
        run_stages(settings, run_config=CONFIG, stages=[_stage("raw_words")], instance=instance, log=lambda m: None)
        words = pl.read_parquet(art / "assets" / "raw_words.parquet")
        train = words_of_split(words, pl.read_parquet(art / "assets" / "writer_split.parquet"), "train")
        # drop_last batches: with a multiple of BATCH every image is drawn in the one epoch
        assert train.height % BATCH == 0, f"{train.height} train images: pick a BATCH that divides it"
        truncated, garbage = Path(train["path"][0]), Path(train["path"][train.height // 2])
        truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
        garbage.write_text("this is not a PNG any more\n")

        run_stages(settings, run_config=CONFIG, stages=[_stage("arcface_model")], instance=instance, log=lambda m: None)
        event = instance.get_latest_materialization_event(dg.AssetKey("arcface_model"))
    assert event is not None, "arcface_model was not materialised"
    metadata = event.asset_materialization.metadata
    assert metadata["skipped_images"].value == 2, metadata
