"""The report's comparison section: ``wrmil compare`` on the test writers' documents.

``wrmil compare QUESTIONED KNOWN`` answers "same writer or different writers?" with a log10 LR
calibrated on the VALIDATION writers' pairs of disjoint documents
(:mod:`wrmil_core.evidence.compare_calibration`). Here the same calibrators meet writers they have
never seen: each test writer's words in reading order are cut into disjoint documents of 10, 25
and 50 words, paired (same writer: two documents of one writer; different writers: documents of
two), scored in the default detector's two-covariance frame and calibrated at their own words per
side. Per size the section gives Cllr, Cllr_min, Cllr_cal, the rates of misleading evidence, the
pairs and writers behind them, and a Tippett plot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from wrmil_core.detectors.two_covariance import TwoCovariance
from wrmil_core.evidence.compare_calibration import (
    COMPARE_CALIBRATION_FILE,
    COMPARE_MODEL,
    CompareCalibration,
    load_compare_calibration,
    score_pairs,
)
from wrmil_core.evidence.figures import Panel, plot_panels, tippett
from wrmil_core.evidence.metrics import forensic_metrics
from wrmil_core.report.tables import fmt, markdown_table

HEADING = "Two-document comparison (`wrmil compare`) on test writers"
AXIS = "log$_{10}$ LR (H1: same writer vs H2: different writers)"


@dataclass(frozen=True)
class CompareRow:
    """Calibrated test pairs of ``words`` words per side: figures, and the LLRs behind the Tippett plot.

    ``log10_lr`` and ``same`` (1: one writer) per pair; ``figures``: Cllr, Cllr_min, Cllr_cal,
    ``rme_h1`` (same-writer pairs whose LR favours different writers), ``rme_h2`` (the converse).
    """

    words: int
    n_same: int
    n_different: int
    n_writers: int
    n_val_writers: int
    figures: dict[str, float | None]
    log10_lr: np.ndarray = field(repr=False)
    same: np.ndarray = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The figures and counts (not the per-pair LLRs), JSON-able."""
        return {"words_per_side": self.words, "n_same": self.n_same, "n_different": self.n_different,
                "n_writers": self.n_writers, "n_val_writers": self.n_val_writers, **self.figures}


def compare_rows(calibration: CompareCalibration, model: TwoCovariance, emb: pl.DataFrame,
                 seed: int = 0) -> list[CompareRow]:
    """Per calibrated size: ``emb``'s writers' pairs of disjoint documents, calibrated and measured
    (a size whose pairs lack one kind is left out)."""
    rows = []
    for n, calibrator in sorted(calibration.buckets.items()):
        p = score_pairs(emb, model, n, seed)
        if not (p.same.any() and (p.same == 0).any()):
            continue
        llr = calibrator.log10_lr(p.llr)
        rows.append(CompareRow(words=n, n_same=int(p.same.sum()), n_different=int((p.same == 0).sum()),
                               n_writers=p.n_writers, n_val_writers=calibration.n_writers,
                               figures=forensic_metrics(llr, p.same), log10_lr=llr, same=p.same))
    return rows


def evaluate_compare(model_dirs: Mapping[str, str | Path], emb: pl.DataFrame, device: str = "cpu") -> list[CompareRow]:
    """The comparison rows of the saved default detector on the test embeddings ``emb``; empty when it was
    not saved or has no ``compare_calibration.json`` (too few validation writers with documents)."""
    from wrmil_core.mil.registry import load_mil_model

    directory = model_dirs.get(COMPARE_MODEL)
    if directory is None or not (Path(directory) / COMPARE_CALIBRATION_FILE).is_file():
        return []
    model, cfg = load_mil_model(directory, device)
    calibration = load_compare_calibration(directory, cfg.get("model_id"))
    return compare_rows(calibration, model.cov.model(), emb)


def compare_table(rows: list[CompareRow]) -> str:
    """Markdown: per words per side, the pairs and writers, Cllr, Cllr_min, Cllr_cal and misleading rates."""
    head = ["words per side", "same / different pairs", "test writers", "Cllr", "Cllr_min", "Cllr_cal",
            "same-writer pairs misled", "different-writer pairs misled"]
    body = [[str(r.words), f"{r.n_same} / {r.n_different}", str(r.n_writers)]
            + [fmt(r.figures.get(k)) for k in ("cllr", "cllr_min", "cllr_cal", "rme_h1", "rme_h2")] for r in rows]
    return markdown_table(head, body)


def compare_intro(rows: list[CompareRow]) -> str:
    """What the comparison section shows, and the validation writers its calibration rests on."""
    return (f"`wrmil compare` calibrates its same-writer log10 LR on {rows[0].n_val_writers} validation writers' "
            "pairs of disjoint documents. Here each test writer's words, in reading order, are cut into disjoint "
            "documents of the words per side shown; same-writer pairs are two documents of one writer, "
            "different-writer pairs documents of two writers. A misled pair is a same-writer pair whose LR favours "
            "different writers, or the converse. Test writers were never seen by the embedding, the detector or "
            "the calibration.")


def compare_headline(rows: list[CompareRow]) -> dict[str, float]:
    """Flat ``compare/<figure>_<words>`` numbers for asset metadata (n/a left out)."""
    return {f"compare/{k}_{r.words}": float(v) for r in rows for k, v in r.figures.items() if v is not None}


def plot_compare_tippett(rows: list[CompareRow], path: Path) -> Path:
    """One Tippett panel per words per side: same-writer (H1) and different-writer (H2) pairs."""
    panels = [Panel(title=f"{r.words} words per side", h2=r.log10_lr[r.same == 0],
                    h1={"same writer": r.log10_lr[r.same == 1]}, h2_label="H2: different writers", xlabel=AXIS)
              for r in rows]
    return plot_panels(panels, tippett, path, "Comparison on test writers: share of LRs >= x")


__all__ = ["CompareRow", "compare_headline", "compare_intro", "compare_rows", "compare_table", "evaluate_compare",
           "plot_compare_tippett"]
