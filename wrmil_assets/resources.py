"""Resources configured in one place: where the data is, where artifacts go, which device.

Every field can be overridden by an environment variable (``WRMIL_DATA_ROOT``,
``WRMIL_ARTIFACT_DIR``, ``WRMIL_DEVICE``, ...), read when the definitions load, so the same
code base serves the synthetic demo and a user's own data set.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dagster as dg

from wrmil_core.schema import DEFAULT_METADATA_CSV, DEFAULT_REPS_PER_SESSION

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def default_data_root() -> str:
    """``WRMIL_DATA_ROOT``, else the synthetic set under ``data/synthetic``."""
    return _env("WRMIL_DATA_ROOT", str(PROJECT_ROOT / "data" / "synthetic"))


def default_artifact_dir() -> str:
    """``WRMIL_ARTIFACT_DIR``, else ``data/artifacts``."""
    return _env("WRMIL_ARTIFACT_DIR", str(PROJECT_ROOT / "data" / "artifacts"))


class WrmilSettings(dg.ConfigurableResource):
    """Data root, artifact directory and compute device shared by every asset."""

    data_root: str
    metadata_csv: str = DEFAULT_METADATA_CSV
    reps_per_session: int = DEFAULT_REPS_PER_SESSION
    artifact_dir: str
    device: str = "auto"
    num_workers: int = 0

    @classmethod
    def from_env(cls) -> "WrmilSettings":
        """Settings from ``WRMIL_*`` environment variables, with project-local defaults."""
        return cls(
            data_root=default_data_root(),
            metadata_csv=_env("WRMIL_METADATA_CSV", DEFAULT_METADATA_CSV),
            reps_per_session=int(_env("WRMIL_REPS_PER_SESSION", str(DEFAULT_REPS_PER_SESSION))),
            artifact_dir=default_artifact_dir(),
            device=_env("WRMIL_DEVICE", "auto"),
            num_workers=int(_env("WRMIL_NUM_WORKERS", "0")),
        )

    def replace(self, **changes: Any) -> "WrmilSettings":
        """A new settings resource with ``changes`` applied.

        Never ``model_copy(update=...)``: Dagster builds a resource again from the config it was
        constructed with, so a copied object's changes would silently not reach the assets.
        """
        return type(self)(**{**self.model_dump(), **changes})

    @property
    def metadata_path(self) -> Path:
        """The metadata CSV under the data root."""
        return Path(self.data_root) / self.metadata_csv

    def artifact_path(self, *parts: str) -> Path:
        """A directory under the artifact dir (created on demand)."""
        p = Path(self.artifact_dir).joinpath(*parts)
        p.mkdir(parents=True, exist_ok=True)
        return p


# The default preset per kind of data (docs/configuration.md, "Presets and configuration"): the synthetic demo set
# keeps the preset tuned on it; a user's own handwriting gets the real-data CPU recipe.
SYNTHETIC_PRESET = "demo"
OWN_DATA_PRESET = "cpu"


def is_synthetic_root(data_root: str | Path) -> bool:
    """True for a generated synthetic set: ``data_root`` holds the generator's ``synth_config.json``,
    or is the default location ``data/synthetic`` (generated there on first use)."""
    from wrmil_core.synth.dataset import CONFIG_FILE  # the generator's own marker file

    root = Path(data_root).resolve()
    return (root / CONFIG_FILE).is_file() or root == (PROJECT_ROOT / "data" / "synthetic").resolve()


def preset_choice(data_root: str | Path | None = None, explicit: str | None = None) -> tuple[str, str]:
    """``(preset, why)``: ``explicit`` (``--preset``) wins, then ``WRMIL_PRESET``, then the data decide:
    ``demo`` for a generated synthetic set, ``cpu`` for a user's own data (``data_root`` default:
    ``WRMIL_DATA_ROOT``, else ``data/synthetic``)."""
    if explicit:
        return explicit, "--preset"
    if os.environ.get("WRMIL_PRESET"):
        return os.environ["WRMIL_PRESET"], "WRMIL_PRESET"
    root = Path(data_root or default_data_root())
    if is_synthetic_root(root):
        return SYNTHETIC_PRESET, f"the default for the synthetic set in {root}"
    return OWN_DATA_PRESET, (f"the default for your own data in {root}: the real-data CPU recipe; "
                             "--preset gpu on a GPU")


def default_preset() -> str:
    """Preset every stage's launchpad config starts from: :func:`preset_choice` for ``WRMIL_DATA_ROOT``."""
    return preset_choice()[0]
