"""A benchmark suite's results: one row per (env, preset) over seeds, and one figure with a panel per env.

The final deterministic evaluation of each seed (its last evaluation, taken on the final policy) is the
score. Over seeds: the IQM with a 95% percentile-bootstrap CI, the mean and the minimum. ``best_iqm`` is
the highest IQM over seeds that any evaluation round reached during training (rounds matched by their
order), so ``final_iqm / best_iqm`` says whether the runs collapsed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import EngFormatter

from mjreinforce.analysis import stats
from mjreinforce.analysis.plotting import grid_curves, save_figure
from mjreinforce.analysis.tables import write_tables
from mjreinforce.runs.reading import RunData

SUITE_COLUMNS = (
    "env_id",
    "preset",
    "seeds",
    "final_iqm",
    "final_ci_low",
    "final_ci_high",
    "final_mean",
    "final_min",
    "best_iqm",
    "best_mean",
    "env_steps",
    "eval_fraction",
    "wall_seconds",
    "steps_per_second",
)


@dataclass(frozen=True)
class SuiteRun:
    """One (env, preset) cell of the suite: its run directory's data and each finished seed's summary."""

    env_id: str
    preset: str
    run: RunData
    summaries: Mapping[int, Mapping[str, Any]]


def _rounds(evals: pd.DataFrame) -> pd.DataFrame:
    """``evals`` with a ``round`` column: each seed's k-th evaluation is round k (0-based)."""
    return evals.sort_values(["seed", "env_steps"]).assign(round=lambda d: d.groupby("seed").cumcount())


def _best_round_iqm(evals: pd.DataFrame) -> float:
    """Max over evaluation rounds of the IQM over seeds (round k = each seed's k-th evaluation)."""
    if evals.empty:
        return float("nan")
    per_round = _rounds(evals).groupby("round")["eval_mean_return"].apply(stats.iqm)
    return float(per_round.max())


