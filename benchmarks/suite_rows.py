"""The suite's rows over several ``mjreinforce benchmark`` calls: one row per (task, preset), as
``benchmarks/suite_benchmark.csv`` keeps them, when a cell's seeds were trained in more than one call.

Usage::

    .venv/bin/python -m benchmarks.suite_rows benchmarks/suite_benchmark.csv D2/benchmark.csv \\
        --evals benchmarks/suite_evals.csv > /tmp/rows.csv

Reads ``benchmark.csv`` files (one row per cell of a call, over the seeds that call finished) in order. A cell
with one row is kept as it is. A cell with rows from several calls (disjoint seeds) becomes one row:

- the score columns (final IQM and CI, final mean and minimum, best IQM and mean) are recomputed from the
  evaluation rounds of all its seeds in ``--evals`` (:func:`~mjreinforce.analysis.suite_report.scores_from_evals`,
  the bootstrap seeded 0 as every table row's), which must hold exactly as many seeds as the rows add up to;
- ``env_steps``, ``wall_seconds`` and ``steps_per_second`` are the seed-weighted means of the rows (the rows are
  means over their seeds), and ``eval_fraction`` is the total evaluation steps over the total training steps.

The reference columns are rebuilt from ``references.toml``, as ``mjreinforce benchmark`` writes them. Bad input
(a missing file, a cell whose seeds the evaluations do not match) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from mjreinforce.analysis.suite_report import SUITE_COLUMNS, scores_from_evals

MEAN_COLUMNS = ("env_steps", "wall_seconds", "steps_per_second")


class RowsError(ValueError):
    """Input the merge cannot use; its message is the one line the command prints."""


def merge_rows(rows: pd.DataFrame, evals: pd.DataFrame) -> pd.DataFrame:
    """One row per (``env_id``, ``preset``) of ``rows`` (:data:`SUITE_COLUMNS`), in order of first appearance,
    cells with several rows merged as the module says; the reference columns follow from ``references.toml``."""
    from mjreinforce.suite.references import load_references

    merged = []
    for _, group in rows.groupby(["env_id", "preset"], sort=False):
        merged.append(group.iloc[0][list(SUITE_COLUMNS)].to_dict() if len(group) == 1 else _merge_cell(group, evals))
    table = pd.DataFrame(merged, columns=list(SUITE_COLUMNS))
    for reference in load_references():
        table[reference.label] = [reference.returns.get(env, np.nan) for env in table["env_id"]]
    return table


def _merge_cell(group: pd.DataFrame, evals: pd.DataFrame) -> dict[str, object]:
    """One cell's rows from several calls as one row (see the module docstring)."""
    env_id, preset = group["env_id"].iloc[0], group["preset"].iloc[0]
    seeds = group["seeds"].astype(int).to_numpy()
    cell_evals = evals[(evals["env_id"] == env_id) & (evals["preset"] == preset)]
    if cell_evals["seed"].nunique() != seeds.sum():
        raise RowsError(
            f"{env_id} {preset}: the rows add up to {seeds.sum()} seeds, the evaluations hold "
            f"{cell_evals['seed'].nunique()} (each seed in one call only, and every call's evaluations given)"
        )
    row: dict[str, object] = {"env_id": env_id, "preset": preset, "seeds": int(seeds.sum())}
    row.update(scores_from_evals(cell_evals, np.random.default_rng(0)))
    for column in MEAN_COLUMNS:
        row[column] = float(np.average(group[column].to_numpy(dtype=np.float64), weights=seeds))
    steps = seeds * group["env_steps"].to_numpy(dtype=np.float64)
    row["eval_fraction"] = float((steps * group["eval_fraction"].to_numpy(dtype=np.float64)).sum() / steps.sum())
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("rows", type=Path, nargs="+", help="benchmark.csv files (suite_benchmark.csv among them)")
    p.add_argument("--evals", type=Path, required=True, help="every evaluation round (suite_evals.csv)")
    args = p.parse_args(argv)
    try:
        for path in [*args.rows, args.evals]:
            if not path.is_file():
                raise RowsError(f"{path}: no such file")
        rows = pd.concat([pd.read_csv(path) for path in args.rows], ignore_index=True)
        table = merge_rows(rows, pd.read_csv(args.evals))
    except (RowsError, pd.errors.ParserError, KeyError) as e:
        print(f"suite_rows: {e}", file=sys.stderr)
        return 2
    table.to_csv(sys.stdout, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
