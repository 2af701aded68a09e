"""The ``wrmil`` command: ``wrmil check`` validates a data root, ``wrmil run`` materialises the graph,
``wrmil score`` scores a questioned document, ``wrmil compare`` compares it with known writings,
``wrmil segment`` cuts page scans into words."""

from __future__ import annotations

import argparse
import functools
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

from wrmil_core.errors import WrmilInputError
from wrmil_core.runtime import sleeping_thread_waits
from wrmil_core.schema import DEFAULT_METADATA_CSV, DEFAULT_REPS_PER_SESSION
from wrmil_core.synth import PRESETS as SYNTH_PRESETS

from .automation import JOB_STAGES
from .config import RUN_PRESETS
from .resources import WrmilSettings, default_data_root, preset_choice

PRESET_HELP = ("every stage's hyper-parameter preset (default: demo for a generated synthetic set, cpu for your "
               "own data; $WRMIL_PRESET overrides that): " + "; ".join(f"{k}: {v}" for k, v in RUN_PRESETS.items()))


Handler = Callable[[argparse.Namespace], int]


def _bad_input_exits_2(command: str) -> Callable[[Handler], Handler]:
    """The one place a ``wrmil COMMAND`` handler turns bad input into its exit: a
    :class:`WrmilInputError` anywhere in it prints one line, ``wrmil COMMAND: error: <cause and fix>``,
    on stderr and exits with code 2 (no traceback)."""
    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def run(args: argparse.Namespace) -> int:
            try:
                return handler(args)
            except WrmilInputError as e:
                print(f"wrmil {command}: error: {e}", file=sys.stderr)
                return 2
        return run
    return decorate


def _run_settings(args: argparse.Namespace) -> WrmilSettings:
    """The settings resource for ``wrmil run``: ``WRMIL_*`` defaults with the command's flags applied,
    generating the synthetic set (``--synth-preset``) when asked or when the data root has none."""
    from wrmil_core.data.pages_input import is_page_root

    settings = WrmilSettings.from_env()
    data_root = Path(args.data_root or settings.data_root).resolve()
    changes: dict[str, object] = {"data_root": str(data_root), **_layout_changes(args)}
    metadata_csv = str(changes.get("metadata_csv", settings.metadata_csv))
    metadata = data_root / metadata_csv
    if is_page_root(data_root, metadata_csv) and not args.generate:
        return settings.replace(**changes)  # page scans: raw_pages cuts them into words
    if not metadata.exists() and args.data_root and not args.generate:
        raise WrmilInputError(f"no metadata file {metadata}; point --data-root at a folder with "
                              f"<writer>/<word>_<rep>.png images and {metadata_csv} (or name it with "
                              "--metadata-csv), or pass --generate")
    if args.generate or not metadata.exists():
        from wrmil_core import synth

        cfg = synth.preset(args.synth_preset)
        if not synth.dataset_exists(data_root, cfg):
            print(f"wrmil: generating synthetic handwriting ({cfg.n_writers} writers) in {data_root}")
            synth.generate_dataset(data_root, cfg, log=print)
        changes.update(metadata_csv=synth.METADATA_FILE, reps_per_session=cfg.reps_per_session)
    # A new resource, never model_copy: Dagster rebuilds a resource from its construction config.
    return settings.replace(**changes)


def _layout_changes(args: argparse.Namespace) -> dict[str, object]:
    """The raw-layout flags (``--metadata-csv``, ``--reps-per-session``) the user gave, as settings changes."""
    changes: dict[str, object] = {}
    if args.metadata_csv:
        changes["metadata_csv"] = args.metadata_csv
    if args.reps_per_session is not None:
        changes["reps_per_session"] = args.reps_per_session
    return changes


@_bad_input_exits_2("run")
def _cmd_run(args: argparse.Namespace) -> int:
    """Materialise a job's stages. A failure prints one line (cause and fix; the full trace stays in
    the run log for the UI) and exits 2 for bad input, 1 otherwise."""
    from .run import StageFailed, ensure_dagster_home, load_config_file, run_stages

    ensure_dagster_home()
    try:
        settings = _run_settings(args)
        run_config = load_config_file(args.config) if args.config else None
        preset, why = preset_choice(settings.data_root, args.preset)
        print(f"wrmil: preset {preset} ({why})")
        timings = run_stages(settings, preset=preset, run_config=run_config, stages=JOB_STAGES[args.job])
    except StageFailed as e:
        print(f"wrmil run: error: {e}", file=sys.stderr)
        return 2 if e.bad_input else 1
    print(f"wrmil: all stages done in {sum(timings.values()):.0f} s; artifacts in {settings.artifact_dir}")
    # the writer-fold job writes its own report; the main report may be an older run's
    report = Path(settings.artifact_dir) / ("cv/cv_report.md" if args.job == "writer_cv" else "report/report.html")
    if report.exists():
        print(f"wrmil: report: {report}")
    print("wrmil: `make ui` shows these runs in the Dagster UI")
    return 0


