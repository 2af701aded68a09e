"""Score a questioned document: is it written by more than one person, and which words are foreign?

The pipeline (:func:`score_document`) reads the document (:mod:`.document`), checks that the two
model directories belong together and that the MIL model is calibrated (:mod:`.calibrated`),
embeds every word with the ArcFace model, and scores the document: a word-level detector
(``segment_scan``, ``scattered``) on its whole word sequence (:mod:`wrmil_core.mil.documents`), any other MIL model
by sliding bags aggregated into window and word scores (:mod:`.aggregate`). The raw score becomes
log10 LR (H1 more than one writer vs H0 one writer) with its verbal equivalent (:mod:`.verbal`)
and decisions at the validated 1 % / 5 % false-positive thresholds; the segment scan estimates the
foreign passage. The result is a :class:`DocumentScore`; :mod:`.strip` writes it out.

Model directories are explicit here; finding "the latest model" of a materialised pipeline is
``wrmil_assets/model_records.py``'s job.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wrmil_core.artifacts import read_config
from wrmil_core.bags.layout import DocumentCut, cut_document
from wrmil_core.bags.tensors import BagTensors
from wrmil_core.detectors import segment_scan
from wrmil_core.detectors.base import MILModel
from wrmil_core.detectors.run import score_bags
from wrmil_core.embedding.fusion import fused_dim
from wrmil_core.errors import WrmilInputError
from wrmil_core.mil.documents import SLIDING, WHOLE, document_tensor, whole_document
from wrmil_core.mil.fused import FusedFeatures, FusedMIL
from wrmil_core.mil.registry import load_mil_model, scores_whole
from wrmil_core.runtime import Log, resolve_device, speaker
from wrmil_core.scoring.aggregate import (
    DocumentScores,
    aggregate,
    bag_embeddings,
    best_windows,
    rank_words,
    word_distances,
)
from wrmil_core.scoring.calibrated import AppliedCalibration, applied_calibration
from wrmil_core.scoring.document import (
    check_scorable,
    document_words,
    list_document_images,
    relative_names,
)
from wrmil_core.scoring.verbal import H0, H1, SCALE_SOURCE, format_lr, verbal_label

# --------------------------------------------------------------------------------------------
# Result


@dataclass
class DocumentScore:
    """The score of one questioned document (aggregation: :mod:`wrmil_core.scoring.aggregate`,
    whole-document scoring: :mod:`wrmil_core.mil.documents`, calibration: :mod:`wrmil_core.scoring.calibrated`).

    The headline is ``log10_lr``: log10 of the likelihood ratio of H1 "more than one writer" against
    H0 "one writer", calibrated on validation writers, with its ``verbal`` equivalent
    (:mod:`wrmil_core.scoring.verbal`). ``decisions`` flag the document at the 1 % and 5 %
    false-positive thresholds fixed on validation writers. ``probability`` is the detector's raw
    score (sigmoid of its bag logit; written to score.json as ``raw_score``): monotone in the
    evidence but not a probability.
    """

    document: str
    files: list[str]                      # word image file names (relative to the folder), reading order
    probability: float                    # raw detector score (sigmoid of the bag logit); NOT a probability
    thresholds: dict[str, float]          # on the raw score: fpr_1, fpr_5 (validation writers)
    decisions: dict[str, bool]            # raw score >= threshold, per threshold
    window_starts: list[int]
    window_scores: list[float]            # raw-score scale, max over bags (whole document: max over its words)
    window_raw: list[float]               # the model's own window scores, max over bags
    bag_probabilities: list[float]        # raw score of each sliding bag (whole document: one)
    word_scores: list[float]              # raw-score scale: each word's evidence
    word_distances: list[float]
    top_words: list[dict[str, Any]]
    model_name: str
    mil_model_dir: str
    mil_model_id: str | None
    embedding_model_dir: str
    embedding_model_id: str | None
    window_size: int
    bag_size: int
    short_document: bool
    seconds: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    log10_lr: float | None = None         # H1 more than one writer vs H0 one writer; None: uncalibrated
    verbal: str = ""                      # verbal equivalent of log10_lr (ENFSI 2015 scale)
    # each word's evidence through the document's calibrator: the LR the document would get if it
    # scored what the word does (for segment_scan: the best run holding the word)
    word_log10_lr: list[float] = field(default_factory=list)
    passage: dict[str, Any] | None = None  # estimated foreign passage: first/last word index and file
    calibration: dict[str, Any] = field(default_factory=dict)  # which calibration was applied (describe())
    scoring: str = SLIDING                # "whole document" or "sliding bags"
    model_thresholds: dict[str, float] = field(default_factory=dict)  # the model's own (max_f1, ...): not used
    warnings: list[str] = field(default_factory=list)
    # the default detector's diarization: {"count": 1|2|3, "estimate": "1"|"2"|"3+", "method": ...}, and
    # each word's posterior of belonging to the main writer; None / empty for other detectors
    writers: dict[str, Any] | None = None
    word_main_posterior: list[float] = field(default_factory=list)

    @property
    def n_words(self) -> int:
        return len(self.files)

    @property
    def n_windows(self) -> int:
        return len(self.window_starts)

    @property
    def n_bags(self) -> int:
        return len(self.bag_probabilities)

    @property
    def passage_range(self) -> tuple[int, int] | None:
        """``(first, last)`` word index (reading order, inclusive) of the estimated foreign passage."""
        return None if self.passage is None else (int(self.passage["first"]), int(self.passage["last"]))

    @property
    def decision_threshold(self) -> tuple[str, float]:
        """The threshold of the headline decision and of the colour scales: ``fpr_5`` when saved."""
        key = next((k for k in ("fpr_5", "fpr_1", "max_f1") if k in self.thresholds), min(self.thresholds))
        return key, self.thresholds[key]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["raw_score"] = d.pop("probability")
        d.update(n_words=self.n_words, n_windows=self.n_windows, n_bags=self.n_bags,
                 hypotheses={"H1": H1, "H0": H0}, verbal_scale=SCALE_SOURCE,
                 raw_score_meaning="sigmoid of the detector's bag logit; monotone in the evidence, not a probability",
                 decision_meaning={k: f"flagged when raw_score >= the threshold that flags {fpr_percent(k)} of "
                                      "genuine validation documents" for k in self.decisions},
                 aggregation=AGGREGATION[self.scoring])
        return d

    def to_json(self) -> str:
        """Machine-readable JSON of every field."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    @property
    def metadata(self) -> dict[str, int | float | str]:
        """Flat summary for asset metadata."""
        md: dict[str, int | float | str] = {
            "log10_lr": self.log10_lr if self.log10_lr is not None else "n/a", "verbal": self.verbal or "n/a",
            "raw_score": self.probability, "n_words": self.n_words, "n_windows": self.n_windows,
            "n_bags": self.n_bags, "model": self.model_name, "scoring": self.scoring,
            "mil_model_id": self.mil_model_id or "n/a", "embedding_model_id": self.embedding_model_id or "n/a",
            "short_document": str(self.short_document),
            "calibration": f"{self.calibration.get('source', 'n/a')} {self.calibration.get('calibrated_length_words', '')}".strip(),
            "calibration_method": self.calibration.get("length_method", "n/a"),
            "calibrator": self.calibration.get("kind", "n/a"),
        }
        if self.writers is not None:
            md["writers"] = self.writers["estimate"]
        if self.passage_range is not None:
            md["passage"] = "{first}-{last} ({first_file} .. {last_file})".format(**self.passage)
        md.update({f"flagged_{k}": ("yes" if v else "no") for k, v in self.decisions.items()})
        md.update({f"threshold_{k}": v for k, v in self.thresholds.items()})
        md.update({f"seconds_{k}": v for k, v in self.seconds.items()})
        return md

    def summary(self) -> str:
        """A short human-readable summary (a few lines)."""
        lines = [f"{self.document}: {self.n_words} words; model {self.model_name} ({self.scoring}"
                 + (f", {self.n_bags} bag(s))" if self.scoring == SLIDING else ")")]
        if self.log10_lr is not None:
            lines.append(f"log10 LR = {self.log10_lr:+.2f} ({format_lr(self.log10_lr)}): {self.verbal}")
            lines.append(f"  (H1 {H1} vs H0 {H0}; {_calibration_line(self.calibration)})")
        lines.append("; ".join(f"flagged at {fpr_percent(k)} FPR: {'yes' if v else 'no'} (threshold {self.thresholds[k]:.3f})"
                               for k, v in self.decisions.items()))
        if self.passage is not None:
            lines.append("estimated foreign passage: words {first}-{last} ({first_file} .. {last_file})".format(
                **self.passage))
        if self.writers is not None:
            lines.append(f"estimated writers: {self.writers['estimate']}")
        lines.append(f"raw score {self.probability:.3f} (sigmoid of the detector statistic; not a probability)")
        if self.short_document:
            lines.append(f"note: shorter than one bag ({self.bag_size} windows); scored as one bag of "
                         f"{self.n_windows} windows")
        lines += [f"warning: {w}" for w in self.warnings]
        tops = ", ".join(f"{w['file']} ({w['score']:.3f})" for w in self.top_words[:5])
        lines.append(f"most suspicious words: {tops}")
        if "case_report" in self.outputs:
            lines.append(f"case report: {self.outputs['case_report']}")
        return "\n".join(lines)


