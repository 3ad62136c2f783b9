"""``mjreinforce benchmark``: the MuJoCo suite, env x preset x seed, against published results."""

from __future__ import annotations

import argparse
from pathlib import Path

from mjreinforce.config_bounds import check_cli
from mjreinforce.errors import UserError
from mjreinforce.runs.ownership import directory_kind


def _names(text: str) -> list[str]:
    return [t for t in (x.strip() for x in text.split(",")) if t]


def _seeds(text: str) -> list[int]:
    try:
        return [int(t) for t in _names(text)]
    except ValueError:
        raise UserError(f"--seeds must be comma-separated integers, got {text!r}") from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    from mjreinforce.suite.grid import DEFAULT_ENVS, DEFAULT_PRESETS, DEFAULT_SEEDS, DEFAULT_STEPS

    p = sub.add_parser(
        "benchmark",
        help="run the MuJoCo suite and compare with published results",
        description="Train every cell of the grid env x preset x seed (each preset with its per-task "
        "overrides) and write OUT/benchmark.md, benchmark.csv and learning_curves.png/svg. A second call "
        "on the same --out skips the finished cells and resumes (or redoes) the others.",
    )
    p.add_argument("--envs", type=_names, default=list(DEFAULT_ENVS), help="comma-separated env ids, each once")
    p.add_argument("--presets", type=_names, default=list(DEFAULT_PRESETS), help="comma-separated presets, each once")
    p.add_argument(
        "--seeds", type=str, default=",".join(map(str, DEFAULT_SEEDS)), help="comma-separated seeds, each once"
    )
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="env steps per cell")
    p.add_argument("--workers", type=int, default=2, help="cells at once (local worker processes)")
    p.add_argument(
        "--address",
        default=None,
        help="run the cells as Ray tasks on this cluster (HOST:PORT, ray://HOST:PORT, auto, or local for a "
        "new local Ray instance); OUT must be on a file system its nodes share",
    )
    p.add_argument("--out", type=Path, default=Path("runs/benchmark"), help="benchmark directory")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start the benchmark in --out over (only its own files are deleted; anything else refuses)",
    )
    p.add_argument("--quiet", action="store_true", help="no line per finished cell")
    p.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: write the table and the figure from the cells of the grid found in --out",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; 0 when every cell finished, 1 when some failed, 2 for bad input. Ctrl-C and SIGTERM
    stop it at any point, also in a process started with SIGINT ignored (the entry point exits 130 or 143)."""
    check_cli("--workers", args.workers)
    if args.steps < 1:
        raise UserError(f"--steps must be >= 1, got {args.steps}")
    from mjreinforce.suite.run import report, run_benchmark  # imports torch: after the cheap checks

    if args.report_only:
        if directory_kind(args.out) != "benchmark":
            raise UserError(f"{args.out} is not a mjreinforce benchmark directory")
        _, paths = report(args.out, args.envs, args.presets)
        for path in paths:
            print(f"wrote {path}")
        return 0
    result = run_benchmark(
        args.out,
        envs=args.envs,
        presets=args.presets,
        seeds=_seeds(args.seeds),
        steps=args.steps,
        workers=args.workers,
        address=args.address,
        quiet=args.quiet,
        overwrite=args.overwrite,
    )
    for path in result.paths:
        print(f"wrote {path}")
    print(f"wall time of this call: {result.wall_seconds:.0f} s")
    if result.failed:
        print(f"mjreinforce benchmark: {len(result.failed)} cell(s) failed; run again to retry them")
        return 1
    return 0
