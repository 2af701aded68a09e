"""The difficulty report: every model side by side, per contamination level, on the test bags.

Per model and per difficulty (0% = genuine bags, then each contamination ratio): ROC AUC of
genuine vs that difficulty with a bootstrap 95% CI, the share of bags flagged at each threshold
saved with the model (false-positive rate on the genuine row, detection rate on the others),
localisation (AUC of window scores against the true foreign windows, top-1 hit rate), and the
original's overall F1/recall/precision/AUC for comparability. Written as ``report.html``
(self-contained, plots embedded), ``report.md`` (+ PNGs) and ``report.json``.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from wrmil_core.bags.tensors import BagTensors
from wrmil_core.mil.metrics import (bootstrap_auc_ci, classification_metrics, localisation, rates_at_threshold,
                                    roc_auc, roc_points)

DIFFICULTIES: tuple[float, ...] = (0.05, 0.10, 0.20, 0.30)
BASELINE = "abmil"
ModelScores = tuple[np.ndarray, np.ndarray, dict[str, float]]

THRESHOLD_LABELS = {"max_f1": "max-F1 threshold", "fpr_5": "5%-FPR threshold"}


def pct_label(ratio: float) -> str:
    """0.05 -> '5', 0.125 -> '12.5' (used in headline keys and tables)."""
    return f"{ratio * 100:.6g}"


@dataclass
class Report:
    """The built report: numbers, the best model, and where the files are."""

    rows: list[dict[str, Any]]
    overall: dict[str, dict[str, float | None]]
    difficulties: list[float]
    best_model: str | None
    gain_over_abmil: dict[str, float | None]
    markdown_table: str
    headline: dict[str, float]
    main_plot_png: Path
    paths: dict[str, Path] = field(default_factory=dict)
    summary: str = ""

    @property
    def metadata(self) -> dict[str, int | float | str]:
        """Flat summary for asset metadata: best model, summary sentence, file paths."""
        md: dict[str, int | float | str] = {"best_model": self.best_model or "n/a", "summary": self.summary}
        md.update({f"path_{k}": str(v) for k, v in self.paths.items()})
        return md


def _fmt(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _ratio_mask(ratio: np.ndarray, r: float) -> np.ndarray:
    return np.isclose(ratio, r, rtol=0, atol=1e-9)


def _difficulties(test: BagTensors) -> list[float]:
    observed = {round(float(r), 9) for r in np.unique(test.ratio) if r > 0}
    return sorted(set(DIFFICULTIES) | observed)


def _check_inputs(results: dict[str, ModelScores], test: BagTensors) -> None:
    if not results:
        raise ValueError("build_report needs at least one model's scores")
    n, w = len(test), test.window_foreign.shape[1]
    for name, (probs, ws, thr) in results.items():
        if np.shape(probs) != (n,) or np.shape(ws) != (n, w):
            raise ValueError(f"scores of model {name!r} have shapes {np.shape(probs)}, {np.shape(ws)}; "
                             f"expected ({n},) and ({n}, {w}) for the test bags")
        if not thr:
            raise ValueError(f"model {name!r} has no saved thresholds")


def _evaluate(results: dict[str, ModelScores], test: BagTensors, difficulties: list[float], n_boot: int,
              seed: int) -> tuple[list[dict[str, Any]], dict[str, dict[str, float | None]]]:
    y = test.label.numpy().astype(int)
    wf = test.window_foreign.numpy().astype(bool)
    genuine = y == 0
    rows, overall = [], {}
    for name, (probs, ws, thr) in results.items():
        probs, ws = np.asarray(probs, dtype=np.float64), np.asarray(ws, dtype=np.float64)
        row0: dict[str, Any] = {"model": name, "difficulty": "0%", "ratio": 0.0, "n_bags": int(genuine.sum()),
                                "foreign_frac": 0.0 if genuine.any() else None,
                                "auc": None, "auc_lo": None, "auc_hi": None, "loc_auc": None, "top1": None}
        for t_name, t in thr.items():
            row0[f"flagged_{t_name}"] = rates_at_threshold(y[genuine], probs[genuine], t)["fpr"]
        rows.append(row0)
        for r in difficulties:
            cont = (y == 1) & _ratio_mask(test.ratio, r)
            sel = genuine | cont
            ci = bootstrap_auc_ci(y[sel], probs[sel], n_boot=n_boot, seed=seed)
            loc = localisation(ws[cont], wf[cont], y[cont])
            row = {"model": name, "difficulty": f"{pct_label(r)}%", "ratio": r, "n_bags": int(cont.sum()),
                   "foreign_frac": float(test.foreign_word_frac[cont].mean()) if cont.any() else None,
                   "auc": roc_auc(y[sel], probs[sel]), "auc_lo": ci[0] if ci else None, "auc_hi": ci[1] if ci else None,
                   "loc_auc": loc["auc"], "top1": loc["top1"]}
            for t_name, t in thr.items():
                row[f"flagged_{t_name}"] = rates_at_threshold(y[cont], probs[cont], t)["detection_rate"]
            rows.append(row)
        main_thr = thr.get("max_f1", next(iter(thr.values())))
        ov = classification_metrics(y, probs, main_thr)
        ci = bootstrap_auc_ci(y, probs, n_boot=n_boot, seed=seed)
        ov.update({"auc_lo": ci[0] if ci else None, "auc_hi": ci[1] if ci else None})
        loc = localisation(ws, wf, y)
        ov.update({"loc_auc": loc["auc"], "top1": loc["top1"]})
        overall[name] = ov
    return rows, overall


def _mean_auc(rows: list[dict[str, Any]], model: str) -> float | None:
    vals = [r["auc"] for r in rows if r["model"] == model and r["ratio"] > 0 and r["auc"] is not None]
    return float(np.mean(vals)) if vals else None


def _auc_of(rows: list[dict[str, Any]], model: str, ratio: float) -> float | None:
    for r in rows:
        if r["model"] == model and r["ratio"] == ratio:
            return r["auc"]
    return None


def _threshold_names(results: dict[str, ModelScores]) -> list[str]:
    names: list[str] = []
    for _p, _w, thr in results.values():
        names += [t for t in thr if t not in names]
    order = list(THRESHOLD_LABELS)
    return sorted(names, key=lambda t: (order.index(t) if t in order else len(order), t))


def _markdown_table(rows: list[dict[str, Any]], thr_names: list[str], difficulties: list[float]) -> str:
    head = ["difficulty", "model", "bags", "true foreign %", "AUC vs genuine [95% CI]"]
    head += [f"flagged @ {THRESHOLD_LABELS.get(t, t)}" for t in thr_names] + ["loc. AUC", "top-1 hit"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    order = [0.0] + difficulties
    for ratio in order:
        for r in (r for r in rows if r["ratio"] == ratio):
            auc = "n/a" if r["auc"] is None else (
                f"{r['auc']:.3f} [{_fmt(r['auc_lo'])}, {_fmt(r['auc_hi'])}]")
            label = "0% (genuine: FPR)" if ratio == 0 else r["difficulty"]
            ff = "n/a" if r["foreign_frac"] is None else f"{100 * r['foreign_frac']:.1f}"
            cells = [label, r["model"], str(r["n_bags"]), ff, auc if ratio > 0 else "—"]
            cells += [_fmt(r.get(f"flagged_{t}")) for t in thr_names]
            cells += [_fmt(r["loc_auc"]) if ratio > 0 else "—", _fmt(r["top1"]) if ratio > 0 else "—"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _overall_table(overall: dict[str, dict[str, float | None]], val_auc: dict[str, float] | None) -> str:
    head = ["model", "val AUC", "test AUC [95% CI]", "F1", "recall", "precision", "loc. AUC", "top-1 hit"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, o in overall.items():
        auc = "n/a" if o["auc"] is None else f"{o['auc']:.3f} [{_fmt(o['auc_lo'])}, {_fmt(o['auc_hi'])}]"
        v = (val_auc or {}).get(name)
        lines.append("| " + " | ".join([name, _fmt(v), auc, _fmt(o["f1"]), _fmt(o["recall"]), _fmt(o["precision"]),
                                        _fmt(o["loc_auc"]), _fmt(o["top1"])]) + " |")
    return "\n".join(lines)


def _pivot_table(rows: list[dict[str, Any]], models: list[str], difficulties: list[float]) -> str:
    head = ["model"] + [f"AUC {pct_label(r)}%" for r in difficulties] + ["mean"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in models:
        lines.append("| " + " | ".join([m] + [_fmt(_auc_of(rows, m, r)) for r in difficulties]
                                        + [_fmt(_mean_auc(rows, m))]) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------- plots

def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def _plot_main(rows, models, difficulties, thr_names, path: Path) -> Path:
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    xs = [100 * r for r in difficulties]
    det_thr = "fpr_5" if "fpr_5" in thr_names else thr_names[0]
    markers, styles = "osD^vP*X", ["-", "--", "-.", ":"]
    # Nudge models apart on x so equal values (e.g. several at AUC 1.0) stay visible.
    span = 0.012 * (max(xs) - min(xs) if len(xs) > 1 else 10)
    for k, m in enumerate(models):
        off = (k - (len(models) - 1) / 2) * span
        style = dict(marker=markers[k % len(markers)], ls=styles[k % len(styles)], alpha=0.85, label=m)
        pts = [(100 * r["ratio"] + off, r) for r in rows if r["model"] == m and r["ratio"] > 0]
        a = [(x, r["auc"], r["auc_lo"], r["auc_hi"]) for x, r in pts if r["auc"] is not None]
        if a:
            x, v, lo, hi = map(np.asarray, zip(*a))
            ax1.errorbar(x, v, yerr=[v - lo, hi - v], capsize=3, **style)
        d = [(x, r[f"flagged_{det_thr}"]) for x, r in pts if r.get(f"flagged_{det_thr}") is not None]
        if d:
            ax2.plot(*zip(*d), **style)
    ax1.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax1.set(xlabel="contamination (% foreign)", ylabel="ROC AUC vs genuine (95% CI)", title="Separability",
            xticks=xs, ylim=(min([0.4] + [r["auc_lo"] - 0.03 for r in rows if r["auc_lo"] is not None]), 1.02))
    ax2.set(xlabel="contamination (% foreign)", ylabel="detection rate",
            title=f"Detection at the {THRESHOLD_LABELS.get(det_thr, det_thr)} (fixed on val)", xticks=xs, ylim=(0, 1.02))
    for ax in (ax1, ax2):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "n/a (no contaminated bags)", ha="center", transform=ax.transAxes)
    return _save(fig, path)


def _plot_roc(results, test: BagTensors, difficulties, path: Path) -> Path:
    y = test.label.numpy()
    n = len(difficulties)
    cols = min(n, 4)
    nrows = int(math.ceil(n / cols))
    fig = Figure(figsize=(3.6 * cols, 3.5 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, cols)).ravel()
    for ax, r in zip(axes, difficulties):
        sel = (y == 0) | ((y == 1) & _ratio_mask(test.ratio, r))
        for m, (probs, _ws, _t) in results.items():
            pts = roc_points(y[sel], np.asarray(probs)[sel])
            if pts is not None:
                ax.plot(*pts, label=f"{m} ({roc_auc(y[sel], np.asarray(probs)[sel]):.2f})")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        ax.set(title=f"{pct_label(r)}% foreign vs genuine", xlabel="false-positive rate")
        if ax is axes[0] or cols == 1:
            ax.set_ylabel("detection rate")
        if ax.lines[:-1]:
            ax.legend(fontsize=7, loc="lower right")
        else:
            ax.text(0.5, 0.5, "n/a (no bags)", ha="center", transform=ax.transAxes)
    for ax in axes[n:]:
        ax.set_visible(False)
    return _save(fig, path)


def _plot_examples(results, test: BagTensors, difficulties, path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    y, wf = test.label.numpy(), test.window_foreign.numpy()
    picks = []
    for r in difficulties:
        idx = np.flatnonzero((y == 1) & _ratio_mask(test.ratio, r))
        if idx.size:
            picks.append((r, int(rng.choice(idx))))
    g = np.flatnonzero(y == 0)
    if g.size:
        picks.insert(0, (0.0, int(rng.choice(g))))
    fig = Figure(figsize=(11, 2.4 * max(1, len(picks))), layout="constrained")
    axes = np.atleast_1d(fig.subplots(max(1, len(picks)), 1, squeeze=False)).ravel()
    models = list(results)
    n_win = wf.shape[1]
    width = 0.8 / max(1, len(models))
    for ax, (r, i) in zip(axes, picks):
        for w in np.flatnonzero(wf[i]):
            ax.axvspan(w - 0.45, w + 0.45, color="tab:red", alpha=0.12, lw=0)
        for k, m in enumerate(models):
            s = np.asarray(results[m][1][i], dtype=np.float64)
            span = s.max() - s.min()
            s = (s - s.min()) / span if span > 0 else np.zeros_like(s)  # scales differ across models
            ax.bar(np.arange(n_win) - 0.4 + width * (k + 0.5), s, width=width, label=m)
        title = "genuine" if r == 0 else f"{pct_label(r)}% ({100 * test.foreign_word_frac[i]:.0f}% of words foreign)"
        ax.set_title(f"bag {int(test.bag_id[i])}: {title}", fontsize=9, loc="left")
        ax.set(ylabel="score (min-max)", xticks=range(n_win), ylim=(0, 1.05))
    fig.suptitle("Window scores of example test bags; red shading = windows holding foreign words", fontsize=10)
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize=8, ncol=len(models), loc="outside lower center")
    axes[-1].set_xlabel("window")
    return _save(fig, path)


# ---------------------------------------------------------------- writers

def _md_to_html_table(md: str) -> str:
    lines = [ln for ln in md.splitlines() if ln.strip()]
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
    head, body = cells[0], cells[2:]
    out = ["<table><thead><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head) + "</tr></thead><tbody>"]
    out += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body]
    return "".join(out) + "</tbody></table>"


def _b64(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def build_report(results: dict[str, ModelScores], test: BagTensors, out_dir: Path,
                 val_auc: dict[str, float] | None = None, n_boot: int = 1000, seed: int = 0,
                 title: str = "wrmil: multi-writer detection by difficulty") -> Report:
    """Evaluate every model's test scores per difficulty and write report.html/.md/.json + PNGs.

    ``results[name] = (bag_probs (B,), window_scores (B, n_win), thresholds)`` as returned by
    :func:`wrmil_core.mil.train.score_saved_models`. A difficulty with no bags in ``test`` is
    reported as n/a. The best model is the one with the highest mean AUC over difficulties.
    """
    _check_inputs(results, test)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    difficulties = _difficulties(test)
    models = list(results)
    thr_names = _threshold_names(results)
    rows, overall = _evaluate(results, test, difficulties, n_boot, seed)

    means = {m: _mean_auc(rows, m) for m in models}
    ranked = [m for m in models if means[m] is not None]
    best = max(ranked, key=lambda m: means[m]) if ranked else None  # type: ignore[arg-type, return-value]
    gain: dict[str, float | None] = {}
    for r in difficulties:
        b, a = (_auc_of(rows, best, r) if best else None), _auc_of(rows, BASELINE, r)
        gain[pct_label(r)] = None if (a is None or b is None) else b - a

    headline: dict[str, float] = {}
    for row in rows:
        m = row["model"]
        if row["ratio"] == 0:  # the genuine row: false-positive rate at each threshold
            headline.update({f"{m}/fpr_at_{t}": float(row[f"flagged_{t}"]) for t in thr_names
                             if row.get(f"flagged_{t}") is not None})
            continue
        tag = pct_label(row["ratio"])
        for key in ("auc", "auc_lo", "auc_hi", "loc_auc", "top1"):
            if row.get(key) is not None:
                headline[f"{m}/{key}_{tag}"] = float(row[key])
        headline.update({f"{m}/det_at_{t}_{tag}": float(row[f"flagged_{t}"]) for t in thr_names
                         if row.get(f"flagged_{t}") is not None})
    for m, o in overall.items():
        for key in ("auc", "f1", "recall", "precision"):
            if o[key] is not None:
                headline[f"{m}/overall_{key}"] = float(o[key])
        if means[m] is not None:
            headline[f"{m}/mean_auc"] = float(means[m])  # type: ignore[arg-type]
    if best is not None:
        headline["best/mean_auc"] = float(means[best])  # type: ignore[arg-type]
        headline.update({f"best/gain_over_abmil_{k}": float(v) for k, v in gain.items() if v is not None})

    if best is None:
        summary = "No model could be ranked: the test bags lack genuine or contaminated bags."
    elif BASELINE not in results:
        summary = f"Best model: {best} (mean AUC {means[best]:.3f}); {BASELINE} was not evaluated."
    else:
        parts = [f"{k}%: {'n/a' if v is None else f'{v:+.3f}'}" for k, v in gain.items()]
        summary = (f"Best model: {best} (mean AUC over difficulties {means[best]:.3f} vs {BASELINE} "
                   f"{_fmt(means[BASELINE])}). AUC gain over {BASELINE} by difficulty: " + ", ".join(parts) + ".")

    paths = {
        "main_plot": _plot_main(rows, models, difficulties, thr_names, out_dir / "detection_by_difficulty.png"),
        "roc_plot": _plot_roc(results, test, difficulties, out_dir / "roc_by_difficulty.png"),
        "examples_plot": _plot_examples(results, test, difficulties, out_dir / "example_bags.png", seed),
    }
    table = _markdown_table(rows, thr_names, difficulties)
    overall_md = _overall_table(overall, val_auc)
    pivot_md = _pivot_table(rows, models, difficulties)
    n_gen, n_con = int((test.label == 0).sum()), int((test.label == 1).sum())
    intro = (f"Test bags: {len(test)} ({n_gen} genuine, {n_con} contaminated); embedding model `{test.model_id}`. "
             "Thresholds were fixed on the validation bags. \"Flagged\" is the false-positive rate on the 0% "
             "(genuine) rows and the detection rate on the others. Localisation is over contaminated bags: "
             "AUC of window scores against windows holding foreign words, and how often the top-scored window "
             f"holds one. AUC CIs: {n_boot} stratified bootstrap resamples.")
    md = "\n\n".join([
        f"# {title}", f"**{summary}**", intro, "## AUC by difficulty", pivot_md, "## Per difficulty", table,
        "## Overall (the original's figures, at the max-F1 threshold)", overall_md,
        "## Plots", f"![detection by difficulty]({paths['main_plot'].name})",
        f"![ROC by difficulty]({paths['roc_plot'].name})", f"![example bags]({paths['examples_plot'].name})", ""])
    paths["md"] = out_dir / "report.md"
    paths["md"].write_text(md)

    css = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
           "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}th,td{border:1px solid #ccc;padding:3px 8px;"
           "text-align:right}th{background:#f0f0f0}td:first-child,td:nth-child(2){text-align:left}img{max-width:100%}")
    body = [f"<h1>{html.escape(title)}</h1>", f"<p><b>{html.escape(summary)}</b></p>", f"<p>{html.escape(intro)}</p>",
            "<h2>AUC by difficulty</h2>", _md_to_html_table(pivot_md),
            f"<img alt='detection by difficulty' src='{_b64(paths['main_plot'])}'>",
            "<h2>Per difficulty</h2>", _md_to_html_table(table),
            "<h2>Overall (the original's figures, at the max-F1 threshold)</h2>", _md_to_html_table(overall_md),
            "<h2>ROC curves</h2>", f"<img alt='ROC by difficulty' src='{_b64(paths['roc_plot'])}'>",
            "<h2>Example bags</h2>", f"<img alt='example bags' src='{_b64(paths['examples_plot'])}'>"]
    paths["html"] = out_dir / "report.html"
    paths["html"].write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                             f"<style>{css}</style></head><body>{''.join(body)}</body></html>")

    thresholds = {m: dict(t) for m, (_p, _w, t) in results.items()}
    doc = {"title": title, "summary": summary, "best_model": best, "gain_over_abmil": gain, "mean_auc": means,
           "difficulties": difficulties, "n_test_bags": len(test), "n_genuine": n_gen, "n_contaminated": n_con,
           "embedding_model_id": test.model_id, "thresholds": thresholds, "val_auc": val_auc, "rows": rows,
           "overall": overall, "headline": headline, "n_boot": n_boot}
    paths["json"] = out_dir / "report.json"
    paths["json"].write_text(json.dumps(doc, indent=2, allow_nan=False))
    return Report(rows=rows, overall=overall, difficulties=difficulties, best_model=best, gain_over_abmil=gain,
                  markdown_table=table, headline=headline, main_plot_png=paths["main_plot"], paths=paths,
                  summary=summary)


def check_beats_distance(val_auc: dict[str, float], baseline: str = "distance",
                         min_gain: float = 0.0) -> tuple[bool, dict[str, float | str]]:
    """Does some learned model's val AUC beat the training-free ``distance`` baseline by more than
    ``min_gain``? Returns ``(passed, metadata)`` for an asset check (warn when not passed).

    Passes vacuously (with a note) when the baseline or every learned model is missing.
    """
    md: dict[str, float | str] = {f"val_auc/{m}": float(v) for m, v in val_auc.items()}
    learned = {m: v for m, v in val_auc.items() if m != baseline}
    if baseline not in val_auc or not learned:
        md["note"] = f"nothing to compare: need '{baseline}' and at least one learned model"
        return True, md
    best = max(learned, key=learned.__getitem__)
    gain = learned[best] - val_auc[baseline]
    md.update({"baseline_val_auc": float(val_auc[baseline]), "best_learned_model": best,
               "best_learned_val_auc": float(learned[best]), "gain_over_baseline": float(gain),
               "models_not_beating_baseline": ", ".join(m for m, v in learned.items() if v <= val_auc[baseline] + min_gain)
               or "none"})
    return gain > min_gain, md


__all__: Sequence[str] = ["DIFFICULTIES", "Report", "build_report", "check_beats_distance", "pct_label"]