AGGREGATION = {
    SLIDING: "document: max over sliding bags (stride 1 window); window: max over bags; word: its window's score",
    WHOLE: "document: the detector's statistic of the whole word sequence; word: its own evidence; "
           "window: max over its words",
}


def fpr_percent(key: str) -> str:
    """``fpr_1`` -> ``1 %``; any other threshold name unchanged."""
    return f"{key[4:]} %" if key.startswith("fpr_") else key


def _calibration_line(c: dict[str, Any]) -> str:
    """``calibrated on validation documents of 50 words (parametric over lengths), 40 genuine / 160 mixed,
    8 writers; logistic calibrator``."""
    if not c:
        return "uncalibrated"
    what = "documents" if c.get("source") == "length" else "bags"
    how = " (parametric over lengths)" if c.get("length_method") == "parametric" else ""
    kind = f"; {c['kind']} calibrator" if c.get("kind") else ""
    return (f"calibrated on validation {what} of {c.get('calibrated_length_words')} words{how}, "
            f"{c.get('n_h0')} genuine / {c.get('n_h1')} mixed, {c.get('n_writers') or '?'} writers{kind}")


# --------------------------------------------------------------------------------------------
# The model pair


_REQUIRED_KEYS = {"embedding model": ("backbone", "emb_dim"),
                  "MIL model": ("model_name", "dim", "window_size", "bag_size")}


