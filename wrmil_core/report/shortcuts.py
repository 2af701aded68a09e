"""Shortcut controls in the report: the trained embedding against the baselines it has to beat.

On the test writers, for the trained embedding and each baseline of
:mod:`wrmil_core.embedding.baselines` (the untrained network, raw pixels):

* the training-free ``distance`` detector's AUC per difficulty, genuine vs contaminated bags, on
  the very same bags (bags store word ids, so one bag table serves every embedding of its words),
  with the report's stratified bootstrap CI;
* word-pair verification and retrieval with writer-bootstrap CIs
  (:func:`~wrmil_core.embedding.evaluate.embedding_quality`).

When the raw-pixel rows come close to the trained ones, a capture or scanner shortcut (each
writer's pages scanned apart: paper, ink tone, letterboxing) could explain the detection.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl

from wrmil_core.bags.layout import single_model_id
from wrmil_core.bags.tensors import BagTensors, gather_bags
from wrmil_core.detectors.distance import DistanceMIL
from wrmil_core.detectors.run import score_bags
from wrmil_core.embedding.baselines import BASELINES, baseline_model_id, quality_by_embedding
from wrmil_core.errors import WrmilInputError
from wrmil_core.metrics import bootstrap_auc_ci, roc_auc
from wrmil_core.report.evaluate import pct_label, ratio_mask, ratios_present

TRAINED = "trained"
CONTROLS: tuple[str, ...] = (TRAINED, *BASELINES)
LABELS = {TRAINED: "trained embedding", "untrained": "untrained network", "pixels": "raw pixels"}
VERIFICATION_KEYS = ("auc", "eer", "tar_far_1e-2", "tar_far_1e-3", "top1", "map")


def gather_baseline_bags(bags: pl.DataFrame, baseline_emb: pl.DataFrame, baseline: str) -> BagTensors:
    """The bags gathered with ``baseline``'s vectors instead of the trained embedding's.

    The one sanctioned way to gather bags against another model than the one they were built
    from (``gather_bags`` refuses that, and still does): the baseline table must be ``baseline``'s
    table *for the model the bags were built against*, i.e. its ``model_id`` is
    ``baseline_model_id(baseline, <the bags' model_id>)``. A baseline of an older or other model is
    refused (``WrmilInputError``) as a stale trained table would be. The returned ``model_id`` is
    the baseline's.
    """
    split = bags["split"][0] if "split" in bags.columns and bags.height else "<split>"
    bag_model = single_model_id(bags, f"bags of split {split!r}")
    have = single_model_id(baseline_emb, f"{baseline} embeddings of split {split!r}")
    want = baseline_model_id(baseline, bag_model or "")
    if have != want:
        raise WrmilInputError(
            f"the {baseline} embeddings of split {split!r} are from {have!r}, but the bags were built against "
            f"model {bag_model!r} (want {want!r}): one of them is stale. Re-materialise {baseline}_embeddings"
            f"[{split}] (and word_embeddings, instance_windows, bags_by_difficulty [{split}]) from the current "
            "arcface_model.")
    return gather_bags(bags.with_columns(pl.lit(want).alias("model_id")), baseline_emb)


@dataclass(frozen=True)
class ControlRow:
    """The distance detector with one embedding at one difficulty: AUC of genuine vs these bags."""

    embedding: str
    ratio: float
    n_bags: int
    auc: float | None
    auc_lo: float | None
    auc_hi: float | None


@dataclass(frozen=True)
class ShortcutControls:
    """Every number of the report's shortcut-control section."""

    embeddings: list[str]  # TRAINED first, then the baselines
    difficulties: list[float]
    detection: list[ControlRow]  # per embedding, one row per difficulty
    verification: dict[str, dict[str, Any]]  # embedding -> embedding_quality figures on the test words
    n_boot: int

    def detection_auc(self, embedding: str, ratio: float) -> float | None:
        """Distance-detector AUC with ``embedding`` at difficulty ``ratio`` (None when n/a)."""
        return next((r.auc for r in self.detection if r.embedding == embedding and r.ratio == ratio), None)

    def mean_detection_auc(self, embedding: str) -> float | None:
        """Mean distance-detector AUC over the difficulties (None when none is defined)."""
        vals = [r.auc for r in self.detection if r.embedding == embedding and r.auc is not None]
        return float(np.mean(vals)) if vals else None

    def margin_over(self, baseline: str) -> dict[str, float | None]:
        """The trained embedding minus ``baseline``: verification AUC and mean distance-detector AUC."""
        ver = [self.verification[e].get("auc") for e in (TRAINED, baseline)]
        det = [self.mean_detection_auc(e) for e in (TRAINED, baseline)]
        return {"verification_auc": None if None in ver else float(ver[0] - ver[1]),  # type: ignore[operator]
                "distance_mean_auc": None if None in det else float(det[0] - det[1])}  # type: ignore[operator]

    @property
    def headline(self) -> dict[str, float]:
        """Flat ``shortcut/<embedding>/<figure>`` numbers for asset metadata (n/a left out)."""
        out: dict[str, float] = {}
        for r in self.detection:
            for key in ("auc", "auc_lo", "auc_hi"):
                if getattr(r, key) is not None:
                    out[f"shortcut/{r.embedding}/distance_{key}_{pct_label(r.ratio)}"] = float(getattr(r, key))
        for e in self.embeddings:
            if (m := self.mean_detection_auc(e)) is not None:
                out[f"shortcut/{e}/distance_mean_auc"] = m
            q = self.verification[e]
            for key in VERIFICATION_KEYS:
                for k in (key, f"{key}_lo", f"{key}_hi"):
                    if q.get(k) is not None:
                        out[f"shortcut/{e}/verification_{k}"] = float(q[k])
        for b in self.embeddings[1:]:
            out.update({f"shortcut/margin_over_{b}/{k}": v for k, v in self.margin_over(b).items() if v is not None})
        return out

    def as_dict(self) -> dict[str, Any]:
        """The section as written to report.json."""
        return {"embeddings": self.embeddings, "difficulties": self.difficulties, "n_boot": self.n_boot,
                "detection": [asdict(r) for r in self.detection], "verification": self.verification,
                "mean_detection_auc": {e: self.mean_detection_auc(e) for e in self.embeddings}}


def evaluate_controls(bags: pl.DataFrame, tables: Mapping[str, pl.DataFrame], n_boot: int = 1000, seed: int = 0,
                      verify_boot: int = 200, n_pairs: int = 20000, n_queries: int = 1000) -> ShortcutControls:
    """Distance-detector AUC per difficulty and verification, per embedding (see the module docstring).

    ``bags``: the test bag table (built against the trained embedding); ``tables``: the test words'
    embeddings table of ``TRAINED`` and of any baselines. Bag CIs as in the report (``n_boot``
    stratified resamples), verification CIs from ``verify_boot`` writer resamples.
    """
    if TRAINED not in tables:
        raise ValueError(f"need the {TRAINED!r} embeddings table among {sorted(tables)}")
    names = [e for e in CONTROLS if e in tables] + sorted(set(tables) - set(CONTROLS))
    y = bags["label"].cast(pl.Int64).to_numpy()
    ratio = bags["ratio"].cast(pl.Float64).to_numpy()
    difficulties = ratios_present(ratio)
    rows = []
    for e in names:
        probs = distance_probs(bags, tables[e], e)
        for r in difficulties:
            sel = (y == 0) | ((y == 1) & ratio_mask(ratio, r))
            ci = bootstrap_auc_ci(y[sel], probs[sel], n_boot=n_boot, seed=seed)
            rows.append(ControlRow(embedding=e, ratio=r, n_bags=int((sel & (y == 1)).sum()),
                                   auc=roc_auc(y[sel], probs[sel]), auc_lo=ci[0] if ci else None,
                                   auc_hi=ci[1] if ci else None))
    verification = quality_by_embedding({e: tables[e] for e in names}, n_pairs, n_queries, seed, verify_boot)
    return ShortcutControls(embeddings=names, difficulties=difficulties, detection=rows, verification=verification,
                            n_boot=n_boot)


def distance_probs(bags: pl.DataFrame, table: pl.DataFrame, embedding: str, chunk: int = 256) -> np.ndarray:
    """The training-free distance detector's bag scores with ``embedding``'s vectors.

    Gathered ``chunk`` bags at a time: raw pixels have 1,024 dimensions, and all bags at once
    could fill the memory. ``TRAINED`` goes through ``gather_bags``, a baseline through
    :func:`gather_baseline_bags`.
    """
    probs = [np.zeros(0)]
    for start in range(0, bags.height, chunk):
        part = bags.slice(start, chunk)
        gathered = gather_bags(part, table) if embedding == TRAINED else gather_baseline_bags(part, table, embedding)
        probs.append(score_bags(DistanceMIL(int(gathered.x.shape[-1])), gathered)[0])
    return np.concatenate(probs)
