"""One writer fold: the whole chain on the fold's split, written under the fold's directory.

The steps are the main pipeline's, through the core functions its assets call: ``fit_embedding``
(``arcface_model``: the setup's embedding method), ``embed_words`` (``word_embeddings``),
``embed_baselines`` (the shortcut controls; test words only here), ``windows_for`` + ``build_bags``
(``instance_windows``, ``bags_by_difficulty``), ``fit_detectors`` (``mil_model``: the detectors and
their length calibrations) and ``score_saved_models`` (``difficulty_report``). A fold's directory
``<root>/<key>`` holds:

    arcface/                          method arcface: embedding weights (safetensors + config.json), checkpoint, curve
    classical/model/, frozen/model/   methods classical and frozen: the fitted embedding (same model format)
    embeddings/<split>.parquet        the trained embedding of every word of each split
    embeddings/test_<control>.parquet the untrained network and raw pixels on the test words
    windows/<split>.parquet, bags/<split>.parquet
    mil/<model>/                      each detector's weights, config, thresholds, evidence and length calibration
    test_scores.parquet               one row per (test bag, model): writers, document, label, ratio, probability
    result.json                       the fold's record, written last: its presence means the fold is done

``key`` is a content hash of the fold's words, writer split and configs: a rerun with the same key
returns the saved record without recomputing anything; a fold that died part-way resumes its
embedding training from the last checkpoint and redoes the (quick) rest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from wrmil_core.bags.build import build_bags
from wrmil_core.bags.config import BagConfig
from wrmil_core.bags.tensors import BagTensors, gather_bags
from wrmil_core.bags.windows import windows_for
from wrmil_core.cv.pool import detection_rows
from wrmil_core.data.split import split_metadata, split_summary, words_of_split
from wrmil_core.embedding.baselines import embed_baselines, quality_by_embedding
from wrmil_core.embedding.config import EmbeddingConfig
from wrmil_core.embedding.fit import fit_embedding
from wrmil_core.embedding.model_quality import multiword_of_table
from wrmil_core.embedding.models import embed_words
from wrmil_core.errors import WrmilInputError
from wrmil_core.evidence.fit import fit_detectors
from wrmil_core.evidence.scored import ModelScores, score_saved_models
from wrmil_core.mil.config import MILConfig
from wrmil_core.runtime import Log, speaker
from wrmil_core.schema import SPLITS

RESULT_FILE = "result.json"
SCORES_FILE = "test_scores.parquet"
CONTROLS: tuple[str, ...] = ("untrained", "pixels")
# Where and how fast a stage runs, not what it computes: left out of the fold's key, so a fold
# finished on a GPU is not redone on a CPU.
PLACEMENT_FIELDS: frozenset[str] = frozenset({"device", "num_workers", "cpu_threads"})


@dataclass(frozen=True)
class FoldSetup:
    """What every fold trains with: the stages' configs (the embedding's names its method, as
    ``arcface_model``'s does), and the sample sizes of the embedding's quality figures (word pairs,
    retrieval queries, writer-bootstrap replicates)."""

    embedding: EmbeddingConfig
    bags: BagConfig
    mil: MILConfig
    quality_pairs: int = 20000
    quality_queries: int = 1000
    quality_boot: int = 200

    def __post_init__(self) -> None:
        for name in ("quality_pairs", "quality_queries"):
            if getattr(self, name) < 2:
                raise WrmilInputError(f"FoldSetup {name}={getattr(self, name)!r}: must be at least 2")
        if self.quality_boot < 0:
            raise WrmilInputError(f"FoldSetup quality_boot={self.quality_boot!r}: must be >= 0 (0: no intervals)")

    def key_dict(self) -> dict[str, Any]:
        """The settings that change what a fold computes (placement fields left out), JSON-able."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                value = {k: v for k, v in dataclasses.asdict(value).items() if k not in PLACEMENT_FIELDS}
            out[f.name] = value
        return out