@_bad_input_exits_2("score")
def _cmd_score(args: argparse.Namespace) -> int:
    """Score one questioned document, or a batch of them (folder or CSV list) in this one process;
    bad input prints the reason and exits with code 2 (a batch: see :func:`_score_batch`)."""
    sleeping_thread_waits()  # before torch loads: a shared machine's cores are not spun away
    from wrmil_core.data.multipage import check_dpi
    from wrmil_core.scoring.batch import is_batch_folder, is_batch_list
    from wrmil_core.scoring.page import is_page_path
    from wrmil_core.scoring.score import score_document
    from wrmil_core.scoring.strip import write_outputs

    from .model_records import latest_models
    from .resources import default_artifact_dir

    artifact_dir = Path(args.artifact_dir or default_artifact_dir())
    check_dpi(args.dpi)
    emb_dir, mil_dir = latest_models(artifact_dir, args.model, args.embedding_model, args.mil_model)
    if args.batch or is_batch_list(args.path) or (not args.order_csv and is_batch_folder(args.path)):
        return _score_batch(args, emb_dir, mil_dir, artifact_dir)
    if is_page_path(args.path):
        return _score_page(args, emb_dir, mil_dir, artifact_dir)
    if args.pages:
        raise WrmilInputError(f"--pages selects pages of a PDF or TIFF; {args.path} is a folder of word images, "
                              "so leave --pages out")
    result = score_document(args.path, emb_dir, mil_dir, order_csv=args.order_csv, device=args.device,
                            top_k=args.top_k)
    out_dir = Path(args.out) if args.out else artifact_dir / "scores" / Path(result.document).name
    paths = write_outputs(result, out_dir)
    print(result.summary())
    print(f"wrmil score: JSON  {paths['json']}")
    print(f"wrmil score: strip {paths['strip']}")
    print(f"wrmil score: {result.seconds['total']:.1f} s (embedding {result.seconds['embed']:.1f} s)")
    return 0


def _score_page(args: argparse.Namespace, emb_dir: Path, mil_dir: Path, artifact_dir: Path) -> int:
    """``wrmil score PAGE.png`` (or a PDF/TIFF of several pages): segment the pages, score their words
    in reading order, draw the scores onto them."""
    from wrmil_core.scoring.page import score_page

    if args.order_csv:
        raise WrmilInputError(f"--order-csv orders a folder of word images; a page ({args.path}) is read in "
                              "reading order by the segmenter, so leave --order-csv out")
    out_dir = Path(args.out) if args.out else artifact_dir / "scores" / Path(args.path).stem
    result = score_page(args.path, emb_dir, mil_dir, out_dir, device=args.device, top_k=args.top_k,
                        pages_spec=args.pages, dpi=args.dpi)
    print(result.summary())
    print(f"wrmil score: JSON    {result.outputs['json']}")
    print(f"wrmil score: words   {result.outputs['crops']} (the cut, to check by eye: {result.outputs['cut_overlay']})")
    print(f"wrmil score: overlay {result.outputs['overlay']}"
          + (f" (one per page: page_overlay_pNNN.png, {result.n_pages} pages)" if result.n_pages > 1 else ""))
    return 0


