"""The cross-validation report (Markdown and JSON). Its first line says how many writers and
documents stand behind the figures, and says plainly when they are too few to steer by."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from wrmil_core.embedding.evaluate import MULTIWORD_SIZES
from wrmil_core.report.tables import fmt, markdown_table

# Below either count a figure moves by several hundredths with the choice of writers.
FEW_PER_FOLD = 30
FEW_IN_ALL = 100
MW = "/".join(map(str, MULTIWORD_SIZES))  # the multi-word sizes, as the embedding table's headers name them


def few_writers(counts: dict[str, Any]) -> bool:
    """True when a fold tests fewer than ``FEW_PER_FOLD`` writers or all folds fewer than ``FEW_IN_ALL``."""
    return counts["min_test_writers_per_fold"] < FEW_PER_FOLD or counts["n_test_writers"] < FEW_IN_ALL


def first_line(counts: dict[str, Any]) -> str:
    """``N test writers (D documents, W words) over k writer folds ...``, with the warning when few."""
    lo, hi = counts["min_test_writers_per_fold"], counts["max_test_writers_per_fold"]
    per = f"{lo}" if lo == hi else f"{lo}-{hi}"
    line = (f"{counts['n_test_writers']} test writers ({counts['n_test_documents']} documents, "
            f"{counts['n_test_words']} words) stand behind these figures: every writer tested once over "
            f"{counts['n_folds']} writer folds, {per} test writers per fold.")
    if few_writers(counts):
        line += (f" These are few writers (fewer than {FEW_PER_FOLD} per fold or {FEW_IN_ALL} in all): the figures "
                 "are noisy; read the per-fold spread, and do not choose between recipes on differences inside it.")
    return line


def _spread(s: dict[str, Any]) -> str:
    if s["mean"] is None:
        return "n/a"
    sd = "" if s["sd"] is None else f" ± {s['sd']:.3f}"
    return f"{s['mean']:.3f}{sd} [{s['min']:.3f}, {s['max']:.3f}]"


def embedding_table(summary: dict[str, Any]) -> str:
    """Pooled verification and retrieval per embedding, with the per-fold AUC spread and the counts, and
    the multi-word AUC / EER (one document's n words against another document's) per n."""
    rows = []
    for name, e in summary["embedding"].items():
        rows.append([name, fmt(e["auc"]), fmt(e["eer"]), fmt(e["tar_far_1e-2"]), fmt(e["top1"]), fmt(e["map"]),
                     _spread(e["spread"]["auc"]), str(e["n_writers"]), str(e["n_images"]), str(e["n_pairs"]),
                     _by_n(e, "auc"), _by_n(e, "eer"), _by_n(e, "n_writers")])
    return markdown_table(["embedding", "AUC", "EER", "TAR@FAR1e-2", "top-1", "mAP", "per-fold AUC mean ± sd [min, max]",
                   "writers", "words", "pairs", f"doc vs doc AUC, n = {MW}", f"doc vs doc EER, n = {MW}",
                   f"writers with a doc of n words, n = {MW}"], rows)


def _by_n(figures: dict[str, Any], key: str) -> str:
    """``0.712 / 0.803 / ...``: the multi-word ``key`` at each n of MULTIWORD_SIZES (n/a where not measured)."""
    values = [figures.get(f"multiword_{key}_n{n}") for n in MULTIWORD_SIZES]
    return " / ".join(str(v) if isinstance(v, int) else fmt(v) for v in values)


def difficulty_label(row: dict[str, Any]) -> str:
    """``5%``, or ``5% scattered`` for a geometry other than one contiguous passage."""
    geometry = row.get("geometry", "contiguous")
    return f"{row['ratio'] * 100:.6g}%" + ("" if geometry == "contiguous" else f" {geometry}")


def detection_table(summary: dict[str, Any]) -> str:
    """Pooled detector AUC per difficulty (95% CI), with the per-fold spread and the bags, documents
    and writers behind each row."""
    rows = []
    for d in summary["detection"]:
        ci = "" if d["auc_lo"] is None else f" [{d['auc_lo']:.3f}, {d['auc_hi']:.3f}]"
        rows.append([d["model"], difficulty_label(d), fmt(d["auc"]) + ci, _spread(d["spread"]),
                     f"{d['n_genuine']} + {d['n_contaminated']}", str(d["n_documents"]), str(d["n_writers"])])
    return markdown_table(["model", "difficulty", "pooled AUC [95% CI]", "per-fold AUC mean ± sd [min, max]",
                   "genuine + contaminated bags", "documents", "writers"], rows)


def fold_table(summary: dict[str, Any]) -> str:
    """One line per fold: its writers and documents, the embedding's figures, the best detector."""
    rows = [[str(r["fold"]), f"{r['train_writers']}/{r['val_writers']}/{r['test_writers']}", str(r["test_documents"]),
             str(r["test_words"]), fmt(r["auc"]), fmt(r["eer"]), fmt(r["top1"]), fmt(r["map"]),
             f"{r['best_detector'] or 'n/a'} {fmt(r['best_detector_mean_auc'])}"] for r in summary["per_fold"]]
    return markdown_table(["fold", "train/val/test writers", "test documents", "test words", "AUC", "EER", "top-1", "mAP",
                   "best detector (mean AUC)"], rows)


def report_markdown(summary: dict[str, Any]) -> str:
    """The whole report; its first line is :func:`first_line`."""
    return "\n\n".join([
        first_line(summary["counts"]),
        "# Writer-fold cross-validation",
        "## Embedding on unseen writers (pooled over all folds' test writers)",
        ("Verification pairs and retrieval queries stay inside one fold's test writers (each fold has its own "
         "model); the pooled figures come from all of them together, not from a mean of fold figures. `untrained` "
         "and `pixels` are the shortcut controls: what the architecture and the capture alone give. The `doc vs doc` "
         "columns score the mean embedding of n words of one document against n words of another document "
         "(same writer or not), pooled the same way; n/a where no writer has two documents of n words."),
        embedding_table(summary),
        "## Detectors per difficulty (pooled over all folds' test bags)",
        ("Scores of different folds come from different models; pooling them also charges a detector for "
         "scores that drift between folds."),
        detection_table(summary),
        "## Per fold",
        fold_table(summary),
    ]) + "\n"


def write_report(summary: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write ``cv_report.md`` and ``cv_report.json`` (the summary with the first line) under ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / "cv_report.md", "json": out / "cv_report.json"}
    texts = {"md": report_markdown(summary),
             "json": json.dumps({"first_line": first_line(summary["counts"]), **summary}, indent=1, default=str)}
    for kind, path in paths.items():
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        tmp.write_text(texts[kind])
        tmp.replace(path)
    return paths
