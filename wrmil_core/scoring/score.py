"""Score a questioned document: is it written by more than one person, and which words are foreign?

A questioned document is a folder of word images in reading order: natural file-name order
(``w2.png`` before ``w10.png``), or the order given by a CSV with columns ``image_path,order``
(paths relative to the folder). Every word is embedded with the ArcFace model, the word sequence
is cut into non-overlapping windows of the MIL model's ``window_size`` (plus one end-aligned
window when the length is not a multiple, so every word is scored), and a document longer than
one bag is covered by sliding bags of ``bag_size`` windows with a stride of one window.

Aggregation
    document probability  max over bags of the bag probability (the decision thresholds were
                          fitted on single bags, so a long document, scored by many bags, is
                          flagged somewhat more readily than one bag; the JSON says how many)
    window score          max over the bags holding the window of the window's score, on the
                          bag-probability scale (see :func:`window_probabilities`)
    word score            the score of its window (max over windows holding it); ties between
                          the words of one window are broken by the word's own cosine distance
                          from the rest of the document (``word_distance``)

A document with fewer windows than one bag, but at least two, is scored as one bag of the
windows it has (every MIL model here is size-agnostic over windows: no positional encoding);
the result says ``short_document: true`` because the thresholds were fitted on full bags.
"""

from __future__ import annotations

import csv
import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from wrmil_core.bags.tensors import BagTensors
from wrmil_core.data.images import refuse_unreadable
from wrmil_core.errors import WrmilInputError
from wrmil_core.runtime import Log, resolve_device, speaker


IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp"})
# Models whose bag logit is a (smooth) max of their window scores: sigmoid(window score) is on the
# bag-probability scale. The others (attention pooling) give attention weights.
MAX_POOLED_MODELS: frozenset[str] = frozenset({"distance", "contrast", "set_transformer"})
SCORE_JSON = "score.json"
STRIP_PNG = "strip.png"


# --------------------------------------------------------------------------------------------
# Reading the document