def _score_batch(args: argparse.Namespace, emb_dir: Path, mil_dir: Path, artifact_dir: Path) -> int:
    """``wrmil score --batch FOLDER`` or ``wrmil score LIST.csv``: every document scored in this process
    with the models loaded once; summary.csv and summary.html in the output folder. Exit code 0 when
    every document was scored, 2 when one or more had bad input (their rows carry the error), 1 when
    one crashed."""
    from wrmil_core.scoring.batch import exit_code, list_batch, score_batch, write_summary
    from wrmil_core.scoring.score import load_scoring_models

    if args.order_csv:
        raise WrmilInputError("--order-csv orders the words of one document; a batch's word folders are read in "
                              "natural file-name order, so leave --order-csv out")
    path = Path(args.path)
    out_dir = Path(args.out) if args.out else artifact_dir / "scores" / (path.stem if path.is_file() else path.name)
    items = list_batch(path, exclude=out_dir)
    print(f"wrmil score: batch of {len(items)} document(s) from {path}; loading the models once")
    models = load_scoring_models(emb_dir, mil_dir, args.device)
    t0 = time.perf_counter()
    rows = score_batch(items, models, out_dir, pages=args.pages, dpi=args.dpi, top_k=args.top_k,
                       log=lambda m: print(f"wrmil score: {m}", flush=True))
    paths = write_summary(rows, out_dir)
    failed = [r for r in rows if r.status != "ok"]
    minutes = (time.perf_counter() - t0) / 60
    print(f"wrmil score: {len(rows) - len(failed)} of {len(rows)} scored, {len(failed)} failed, "
          f"{len(rows) / max(minutes, 1e-9):.1f} documents/min")
    print(f"wrmil score: summary {paths['csv']} and {paths['html']}")
    for r in failed:
        print(f"wrmil score: error: {r.id}: {r.values.get('error', '')}", file=sys.stderr)
    return exit_code(rows)


@_bad_input_exits_2("compare")
def _cmd_compare(args: argparse.Namespace) -> int:
    """``wrmil compare Q K [K ...]``: same writer or not, as a calibrated log10 LR; compare.json in --out.
    Bad input prints one line and exits with code 2."""
    sleeping_thread_waits()  # before torch loads (see _cmd_score)
    from wrmil_core.data.multipage import check_dpi
    from wrmil_core.evidence.compare_calibration import COMPARE_MODEL
    from wrmil_core.scoring.compare import compare_documents, write_comparison

    from .model_records import latest_models
    from .resources import default_artifact_dir

    artifact_dir = Path(args.artifact_dir or default_artifact_dir())
    out_dir = Path(args.out) if args.out else artifact_dir / "compare" / Path(args.questioned).stem
    check_dpi(args.dpi)
    emb_dir, mil_dir = latest_models(artifact_dir, None if args.mil_model else COMPARE_MODEL,
                                     args.embedding_model, args.mil_model)
    result = compare_documents(args.questioned, args.known, emb_dir, mil_dir, out_dir, device=args.device,
                               pages_spec=args.pages, dpi=args.dpi)
    path = write_comparison(result, out_dir)
    print(result.summary())
    print(f"wrmil compare: JSON {path}")
    return 0


@_bad_input_exits_2("segment")
def _cmd_segment(args: argparse.Namespace) -> int:
    """Cut page scans into word crops, page maps and overlays; one line per flagged or unreadable page,
    exit code 2 when a page could not be used."""
    from wrmil_core.pages import preset, segment_pages

    config = preset(args.preset, **({"right_to_left": True} if args.right_to_left else {}))
    summary = segment_pages(args.path, args.out, config)
    for error in summary.failed.values():
        print(f"wrmil segment: error: {error}", file=sys.stderr)
    if not summary.n_pages:
        return 2
    out = summary.out_dir
    print(f"wrmil segment: {summary.n_pages} page(s), {sum(summary.words.values())} words -> {out}/<page>/NNNN.png "
          "(crops in reading order), <page>.parquet (page map), <page>.overlay.png (numbered boxes)")
    for name, paths in list(summary.paths.items())[:10]:
        print(f"wrmil segment: {name}: {summary.words[name]} words, overlay {paths['overlay']}")
    for name, reasons in summary.flagged.items():
        print(f"wrmil segment: doubtful {name}: {'; '.join(reasons)}; check {summary.paths[name]['overlay']}")
    print(f"wrmil segment: {summary.n_flagged} of {summary.n_pages} page(s) flagged as doubtful")
    return 2 if summary.failed else 0


@_bad_input_exits_2("check")
def _cmd_check(args: argparse.Namespace) -> int:
    """Validate a data root without running anything; one error line and exit code 2 on bad input."""
    from wrmil_core.data.check import check_root
    from wrmil_core.data.ingest import DEFAULT

    # the same WRMIL_* defaults and layout flags `wrmil run` reads
    settings = WrmilSettings.from_env().replace(**_layout_changes(args))
    check = check_root(  # word crops or page scans, told apart as `wrmil run` does
        args.data_root, metadata_csv=settings.metadata_csv, reps_per_session=settings.reps_per_session,
        min_doc_words=DEFAULT.min_doc_words if args.min_doc_words is None else args.min_doc_words)
    print(check.table())
    verdict = "usable, with skips listed above" if check.n_skipped else "usable"
    flags = [f"--{k.replace('_', '-')} {shlex.quote(str(v))}" for k, v in _layout_changes(args).items()]
    print(f"wrmil check: {verdict}; next: wrmil run --data-root {shlex.quote(str(check.root))} {' '.join(flags)}".rstrip())
    return 0