def require_bag_donors(folds: pl.DataFrame, min_writers: int = 2) -> None:
    """Refuse a fold table with a part of fewer than ``min_writers`` writers: every split's contaminated
    bags need a donor writer from the same split, so each part of each fold needs two writers."""
    sizes = folds.group_by("fold", "split").agg(pl.col("writer").n_unique().alias("n")).sort("fold", "split")
    small = sizes.filter(pl.col("n") < min_writers)
    if small.height:
        where = ", ".join(f"fold {f} {s}: {n}" for f, s, n in small.head(5).iter_rows())
        raise WrmilInputError(f"writer folds need at least {min_writers} writers in every part of every fold (bags "
                              f"draw a donor writer from the same part), got {where}; use fewer folds (k) or a "
                              "larger val_fraction, or add writers")


def fold_key(words: pl.DataFrame, split: pl.DataFrame, setup: FoldSetup) -> str:
    """12-hex content key of the fold's words (ids, writers, documents, order, paths), its writer
    split and ``setup``: the same key means the same computation."""
    h = hashlib.sha256(json.dumps(setup.key_dict(), sort_keys=True, default=str).encode())
    joined = words.join(split.select("writer", "split"), on="writer", how="inner").sort("word_id")
    for col in ("word_id", "writer", "doc_id", "position", "path", "split"):
        h.update(col.encode())
        h.update("\x1f".join(map(str, joined[col].to_list())).encode())
    return h.hexdigest()[:12]


def load_result(fold_dir: Path, key: str) -> dict[str, Any] | None:
    """The saved record of a finished fold with this ``key``, else None (absent, other key, unreadable)."""
    path = Path(fold_dir) / RESULT_FILE
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("key") == key else None