def eval_curve(evals: pd.DataFrame, seeds: Sequence[int]) -> pd.DataFrame:
    """The table's score at every evaluation round: the IQM over ``seeds`` of round k's deterministic
    evaluation, with its 95% percentile-bootstrap CI (each round's bootstrap seeded 0, as each table row's), at
    the seeds' mean env steps of that round.

    Only rounds that every seed reached; so the last row of a finished cell is its ``final_iqm`` (each seed's
    last evaluation is of its final policy). Columns ``env_steps``, ``iqm``, ``ci_low``, ``ci_high``.
    """
    rows = []
    rounds = _rounds(evals[evals["seed"].isin(list(seeds))])
    for _, group in rounds.groupby("round"):
        if group["seed"].nunique() < len(seeds):
            break
        scores = group["eval_mean_return"].to_numpy(dtype=np.float64)
        low, high = stats.bootstrap_ci(scores, stats.iqm, rng=np.random.default_rng(0))
        rows.append({"env_steps": group["env_steps"].mean(), "iqm": stats.iqm(scores), "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows, columns=["env_steps", "iqm", "ci_low", "ci_high"])


def _finished(cell: SuiteRun) -> dict[int, Mapping[str, Any]]:
    """The seeds of ``cell`` with a final evaluation, and their summaries."""
    return {s: v for s, v in cell.summaries.items() if v.get("final_eval_mean_return") is not None}


def suite_row(cell: SuiteRun, rng: np.random.Generator) -> dict[str, Any]:
    """The table row of one cell (NaN where no seed finished)."""
    finished = _finished(cell)
    final = np.array([v["final_eval_mean_return"] for v in finished.values()], dtype=np.float64)
    best = np.array([v.get("best_eval_mean_return", np.nan) for v in finished.values()], dtype=np.float64)
    low, high = stats.bootstrap_ci(final, stats.iqm, rng=rng)

    def mean_of(key: str) -> float:
        values = [float(v[key]) for v in finished.values() if v.get(key) is not None]
        return float(np.mean(values)) if values else float("nan")

    env_steps = mean_of("env_steps")
    return {
        "env_id": cell.env_id,
        "preset": cell.preset,
        "seeds": len(finished),
        "final_iqm": stats.iqm(final),
        "final_ci_low": low,
        "final_ci_high": high,
        "final_mean": float(final.mean()) if final.size else float("nan"),
        "final_min": float(final.min()) if final.size else float("nan"),
        "best_iqm": _best_round_iqm(cell.run.evals[cell.run.evals["seed"].isin(list(finished))]),
        "best_mean": float(best.mean()) if best.size else float("nan"),
        "env_steps": env_steps,
        "eval_fraction": mean_of("eval_env_steps") / env_steps if env_steps else float("nan"),
        "wall_seconds": mean_of("wall_seconds"),
        "steps_per_second": mean_of("steps_per_second"),
    }


def suite_table(cells: Sequence[SuiteRun], references: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """One row per cell (:data:`SUITE_COLUMNS`), then one column per published reference (by source name)."""
    # each cell's bootstrap has its own generator: its CI does not depend on which other cells are in the table
    table = pd.DataFrame([suite_row(cell, np.random.default_rng(0)) for cell in cells], columns=list(SUITE_COLUMNS))
    for source, returns in references.items():
        table[source] = [returns.get(env, np.nan) for env in table["env_id"]]
    return table


def write_suite_table(table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """``benchmark.md`` (with a Markdown table) and ``benchmark.csv``."""
    return write_tables(table, out_stem=Path(out_dir) / "benchmark", titles=["Final deterministic evaluation"])


def plot_suite(
    cells: Sequence[SuiteRun],
    references: Mapping[str, Mapping[str, float]],
    out_stem: Path,
    smooth_window: int = 20,
) -> list[Path]:
    """The table's score over training, one panel per env and one colour per preset: the IQM over the
    finished seeds of each deterministic evaluation round with its 95% CI band (:func:`eval_curve`; its last
    point is the table's final IQM), the stochastic policy's training return (mean over seeds, smoothed) as a
    faint dotted line of the same colour, and each published reference for that env as a labelled
    horizontal line."""
    envs = list(dict.fromkeys(cell.env_id for cell in cells))
    cols = min(4, len(envs))
    rows = -(-len(envs) // cols)
    with sns.axes_style("darkgrid"), sns.plotting_context("notebook", font_scale=0.8):
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
        for ax, env in zip(axes.flat, envs, strict=False):
            presets = [c for c in cells if c.env_id == env]
            for k, cell in enumerate(presets):
                _plot_cell(ax, cell, f"C{k}", smooth_window)
            for k, (source, returns) in enumerate(references.items()):
                if env in returns:
                    ax.axhline(returns[env], ls="--", lw=1, color=f"C{k + 3}", label=source)
            ax.set_title(env)
            ax.set_xlabel("environment steps")
            ax.set_ylabel("return")
            ax.xaxis.set_major_formatter(EngFormatter(sep=""))
            ax.legend(fontsize="xx-small")
        for ax in list(axes.flat)[len(envs) :]:
            ax.set_visible(False)
        fig.tight_layout()
        return save_figure(fig, out_stem)


def _plot_cell(ax: plt.Axes, cell: SuiteRun, color: str, smooth_window: int) -> None:
    """One preset's lines in its env's panel: the evaluation IQM with its CI band, the training return faint."""
    curve = eval_curve(cell.run.evals, sorted(_finished(cell)))
    if not curve.empty:
        ax.plot(curve["env_steps"], curve["iqm"], color=color, marker=".", label=f"{cell.preset} (eval IQM)")
        ax.fill_between(curve["env_steps"], curve["ci_low"], curve["ci_high"], color=color, alpha=0.2)
    if len(cell.run.episodes):
        train = grid_curves([cell.run], "env_steps", smooth_window).groupby("x")["return"].mean()
        ax.plot(train.index, train.to_numpy(), color=color, ls=":", lw=1, alpha=0.6, label=f"{cell.preset} (training)")