def _add_layout_options(p: argparse.ArgumentParser) -> None:
    """``--metadata-csv`` and ``--reps-per-session``: how to read a data root (shared by run and check)."""
    p.add_argument("--metadata-csv", metavar="NAME", help="metadata CSV in the data root (default "
                                                          f"$WRMIL_METADATA_CSV or {DEFAULT_METADATA_CSV})")
    p.add_argument("--reps-per-session", type=int, metavar="N",
                   help="repetitions per document when the CSV has no doc_id "
                        f"(default $WRMIL_REPS_PER_SESSION or {DEFAULT_REPS_PER_SESSION})")


def build_parser() -> argparse.ArgumentParser:
    """The ``wrmil`` argument parser (``run``, ``score``, ``compare``, ``check``, ``segment``)."""
    p = argparse.ArgumentParser(prog="wrmil", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="materialise the whole asset graph, stage by stage")
    run.add_argument("--preset", choices=list(RUN_PRESETS), metavar="NAME", help=PRESET_HELP)
    run.add_argument("--data-root", help=f"raw data root (default {default_data_root()}; generated if missing)")
    run.add_argument("--config", help="run-config file (YAML/JSON, Dagster's ops: {asset: {config: ...}} form)")
    run.add_argument("--generate", action="store_true", help="generate the synthetic set into --data-root if missing")
    run.add_argument("--synth-preset", default="demo", choices=sorted(SYNTH_PRESETS),
                     help="size of the synthetic set when one is generated (default demo: 40 writers; "
                          "independent of --preset)")
    run.add_argument("--job", default="full_pipeline", choices=list(JOB_STAGES),
                     help="which part of the graph to materialise (default: everything)")
    _add_layout_options(run)
    run.set_defaults(func=_cmd_run)
    sc = sub.add_parser("score", help="score a questioned document, or a batch of them: log10 LR (more than one "
                                      "writer vs one), decisions at 1 %%/5 %% FPR, the foreign passage",
                        description="Score a questioned document with the latest materialised models or the ones "
                                    "given by path: a folder of word images in reading order (natural file-name "
                                    "order, or --order-csv with columns image_path,order), a page image, or a PDF "
                                    "or multi-page TIFF (one document: its pages' words in reading order, page 1 "
                                    "first). Prints log10 LR of H1 'more than one writer' vs H0 'one writer' with "
                                    "its verbal equivalent (ENFSI 2015 scale), the decisions at the 1 % and 5 % "
                                    "false-positive thresholds fixed on validation writers, the estimated foreign "
                                    "passage and each word's evidence. A batch (--batch FOLDER of documents, a "
                                    "folder holding only PDFs/subfolders, or a CSV list with columns path[,id,"
                                    "pages]) is scored in one process and summarised in summary.csv and "
                                    "summary.html. Exit code 2 on bad input (a batch: when any document failed "
                                    "on its input; 1 when one crashed).")
    sc.add_argument("path", help="folder of word images (or a CSV with columns image_path,order), a page image "
                                 "(PNG, JPEG, TIFF), a PDF or multi-page TIFF, or a batch: a folder of documents "
                                 "(with --batch) or a CSV list with a path column")
    sc.add_argument("--batch", action="store_true",
                    help="PATH is a folder of documents (page images, PDFs, TIFFs, subfolders of word images), "
                         "not one folder of word images; implied for a folder that holds only PDFs and subfolders")
    sc.add_argument("--pages", metavar="SPEC", help="pages of a PDF/TIFF to score, 1-based, e.g. 1,3-4 (default all; "
                                                    "in a batch: every PDF/TIFF without its own pages column)")
    sc.add_argument("--out", help="output folder for score.json and strip.png, or a batch's summary and one folder "
                                  "per document (default <artifact-dir>/scores/<name>)")
    sc.add_argument("--model", help="MIL model name (default: the calibrated default detector, fused; e.g. "
                                    "segment_scan or scattered; see docs/scoring-and-comparison.md)")
    _add_model_options(sc, mil_help="MIL model directory (default: the latest mil_model, --model)")
    sc.add_argument("--order-csv", help="CSV with columns image_path,order (paths relative to PATH)")
    sc.add_argument("--top-k", type=int, default=10, help="how many suspicious words to list (default 10)")
    sc.set_defaults(func=_cmd_score)
    _add_compare_parser(sub)
    ck = sub.add_parser("check", help="validate a data root (columns, paths, images, documents, writers) "
                                      "without running anything",
                        description="Read DATA_ROOT as `wrmil run` would and print what it holds: writers, "
                                    "documents, words per document and skipped inputs by reason. Exit code 2 "
                                    "on an error, with one line naming the file, row or value.")
    ck.add_argument("data_root", metavar="DATA_ROOT",
                    help="folder with <writer>/<word>_<rep>.png and the metadata CSV, or a folder of page scans "
                         "(as `wrmil run --data-root`)")
    _add_layout_options(ck)
    ck.add_argument("--min-doc-words", type=int, metavar="N", help="skip documents with fewer usable words "
                                                                  "(default: the ingest preset's)")
    ck.set_defaults(func=_cmd_check)
    sg = sub.add_parser("segment", help="cut page scans into word crops in reading order, with a page map and an overlay",
                        description="Segment a page image, or every image in a folder, into words: writes "
                                    "OUT/<page>/NNNN.png crops in reading order, OUT/<page>.parquet (word_index, "
                                    "line, position, box) and OUT/<page>.overlay.png with numbered boxes to check "
                                    "by eye. Doubtful pages are listed; exit code 2 on bad input.")
    sg.add_argument("path", metavar="PAGE_OR_FOLDER", help="a page image (PNG, JPEG, TIFF, ...) or a folder of them")
    sg.add_argument("--out", required=True, help="output folder")
    sg.add_argument("--preset", default="default", help="segmenter preset: default (Sauvola), clean (Otsu), rtl")
    sg.add_argument("--right-to-left", action="store_true", help="read lines right to left (Arabic, Hebrew)")
    sg.set_defaults(func=_cmd_segment)
    return p


