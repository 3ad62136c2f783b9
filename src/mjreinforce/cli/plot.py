"""``mjreinforce plot``: learning curves of one run, or several runs on one figure."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="plot learning curves", description="Plot the learning curves of runs.")
    p.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    p.add_argument("--x", choices=["episodes", "env_steps", "wall_seconds"], default="episodes")
    p.add_argument("--out", type=Path, help="output directory of a comparison (default: ./comparison)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the comparison's files in --out even if mjreinforce did not write them (never a run's own)",
    )
    p.add_argument("--window", type=int, default=50, help="episodes in the smoothing and final-return window")
    p.add_argument("--target", type=float, help="target return for the steps/seconds-to-target columns")
    p.set_defaults(run=run)


def comparison_names(x: str) -> tuple[str, ...]:
    """What :func:`mjreinforce.analysis.plotting.plot_comparison` writes into its directory."""
    tables = ("summary.md", "summary.csv", "summary_probability_of_improvement.csv")
    return (f"comparison_{x}.png", f"comparison_{x}.svg", *tables)


def run(args: argparse.Namespace) -> int:
    from mjreinforce.analysis import plotting
    from mjreinforce.config_bounds import check_cli
    from mjreinforce.runs.outputs import check_output_file, record_outputs

    check_cli("--window", args.window)
    check_cli("--target", args.target)
    if len(args.run_dirs) == 1 and args.out is None:
        paths = plotting.plot_run(args.run_dirs[0])
    else:
        out = args.out or Path("comparison")
        for name in comparison_names(args.x):  # critical: before reading the runs, so a refusal writes nothing
            check_output_file(out / name, args.overwrite, sources=args.run_dirs)
        paths = plotting.plot_comparison(args.run_dirs, out, x=args.x, target=args.target, window=args.window)
        record_outputs(paths)
    for path in paths:
        print(path)
    return 0
