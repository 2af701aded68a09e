"""The report's never-misleading check: the default detector in every geometry x difficulty cell.

An examiner does not know in advance where foreign words sit, so the default detector must hold up
in every cell the test bags cover, not on average: in each cell (the genuine bags against the
contaminated bags of one geometry and one ratio) its AUC must be above 0.5 (it never gives evidence
for one writer where there are two) and at most :data:`MARGIN` below the best other detector there.
A failing cell is named in the report's first lines and printed by ``benchmarks/evidence_cv.py``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from wrmil_core.metrics import roc_auc

MARGIN = 0.02  # AUC the default may give up to the best single detector of a cell


@dataclass(frozen=True)
class CellCheck:
    """The default detector against the best other one in one geometry x ratio cell."""

    geometry: str
    ratio: float
    default_auc: float
    best_model: str
    best_auc: float
    margin: float = MARGIN

    @property
    def passed(self) -> bool:
        return self.default_auc > 0.5 and self.default_auc >= self.best_auc - self.margin

    def describe(self) -> str:
        """One line naming the cell and why it fails (or that it passes)."""
        where = f"{self.geometry} {self.ratio:.0%}"
        if self.default_auc <= 0.5:
            return f"{where}: AUC {self.default_auc:.3f} is not above 0.5 (evidence for one writer)"
        gap = self.best_auc - self.default_auc
        verdict = "ok" if self.passed else f"{gap:.3f} below {self.best_model}"
        return f"{where}: AUC {self.default_auc:.3f} vs best single {self.best_model} {self.best_auc:.3f} ({verdict})"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"passed": self.passed}


def check_cells(scores: dict[str, np.ndarray], label: np.ndarray, geometry: np.ndarray, ratio: np.ndarray,
                default: str, margin: float = MARGIN) -> list[CellCheck]:
    """Every geometry x ratio cell of the contaminated bags, in order; ``scores``: model -> (B,) bag scores
    (``default`` among them, and at least one other)."""
    others = [m for m in scores if m != default]
    if default not in scores or not others:
        raise ValueError(f"the check needs the default {default!r} and another detector, got {sorted(scores)}")
    label, geometry, ratio = np.asarray(label), np.asarray(geometry).astype(str), np.asarray(ratio)
    cells = sorted({(g, float(r)) for g, r in zip(geometry[label == 1], ratio[label == 1])})
    out = []
    for g, r in cells:
        keep = (label == 0) | ((geometry == g) & np.isclose(ratio, r))
        auc = {m: roc_auc(label[keep], scores[m][keep]) for m in scores}
        best = max(others, key=lambda m: auc[m])
        out.append(CellCheck(g, r, float(auc[default]), best, float(auc[best]), margin))
    return out


def failing(cells: list[CellCheck]) -> list[CellCheck]:
    """The cells that fail the check."""
    return [c for c in cells if not c.passed]


def check_report(scores: dict[str, np.ndarray], label: np.ndarray, geometry: np.ndarray, ratio: np.ndarray,
                 default: str | None) -> list[CellCheck]:
    """:func:`check_cells` when the default detector and another were evaluated, else no cells."""
    if default is None or default not in scores or len(scores) < 2 or not (np.asarray(label) == 1).any():
        return []
    return check_cells(scores, label, geometry, ratio, default)


def check_lines(cells: list[CellCheck]) -> list[str]:
    """The report's first lines: the verdict, then each failing cell by name."""
    if not cells:
        return []
    bad = failing(cells)
    head = (f"Never-misleading check of the default detector: {len(cells) - len(bad)} of {len(cells)} geometry x "
            f"difficulty cells pass (AUC above 0.5 and at most {MARGIN} below the best single detector)")
    return [head + ("." if not bad else "; FAILS in:")] + [f"FAILS {c.describe()}" for c in bad]


def check_table(cells: list[CellCheck]) -> str:
    """Markdown: one row per cell."""
    rows = ["| geometry | difficulty | default AUC | best single detector | its AUC | verdict |", "|---|---|---|---|---|---|"]
    rows += [f"| {c.geometry} | {c.ratio:.0%} | {c.default_auc:.3f} | {c.best_model} | {c.best_auc:.3f} | "
             f"{'pass' if c.passed else 'FAIL'} |" for c in cells]
    return "\n".join(rows)


__all__ = ["MARGIN", "CellCheck", "check_cells", "check_lines", "check_report", "check_table", "failing"]
