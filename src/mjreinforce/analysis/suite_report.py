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


def score_columns(
    final: np.ndarray, best: np.ndarray, evals: pd.DataFrame, rng: np.random.Generator
) -> dict[str, float]:
    """A row's scores from each finished seed's final and best deterministic evaluation (``final``, ``best``:
    ``(seeds,)``, in the same seed order) and those seeds' evaluation rounds ``evals``: the final IQM with its
    95% percentile-bootstrap CI (``rng``), the final mean and minimum, the best round IQM
    (:func:`_best_round_iqm`) and the mean of the seeds' best evaluations. NaN where no seed finished."""
    low, high = stats.bootstrap_ci(final, stats.iqm, rng=rng)
    return {
        "final_iqm": stats.iqm(final),
        "final_ci_low": low,
        "final_ci_high": high,
        "final_mean": float(final.mean()) if final.size else float("nan"),
        "final_min": float(final.min()) if final.size else float("nan"),
        "best_iqm": _best_round_iqm(evals),
        "best_mean": float(best.mean()) if best.size else float("nan"),
    }


def scores_from_evals(evals: pd.DataFrame, rng: np.random.Generator) -> dict[str, float]:
    """:func:`score_columns` from evaluation rounds alone (``seed``, ``env_steps``, ``eval_mean_return``; every
    seed finished): a seed's final evaluation is its last round (of its final policy), its best the highest.
    For rows whose run directories are gone (``benchmarks/suite_evals.csv``); equal to :func:`suite_row`'s."""
    by_seed = evals.sort_values(["seed", "env_steps"]).groupby("seed")["eval_mean_return"]
    final = by_seed.last().to_numpy(dtype=np.float64)
    best = by_seed.max().to_numpy(dtype=np.float64)
    return score_columns(final, best, evals, rng)


def suite_row(cell: SuiteRun, rng: np.random.Generator) -> dict[str, Any]:
    """The table row of one cell (NaN where no seed finished)."""
    finished = _finished(cell)
    final = np.array([v["final_eval_mean_return"] for v in finished.values()], dtype=np.float64)
    best = np.array([v.get("best_eval_mean_return", np.nan) for v in finished.values()], dtype=np.float64)
    scores = score_columns(final, best, cell.run.evals[cell.run.evals["seed"].isin(list(finished))], rng)

    def mean_of(key: str) -> float:
        values = [float(v[key]) for v in finished.values() if v.get(key) is not None]
        return float(np.mean(values)) if values else float("nan")

    env_steps = mean_of("env_steps")
    return {
        "env_id": cell.env_id,
        "preset": cell.preset,
        "seeds": len(finished),
        **scores,
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


@dataclass(frozen=True)
class _CellLines:
    """What one preset draws in its env's panel: the evaluation curve (:func:`eval_curve`) and, where the
    episodes are at hand, the training return (``x`` env steps -> mean return over seeds). ``seeds`` goes into
    the legend when given."""

    env_id: str
    preset: str
    curve: pd.DataFrame
    training: pd.Series | None
    seeds: int | None = None


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
    lines = []
    for cell in cells:
        training = None
        if len(cell.run.episodes):
            training = grid_curves([cell.run], "env_steps", smooth_window).groupby("x")["return"].mean()
        lines.append(
            _CellLines(cell.env_id, cell.preset, eval_curve(cell.run.evals, sorted(_finished(cell))), training)
        )
    return _plot_panels(lines, references, out_stem)


def plot_eval_suite(evals: pd.DataFrame, references: Mapping[str, Mapping[str, float]], out_stem: Path) -> list[Path]:
    """:func:`plot_suite`'s figure from evaluation rounds alone (columns ``env_id, preset, seed, env_steps,
    eval_mean_return``, every seed finished, as ``benchmarks/suite_evals.csv``), so without the training
    return: the cells in their order of first appearance, each over all of its seeds (their number in the legend)."""
    lines = [
        _CellLines(env_id, preset, eval_curve(group, sorted(group["seed"].unique())), None, group["seed"].nunique())
        for (env_id, preset), group in evals.groupby(["env_id", "preset"], sort=False)
    ]
    return _plot_panels(lines, references, out_stem)


def _plot_panels(
    lines: Sequence[_CellLines], references: Mapping[str, Mapping[str, float]], out_stem: Path
) -> list[Path]:
    """A panel per env (at most 4 a row), a colour per preset (the same in every panel), the references dashed in
    colours of their own."""
    envs = list(dict.fromkeys(line.env_id for line in lines))
    colours = {preset: f"C{k}" for k, preset in enumerate(dict.fromkeys(line.preset for line in lines))}
    cols = min(4, len(envs))
    rows = -(-len(envs) // cols)
    with sns.axes_style("darkgrid"), sns.plotting_context("notebook", font_scale=0.8):
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
        for ax, env in zip(axes.flat, envs, strict=False):
            for line in lines:
                if line.env_id == env:
                    _plot_cell(ax, line, colours[line.preset])
            for k, (source, returns) in enumerate(references.items()):
                if env in returns:
                    ax.axhline(returns[env], ls="--", lw=1, color=_reference_colour(k, len(colours)), label=source)
            ax.set_title(env)
            ax.set_xlabel("environment steps")
            ax.set_ylabel("return")
            ax.xaxis.set_major_formatter(EngFormatter(sep=""))
            ax.legend(fontsize="xx-small")
        for ax in list(axes.flat)[len(envs) :]:
            ax.set_visible(False)
        fig.tight_layout()
        return save_figure(fig, out_stem)


def _reference_colour(k: int, presets: int) -> str:
    """Reference ``k``'s colour: one of the ten cycle colours the presets do not take, then black and brown."""
    palette = [f"C{i}" for i in range(presets, 10)] + ["black", "saddlebrown"]
    return palette[k % len(palette)]


def _plot_cell(ax: plt.Axes, line: _CellLines, color: str) -> None:
    """One preset's lines in its env's panel: the evaluation IQM with its CI band, the training return faint."""
    if not line.curve.empty:
        seeds = "" if line.seeds is None else f", {line.seeds} seeds"
        label = f"{line.preset} (eval IQM{seeds})"
        ax.plot(line.curve["env_steps"], line.curve["iqm"], color=color, marker=".", label=label)
        ax.fill_between(line.curve["env_steps"], line.curve["ci_low"], line.curve["ci_high"], color=color, alpha=0.2)
    if line.training is not None:
        ax.plot(
            line.training.index,
            line.training.to_numpy(),
            color=color,
            ls=":",
            lw=1,
            alpha=0.6,
            label=f"{line.preset} (training)",
        )
