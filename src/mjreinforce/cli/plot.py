"""``mjreinforce plot``: learning curves of one run, or several runs on one figure."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="plot learning curves", description="Plot the learning curves of runs.")
    p.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    p.add_argument("--x", choices=["episodes", "env_steps", "wall_seconds"], default="episodes")
    p.add_argument("--out", type=Path, help="output directory of a comparison (default: ./comparison)")
    p.add_argument("--window", type=int, default=50, help="episodes in the smoothing and final-return window")
    p.add_argument("--target", type=float, help="target return for the steps/seconds-to-target columns")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mjreinforce.analysis import plotting
    from mjreinforce.config_bounds import check_cli

    check_cli("--window", args.window)
    check_cli("--target", args.target)
    if len(args.run_dirs) == 1 and args.out is None:
        paths = plotting.plot_run(args.run_dirs[0])
    else:
        out = args.out or Path("comparison")
        paths = plotting.plot_comparison(args.run_dirs, out, x=args.x, target=args.target, window=args.window)
    for path in paths:
        print(path)
    return 0
