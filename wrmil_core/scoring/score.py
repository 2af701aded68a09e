"""Score a questioned document: is it written by more than one person, and which words are foreign?

The pipeline (:func:`score_document`) reads the document (:mod:`.document`), checks that the two
model directories belong together, embeds every word with the ArcFace model, scores the document's
sliding bags with the MIL model and aggregates bag scores into window and word scores
(:mod:`.aggregate`). The result is a :class:`DocumentScore`; :mod:`.strip` writes it out.

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
from wrmil_core.bags.tensors import BagTensors
from wrmil_core.errors import WrmilInputError
from wrmil_core.mil.inference import load_mil_model, score_bags
from wrmil_core.mil.models import MILModel
from wrmil_core.runtime import Log, resolve_device, speaker
from wrmil_core.scoring.aggregate import (DocumentCut, DocumentScores, aggregate, bag_embeddings, cut_document,
                                          rank_words)
from wrmil_core.scoring.document import check_scorable, document_words, list_document_images, relative_names


# --------------------------------------------------------------------------------------------
# Result


@dataclass
class DocumentScore:
    """The score of one questioned document (aggregation: :mod:`wrmil_core.scoring.aggregate`)."""

    document: str
    files: list[str]                      # word image file names (relative to the folder), reading order
    probability: float                    # P(more than one writer)
    thresholds: dict[str, float]
    decisions: dict[str, bool]            # probability >= threshold, per saved threshold
    window_starts: list[int]
    window_scores: list[float]            # bag-probability scale, max over bags
    window_raw: list[float]               # the model's own window scores, max over bags
    bag_probabilities: list[float]
    word_scores: list[float]
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
    def decision_threshold(self) -> tuple[str, float]:
        """The threshold used for the headline decision (``max_f1`` when saved)."""
        key = "max_f1" if "max_f1" in self.thresholds else sorted(self.thresholds)[0]
        return key, self.thresholds[key]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(n_words=self.n_words, n_windows=self.n_windows, n_bags=self.n_bags,
                 aggregation="document: max over sliding bags (stride 1 window); window: max over bags; "
                             "word: its window's score")
        return d

    def to_json(self) -> str:
        """Machine-readable JSON of every field."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    @property
    def metadata(self) -> dict[str, int | float | str]:
        """Flat summary for asset metadata."""
        md: dict[str, int | float | str] = {
            "probability": self.probability, "n_words": self.n_words, "n_windows": self.n_windows,
            "n_bags": self.n_bags, "model": self.model_name, "mil_model_id": self.mil_model_id or "n/a",
            "embedding_model_id": self.embedding_model_id or "n/a", "short_document": str(self.short_document),
        }
        md.update({f"decision_{k}": ("several writers" if v else "one writer") for k, v in self.decisions.items()})
        md.update({f"threshold_{k}": v for k, v in self.thresholds.items()})
        md.update({f"seconds_{k}": v for k, v in self.seconds.items()})
        return md

    def summary(self) -> str:
        """A short human-readable summary (a few lines)."""
        key, thr = self.decision_threshold
        verdict = "MORE THAN ONE WRITER" if self.decisions[key] else "one writer"
        lines = [f"{self.document}: {self.n_words} words, {self.n_windows} windows, {self.n_bags} bag(s); "
                 f"model {self.model_name}",
                 f"P(more than one writer) = {self.probability:.3f} -> {verdict} (threshold {key} = {thr:.3f})"]
        others = [f"{k} ({v:.3f}): {'several' if self.decisions[k] else 'one'}"
                  for k, v in self.thresholds.items() if k != key]
        if others:
            lines.append("other thresholds: " + "; ".join(others))
        if self.short_document:
            lines.append(f"note: shorter than one bag ({self.bag_size} windows); scored as one bag of "
                         f"{self.n_windows} windows, less reliable")
        tops = ", ".join(f"{w['file']} ({w['score']:.3f})" for w in self.top_words[:5])
        lines.append(f"most suspicious words: {tops}")
        return "\n".join(lines)


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
    emb_dim = embedding_config.get("emb_dim", embedding_config.get("dim"))
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


def score_document(
    path: str | Path,
    embedding_model_dir: str | Path,
    mil_model_dir: str | Path,
    *,
    order_csv: str | Path | None = None,
    device: str = "cpu",
    top_k: int = 10,
    batch_size: int = 64,
    log: Log = None,
) -> DocumentScore:
    """Score the questioned document at ``path`` (folder of word images, or an order CSV).

    Window size and bag size come from the MIL model's config. Raises ``WrmilInputError`` for
    a missing folder, fewer than two windows of words, unreadable images, or a MIL model trained
    on another embedding dimension or embedding model.
    """
    say = speaker(log)
    clock = [time.perf_counter()]
    folder, images = list_document_images(path, order_csv)
    pair = read_model_pair(embedding_model_dir, mil_model_dir)
    check_scorable(folder, images, pair.window_size)
    clock.append(time.perf_counter())
    dev = resolve_device(device)
    say(f"score: embedding {len(images)} words of {folder}")
    emb, emb_model_id = _embed(folder, images, pair, dev, batch_size, log)
    clock.append(time.perf_counter())
    model, _ = load_mil_model(pair.mil_dir, dev)
    cut = cut_document(len(images), pair.window_size, pair.bag_size)
    bag_probs, window_raw = _score_bags(model, emb, cut, emb_model_id)
    scores = aggregate(cut, model.window_output, bag_probs, window_raw, emb)
    clock.append(time.perf_counter())
    result = _result(folder, images, pair, cut, scores, emb_model_id, top_k, _seconds(clock))
    say(f"score: P(more than one writer) = {result.probability:.3f} ({result.n_bags} bag(s), "
        f"{clock[-1] - clock[0]:.1f} s)")
    return result


def _embed(folder: Path, images: list[Path], pair: ModelPair, dev: torch.device, batch_size: int,
           log: Log) -> tuple[np.ndarray, str]:
    """The document's ``(n, dim)`` embeddings in reading order and the embedding model's id."""
    # Imported here: timm takes seconds to import, and bad input is refused before this step.
    from wrmil_core.embedding.infer import embed_words, embedding_matrix, load_embedding_model

    emb_model, _ = load_embedding_model(pair.embedding_dir, dev)
    emb_df = embed_words(emb_model, document_words(folder, images), batch_size=batch_size, device=dev,
                         num_workers=0, log=log, on_error="raise").sort("position")
    return embedding_matrix(emb_df), str(emb_df["model_id"][0])


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
        window_size=pair.window_size, bag_size=pair.bag_size, short_document=cut.short, seconds=seconds,
    )


__all__ = ["DocumentScore", "ModelPair", "check_model_pair", "read_model_pair", "score_document"]
