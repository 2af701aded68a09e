"""Compare two documents: was the questioned document written by the writer of the known writings?

``wrmil compare QUESTIONED KNOWN [KNOWN ...]`` embeds every document's words as ``wrmil score``
does (a folder of word images, a page image or a PDF/TIFF; :func:`document_embedding`), pools the
known documents' words into one set ``K`` and scores the questioned words ``Q`` against it with the
two-covariance same-writer log LR (:func:`wrmil_core.detectors.two_covariance.same_writer_llr`) in
the default detector's (``fused``) fitted frame. That raw LLR is calibrated on validation writers'
pairs of disjoint runs (:mod:`wrmil_core.evidence.compare_calibration`) at the words per side nearest
the pair's, and reported as log10 LR of H1 "same writer" against H2 "different writers" on the
ENFSI verbal scale (:mod:`.verbal`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wrmil_core.data.multipage import DEFAULT_DPI
from wrmil_core.detectors.two_covariance import same_writer_llr
from wrmil_core.errors import WrmilInputError
from wrmil_core.evidence.compare_calibration import (
    COMPARE_MODEL,
    CompareCalibration,
    effective_words,
    load_compare_calibration,
)
from wrmil_core.runtime import Log, speaker
from wrmil_core.scoring.document import list_document_images
from wrmil_core.scoring.page import cut_scan, is_page_path
from wrmil_core.scoring.score import ScoringModels, embed_images, load_scoring_models, read_model_pair
from wrmil_core.scoring.verbal import SCALE_SOURCE, format_lr, strength

SAME, DIFFERENT = "same writer", "different writers"  # H1, H2
MIN_WORDS = 5  # fewest words a side needs: below that the evidence is the calibration's floor, not the writing's
COMPARE_FILE = "compare.json"


@dataclass
class Comparison:
    """The result of one comparison (module docstring); ``log10_lr``: H1 same writer vs H2 different writers."""

    questioned: str
    known: list[str]
    n_questioned: int
    n_known: int
    llr_raw: float          # natural log of the uncalibrated two-covariance LR
    log10_lr: float
    verbal: str
    calibration: dict[str, Any]
    mil_model_dir: str
    embedding_model_dir: str
    outputs: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Every field, with the hypotheses and the verbal scale named."""
        return {**asdict(self), "hypotheses": {"H1": SAME, "H2": DIFFERENT}, "verbal_scale": SCALE_SOURCE}

    def summary(self) -> str:
        """The lines ``wrmil compare`` prints."""
        c = self.calibration
        return "\n".join([
            f"questioned: {self.questioned} ({self.n_questioned} words)",
            f"known:      {', '.join(self.known)} ({self.n_known} words)",
            f"log10 LR = {self.log10_lr:+.2f} ({format_lr(self.log10_lr)}), H1 {SAME} vs H2 {DIFFERENT}: {self.verbal}",
            f"calibration: validation pairs of {c['words_per_side']} words per side (nearest the pair's "
            f"{c['effective_words']:.0f} effective words), {c['n_same']} same / {c['n_different']} different-writer "
            f"pairs, {c['n_writers']} writers"])


def compare_verbal(log10_lr: float) -> str:
    """The ENFSI verbal equivalent of ``log10_lr`` for H1 same writer vs H2 different writers."""
    if log10_lr == 0.0:
        return "no support for either proposition (LR = 1)"
    return f"{strength(abs(log10_lr))} for {SAME if log10_lr > 0 else DIFFERENT}"


def document_embedding(path: str | Path, models: ScoringModels, work_dir: Path, *, pages_spec: str | None = None,
                       dpi: int = DEFAULT_DPI, log: Log = None) -> np.ndarray:
    """The ``(n, dim)`` word embeddings of one document in reading order: a folder of word images (or an
    order CSV), or a page image / PDF / TIFF cut into words under ``work_dir`` first."""
    p = Path(path)
    if is_page_path(p):
        crops = cut_scan(p, work_dir, pages_spec=pages_spec, dpi=dpi)
        folder = crops[0].parent if crops else work_dir
    else:
        folder, crops = list_document_images(p)
    if len(crops) < MIN_WORDS:
        raise WrmilInputError(f"document {p} has {len(crops)} word(s); a comparison needs at least {MIN_WORDS} "
                              "per side")
    return embed_images(folder, crops, models, log=log)[0]