def natural_key(name: str) -> list[Any]:
    """Sort key that orders digit runs by value: ``w2`` < ``w10`` (case-insensitive text)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _check_folder(path: Path) -> Path:
    if not path.exists():
        raise WrmilInputError(f"questioned document {path} does not exist; give a folder of word images")
    if not path.is_dir():
        raise WrmilInputError(f"questioned document {path} is not a folder; give a folder of word images "
                              "(or a CSV with columns image_path,order)")
    return path


def list_document_images(path: str | Path, order_csv: str | Path | None = None) -> tuple[Path, list[Path]]:
    """The word images of a questioned document in reading order: ``(folder, [image paths])``.

    ``path`` is a folder (its image files in natural name order, hidden files and non-image files
    ignored) or a CSV file; ``order_csv`` (or a CSV ``path``) has columns ``image_path,order`` with
    paths relative to the folder (the CSV's own folder when ``path`` is the CSV). Refuses a
    missing folder, a CSV without those columns, a non-integer or repeated order, or a listed
    file that does not exist, naming the file and row.
    """
    path = Path(path).resolve()
    if order_csv is None and path.is_file() and path.suffix.lower() == ".csv":
        order_csv, path = path, path.parent
    folder = _check_folder(path)
    if order_csv is None:
        files = [p for p in folder.iterdir()
                 if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES]
        return folder, sorted(files, key=lambda p: natural_key(p.name))
    return folder, _read_order_csv(folder, Path(order_csv))


def _read_order_csv(folder: Path, csv_path: Path) -> list[Path]:
    if not csv_path.is_file():
        raise WrmilInputError(f"order CSV {csv_path} does not exist; give a file with columns image_path,order")
    with csv_path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        cols = [c.strip() for c in (reader.fieldnames or [])]
        if "image_path" not in cols or "order" not in cols:
            raise WrmilInputError(f"order CSV {csv_path} has columns {cols}; it needs image_path and order "
                                  "(image_path relative to the document folder, order an integer)")
        rows = [{(k or "").strip(): (v or "").strip() for k, v in r.items()} for r in reader]
    entries: list[tuple[int, Path]] = []
    seen: dict[int, int] = {}
    for line, r in enumerate(rows, start=2):  # line 1 is the header
        try:
            order = int(r["order"])
        except ValueError:
            raise WrmilInputError(f"order CSV {csv_path} line {line}: order {r['order']!r} is not an integer") from None
        if order in seen:
            raise WrmilInputError(f"order CSV {csv_path} line {line}: order {order} repeats line {seen[order]}; "
                                  "each word needs its own position")
        seen[order] = line
        if not r["image_path"]:
            raise WrmilInputError(f"order CSV {csv_path} line {line}: empty image_path")
        p = (folder / r["image_path"]).resolve()
        if not p.is_file():
            raise WrmilInputError(f"order CSV {csv_path} line {line}: image {r['image_path']!r} not found "
                                  f"(looked for {p}); paths are relative to {folder}")
        entries.append((order, p))
    return [p for _, p in sorted(entries, key=lambda e: e[0])]


def document_words(folder: Path, images: list[Path], doc_id: str | None = None) -> pl.DataFrame:
    """The words table (``wrmil_core/schema.py``) of a questioned document: writer -1, one doc id."""
    n = len(images)
    return pl.DataFrame({
        "word_id": pl.Series(range(n), dtype=pl.Int64),
        "writer": pl.Series([-1] * n, dtype=pl.Int64),
        "doc_id": pl.Series([doc_id or folder.name or "questioned"] * n, dtype=pl.Utf8),
        "position": pl.Series(range(n), dtype=pl.Int32),
        "path": pl.Series([str(p.resolve()) for p in images], dtype=pl.Utf8),
        "text": pl.Series([""] * n, dtype=pl.Utf8),
        "repetition": pl.Series([0] * n, dtype=pl.Int32),
        "session": pl.Series([-1] * n, dtype=pl.Int32),
    })


# --------------------------------------------------------------------------------------------
# Geometry and aggregation (pure numpy, no models)


def window_starts(n_words: int, window_size: int) -> np.ndarray:
    """Starts of non-overlapping windows; one extra end-aligned window covers a remainder."""
    starts = list(range(0, n_words - window_size + 1, window_size))
    if starts and starts[-1] + window_size < n_words:
        starts.append(n_words - window_size)
    return np.asarray(starts, dtype=np.int64)


def sliding_bags(n_windows: int, bag_size: int) -> np.ndarray:
    """Window indices of each bag ``(n_bags, k)``: stride-1 runs of ``bag_size`` windows, or one
    bag of all windows when there are fewer than ``bag_size``."""
    k = min(bag_size, n_windows)
    return np.arange(n_windows - k + 1)[:, None] + np.arange(k)[None, :]


def window_probabilities(model_name: str, bag_probs: np.ndarray, window_raw: np.ndarray) -> np.ndarray:
    """Window scores on the bag-probability scale, ``(n_bags, k)``.

    For models whose bag logit is the (smooth) max of window scores, ``sigmoid(window score)``:
    a window scores what the bag would if it held only that kind of window. For attention
    pooling (abmil, gated_abmil), the bag probability shared out by attention relative to the
    bag's most attended window.
    """
    if model_name in MAX_POOLED_MODELS:
        return 1.0 / (1.0 + np.exp(-window_raw))
    top = np.maximum(window_raw.max(axis=1, keepdims=True), 1e-12)
    return bag_probs[:, None] * window_raw / top


def aggregate(bags: np.ndarray, window_values: np.ndarray, n_windows: int) -> np.ndarray:
    """Per-window score: max over the bags that hold the window."""
    out = np.full(n_windows, -np.inf)
    np.maximum.at(out, bags.ravel(), window_values.ravel())
    return out


def word_distances(emb: np.ndarray) -> np.ndarray:
    """Cosine distance of each word embedding from the mean of all other words of the document."""
    n = emb.shape[0]
    others = (emb.sum(axis=0, keepdims=True) - emb) / max(n - 1, 1)
    num = (emb * others).sum(axis=1)
    den = np.linalg.norm(emb, axis=1) * np.linalg.norm(others, axis=1) + 1e-12
    return 1.0 - num / den


# --------------------------------------------------------------------------------------------
# Models


_REQUIRED_KEYS = {"embedding model": ("backbone", "emb_dim"),
                  "MIL model": ("model_name", "dim", "window_size", "bag_size")}


def _read_config(model_dir: Path, what: str) -> dict[str, Any]:
    """A model directory's config.json, refused when absent or not of the expected kind."""
    cfg_path = Path(model_dir) / "config.json"
    if not cfg_path.is_file() or not (Path(model_dir) / "model.safetensors").is_file():
        raise WrmilInputError(f"{what} {model_dir} has no config.json and model.safetensors; give a model "
                              "directory written by wrmil")
    try:
        cfg = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as e:
        raise WrmilInputError(f"{cfg_path} is not valid JSON ({e}); re-materialise the model") from e
    missing = [k for k in _REQUIRED_KEYS[what] if k not in cfg]
    if missing:
        other = "MIL model" if what == "embedding model" else "embedding model"
        raise WrmilInputError(f"{model_dir} is not an {what} directory (its config.json lacks {missing}); "
                              f"is it the {other}? Check --embedding-model and --mil-model")
    return cfg


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


def _load_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except json.JSONDecodeError as e:
        raise WrmilInputError(f"{path} is not valid JSON ({e}); re-materialise the asset that writes it") from e


def choose_model_name(mil_record: dict[str, Any], report_record: dict[str, Any] | None = None,
                      name: str | None = None) -> str:
    """The MIL model to use: ``name``, else the report's best model, else the best val AUC."""
    models = mil_record.get("models", {})
    if not models:
        raise WrmilInputError("the mil_model record lists no models; materialise mil_model first (`wrmil run`)")
    if name:
        if name not in models:
            raise WrmilInputError(f"MIL model {name!r} is not among the trained models {sorted(models)}")
        return name
    best = (report_record or {}).get("best_model")
    if best in models:
        return best
    return max(models, key=lambda n: (models[n].get("val_auc") is not None, models[n].get("val_auc") or 0.0))


def resolve_model_dirs(artifact_dir: str | Path | None = None, model_name: str | None = None,
                       embedding_model_dir: str | Path | None = None,
                       mil_model_dir: str | Path | None = None) -> tuple[Path, Path]:
    """``(embedding_model_dir, mil_model_dir)``: explicit directories win, else the latest
    materialised models recorded under ``<artifact_dir>/assets`` (``mil_model.json``,
    ``arcface_model.json``, ``difficulty_report.json`` for the default model)."""
    base = Path(artifact_dir) if artifact_dir else None
    assets = base / "assets" if base else None
    if mil_model_dir is None:
        if assets is None:
            raise WrmilInputError("no MIL model: pass --mil-model DIR or --artifact-dir with materialised models")
        mil_rec = _load_json(assets / "mil_model.json")
        if mil_rec is None:
            raise WrmilInputError(f"no materialised MIL models under {assets} (mil_model.json missing); run "
                                  "`wrmil run` first, or pass --mil-model DIR and --embedding-model DIR")
        report = _load_json(assets / "difficulty_report.json") or _load_json(base / "report" / "report.json")
        name = choose_model_name(mil_rec, report, model_name)
        mil_model_dir = mil_rec["models"][name]["model_dir"]
    elif model_name:
        raise WrmilInputError("give either --model NAME (a trained model) or --mil-model DIR, not both")
    if embedding_model_dir is None:
        rec = _load_json(assets / "arcface_model.json") if assets is not None else None
        if rec and rec.get("model_dir"):
            embedding_model_dir = rec["model_dir"]
        else:
            raise WrmilInputError("no embedding model: pass --embedding-model DIR, or --artifact-dir with a "
                                  "materialised arcface_model")
    for d, what in ((embedding_model_dir, "embedding model"), (mil_model_dir, "MIL model")):
        if not Path(d).is_dir():
            raise WrmilInputError(f"{what} directory {d} does not exist; re-materialise it or pass another path")
    return Path(embedding_model_dir), Path(mil_model_dir)


# --------------------------------------------------------------------------------------------
# Result


@dataclass
class DocumentScore:
    """The score of one questioned document (see the module docstring for the aggregation)."""

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
    from wrmil_core.embedding.infer import embed_words, embedding_matrix, load_embedding_model
    from wrmil_core.mil.train import load_mil_model, score_bags

    say = speaker(log)
    t0 = time.perf_counter()
    embedding_model_dir, mil_model_dir = Path(embedding_model_dir), Path(mil_model_dir)
    folder, images = list_document_images(path, order_csv)
    emb_cfg = _read_config(embedding_model_dir, "embedding model")
    mil_cfg = _read_config(mil_model_dir, "MIL model")
    check_model_pair(emb_cfg, mil_cfg, embedding_model_dir, mil_model_dir)
    ws, bag_size = int(mil_cfg["window_size"]), int(mil_cfg["bag_size"])
    thresholds = {k: float(v) for k, v in (mil_cfg.get("thresholds") or {}).items()}
    if not thresholds:
        raise WrmilInputError(f"MIL model {mil_model_dir} has no saved thresholds; re-materialise mil_model")
    n = len(images)
    if n < ws:
        raise WrmilInputError(f"questioned document {folder} has {n} word image(s), fewer than one window of "
                              f"{ws} words; scoring needs at least {2 * ws} words (two windows to compare)")
    if n < 2 * ws:
        raise WrmilInputError(f"questioned document {folder} has {n} word images, only one window of {ws}; "
                              f"scoring compares windows, so it needs at least {2 * ws} words")
    refuse_unreadable(images, f"document {folder}")
    t_read = time.perf_counter()

    dev = resolve_device(device)
    emb_model, _ = load_embedding_model(embedding_model_dir, dev)
    words = document_words(folder, images)
    say(f"score: embedding {n} words of {folder}")
    emb_df = embed_words(emb_model, words, batch_size=batch_size, device=dev, num_workers=0, log=log)
    emb_df = emb_df.sort("position") if "position" in emb_df.columns else emb_df.sort("word_id")
    if emb_df.height != n:
        raise WrmilInputError(f"the embedding step returned {emb_df.height} vectors for {n} word images of "
                              f"{folder}; check the images are readable word crops")
    emb = embedding_matrix(emb_df)
    emb_model_id = emb_df["model_id"][0] if "model_id" in emb_df.columns else emb_cfg.get("model_id")
    t_embed = time.perf_counter()

    model, mil_cfg = load_mil_model(mil_model_dir, dev)
    if emb.shape[1] != model.dim:  # the config check above covers this unless a config lacks emb_dim
        raise WrmilInputError(f"MIL model {mil_model_dir} expects {model.dim}-d embeddings, embedding model "
                              f"{embedding_model_dir} gave {emb.shape[1]}-d; use matching models")
    starts = window_starts(n, ws)
    word_idx = starts[:, None] + np.arange(ws)[None, :]              # (W, ws)
    bags = sliding_bags(len(starts), bag_size)                        # (B, k)
    x = torch.from_numpy(emb[word_idx[bags]])                         # (B, k, ws, dim)
    nb = len(bags)
    bt = BagTensors(x=x, label=torch.zeros(nb, dtype=torch.long),
                    window_foreign=torch.zeros(bags.shape, dtype=torch.bool), ratio=np.zeros(nb),
                    foreign_word_frac=np.zeros(nb), bag_id=np.arange(nb), model_id=str(emb_model_id))
    bag_probs, win_raw = score_bags(model, bt)
    name = str(mil_cfg["model_name"])
    win_prob = window_probabilities(name, bag_probs, win_raw)
    window_scores = aggregate(bags, win_prob, len(starts))
    window_raw = aggregate(bags, win_raw, len(starts))
    word_scores = np.full(n, -np.inf)
    for w, idx in enumerate(word_idx):
        word_scores[idx] = np.maximum(word_scores[idx], window_scores[w])
    dist = word_distances(emb)
    prob = float(bag_probs.max())
    t_mil = time.perf_counter()

    order = sorted(range(n), key=lambda i: (-word_scores[i], -dist[i], i))
    window_of: dict[int, int] = {}  # the highest-scored window holding each word
    for w, idx in enumerate(word_idx.tolist()):
        for i in idx:
            if i not in window_of or window_scores[w] > window_scores[window_of[i]]:
                window_of[i] = w
    files = [str(p.relative_to(folder)) if p.is_relative_to(folder) else str(p) for p in images]
    top = [{"rank": r + 1, "index": i, "file": files[i], "score": float(word_scores[i]),
            "word_distance": float(dist[i]), "window": int(window_of[i])}
           for r, i in enumerate(order[:max(0, top_k)])]
    result = DocumentScore(
        document=str(folder), files=files, probability=prob, thresholds=thresholds,
        decisions={k: bool(prob >= v) for k, v in thresholds.items()},
        window_starts=starts.tolist(), window_scores=window_scores.tolist(), window_raw=window_raw.tolist(),
        bag_probabilities=bag_probs.tolist(), word_scores=word_scores.tolist(), word_distances=dist.tolist(),
        top_words=top, model_name=name, mil_model_dir=str(mil_model_dir), mil_model_id=mil_cfg.get("model_id"),
        embedding_model_dir=str(embedding_model_dir), embedding_model_id=str(emb_model_id),
        window_size=ws, bag_size=bag_size, short_document=len(starts) < bag_size,
        seconds={"read": round(t_read - t0, 3), "embed": round(t_embed - t_read, 3),
                 "mil": round(t_mil - t_embed, 3), "total": round(t_mil - t0, 3)},
    )
    say(f"score: P(more than one writer) = {prob:.3f} ({nb} bag(s), {t_mil - t0:.1f} s)")
    return result


# --------------------------------------------------------------------------------------------
# Outputs


def render_strip(score: DocumentScore, out_path: str | Path, *, row_width: int = 1600, word_height: int = 48,
                 max_words: int = 1000) -> Path:
    """A PNG of the word images in reading order, each tinted by its score (green below the
    decision threshold, yellow at it, red above); the top-scored words carry their rank."""
    import matplotlib
    from matplotlib.colors import TwoSlopeNorm
    from PIL import Image, ImageDraw, ImageFont

    cmap = matplotlib.colormaps["RdYlGn_r"]
    key, thr = score.decision_threshold
    s = np.asarray(score.word_scores[:max_words], dtype=np.float64)
    eps = 1e-3
    norm = TwoSlopeNorm(vcenter=thr, vmin=min(float(s.min()), thr - eps), vmax=max(float(s.max()), thr + eps))
    font = ImageFont.load_default()
    rank = {w["index"]: w["rank"] for w in score.top_words}
    pad, label_h, header_h = 6, 12, 44
    tiles: list[Image.Image] = []
    folder = Path(score.document)
    for i, rel in enumerate(score.files[:max_words]):
        with Image.open(folder / rel) as im:
            g = im.convert("L")
        w = max(1, round(g.width * word_height / max(g.height, 1)))
        g = g.resize((min(w, row_width - 2 * pad), word_height), Image.BILINEAR)
        rgb = np.asarray(cmap(norm(s[i]))[:3]) * 255
        bg = 0.55 * rgb + 0.45 * 255  # light tint; ink (dark) stays dark
        a = np.asarray(g, dtype=np.float32)[..., None] / 255.0
        tile_rgb = (a * bg + (1 - a) * (0.35 * rgb)).clip(0, 255).astype(np.uint8)
        tile = Image.new("RGB", (g.width + 2 * pad, word_height + label_h + 2 * pad), tuple(int(c) for c in rgb))
        tile.paste(Image.fromarray(tile_rgb, "RGB"), (pad, pad + label_h))
        d = ImageDraw.Draw(tile)
        label = f"{i}" + (f"  #{rank[i]}" if i in rank else "")
        d.text((pad, 1), label, fill=(0, 0, 0), font=font)
        tiles.append(tile)
    rows: list[list[Image.Image]] = [[]]
    x = 0
    for t in tiles:
        if rows[-1] and x + t.width > row_width:
            rows.append([])
            x = 0
        rows[-1].append(t)
        x += t.width + 2
    row_h = word_height + label_h + 2 * pad + 2
    canvas = Image.new("RGB", (row_width, header_h + row_h * len(rows)), (255, 255, 255))
    d = ImageDraw.Draw(canvas)
    verdict = "more than one writer" if score.decisions[key] else "one writer"
    d.text((6, 4), f"{Path(score.document).name}: P(more than one writer) = {score.probability:.3f} -> {verdict} "
                   f"(threshold {key} {thr:.3f}); model {score.model_name}", fill=(0, 0, 0), font=font)
    d.text((6, 18), "word colour = score of its window: green below the threshold, yellow at it, red above; "
                    "#k = rank among the most suspicious words", fill=(60, 60, 60), font=font)
    # Colour bar
    for j in range(300):
        v = norm.vmin + (norm.vmax - norm.vmin) * j / 299
        d.line([(row_width - 320 + j, 32), (row_width - 320 + j, 40)], fill=tuple(int(255 * c) for c in cmap(norm(v))[:3]))
    d.text((row_width - 320, 2), f"{norm.vmin:.2f} .. {thr:.2f} .. {norm.vmax:.2f}", fill=(0, 0, 0), font=font)
    y = header_h
    for row in rows:
        x = 0
        for t in row:
            canvas.paste(t, (x, y))
            x += t.width + 2
        y += row_h
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out_path, format="PNG")
    return out_path


def write_outputs(score: DocumentScore, out_dir: str | Path) -> dict[str, Path]:
    """Write ``score.json`` and ``strip.png`` to ``out_dir``; record the paths in ``score.outputs``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    strip = render_strip(score, out_dir / STRIP_PNG)
    json_path = out_dir / SCORE_JSON
    score.outputs = {"json": str(json_path), "strip": str(strip)}
    tmp = json_path.with_suffix(".json.tmp")
    tmp.write_text(score.to_json())
    tmp.replace(json_path)
    return {"json": json_path, "strip": strip}


__all__ = [
    "DocumentScore", "score_document", "write_outputs", "render_strip", "resolve_model_dirs", "choose_model_name",
    "list_document_images", "check_model_pair", "window_starts", "sliding_bags",
    "window_probabilities", "natural_key", "document_words",
]
