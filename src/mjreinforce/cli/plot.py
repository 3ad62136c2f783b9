"""``mjreinforce plot``: learning curves of one run, or several runs on one figure."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="plot learning curves", description="Plot the learning curves of runs.")
    p.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    p.add_argument("--x", choices=["episodes", "env_steps", "wall_seconds"], default="episodes")
    p.add_argument("--out", type=Path, help="output directory for a comparison (default: the first run dir)")
    p.add_argument("--target", type=float, help="target return for the steps/seconds-to-target columns")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mjreinforce import plotting

    if len(args.run_dirs) == 1 and args.out is None:
        paths = plotting.plot_run(args.run_dirs[0])
    else:
        paths = plotting.plot_comparison(args.run_dirs, args.out or args.run_dirs[0], x=args.x)
    for path in paths:
        print(path)
    return 0