def _read_config(model_dir: Path, what: str) -> dict[str, Any]:
    """A model directory's config.json, refused when absent or not of the expected kind."""
    try:
        return read_config(model_dir, _REQUIRED_KEYS[what], what)
    except WrmilInputError as e:
        if "lacks" not in str(e):
            raise
        other = "MIL model" if what == "embedding model" else "embedding model"
        raise WrmilInputError(f"{e}; is it the {other}? Check --embedding-model and --mil-model") from None


def check_model_pair(embedding_config: dict[str, Any], mil_config: dict[str, Any],
                     embedding_model_dir: Path, mil_model_dir: Path) -> None:
    """Refuse a MIL model trained on another embedding dimension or another embedding model."""
    emb_dim = fused_dim(embedding_config) if "emb_dim" in embedding_config else embedding_config.get("dim")
    mil_dim = mil_config.get("dim")
    if emb_dim is not None and mil_dim is not None and int(emb_dim) != int(mil_dim):
        raise WrmilInputError(
            f"MIL model {mil_model_dir} was trained on {mil_dim}-d embeddings but embedding model "
            f"{embedding_model_dir} produces {emb_dim}-d vectors; use the embedding model the MIL model was "
            "trained with (mil_model.json names its embedding_model_id) or retrain the MIL models "
            "(`wrmil run --job retrain_mil`)")
    want, got = mil_config.get("embedding_model_id"), embedding_config.get("model_id")
    if want and got and want != got:
        raise WrmilInputError(
            f"MIL model {mil_model_dir} was trained on embeddings of model {want!r} but embedding model "
            f"{embedding_model_dir} is {got!r}; its scores would be meaningless. Pass --embedding-model with "
            f"the directory of model {want!r}, or retrain the MIL models on the current embeddings "
            "(`wrmil run --job retrain_mil`)")


