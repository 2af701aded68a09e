"""The ``wrmil`` command: ``wrmil run`` materialises the graph, ``wrmil score`` scores a document."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .resources import WrmilSettings, default_data_root


def _cmd_run(args: argparse.Namespace) -> int:
    from .run import JOB_STAGES, ensure_dagster_home, load_config_file, run_stages

    ensure_dagster_home()
    settings = WrmilSettings.from_env()
    data_root = Path(args.data_root or settings.data_root).resolve()
    settings = settings.model_copy(update={"data_root": str(data_root)})
    if not settings.metadata_path.exists():
        if args.data_root and not args.generate:
            print(f"wrmil: no metadata file {settings.metadata_path}; point --data-root at a folder with "
                  f"<writer>/<word>_<rep>.png images and {settings.metadata_csv}, or pass --generate", file=sys.stderr)
            return 2
    if args.generate or not settings.metadata_path.exists():
        from wrmil_core import synth

        cfg = synth.PRESETS[args.preset]
        if not synth.dataset_exists(data_root, cfg):
            print(f"wrmil: generating synthetic handwriting ({cfg.n_writers} writers) in {data_root}")
            synth.generate_dataset(data_root, cfg, log=print)
        settings = settings.model_copy(update={"reps_per_session": cfg.reps_per_session})
    run_config = load_config_file(args.config) if args.config else None
    timings = run_stages(settings, preset=args.preset, run_config=run_config, stages=JOB_STAGES[args.job])
    total = sum(timings.values())
    print(f"wrmil: all stages done in {total:.0f} s; artifacts in {settings.artifact_dir}")
    report = Path(settings.artifact_dir) / "report" / "report.html"
    if report.exists():
        print(f"wrmil: report: {report}")
    print("wrmil: `make ui` shows these runs in the Dagster UI")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    """Score one questioned document; bad input prints the reason and exits with code 2."""
    from wrmil_core.errors import WrmilInputError
    from wrmil_core.scoring.score import resolve_model_dirs, score_document, write_outputs

    from .resources import default_artifact_dir

    artifact_dir = Path(args.artifact_dir or default_artifact_dir())
    try:
        emb_dir, mil_dir = resolve_model_dirs(artifact_dir, args.model, args.embedding_model, args.mil_model)
        result = score_document(args.path, emb_dir, mil_dir, order_csv=args.order_csv, device=args.device,
                                top_k=args.top_k)
        # Not inside the document folder: an examiner's evidence folder stays untouched.
        out_dir = Path(args.out) if args.out else artifact_dir / "scores" / Path(result.document).name
        if out_dir.resolve() == Path(result.document).resolve():
            raise WrmilInputError(f"--out {out_dir} is the document folder: strip.png would be taken as a word "
                                  "next time; choose another output folder")
        paths = write_outputs(result, out_dir)
    except WrmilInputError as e:
        print(f"wrmil score: error: {e}", file=sys.stderr)
        return 2
    print(result.summary())
    print(f"wrmil score: JSON  {paths['json']}")
    print(f"wrmil score: strip {paths['strip']}")
    print(f"wrmil score: {result.seconds['total']:.1f} s (embedding {result.seconds['embed']:.1f} s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wrmil", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="materialise the whole asset graph, stage by stage")
    run.add_argument("--preset", default="demo", help="hyper-parameter preset: demo (CPU, synthetic) or paper")
    run.add_argument("--data-root", help=f"raw data root (default {default_data_root()}; generated if missing)")
    run.add_argument("--config", help="run-config file (YAML/JSON, Dagster's ops: {asset: {config: ...}} form)")
    run.add_argument("--generate", action="store_true", help="generate the synthetic set into --data-root if missing")
    run.add_argument("--job", default="full_pipeline", choices=["full_pipeline", "ingest", "retrain", "retrain_mil"],
                     help="which part of the graph to materialise (default: everything)")
    run.set_defaults(func=_cmd_run)
    sc = sub.add_parser("score", help="score a questioned document: P(more than one writer), suspicious words",
                        description="Score a folder of word images in reading order (natural file-name order, "
                                    "or --order-csv with columns image_path,order) with the latest materialised "
                                    "models or the ones given by path. Exit code 2 on bad input.")
    sc.add_argument("path", help="folder of word images (or a CSV with columns image_path,order)")
    sc.add_argument("--out", help="output folder for score.json and strip.png (default <artifact-dir>/scores/<folder name>)")
    sc.add_argument("--model", help="MIL model name (default: the report's best model)")
    sc.add_argument("--embedding-model", help="embedding model directory (default: the latest arcface_model)")
    sc.add_argument("--mil-model", help="MIL model directory (default: the latest mil_model, --model)")
    sc.add_argument("--artifact-dir", help="artifact directory holding the materialised models "
                                           "(default $WRMIL_ARTIFACT_DIR or data/artifacts)")
    sc.add_argument("--order-csv", help="CSV with columns image_path,order (paths relative to PATH)")
    sc.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    sc.add_argument("--top-k", type=int, default=10, help="how many suspicious words to list (default 10)")
    sc.set_defaults(func=_cmd_score)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