def _add_model_options(parser: argparse.ArgumentParser, mil_help: str) -> None:
    """The options ``wrmil score`` and ``wrmil compare`` share: which models, where they are, how PDF
    pages are rendered and on which device."""
    parser.add_argument("--embedding-model", help="embedding model directory (default: the latest arcface_model)")
    parser.add_argument("--mil-model", help=mil_help)
    parser.add_argument("--artifact-dir", help="artifact directory holding the materialised models "
                                               "(default $WRMIL_ARTIFACT_DIR or data/artifacts)")
    parser.add_argument("--dpi", type=int, default=300, help="resolution PDF pages are rendered at (default 300)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")


def _add_compare_parser(sub: argparse._SubParsersAction) -> None:
    """``wrmil compare QUESTIONED KNOWN [KNOWN ...]``."""
    cp = sub.add_parser("compare", help="was a questioned document written by the writer of known writings? "
                                        "log10 LR (same writer vs different writers)",
                        description="Compare a questioned document with one or more known documents of one writer "
                                    "(each a folder of word images, a page image, or a PDF/TIFF): the two-covariance "
                                    "same-writer LR of the two word sets in the default (fused) detector's writer "
                                    "model, calibrated on validation writers' pairs of disjoint documents at 10, 25 "
                                    "or 50 words per side (the nearest is used). Prints log10 LR of H1 'same "
                                    "writer' vs H2 'different writers' with its verbal equivalent (ENFSI 2015 "
                                    "scale); writes compare.json. Exit code 2 on bad input.")
    cp.add_argument("questioned", help="the questioned document")
    cp.add_argument("known", nargs="+", help="known document(s) of one writer, pooled")
    cp.add_argument("--out", help="output folder for compare.json (and page cuts; default "
                                  "<artifact-dir>/compare/<questioned name>)")
    cp.add_argument("--pages", metavar="SPEC", help="pages of every PDF/TIFF to read, 1-based, e.g. 1,3-4 (default all)")
    _add_model_options(cp, mil_help="fused MIL model directory (default: the latest mil_model's fused)")
    cp.set_defaults(func=_cmd_compare)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``wrmil`` console script; returns the exit code."""
    import warnings

    import dagster as dg

    # Dagster's beta/preview notices are for the developers of wrmil, not for its users.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
