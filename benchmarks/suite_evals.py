"""Every deterministic evaluation of every finished seed of one or more ``mjreinforce benchmark`` directories,
as one CSV: what the suite table and figure are computed from, kept in the repository
(``benchmarks/suite_evals.csv``) because run directories do not outlive the machine that trained them.

Usage::

    .venv/bin/python -m benchmarks.suite_evals OUT [OUT ...] > benchmarks/suite_evals.csv
    .venv/bin/python -m benchmarks.suite_evals D2 --commit D2=SHA --keep benchmarks/suite_evals.csv > /tmp/evals.csv

Columns: ``env_id, preset, seed, commit, env_steps, eval_mean_return, eval_std_return, eval_mean_length``, one row
per evaluation round, sorted. ``commit`` is the code a cell trained at, when given as ``--commit OUT=SHA``.
``--keep CSV`` adds the rows of an earlier such file (whose run directories may be gone) for every seed the
directories do not hold: a seed trained again replaces its old rows.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from mjreinforce.suite.directory import benchmark_run_dirs

COLUMNS = ["env_id", "preset", "seed", "commit", "env_steps", "eval_mean_return", "eval_std_return", "eval_mean_length"]


def cell_evals(run_dir: Path, commit: str) -> pd.DataFrame:
    """The evaluation rounds of each finished seed of one cell (``<preset>-<env id>``)."""
    preset, env_id = run_dir.name.split("-", 1)
    frames = []
    for seed_dir in sorted(run_dir.glob("seed_*")):
        summary = json.loads((seed_dir / "summary.json").read_text()) if (seed_dir / "summary.json").exists() else {}
        if summary.get("status") != "finished":
            continue
        evals = pd.read_csv(seed_dir / "evals.csv")
        frames.append(evals.assign(env_id=env_id, preset=preset, commit=commit))
    return pd.concat(frames) if frames else pd.DataFrame(columns=COLUMNS)


def keep_other_seeds(earlier: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """``new`` and the rows of ``earlier`` whose (env, preset, seed) ``new`` does not hold."""
    key = ["env_id", "preset", "seed"]
    held = pd.MultiIndex.from_frame(new[key].drop_duplicates())
    old = earlier[~pd.MultiIndex.from_frame(earlier[key]).isin(held)]
    return pd.concat([old[COLUMNS], new[COLUMNS]], ignore_index=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, nargs="+", help="benchmark directories")
    p.add_argument("--commit", action="append", default=[], help="OUT=SHA: the commit OUT's cells trained at")
    p.add_argument("--keep", type=Path, default=None, help="an earlier suite_evals.csv whose other seeds to keep")
    args = p.parse_args(argv)
    commits = dict(item.split("=", 1) for item in args.commit)
    frames = [cell_evals(d, commits.get(str(out), "")) for out in args.out for d in benchmark_run_dirs(out)]
    table = pd.concat(frames)[COLUMNS]
    if args.keep is not None:
        table = keep_other_seeds(pd.read_csv(args.keep, dtype={"commit": str}), table)
    table = table.sort_values(["env_id", "preset", "seed", "env_steps"])
    table.to_csv(sys.stdout, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
