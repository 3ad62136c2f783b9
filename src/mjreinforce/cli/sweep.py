"""``mjreinforce sweep``: search config values on Ray Tune, one run directory per config point."""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

from mjreinforce.config_bounds import check_cli


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="hyper-parameter sweep on Ray Tune",
        description="Train every config point of SWEEP.toml over its seeds on Ray Tune; writes "
        "OUT/trial_<k>/ run directories, OUT/sweep_results.csv and OUT/best_config.toml.",
    )
    p.add_argument(
        "sweep_file",
        type=Path,
        metavar="SWEEP.toml",
        help="sweep file: preset, seeds, metric, search, [config], [space], [asha]",
    )
    p.add_argument(
        "--address",
        default=None,
        help="Ray cluster address (HOST:PORT, ray://HOST:PORT or auto); default: a local instance",
    )
    p.add_argument("--out", type=Path, default=None, help="sweep directory (default runs/sweep-<file name>)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="trials at once, and CPUs of a local Ray instance (default: all cores of the "
        "local instance, or of the cluster with --address)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing sweep in --out")
    p.add_argument("--quiet", action="store_true", help="no Ray Tune status tables or worker logs")
    p.add_argument(
        "--allow-large",
        action="store_true",
        help="run a grid of more than 10,000 points or more than 10,000 random samples",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the sweep; Ctrl-C and SIGTERM stop it at any point, also in a process started with SIGINT ignored
    (the entry point exits 130 or 143)."""
    from mjreinforce.sweep.spec import load_sweep
    from mjreinforce.sweep.tune import run_sweep

    check_cli("--workers", args.workers)
    sweep = load_sweep(args.sweep_file, allow_large=args.allow_large)
    out = args.out or Path("runs") / f"sweep-{args.sweep_file.stem}"
    result = run_sweep(
        sweep, out, address=args.address, workers=args.workers, overwrite=args.overwrite, quiet=args.quiet
    )
    print(format_table(result))
    print(f"best: {result.best.run_dir} ({result.metric} {result.best.metric:.2f})")
    print(f"results: {result.results_csv}")
    print(f"best config: {result.best_config} (mjreinforce train --config {result.best_config})")
    return 0


def format_table(result: Any) -> str:
    """One row per config point: trial, searched values, metric, finished/total seeds (and how the
    others ended, e.g. "1 stopped"); * marks the best."""
    keys = list(result.points[0].values) if result.points else []
    header = ["", "trial", *keys, result.metric, "seeds finished"]
    rows = [header]
    for p in result.points:
        statuses = list(p.seed_status.values())
        others = Counter(s for s in statuses if s != "finished")
        seeds = f"{statuses.count('finished')}/{len(statuses)}"
        seeds += "".join(f", {n} {status}" for status, n in sorted(others.items()))
        metric = f"{p.metric:.2f}" if math.isfinite(p.metric) else "-"
        values = (_cell(p.values[k]) for k in keys)
        rows.append(["*" if p is result.best else "", str(p.trial), *values, metric, seeds])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)