def compare_documents(questioned: str | Path, known: list[str | Path], embedding_model_dir: str | Path,
                      mil_model_dir: str | Path, work_dir: str | Path, *, device: str = "cpu",
                      pages_spec: str | None = None, dpi: int = DEFAULT_DPI, log: Log = None) -> Comparison:
    """Compare ``questioned`` with the pooled ``known`` documents (module docstring); page cuts go under
    ``work_dir``. Refuses, before loading any network, a model pair that does not fit, a MIL model other
    than fused or without ``compare_calibration.json``, and no known document."""
    if not known:
        raise WrmilInputError("no known document: give at least one KNOWN after the questioned one")
    say, work = speaker(log), Path(work_dir)
    docs = [questioned, *known]
    for d in docs:  # cheap checks first: a typo is refused before the models are read
        if not Path(d).exists():
            raise WrmilInputError(f"document {d} does not exist; give a folder of word images, a page image or a PDF")
    pair = read_model_pair(embedding_model_dir, mil_model_dir)
    if pair.model_name != COMPARE_MODEL:
        raise WrmilInputError(f"MIL model {pair.mil_dir} is {pair.model_name!r}; the comparison uses the "
                              f"{COMPARE_MODEL!r} detector's writer model: pass --model {COMPARE_MODEL} or its directory")
    calibration = load_compare_calibration(pair.mil_dir, pair.mil_config.get("model_id"))
    models = load_scoring_models(pair.embedding_dir, pair.mil_dir, device)
    embs = [document_embedding(d, models, work / f"doc{i}", pages_spec=pages_spec, dpi=dpi, log=log)
            for i, d in enumerate(docs)]
    q, k = embs[0], np.concatenate(embs[1:])
    cov = models.mil.cov.model()  # type: ignore[union-attr]  # fused holds one (checked by name above)
    llr = float(same_writer_llr(cov.project(torch.from_numpy(q)), cov.project(torch.from_numpy(k)),
                                cov.between.double()))
    result = _result(docs, q.shape[0], k.shape[0], llr, calibration, str(pair.mil_dir), str(pair.embedding_dir))
    say(f"compare: log10 LR = {result.log10_lr:+.2f}, {result.verbal}")
    return result


def _result(docs: list[str | Path], n_q: int, n_k: int, llr: float, calibration: CompareCalibration,
            mil_dir: str, emb_dir: str) -> Comparison:
    """The :class:`Comparison` of a scored pair, calibrated at the nearest words per side."""
    n = calibration.nearest(n_q, n_k)
    log10_lr = float(calibration.buckets[n].log10_lr(llr)[0])
    pairs = calibration.n_pairs.get(n, {})
    return Comparison(
        questioned=str(docs[0]), known=[str(d) for d in docs[1:]], n_questioned=n_q, n_known=n_k, llr_raw=llr,
        log10_lr=log10_lr, verbal=compare_verbal(log10_lr), mil_model_dir=mil_dir, embedding_model_dir=emb_dir,
        calibration={"words_per_side": n, "effective_words": round(effective_words(n_q, n_k), 2),
                     "available": sorted(calibration.buckets), "n_same": pairs.get("same"),
                     "n_different": pairs.get("different"), "n_writers": calibration.n_writers, "split": "val",
                     "method": calibration.method(n), "cross_fitted": calibration.cross_fitted,
                     "raw_log10_lr": llr / math.log(10), **calibration.buckets[n].describe()})


def write_comparison(result: Comparison, out_dir: str | Path) -> Path:
    """Write ``out_dir/compare.json`` and record it in ``result.outputs``."""
    path = Path(out_dir) / COMPARE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    result.outputs["json"] = str(path)
    path.write_text(json.dumps(result.to_dict(), indent=2, allow_nan=False))
    return path


__all__ = ["COMPARE_FILE", "Comparison", "compare_documents", "compare_verbal", "document_embedding",
           "write_comparison"]