@dataclass(frozen=True)
class ModelPair:
    """An embedding model and a MIL model directory whose configs were read and checked together."""

    embedding_dir: Path
    mil_dir: Path
    mil_config: dict[str, Any]
    thresholds: dict[str, float]

    @property
    def model_name(self) -> str:
        return str(self.mil_config["model_name"])

    @property
    def window_size(self) -> int:
        return int(self.mil_config["window_size"])

    @property
    def bag_size(self) -> int:
        return int(self.mil_config["bag_size"])


def read_model_pair(embedding_model_dir: str | Path, mil_model_dir: str | Path) -> ModelPair:
    """Read both configs; refuse swapped, mismatched or threshold-less models (no weights loaded)."""
    emb_dir, mil_dir = Path(embedding_model_dir), Path(mil_model_dir)
    emb_cfg = _read_config(emb_dir, "embedding model")
    mil_cfg = _read_config(mil_dir, "MIL model")
    check_model_pair(emb_cfg, mil_cfg, emb_dir, mil_dir)
    thresholds = {k: float(v) for k, v in (mil_cfg.get("thresholds") or {}).items()}
    if not thresholds:
        raise WrmilInputError(f"MIL model {mil_dir} has no saved thresholds; re-materialise mil_model")
    return ModelPair(emb_dir, mil_dir, mil_cfg, thresholds)


# --------------------------------------------------------------------------------------------
# Scoring


@dataclass
class ScoringModels:
    """A checked model pair with both models loaded, reused across the documents of a batch
    (loading the embedding network costs seconds; :func:`load_scoring_models`)."""

    pair: ModelPair
    embedding: Any  # wrmil_core.embedding.models.EmbeddingModel (not imported here: timm loads slowly)
    mil: MILModel
    device: torch.device


def load_scoring_models(embedding_model_dir: str | Path, mil_model_dir: str | Path,
                        device: str = "cpu") -> ScoringModels:
    """Read and check the model pair (:func:`read_model_pair`), then load both models once."""
    # Imported here: timm takes seconds to import, and bad input is refused before this step.
    from wrmil_core.embedding.models import load_embedding

    pair = read_model_pair(embedding_model_dir, mil_model_dir)
    dev = resolve_device(device)
    mil, _ = load_mil_model(pair.mil_dir, dev)
    return ScoringModels(pair, load_embedding(pair.embedding_dir, dev), mil, dev)


def score_document(
    path: str | Path,
    embedding_model_dir: str | Path | None,
    mil_model_dir: str | Path | None,
    *,
    order_csv: str | Path | None = None,
    device: str = "cpu",
    top_k: int = 10,
    batch_size: int = 64,
    log: Log = None,
    models: ScoringModels | None = None,
) -> DocumentScore:
    """Score the questioned document at ``path`` (folder of word images, or an order CSV).

    Window size and bag size come from the MIL model's config; the calibration from its
    ``calibration.json`` / ``length_calibration.json`` (:mod:`.calibrated`). A word-level detector
    scores the whole word sequence, any other model sliding bags (:mod:`.whole`). ``models``: the
    already loaded pair (:func:`load_scoring_models`; a batch loads it once), else the two
    directories are read and loaded here. Raises ``WrmilInputError`` for a missing folder, fewer
    than two windows of words, unreadable images, a MIL model trained on another embedding
    dimension or embedding model, or one without calibration.
    """
    folder, images = list_document_images(path, order_csv)
    return score_words(folder, images, embedding_model_dir, mil_model_dir, device=device, top_k=top_k,
                       batch_size=batch_size, log=log, models=models)


