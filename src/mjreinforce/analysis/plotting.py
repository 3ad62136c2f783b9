"""Figures from run directories: learning curves, comparisons, robustness sweeps.

The only module that imports matplotlib and seaborn (with the non-interactive
Agg backend, so it works without a display). Plots are built from the files
on disk (see :mod:`mjreinforce.runs.reading`), never from in-memory training state.
Each figure is written as ``<stem>.png`` and ``<stem>.svg``.

A learning curve is the mean over seeds of each seed's smoothed return (a
trailing mean over ``smooth_window`` episodes) with a 95% bootstrap confidence
band across seeds. Curves are evaluated on at most ~300 x points: every k-th
episode, or a common grid of env steps / seconds on which each seed's curve is
step-interpolated (:func:`mjreinforce.analysis.stats.curve_on_grid`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import patheffects
from matplotlib.ticker import EngFormatter

from mjreinforce.analysis import stats, tables
from mjreinforce.errors import UserError
from mjreinforce.files import atomic_output
from mjreinforce.runs.reading import RunData, load_run, load_runs

matplotlib.use("Agg")  # no display needed; switching after importing pyplot is fine (no figure exists yet)

XAxis = Literal["episodes", "env_steps", "wall_seconds"]
X_LABELS = {"episodes": "episode", "env_steps": "environment steps", "wall_seconds": "wall-clock seconds"}
MAX_EPISODE_POINTS = 300
GRID_POINTS = 200
N_BOOT = 200
DEFAULT_SMOOTH_WINDOW = 50


def _episode_curves(runs: Sequence[RunData], smooth_window: int) -> pd.DataFrame:
    """Smoothed returns at <= 300 shared episode numbers (both ends included), long format."""
    last = int(max(run.episodes["episode"].max() for run in runs))
    points = np.unique(np.round(np.linspace(1, last, min(last, MAX_EPISODE_POINTS))).astype(np.int64))
    frames = []
    for run in runs:
        for seed, ep in run.by_seed():
            smoothed = stats.moving_mean(ep["return"].to_numpy(), smooth_window)
            keep = np.isin(ep["episode"].to_numpy(), points)
            frames.append(
                pd.DataFrame(
                    {
                        "run": run.label,
                        "seed": seed,
                        "x": ep["episode"].to_numpy()[keep],
                        "return": smoothed[keep],
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def grid_curves(runs: Sequence[RunData], column: str, smooth_window: int) -> pd.DataFrame:
    """Smoothed returns step-interpolated onto one grid of ``column`` values shared by all runs.

    Each seed contributes only between its first and its last episode, so a
    seed that stopped early does not extend flat to the end of the axis.
    """
    seeds = [(run.label, seed, ep) for run in runs for seed, ep in run.by_seed()]
    # critical: a resumed seed could restart its clock; keep x non-decreasing for the interpolation.
    xs = [np.maximum.accumulate(ep[column].to_numpy(dtype=np.float64)) for _, _, ep in seeds]
    grid = np.linspace(min(x[0] for x in xs), max(x[-1] for x in xs), GRID_POINTS)
    frames = []
    for (label, seed, ep), x in zip(seeds, xs, strict=True):
        values = stats.curve_on_grid(x, stats.moving_mean(ep["return"].to_numpy(), smooth_window), grid)
        values[grid > x[-1]] = np.nan
        frames.append(pd.DataFrame({"run": label, "seed": seed, "x": grid, "return": values}))
    return pd.concat(frames, ignore_index=True).dropna(subset=["return"])


def _title(runs: Sequence[RunData]) -> str:
    if len(runs) == 1:
        return f"{runs[0].algorithm} on {runs[0].env_id}"
    envs = {run.env_id for run in runs}
    return envs.pop() if len(envs) == 1 else "comparison"


def save_figure(fig: plt.Figure, out_stem: Path) -> list[Path]:
    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [out_stem.with_name(f"{out_stem.name}.png"), out_stem.with_name(f"{out_stem.name}.svg")]
    try:
        for path, dpi in zip(paths, (120, None), strict=True):
            with atomic_output(path, suffix=path.suffix) as tmp:
                fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return paths


def plot_learning_curves(
    runs: Sequence[RunData],
    out_stem: Path,
    x: XAxis = "episodes",
    smooth_window: int = DEFAULT_SMOOTH_WINDOW,
) -> list[Path]:
    """Return vs ``x``: one line per run (mean over seeds) with a 95% bootstrap CI band over seeds.

    Writes ``out_stem.png`` and ``out_stem.svg`` and returns their paths. Raises
    :class:`UserError` for an unknown ``x`` or when no run has an episode yet.
    """
    if x not in X_LABELS:
        raise UserError(f"x must be one of {', '.join(X_LABELS)}; got {x!r}")
    runs = [run for run in runs if len(run.episodes)]
    if not runs:
        raise UserError("nothing to plot: no finished episodes in the given run(s)")
    data = _episode_curves(runs, smooth_window) if x == "episodes" else grid_curves(runs, x, smooth_window)
    names = {run.label: legend_name(run) for run in runs}
    data["run"] = data["run"].map(names)
    with sns.axes_style("darkgrid"), sns.plotting_context("talk", font_scale=0.8):
        fig, ax = plt.subplots(figsize=(10, 6))
        sns.lineplot(data=data, x="x", y="return", hue="run", errorbar=("ci", 95), n_boot=N_BOOT, seed=0, ax=ax)
        ax.set_title(_title(runs))
        ax.set_xlabel(X_LABELS[x])
        ax.set_ylabel(f"episode return (mean of last {smooth_window})")
        if x == "env_steps":
            ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.legend(title="mean over seeds, 95% CI", fontsize="small", title_fontsize="small")
        return save_figure(fig, out_stem)


def legend_name(run: RunData) -> str:
    """``"label (5 seeds)"``, or ``"label (5 seeds, 1 diverged)"`` when seeds ended with status "diverged"."""
    seeds = len(run.seeds)
    diverged = sum(status == "diverged" for status in run.seed_status.values())
    return f"{run.label} ({seeds} seed{'s' * (seeds != 1)}{f', {diverged} diverged' if diverged else ''})"


def _smooth_window_of(run: RunData) -> int:
    value = run.config.get("stats_window", DEFAULT_SMOOTH_WINDOW)
    return value if isinstance(value, int) and value >= 1 else DEFAULT_SMOOTH_WINDOW


def plot_run(run_dir: Path) -> list[Path]:
    """The standard figures of one run, written into ``run_dir``.

    ``learning_curve.{png,svg}`` (return vs episodes) and
    ``learning_curve_steps.{png,svg}`` (return vs env steps), smoothed over the
    run's ``stats_window`` (50 if unknown).
    """
    run = load_run(Path(run_dir))
    window = _smooth_window_of(run)
    return [
        *plot_learning_curves([run], run.run_dir / "learning_curve", "episodes", window),
        *plot_learning_curves([run], run.run_dir / "learning_curve_steps", "env_steps", window),
    ]


def plot_comparison(
    run_dirs: Sequence[Path],
    out_dir: Path,
    x: XAxis = "episodes",
    target: float | None = None,
    window: int = DEFAULT_SMOOTH_WINDOW,
) -> list[Path]:
    """Compare runs: ``comparison_<x>.{png,svg}`` plus the summary tables, all in ``out_dir``.

    The tables are ``summary.md`` (summary and probability of improvement),
    ``summary.csv`` and ``summary_probability_of_improvement.csv``; see
    :func:`mjreinforce.analysis.tables.summary_table` and :func:`~mjreinforce.analysis.tables.improvement_table`.
    ``window`` is both the smoothing window and the final-return window.
    """
    runs = load_runs(run_dirs)
    out_dir = Path(out_dir)
    figures = plot_learning_curves(runs, out_dir / f"comparison_{x}", x, window)
    summary = tables.summary_table(runs, target=target, window=window)
    improvement = tables.improvement_table(runs, window=window)
    written = tables.write_tables(
        summary, improvement, out_stem=out_dir / "summary", titles=("Summary", "Probability of improvement")
    )
    return [*figures, *written]


def plot_robustness(table: pd.DataFrame, out_stem: Path, varied_key: str) -> list[Path]:
    """Mean return vs the varied physics value, one line per policy, error bars = std over episodes.

    ``table`` has columns ``label, value, episode, return`` (one row per
    evaluation episode). Writes ``out_stem.png`` and ``out_stem.svg``.
    """
    missing = {"label", "value", "return"} - set(table.columns)
    if missing:
        raise ValueError(f"robustness table lacks columns {sorted(missing)}")
    if table.empty:
        raise UserError("nothing to plot: the robustness table is empty")
    with sns.axes_style("darkgrid"), sns.plotting_context("talk", font_scale=0.8):
        fig, ax = plt.subplots(figsize=(10, 6))
        sns.lineplot(data=table, x="value", y="return", hue="label", errorbar="sd", err_style="bars", marker="o", ax=ax)
        ax.set_title(f"Return vs {varied_key}")
        ax.set_xlabel(varied_key)
        ax.set_ylabel("episode return (mean ± std over episodes)")
        ax.legend(title="policy", fontsize="small", title_fontsize="small")
        return save_figure(fig, out_stem)


def cell_edges(values: np.ndarray) -> np.ndarray:
    """Edges (count + 1,) of cells centred on evenly or unevenly spaced ``values`` (count,), ascending or not."""
    values = np.asarray(values, dtype=np.float64)
    middles = (values[1:] + values[:-1]) / 2
    return np.concatenate([[2 * values[0] - middles[0]], middles, [2 * values[-1] - middles[-1]]])


Region = tuple[tuple[float, float] | None, tuple[float, float] | None]


def plot_heatmap(
    grid: np.ndarray,
    x_values: np.ndarray,
    y_values: np.ndarray,
    names: tuple[str, str],
    title: str,
    out_stem: Path,
    regions: dict[str, Region],
    diverging: bool = False,
) -> list[Path]:
    """``grid`` (len(y), len(x)) as coloured cells centred on the axis values, with a colour bar, the values
    written in the cells (up to 12 x 12), and each region (run -> its (x, y) training ranges) drawn as a
    rectangle outline (a line or a point where a range is one value; left out where a range is None).
    ``diverging``: a red-blue scale symmetric about 0 (a difference). Writes ``out_stem.png``/``.svg``."""
    with sns.axes_style("white"), sns.plotting_context("talk", font_scale=0.7):
        fig, ax = plt.subplots(figsize=(9, 6.5))
        finite = grid[np.isfinite(grid)]
        limit = float(np.max(np.abs(finite))) if finite.size else 1.0
        scale = {"cmap": "RdBu", "vmin": -limit or -1.0, "vmax": limit or 1.0} if diverging else {"cmap": "viridis"}
        mesh = ax.pcolormesh(cell_edges(x_values), cell_edges(y_values), grid, shading="flat", **scale)
        fig.colorbar(mesh, ax=ax, label="difference of mean return" if diverging else "mean return")
        if grid.size <= 144:
            halo = [patheffects.withStroke(linewidth=2.5, foreground="white")]
            for (j, i), value in np.ndenumerate(grid):
                at = (float(x_values[i]), float(y_values[j]))
                ax.text(*at, f"{value:.0f}", ha="center", va="center", fontsize=9, path_effects=halo)
        for (run, (x_range, y_range)), style in zip(regions.items(), ("-", "--", ":", "-."), strict=False):
            if x_range is None or y_range is None:
                continue
            (x0, x1), (y0, y1) = x_range, y_range
            point = "o" if (x0, y0) == (x1, y1) else None
            outline = [patheffects.Stroke(linewidth=5, foreground="black"), patheffects.Normal()]
            ax.plot([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], color="white", linestyle=style, linewidth=2.5,
                    marker=point, label=f"{run}: training range", path_effects=outline)  # fmt: skip
        ax.set_title(title)
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", bbox_to_anchor=(0, -0.12), fontsize="small", frameon=False)
        return save_figure(fig, out_stem)


__all__ = ["plot_comparison", "plot_heatmap", "plot_learning_curves", "plot_robustness", "plot_run"]
