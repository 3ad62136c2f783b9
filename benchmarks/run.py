"""Benchmark mjreinforce on InvertedPendulum-v5, pinned to one CPU core; writes a Markdown report.

Usage, from the repository root (``make bench`` runs the first line)::

    .venv/bin/python -m benchmarks.run                       # full run -> benchmarks/RESULTS.md
    .venv/bin/python -m benchmarks.run --quick               # smoke check -> /tmp/mjreinforce-bench-quick.md
    .venv/bin/python -m benchmarks.run --only throughput --out /tmp/t.md
    .venv/bin/python -m benchmarks.run --only solve --seeds 1,2 --include-tutorial --out /tmp/s.md
    .venv/bin/python -m benchmarks.run --only perturb   # noise and delays on envpool, HalfCheetah -> its block

Part 1 measures env steps/s side by side in this one process (raw stepping and training of the
presets, each repeated, median reported); part 2 trains each seed until the deterministic
evaluation reaches a return of 1000. Nothing is asserted: the report states each target of
the issue with the measured value and PASS/FAIL. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Only the standard library is imported before pinning (see machine.pin_to_one_core).
from benchmarks import machine
from benchmarks.results_file import KEPT_BLOCKS, RESULTS

DEFAULT_QUICK_OUT = Path("/tmp/mjreinforce-bench-quick.md")
FULL_SEEDS = (1, 2, 3, 5, 8)
QUICK_SEEDS = (1,)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small budgets and one seed: a smoke check, not results")
    p.add_argument(
        "--only",
        choices=("throughput", "solve", "perturb"),
        help="run only this part; perturb: the cost of noise and delays on envpool (benchmarks/perturb_cost.py), "
        "which replaces only its own block of the report",
    )
    p.add_argument(
        "--perturb-steps", type=int, help="perturb: env steps per measurement (default 100000; --quick 20000)"
    )
    p.add_argument("--perturb-rounds", type=int, help="perturb: rounds (default 3; --quick 1)")
    p.add_argument("--seeds", type=_seeds, help="seeds for the time-to-solve part, e.g. 1,2,3,5,8")
    p.add_argument(
        "--include-tutorial",
        action="store_true",
        help="also time-to-solve the tutorial preset (about 10 minutes per seed)",
    )
    p.add_argument("--repeats", type=int, help="repeats of each throughput measurement (default 3; --quick 2)")
    p.add_argument("--core", type=int, help="CPU core to pin to (default: the highest one this process may use)")
    p.add_argument(
        "--out",
        type=Path,
        help=f"report path (default {RESULTS.relative_to(RESULTS.parents[1])}; --quick: {DEFAULT_QUICK_OUT})",
    )
    args = p.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        p.error("--repeats must be >= 1")
    if args.only in ("throughput", "solve") and args.out is None and not args.quick:
        # the report of one part would replace the other part's section of the full run's RESULTS.md
        p.error(f"--only {args.only} writes a partial report: give --out (benchmarks/RESULTS.md is the full run's)")
    return args


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be comma-separated integers, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"seeds must be distinct and non-empty, got {text!r}")
    return seeds


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    core = machine.pin_to_one_core(args.core)
    import warnings

    import gymnasium  # noqa: F401  (its logger installs a warnings filter; ours must come after it)
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    warnings.filterwarnings("ignore", message=".*is out of date.*")
    from benchmarks import plan, report  # after pinning: they import numpy, torch and envpool

    out = args.out or (DEFAULT_QUICK_OUT if args.quick else RESULTS)
    if args.only == "perturb":
        from benchmarks import perturb_cost

        steps = args.perturb_steps or (20_000 if args.quick else 100_000)
        rounds = args.perturb_rounds or (1 if args.quick else 3)
        command = f"python -m benchmarks.run --only perturb --perturb-steps {steps} --perturb-rounds {rounds}"
        return perturb_cost.run(out, core, "HalfCheetah-v5", steps, rounds, command)
    budgets = plan.QUICK if args.quick else plan.FULL
    if args.repeats is not None:
        budgets = budgets.with_repeats(args.repeats)
    seeds = args.seeds or (QUICK_SEEDS if args.quick else FULL_SEEDS)
    meta = machine.machine_and_versions(core)
    results = report.Results(meta=meta, quick=args.quick, budgets=budgets)
    if args.only in (None, "throughput"):
        results.rows, results.configs["throughput"] = plan.run_throughput(budgets)
    if args.only in (None, "solve"):
        presets = ["vpg", "reinforce", "ppo"] + (["tutorial"] if args.include_tutorial else [])
        results.solves, results.configs["solve"] = plan.run_solve(presets, seeds, budgets)
    machine.at_end(results.meta)
    out.parent.mkdir(parents=True, exist_ok=True)
    old = out.read_text() if out.exists() else ""
    kept = "".join(block.kept(old) for block in KEPT_BLOCKS)
    out.write_text(report.render(results) + kept)
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