def score_words(
    folder: Path,
    images: list[Path],
    embedding_model_dir: str | Path | None,
    mil_model_dir: str | Path | None,
    *,
    device: str = "cpu",
    top_k: int = 10,
    batch_size: int = 64,
    log: Log = None,
    models: ScoringModels | None = None,
) -> DocumentScore:
    """Score the word images ``images`` (reading order; file names shown relative to ``folder``):
    :func:`score_document` once the document's words are listed."""
    say = speaker(log)
    clock = [time.perf_counter()]
    pair = models.pair if models is not None else read_model_pair(embedding_model_dir, mil_model_dir)
    check_scorable(folder, images, pair.window_size)
    calibration = applied_calibration(pair.mil_dir, pair.mil_config, len(images))
    if models is None:  # loaded after the checks: bad input is refused before the slow imports
        models = load_scoring_models(pair.embedding_dir, pair.mil_dir, device)
    clock.append(time.perf_counter())
    say(f"score: embedding {len(images)} words of {folder}")
    emb, emb_model_id = embed_images(folder, images, models, batch_size, log)
    clock.append(time.perf_counter())
    model = models.mil
    cut = cut_document(len(images), pair.window_size, pair.bag_size)
    whole = scores_whole(pair.model_name)
    features = _fused_features(model, emb) if whole else None  # once, for the score and the writer count
    scores = _whole_scores(model, emb, cut, features) if whole else _sliding_scores(model, emb, cut, emb_model_id)
    clock.append(time.perf_counter())
    result = _result(folder, images, pair, cut, scores, emb_model_id, top_k, _seconds(clock))
    _apply_evidence(result, calibration, segment_scan(emb).passage, whole)
    _apply_writers(result, model, emb, features)
    say(f"score: log10 LR = {result.log10_lr:+.2f}, {result.verbal} ({clock[-1] - clock[0]:.1f} s)")
    return result


def _sliding_scores(model: MILModel, emb: np.ndarray, cut: DocumentCut, emb_model_id: str) -> DocumentScores:
    """Window and word scores from the document's sliding bags (:mod:`.aggregate`)."""
    bag_probs, window_raw = _score_bags(model, emb, cut, emb_model_id)
    return aggregate(cut, model.window_output, bag_probs, window_raw, emb)


def _fused_features(model: MILModel, emb: np.ndarray) -> FusedFeatures | None:
    """The default detector's statistics of the whole document (its VB fits included), computed once
    for both its score and its writer count; ``None`` for any other detector."""
    if not isinstance(model, FusedMIL):
        return None
    with torch.no_grad():
        return model.features(document_tensor(emb))


def _whole_scores(model: MILModel, emb: np.ndarray, cut: DocumentCut,
                  features: FusedFeatures | None = None) -> DocumentScores:
    """Scores of a word-level detector on the whole sequence: one "bag", each word its own evidence,
    each window the max over its words (:mod:`.whole`); ``features``: :func:`_fused_features`."""
    prob, words, evidence = whole_document(model, emb, features)
    windows = words[cut.rows].max(axis=1)
    return DocumentScores(bag_probs=np.array([prob]), window_scores=windows,
                          window_raw=evidence[cut.rows].max(axis=1), word_scores=words,
                          word_distances=word_distances(emb), best_window=best_windows(cut.rows, windows, words))


def _apply_evidence(result: DocumentScore, calibration: AppliedCalibration, passage: tuple[int, int],
                    whole: bool) -> None:
    """Fill in the calibrated evidence: log10 LR and its words, decisions, per-word LR, the passage."""
    result.scoring = WHOLE if whole else SLIDING
    result.log10_lr = float(calibration.log10_lr(result.probability)[0])
    result.verbal = verbal_label(result.log10_lr)
    result.word_log10_lr = calibration.log10_lr(result.word_scores).tolist() if result.word_scores else []
    for w in result.top_words:
        w["log10_lr"] = result.word_log10_lr[w["index"]]
    result.model_thresholds, result.thresholds = result.thresholds, dict(calibration.evidence.thresholds)
    result.decisions = {k: bool(result.probability >= v) for k, v in result.thresholds.items()}
    result.calibration = calibration.describe()
    result.warnings = [calibration.warning] if calibration.warning else []
    first, last = passage
    result.passage = {"first": first, "last": last, "first_file": result.files[first],
                      "last_file": result.files[last], "n_words": last - first + 1, "method": PASSAGE_METHOD}


def _apply_writers(result: DocumentScore, model: MILModel, emb: np.ndarray,
                   features: FusedFeatures | None = None) -> None:
    """The writer count and each word's main-writer posterior, from a detector that diarizes
    (``features``: its statistics of the document when the score already computed them)."""
    diarize = getattr(model, "writers", None)
    if diarize is None:
        return
    x = document_tensor(emb)
    count, posterior = diarize(x) if features is None else diarize(x, features)
    n = int(count[0])
    result.writers = {"count": n, "estimate": "3+" if n >= 3 else str(n), "method": WRITERS_METHOD}
    result.word_main_posterior = [round(float(p), 4) for p in posterior[0]]


