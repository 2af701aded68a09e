"""The latest materialised models: the one place that reads the model records the IO managers write.

The JSON IO manager (:mod:`wrmil_assets.io_managers`, base ``<artifact_dir>/assets``, see
``definitions.build_resources``) stores each model asset's record as ``<asset>.json``:

    arcface_model.json      {"model_dir": ..., "model_id": ..., ...}
    mil_model.json          {"models": {name: {"model_dir": ..., "val_auc": ..., ...}}, ...}
    difficulty_report.json  {"best_model": name, ...}  (helps choose the default MIL model)

The default model of ``wrmil score`` is the calibrated (``<model_dir>/calibration.json``) detector
whose class declares ``default`` (:func:`choose_model_name`).

``wrmil score`` reads them from disk (:func:`latest_models`); the ``questioned_document_score``
asset gets them as its inputs and picks from them with :func:`select_models`. The core
(``wrmil_core.scoring``) takes explicit model directories only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wrmil_core.errors import WrmilInputError

from .io_managers import io_base_dir, rebuild_hint

REPORT_JSON = ("report", "report.json")  # the report's own JSON: a fallback for the best model


def load_record(artifact_dir: str | Path, asset: str) -> dict[str, Any] | None:
    """The JSON record of ``asset`` (None when never materialised); refused when not valid JSON."""
    return _load_json(io_base_dir(artifact_dir) / f"{asset}.json", asset)


def report_record(artifact_dir: str | Path) -> dict[str, Any] | None:
    """The difficulty report's record, else the report's own JSON (None when neither exists)."""
    return (load_record(artifact_dir, "difficulty_report")
            or _load_json(Path(artifact_dir).joinpath(*REPORT_JSON), "difficulty_report"))


def _load_json(path: Path, asset: str) -> dict[str, Any] | None:
    """The JSON object at ``path`` written by ``asset`` (None when absent); refused when unreadable."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (ValueError, OSError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise WrmilInputError(f"{path} is not valid JSON ({e}); {rebuild_hint(asset, None)}") from e
    if not isinstance(record, dict):
        raise WrmilInputError(f"{path} holds a JSON {type(record).__name__}, not a record; "
                              f"{rebuild_hint(asset, None)}")
    return record


def choose_model_name(mil_record: dict[str, Any], report: dict[str, Any] | None = None,
                      name: str | None = None) -> str:
    """The MIL model to use: ``name``, else the calibrated default detector (class attribute
    ``default``: ``fused``, which fuses every word-level statistic over every geometry, so no data-
    dependent rule picks a detector that misleads on the geometry a case happens to have). Records
    from before it existed fall back, among the calibrated whole-document detectors (valid at any
    length), to the report's best model, else the best val AUC.
    No calibrated model at all is refused in one line (materialised before calibrated scoring)."""
    from wrmil_core.mil.registry import is_default, scores_whole
    from wrmil_core.scoring.calibrated import REMATERIALISE

    models = mil_record.get("models", {})
    if not models:
        raise WrmilInputError("the mil_model record lists no models; materialise mil_model first (`wrmil run`)")
    if name:
        if name not in models:
            raise WrmilInputError(f"MIL model {name!r} is not among the trained models {sorted(models)}")
        return name
    calibrated = [n for n, m in models.items() if _calibrated(m)]
    if not calibrated:
        raise WrmilInputError(f"no materialised MIL model has calibration.json (they were materialised before "
                              f"calibrated scoring); {REMATERIALISE}")
    default = [n for n in calibrated if is_default(n)]
    if default:
        return default[0]
    best = (report or {}).get("best_model")
    pool = [n for n in calibrated if scores_whole(n)] or calibrated
    if best in pool:
        return best
    return max(pool, key=lambda n: (models[n].get("val_auc") is not None, models[n].get("val_auc") or 0.0))


def _calibrated(entry: dict[str, Any]) -> bool:
    """Does a mil_model record entry's directory hold ``calibration.json``?"""
    from wrmil_core.evidence import EVIDENCE_FILE

    return bool(entry.get("model_dir")) and (Path(entry["model_dir"]) / EVIDENCE_FILE).is_file()


def select_models(arcface_record: dict[str, Any] | None, mil_record: dict[str, Any],
                  report: dict[str, Any] | None = None, model_name: str | None = None) -> tuple[Path, Path]:
    """``(embedding_model_dir, mil_model_dir)`` named by the records (see :func:`choose_model_name`)."""
    return (_existing(_embedding_dir(arcface_record, "the arcface_model record"), "embedding model"),
            _existing(_mil_dir(mil_record, report, model_name), "MIL model"))


def latest_models(artifact_dir: str | Path | None = None, model_name: str | None = None,
                  embedding_model_dir: str | Path | None = None,
                  mil_model_dir: str | Path | None = None) -> tuple[Path, Path]:
    """``(embedding_model_dir, mil_model_dir)`` for ``wrmil score``: explicit directories win, else
    the latest materialised models recorded under ``<artifact_dir>/assets``."""
    if mil_model_dir is not None and model_name:
        raise WrmilInputError("give either --model NAME (a trained model) or --mil-model DIR, not both")
    if mil_model_dir is None:
        if not artifact_dir:
            raise WrmilInputError("no MIL model: pass --mil-model DIR or --artifact-dir with materialised models")
        mil_record = load_record(artifact_dir, "mil_model")
        if mil_record is None:
            raise WrmilInputError(f"no materialised MIL models under {io_base_dir(artifact_dir)} (mil_model.json "
                                  "missing); run `wrmil run` first, or pass --mil-model DIR and --embedding-model DIR")
        mil_model_dir = _mil_dir(mil_record, report_record(artifact_dir), model_name)
    if embedding_model_dir is None:
        if artifact_dir:
            record = load_record(artifact_dir, "arcface_model")
            where = str(io_base_dir(artifact_dir) / "arcface_model.json")
        else:
            record, where = None, "the arcface_model record (no --artifact-dir given)"
        embedding_model_dir = _embedding_dir(record, where)
    return _existing(embedding_model_dir, "embedding model"), _existing(mil_model_dir, "MIL model")


def _embedding_dir(arcface_record: dict[str, Any] | None, where: str) -> str:
    """The embedding model directory an arcface_model record names; ``where`` says which record."""
    if not arcface_record or not arcface_record.get("model_dir"):
        raise WrmilInputError(f"no embedding model: {where} is missing or names no model_dir; materialise "
                              "arcface_model (`wrmil run`), or pass --embedding-model DIR")
    return arcface_record["model_dir"]


def _mil_dir(mil_record: dict[str, Any], report: dict[str, Any] | None, model_name: str | None) -> str:
    """The directory of the chosen MIL model of a mil_model record."""
    return mil_record["models"][choose_model_name(mil_record, report, model_name)]["model_dir"]


def _existing(directory: str | Path, what: str) -> Path:
    """``directory`` as a Path, refused when it is not an existing folder."""
    if not Path(directory).is_dir():
        raise WrmilInputError(f"{what} directory {directory} does not exist; re-materialise it or pass another path")
    return Path(directory)
