"""A case report per questioned document: ``case_report.html`` beside ``score.json``.

One self-contained, printable HTML file (images embedded as data URIs, no external resource)
laid out after the ENFSI Guideline for Evaluative Reporting in Forensic Science (2015): the case
and item, the question and the propositions (H1 more than one writer, H0 one writer), the
examination (the models and what their configs record about the data behind them), the results,
the evaluation (log10 LR, its verbal equivalent, the decision thresholds, the calibration's
validation figures), the limitations that apply to this document, and a conclusion in ENFSI
wording. Everything comes from the :class:`~wrmil_core.scoring.score.DocumentScore` and the
model directories' JSON files; nothing is recomputed. Every text that may come from outside
(file names, configs) is HTML-escaped.
"""

from __future__ import annotations

import html
import json
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from wrmil_core.plots import png_data_uri
from wrmil_core.scoring.score import DocumentScore, fpr_percent
from wrmil_core.scoring.verbal import H0, H1, SCALE_SOURCE, format_lr, strength

CASE_REPORT = "case_report.html"
NOT_RECORDED = "not recorded"
FEW_WRITERS = 30  # fewer validation writers than this: the LR rests on a small population

CSS = """
body { font-family: Georgia, serif; max-width: 60em; margin: 2em auto; padding: 0 1em; color: #111; line-height: 1.4 }
h1 { font-size: 1.5em; border-bottom: 2px solid #333 } h2 { font-size: 1.15em; margin-top: 1.6em }
table { border-collapse: collapse; margin: .5em 0 } td, th { border: 1px solid #999; padding: .2em .5em;
  text-align: left; vertical-align: top; font-size: .92em } th { background: #eee }
img { max-width: 100%; border: 1px solid #999 } .conclusion { border: 2px solid #333; padding: .6em 1em }
.muted { color: #555; font-size: .9em } code { font-size: .9em; word-break: break-all }
@media print { body { max-width: none; margin: 0; font-size: 10pt } h2 { page-break-after: avoid }
  img, table, .conclusion { page-break-inside: avoid } }
"""


# --------------------------------------------------------------------------------------------
# Small helpers


def _e(value: Any) -> str:
    """``value`` as HTML text, quotes included (file names and configs are not trusted)."""
    return html.escape(str(value), quote=True)


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; empty when absent or unreadable (the report says "not recorded")."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def software_version() -> str:
    """``wrmil <version>`` of the installed package (``unknown`` when run from an uninstalled tree)."""
    try:
        return f"wrmil {version('wrmil')}"
    except PackageNotFoundError:
        return "wrmil (version unknown)"


def _table(rows: list[tuple[str, Any]]) -> str:
    """A two-column table of (label, value), both escaped."""
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _section(title: str, body: str) -> str:
    return f"<section><h2>{_e(title)}</h2>{body}</section>"


def _get(config: dict[str, Any], *keys: str) -> Any:
    """The first of ``keys`` present (nested with dots) in ``config``, else "not recorded"."""
    for key in keys:
        value: Any = config
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            return value
    return NOT_RECORDED


def _recorded(d: dict[str, Any], key: str) -> Any:
    """``d[key]``, or "not recorded" when absent or null."""
    value = d.get(key)
    return NOT_RECORDED if value is None else value


def _fmt(value: Any, spec: str = ".3f") -> str:
    """A number formatted with ``spec``; anything else as text (e.g. "not recorded")."""
    return format(value, spec) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


# --------------------------------------------------------------------------------------------
# Sections


def case_section(score: DocumentScore, page: Path | None, when: datetime) -> str:
    """1. The case and the item: what was examined, when, with which software."""
    rows = [("Questioned document", page if page is not None else score.document),
            ("Form", "page image (cut into word images by wrmil)" if page is not None else "folder of word images"),
            ("Word images examined", score.n_words),
            ("Pages", 1 if page is not None else "not known (a folder of word images)")]
    if page is not None:
        rows.append(("Word images cut from the page", score.document))
    rows += [("Date of the analysis", when.strftime("%Y-%m-%d %H:%M UTC")), ("Software", software_version())]
    return _section("1. Case and item", _table(rows))


def question_section() -> str:
    """2. The question and the two propositions, in the scoring's own words."""
    body = (f"<p>Was the questioned document written by more than one person?</p>"
            f"<ul><li><b>H1</b>: {_e(H1)} wrote this document.</li>"
            f"<li><b>H0</b>: {_e(H0)} wrote it.</li></ul>"
            "<p class='muted'>The propositions are evaluated as a pair; the writers themselves are not "
            "identified.</p>")
    return _section("2. Question and propositions", body)


