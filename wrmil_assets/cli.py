"""The ``wrmil`` command: ``wrmil run`` materialises the graph, ``wrmil score`` scores a document."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .resources import PROJECT_ROOT, WrmilSettings, default_data_root


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

        cfg = synth.PRESETS[args.preset] if hasattr(synth, "PRESETS") else synth.DEMO
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
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