def _write_json(path: Path, record: dict[str, Any]) -> None:
    """Atomically (temporary sibling, then rename): a killed writer never leaves half a record."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True, default=str))
    tmp.replace(path)


def run_fold(words: pl.DataFrame, split: pl.DataFrame, setup: FoldSetup, root: str | Path, *, fold: str = "fold",
             device: str = "auto", num_workers: int = 0, log: Log = None) -> dict[str, Any]:
    """Train and evaluate one fold under ``root/<key>``; returns its record (``reused``: True when a
    finished record with the same key was returned without recomputing).

    The record holds the counts per split, the test writers, the embedding's quality figures on the
    test words (trained, untrained, pixels; writer-bootstrap CIs), each detector's test AUC per
    difficulty, and the paths of everything written (module docstring).
    """
    say = speaker(log)
    key = fold_key(words, split, setup)
    fold_dir = Path(root) / key
    done = load_result(fold_dir, key)
    if done is not None:
        say(f"{fold}: already finished (key {key}), reusing {fold_dir / RESULT_FILE}; nothing is retrained")
        return {**done, "reused": True}
    fold_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    parts = {s: words_of_split(words, split, s) for s in SPLITS}
    say(f"{fold}: " + ", ".join(f"{parts[s]['writer'].n_unique()} {s} writers" for s in SPLITS) + f" -> {fold_dir}")
    method = setup.embedding.method
    trained = fit_embedding(setup.embedding, parts["train"], parts["val"], fold_dir / method, resume=True, log=log,
                            num_workers=num_workers)
    tables = {s: _save(embed_words(trained.model_dir, parts[s], device=device, num_workers=num_workers, log=log),
                       fold_dir / "embeddings" / f"{s}.parquet") for s in SPLITS}
    controls = embed_baselines(trained.model_dir, parts["test"], device=device, num_workers=num_workers, log=log)
    for name, table in controls.items():
        _save(table, fold_dir / "embeddings" / f"test_{name}.parquet")
    quality = quality_by_embedding({"trained": tables["test"], **controls}, setup.quality_pairs,
                                   setup.quality_queries, seed=0, n_boot=setup.quality_boot)
    quality["trained"].update(multiword_of_table(tables["test"]))  # n test words of one doc vs another's
    scores, detectors = _detectors(tables, setup, fold_dir, device, log)
    record = {
        "fold": fold, "key": key, "fold_dir": str(fold_dir), "method": method, "model_id": trained.model_id,
        "model_dir": str(trained.model_dir), "epochs_run": trained.metadata["epochs_run"],
        "val_metrics": trained.train_result.val_metrics if trained.train_result else None,
        "counts": split_metadata(split_summary(words, split)),
        "test_writers": sorted(int(w) for w in parts["test"]["writer"].unique()),
        "embedding": quality, "detectors": detectors, "detection": detection_rows(scores, n_boot=0),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    _write_json(fold_dir / RESULT_FILE, record)
    say(f"{fold}: done in {record['seconds']:.0f} s; test verification AUC {quality['trained']['auc']:.3f}")
    return {**record, "reused": False}


def _save(table: pl.DataFrame, path: Path) -> pl.DataFrame:
    path.parent.mkdir(parents=True, exist_ok=True)
    table.write_parquet(path)
    return table


def _detectors(tables: dict[str, pl.DataFrame], setup: FoldSetup, fold_dir: Path, device: str,
               log: Log) -> tuple[pl.DataFrame, dict[str, dict[str, Any]]]:
    """Windows and bags of every split, the detectors trained on train/val bags (and calibrated per
    document length on the val words, as ``mil_model`` does), their test scores."""
    bags: dict[str, pl.DataFrame] = {}
    for s in SPLITS:
        windows = _save(windows_for(tables[s], setup.bags, log=log).windows, fold_dir / "windows" / f"{s}.parquet")
        bags[s] = _save(build_bags(tables[s], s, setup.bags, log=log, windows=windows).bags,
                        fold_dir / "bags" / f"{s}.parquet")
    fitted = fit_detectors(bags["train"], tables["train"], bags["val"], tables["val"], setup.mil, fold_dir / "mil",
                           device=device, log=log)
    results, test = fitted.results, gather_bags(bags["test"], tables["test"])
    scored, _ = score_saved_models({n: r.model_dir for n, r in results.items()}, test, device=device)
    scores = _save(score_table(bags["test"], test, scored), fold_dir / SCORES_FILE)
    detectors = {n: {"model_dir": str(r.model_dir), "model_id": r.model_id, "val_auc": r.val_auc,
                     "length_calibration": str(fitted.length_calibrations[n]) if n in fitted.length_calibrations
                     else None} for n, r in results.items()}
    return scores, detectors


def score_table(bags: pl.DataFrame, test: BagTensors, scored: dict[str, ModelScores]) -> pl.DataFrame:
    """One row per (bag, model): bag_id, doc_id, base_writer, donor_writer, donor_writer_2 and geometry
    (when the bags have them), label, ratio, model, prob.

    ``scored`` holds each model's scores of ``test`` (the gathered ``bags``, rows in ``test.bag_id`` order).
    """
    cols = [c for c in ("bag_id", "doc_id", "base_writer", "donor_writer", "donor_writer_2", "label", "ratio",
                         "geometry")
            if c in bags.columns]
    order = pl.DataFrame({"bag_id": test.bag_id.astype("int64"), "_row": list(range(len(test)))})
    info = order.join(bags.select(cols).with_columns(pl.col("bag_id").cast(pl.Int64)), on="bag_id", how="left")
    info = info.sort("_row").drop("_row")
    if info["label"].null_count():
        raise WrmilInputError("score_table: the scored bags are not rows of the bags table (stale bags?)")
    frames = [info.with_columns(pl.lit(name).alias("model"), pl.Series("prob", s.bag_probs, dtype=pl.Float64))
              for name, s in scored.items()]
    return pl.concat(frames).with_columns(pl.col("label").cast(pl.Int64), pl.col("ratio").cast(pl.Float64))