def embedding_facts(score: DocumentScore) -> list[tuple[str, Any]]:
    """What the embedding model's config.json records about the model and the data it was trained on."""
    cfg = _read_json(Path(score.embedding_model_dir) / "config.json")
    return [("Embedding model id", score.embedding_model_id or NOT_RECORDED),
            ("Embedding model directory", score.embedding_model_dir),
            ("Kind / method", _get(cfg, "kind", "method")), ("Backbone", _get(cfg, "backbone")),
            ("Embedding dimension", _get(cfg, "emb_dim", "dim")),
            ("Training data", _get(cfg, "dataset", "data_root")),
            ("Training writers", _get(cfg, "n_train_writers")), ("Training word images", _get(cfg, "n_train_images")),
            ("Validation AUC (word pairs, validation writers)", _fmt(_get(cfg, "val_metrics.auc")))]


def mil_facts(score: DocumentScore) -> list[tuple[str, Any]]:
    """What the MIL model's config.json records about the detector and the data behind it."""
    cfg = _read_json(Path(score.mil_model_dir) / "config.json")
    return [("Detector", score.model_name), ("Detector model id", score.mil_model_id or NOT_RECORDED),
            ("Detector directory", score.mil_model_dir), ("Scoring", score.scoring),
            ("Trained", {True: "yes", False: "no (training-free detector)"}.get(_get(cfg, "trainable"), NOT_RECORDED)),
            ("Embedding model it was built on", _get(cfg, "embedding_model_id")),
            ("Training data", _get(cfg, "dataset", "data_root")),
            ("Validation AUC (validation bags)", _fmt(_get(cfg, "val_auc"))),
            ("Window / bag size", f"{score.window_size} words / {score.bag_size} windows")]


def examination_section(score: DocumentScore) -> str:
    """3. The examination: the two models and what their configs say about their data."""
    body = ("<p>Each word image is turned into a writer-style vector by the embedding model; the detector "
            "scores the sequence of vectors for a change of writer.</p>"
            f"<h3>Embedding model</h3>{_table(embedding_facts(score))}"
            f"<h3>Detector</h3>{_table(mil_facts(score))}")
    return _section("3. Examination", body)


def _figure(image: Path | None, page: bool) -> str:
    """The overlay (page) or the strip (word folder), embedded; a note when it is missing."""
    if image is None or not image.is_file():
        return "<p class='muted'>No image was written.</p>"
    what = ("The page with each word box coloured by its evidence (green weakest, red strongest on this page) "
            "and the estimated foreign passage outlined in blue." if page else
            "The word images in reading order, each tinted by its evidence (green below the 5 % FPR threshold, "
            "red above); the estimated foreign passage is framed in blue.")
    return (f"<figure><img alt='{_e(image.name)}' src='{png_data_uri(image)}'>"
            f"<figcaption class='muted'>{_e(what)}</figcaption></figure>")


def _word_table(score: DocumentScore) -> str:
    """The most suspicious words with their own log10 LR and, when diarized, their main-writer posterior."""
    posterior = score.word_main_posterior
    head = "<tr><th>Rank</th><th>Word</th><th>File</th><th>Word log10 LR</th>" + (
        "<th>P(main writer)</th>" if posterior else "") + "</tr>"
    rows = []
    for w in score.top_words:
        i = int(w["index"])
        post = f"<td>{posterior[i]:.2f}</td>" if i < len(posterior) else ""
        rows.append(f"<tr><td>{w['rank']}</td><td>{i}</td><td>{_e(w['file'])}</td>"
                    f"<td>{_e(_fmt(w.get('log10_lr', NOT_RECORDED), '+.2f'))}</td>{post}</tr>")
    return f"<table>{head}{''.join(rows)}</table>" if rows else ""


def results_section(score: DocumentScore, image: Path | None, page: bool) -> str:
    """4. The results: the picture, the passage, the writer count, the word posteriors."""
    p = score.passage
    passage = (f"words {p['first']}-{p['last']} ({p['n_words']} words, {p['first_file']} .. {p['last_file']}); "
               "an estimate whether or not the document is flagged" if p else "not estimated")
    rows: list[tuple[str, Any]] = [("Estimated foreign passage", passage),
                                   ("Estimated number of writers", score.writers["estimate"] if score.writers
                                    else "not estimated by this detector")]
    posterior = score.word_main_posterior
    if posterior:
        minority = [i for i, v in enumerate(posterior) if v < 0.5]
        rows.append(("Words more likely another writer's (P(main writer) < 0.5)",
                     f"{len(minority)} of {len(posterior)}" + (f": {', '.join(map(str, minority[:40]))}"
                                                                + (" ..." if len(minority) > 40 else "")
                                                                if minority else "")))
    body = _figure(image, page) + _table(rows) + "<h3>Most suspicious words</h3>" + _word_table(score)
    return _section("4. Results", body)