WRITERS_METHOD = ("variational Bayes mixture of writers in the two-covariance model (wrmil_core.detectors."
                  "diarization); one writer when the fused evidence is below its validation threshold, else "
                  "three or more when a third writer adds more than a validation-fitted margin, else two")

PASSAGE_METHOD = ("segment scan of the document's word embeddings: the contiguous run of at most half the "
                  "words whose mean differs most from the rest (wrmil_core.detectors.segment_scan); an "
                  "estimate whether or not the document is flagged")


def embed_images(folder: Path, images: list[Path], models: ScoringModels, batch_size: int = 64,
                 log: Log = None) -> tuple[np.ndarray, str]:
    """The document's ``(n, dim)`` embeddings in reading order and the embedding model's id."""
    from wrmil_core.embedding.infer import embedding_matrix
    from wrmil_core.embedding.models import embed_words

    emb_df = embed_words(models.embedding, document_words(folder, images), batch_size=batch_size,
                         device=models.device, num_workers=0, log=log, on_error="raise").sort("position")
    return np.array(embedding_matrix(emb_df), dtype=np.float32), str(emb_df["model_id"][0])  # writable for torch


def _score_bags(model: MILModel, emb: np.ndarray, cut: DocumentCut, emb_model_id: str) -> tuple[np.ndarray, np.ndarray]:
    """``(bag_probs (B,), window_raw (B, k))`` of the document's sliding bags; no labels (unknown)."""
    nb = len(cut.bags)
    bags = BagTensors(x=torch.from_numpy(bag_embeddings(emb, cut)), label=torch.zeros(nb, dtype=torch.long),
                      window_foreign=torch.zeros(cut.bags.shape, dtype=torch.bool), ratio=np.zeros(nb),
                      foreign_word_frac=np.zeros(nb), bag_id=np.arange(nb), model_id=emb_model_id)
    return score_bags(model, bags)


def _seconds(clock: list[float]) -> dict[str, float]:
    """Stage timings from the clock marks: read (and checks), embed, MIL, total."""
    t0, t_read, t_embed, t_mil = clock
    return {"read": round(t_read - t0, 3), "embed": round(t_embed - t_read, 3),
            "mil": round(t_mil - t_embed, 3), "total": round(t_mil - t0, 3)}


def _result(folder: Path, images: list[Path], pair: ModelPair, cut: DocumentCut, s: DocumentScores,
            emb_model_id: str, top_k: int, seconds: dict[str, float]) -> DocumentScore:
    """Assemble the :class:`DocumentScore` (plain lists, JSON-ready) from the aggregated scores."""
    files = relative_names(folder, images)
    prob = s.probability
    top = [{"rank": r + 1, "index": int(i), "file": files[i], "score": float(s.word_scores[i]),
            "word_distance": float(s.word_distances[i]), "window": int(s.best_window[i])}
           for r, i in enumerate(rank_words(s.word_scores, s.word_distances)[:max(0, top_k)])]
    return DocumentScore(
        document=str(folder), files=files, probability=prob, thresholds=pair.thresholds,
        decisions={k: bool(prob >= v) for k, v in pair.thresholds.items()},
        window_starts=cut.starts.tolist(), window_scores=s.window_scores.tolist(), window_raw=s.window_raw.tolist(),
        bag_probabilities=s.bag_probs.tolist(), word_scores=s.word_scores.tolist(),
        word_distances=s.word_distances.tolist(), top_words=top, model_name=str(pair.mil_config["model_name"]),
        mil_model_dir=str(pair.mil_dir), mil_model_id=pair.mil_config.get("model_id"),
        embedding_model_dir=str(pair.embedding_dir), embedding_model_id=emb_model_id,
        window_size=pair.window_size, bag_size=pair.bag_size, seconds=seconds,
        short_document=cut.short and not scores_whole(pair.model_name),  # a whole-document score has no bags
    )


__all__ = ["DocumentScore", "ModelPair", "ScoringModels", "check_model_pair", "embed_images", "load_scoring_models",
           "read_model_pair",
           "score_document", "score_words"]
