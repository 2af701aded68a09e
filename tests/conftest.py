"""Shared fixtures: a small synthetic raw data root generated once per test session."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from wrmil_core import synth

# 10 writers -> 6/2/2 writers per split (every split has a donor); 2 sessions x 4 repetitions x 14
# words = 56-word documents, enough for one 50-word bag per document.
PIPELINE_SYNTH = dataclasses.replace(synth.TINY, n_writers=10, n_sessions=2, reps_per_session=4, workers=2)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated raw data root (``PIPELINE_SYNTH``), shared read-only by tests."""
    root = tmp_path_factory.mktemp("synth")
    synth.generate_dataset(root, PIPELINE_SYNTH)
    return root