def threshold_rows(score: DocumentScore, test_fpr: dict[str, float | None]) -> str:
    """The decision thresholds with the false-positive rates measured where they are recorded."""
    n_genuine = score.calibration.get("n_h0")
    what = "documents" if score.calibration.get("source") == "length" else "bags"
    head = ("<tr><th>Threshold</th><th>Raw score</th><th>Flagged</th><th>False-positive rate, validation writers"
            "</th><th>False-positive rate, unseen test writers</th></tr>")
    rows = []
    for key, value in score.thresholds.items():
        val = (f"at most {fpr_percent(key)} of {n_genuine} genuine validation {what} (fixed there)"
               if n_genuine else f"at most {fpr_percent(key)} (fixed there; count {NOT_RECORDED})")
        test = test_fpr.get(key)
        tested = (f"{100 * test:.1f} %" if test is not None else
                  "not recorded with the model; measured in the difficulty report")
        rows.append(f"<tr><td>{_e(fpr_percent(key))} FPR</td><td>{value:.3f}</td>"
                    f"<td>{'yes' if score.decisions.get(key) else 'no'}</td><td>{_e(val)}</td><td>{_e(tested)}</td></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def recorded_test_fpr(score: DocumentScore) -> dict[str, float | None]:
    """The false-positive rates on unseen test writers at the applied thresholds, where recorded: the
    MIL config's ``test_fpr`` or the difficulty report (``<artifacts>/report/report.json``, the layout
    of a materialised pipeline) for the same embedding model; empty when neither records them."""
    mil_dir = Path(score.mil_model_dir)
    recorded = _read_json(mil_dir / "config.json").get("test_fpr")
    if isinstance(recorded, dict):
        return {str(k): v for k, v in recorded.items()}
    report = _read_json(mil_dir.parent.parent / "report" / "report.json")
    if not report or report.get("embedding_model_id") != score.embedding_model_id:
        return {}  # another run's report would describe other thresholds
    if score.calibration.get("source") == "length":  # the length curve records the 5 % threshold only
        length = score.calibration.get("calibrated_length_words")
        rows = [r for r in report.get("length_curve", []) if r.get("model") == score.model_name
                and r.get("length") == length]
        return {"fpr_5": rows[0].get("fpr")} if rows else {}
    rows = [r for r in report.get("forensic", {}).get("rows", []) if r.get("model") == score.model_name
            and r.get("group") == "overall"]
    return dict(rows[0].get("fpr") or {}) if rows else {}


def _calibration_rows(c: dict[str, Any]) -> list[tuple[str, Any]]:
    """The applied calibration's provenance and validation figures."""
    return [("Calibrated on", f"validation {'documents' if c.get('source') == 'length' else 'bags'} of "
                              f"{c.get('calibrated_length_words', NOT_RECORDED)} words ({c.get('length_method', '?')})"),
            ("Calibrator", c.get("kind") or NOT_RECORDED),
            ("Cllr on validation, PAV candidate", _fmt(_recorded(c, "cllr_val_pav"))),
            ("Cllr on validation, logistic candidate", _fmt(_recorded(c, "cllr_val_logistic"))),
            ("Validation writers", c.get("n_writers") or NOT_RECORDED),
            ("Validation documents / bags", f"{c.get('n_h0', '?')} genuine (H0), {c.get('n_h1', '?')} mixed (H1)"),
            ("log10 LR bounds (ELUB)", _recorded(c, "llr_bounds"))]


def evaluation_section(score: DocumentScore) -> str:
    """5. The evaluation: the LR, its verbal equivalent and meaning, thresholds, calibration figures."""
    if score.log10_lr is None:
        lr = "<p><b>No likelihood ratio</b>: the score is uncalibrated.</p>"
    else:
        lr = (f"<p class='lr'><b>log10 LR = {score.log10_lr:+.2f}</b> ({_e(format_lr(score.log10_lr))}): "
              f"<b>{_e(score.verbal)}</b></p>"
              f"<p>The likelihood ratio compares the probability of the observations (the detector's score of "
              f"this document) if H1 ({_e(H1)}) is true with their probability if H0 ({_e(H0)}) is true. It is "
              "not the probability of either proposition: that also depends on the other information in the "
              "case, which is for the court. Verbal scale: " + _e(SCALE_SOURCE) + ".</p>")
    body = (lr + "<h3>Decision thresholds</h3>" + threshold_rows(score, recorded_test_fpr(score))
            + "<p class='muted'>A threshold flags the document when its raw score reaches it; it was fixed so that "
              "at most that share of genuine (one-writer) validation documents is flagged.</p>"
            + "<h3>Calibration</h3>" + _table(_calibration_rows(score.calibration)))
    return _section("5. Evaluation", body)


def limitations(score: DocumentScore) -> list[str]:
    """The limitations that apply to this document, then the general caveat."""
    c = score.calibration
    out: list[str] = []
    length = c.get("calibrated_length_words")
    if score.short_document or (isinstance(length, int) and score.n_words < length):
        out.append(f"Short document: {score.n_words} words" + (f", fewer than the calibrated length ({length} words)"
                                                                 if isinstance(length, int) and score.n_words < length
                                                                 else "")
                   + (f"; shorter than one bag ({score.bag_size} windows)" if score.short_document else "")
                   + ". Less writing gives less evidence either way.")
    out += [f"Warning recorded with the score: {w}" for w in score.warnings]  # small writing, beyond the lengths
    n_writers = c.get("n_writers")
    if c and (n_writers is None or n_writers < FEW_WRITERS):
        out.append(f"Few validation writers ({n_writers or NOT_RECORDED}, under {FEW_WRITERS}): the calibration "
                   "and the thresholds rest on a small population and may not hold for others.")
    if score.log10_lr is None or not c:
        out.append("Uncalibrated: no likelihood ratio can be reported, only the detector's raw score.")
    out.append("In general: the LR depends on the validation population the calibration was fitted on (its "
               "writers, scripts, pens and scans); for a questioned document unlike that population it may "
               "over- or understate the evidence.")
    return out


def limitations_section(score: DocumentScore) -> str:
    """6. The limitations as a list."""
    return _section("6. Limitations", "<ul>" + "".join(f"<li>{_e(x)}</li>" for x in limitations(score)) + "</ul>")


def conclusion(score: DocumentScore) -> str:
    """7. The conclusion in ENFSI wording (how much more probable the findings are under one
    proposition than the other, and the verbal support)."""
    lr = score.log10_lr
    if lr is None:
        return "No evaluative conclusion can be given: the score is uncalibrated."
    if lr == 0.0:
        return ("The findings are as probable if more than one writer wrote the document as if one writer wrote "
                "it; they support neither proposition.")
    times = f"10^{abs(lr):.2f}" if abs(lr) >= 6 else f"about {10 ** abs(lr):,.3g}"
    first, second = (H1, H0) if lr > 0 else (H0, H1)
    return (f"The findings are {times} times more probable if {first} wrote the questioned document than if "
            f"{second} wrote it. The findings therefore provide {strength(abs(lr))} for the proposition that "
            f"{first} wrote the questioned document rather than {second}.")


# --------------------------------------------------------------------------------------------
# The file


def render_case_report(score: DocumentScore, image: Path | None, *, page: Path | None = None,
                       when: datetime | None = None) -> str:
    """The case report as one HTML string; ``image`` (the overlay of a page, the strip of a folder)
    is embedded; ``page`` is the page image when the document is a page scan."""
    when = when or datetime.now(timezone.utc)
    name = page.name if page is not None else Path(score.document).name
    body = "".join([
        f"<h1>Case report: {_e(name)}</h1>",
        f"<p class='muted'>Evaluative report on the writing of one questioned document; structure after the "
        f"ENFSI Guideline for Evaluative Reporting in Forensic Science (2015). {_e(software_version())}.</p>",
        case_section(score, page, when), question_section(), examination_section(score),
        results_section(score, image, page is not None), evaluation_section(score), limitations_section(score),
        _section("7. Conclusion", f"<p class='conclusion'>{_e(conclusion(score))}</p>"),
    ])
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Case report: {_e(name)}</title>"
            f"<style>{CSS}</style></head><body>{body}</body></html>")


def write_case_report(score: DocumentScore, out_path: str | Path, image: Path | None, *,
                      page: Path | None = None) -> Path:
    """Write :func:`render_case_report` to ``out_path`` whole (temporary name, then rename)."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    tmp.write_text(render_case_report(score, image, page=page), encoding="utf-8")
    tmp.replace(out_path)
    return out_path


__all__ = ["CASE_REPORT", "conclusion", "limitations", "recorded_test_fpr", "render_case_report",
           "software_version", "write_case_report"]
