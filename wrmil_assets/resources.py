"""Resources configured in one place: where the data is, where artifacts go, which device.

Every field can be overridden by an environment variable (``WRMIL_DATA_ROOT``,
``WRMIL_ARTIFACT_DIR``, ``WRMIL_DEVICE``, ...), read when the definitions load, so the same
code base serves the synthetic demo and a user's own data set.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def default_data_root() -> str:
    return _env("WRMIL_DATA_ROOT", str(PROJECT_ROOT / "data" / "synthetic"))


def default_artifact_dir() -> str:
    return _env("WRMIL_ARTIFACT_DIR", str(PROJECT_ROOT / "data" / "artifacts"))


class WrmilSettings(dg.ConfigurableResource):
    """Data root, artifact directory and compute device shared by every asset."""

    data_root: str
    metadata_csv: str = "naver_ocr.csv"
    reps_per_session: int = 9
    artifact_dir: str
    device: str = "auto"
    num_workers: int = 0

    @classmethod
    def from_env(cls) -> "WrmilSettings":
        """Settings from ``WRMIL_*`` environment variables, with project-local defaults."""
        return cls(
            data_root=default_data_root(),
            metadata_csv=_env("WRMIL_METADATA_CSV", "naver_ocr.csv"),
            reps_per_session=int(_env("WRMIL_REPS_PER_SESSION", "9")),
            artifact_dir=default_artifact_dir(),
            device=_env("WRMIL_DEVICE", "auto"),
            num_workers=int(_env("WRMIL_NUM_WORKERS", "0")),
        )

    @property
    def metadata_path(self) -> Path:
        return Path(self.data_root) / self.metadata_csv

    def artifact_path(self, *parts: str) -> Path:
        """A directory under the artifact dir (created on demand)."""
        p = Path(self.artifact_dir).joinpath(*parts)
        p.mkdir(parents=True, exist_ok=True)
        return p


def default_preset() -> str:
    """Preset used by every stage's config unless the launchpad says otherwise (``WRMIL_PRESET``)."""
    return _env("WRMIL_PRESET", "demo")
