"""The suite figure from ``benchmarks/suite_evals.csv``: every cell's deterministic evaluation over env steps, the
quantity of the suite table, for cells whose run directories are gone.

Usage::

    .venv/bin/python -m benchmarks.suite_figure benchmarks/suite_evals.csv docs/img/mujoco_suite

Writes ``STEM.png`` and ``STEM.svg``: a panel per task, a colour per preset, the IQM over seeds of each
evaluation round with its 95% CI band (its last point is the table's final IQM), and every published
reference of the task (``references.toml``) as a labelled dashed line
(:func:`~mjreinforce.analysis.suite_report.plot_eval_suite`). The training return is not in the CSV, so the
figure does not draw it. A missing or unreadable CSV is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("evals", type=Path, help="evaluation rounds (suite_evals.csv)")
    p.add_argument("stem", type=Path, help="output path without suffix")
    args = p.parse_args(argv)
    try:
        evals = pd.read_csv(args.evals)
        missing = {"env_id", "preset", "seed", "env_steps", "eval_mean_return"} - set(evals.columns)
        if missing or evals.empty:
            raise ValueError(f"no evaluation rounds (columns missing: {', '.join(sorted(missing)) or 'none'})")
    except (OSError, ValueError, pd.errors.ParserError) as e:
        print(f"suite_figure: {args.evals}: {e}", file=sys.stderr)
        return 2
    from mjreinforce.analysis.suite_report import plot_eval_suite
    from mjreinforce.suite.references import load_references

    references = {r.label: r.returns for r in load_references()}
    for path in plot_eval_suite(evals, references, args.stem):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
