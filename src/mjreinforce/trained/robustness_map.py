"""Two-dimensional robustness maps: every policy evaluated on every cell of a grid of two axes.

``mjreinforce robustness RUN_A RUN_B --vary action_delay_steps=0:4:5 --vary push_force=0:200:5`` evaluates
each policy deterministically at each of the 5 x 5 cells (:mod:`mjreinforce.trained.robustness_axes`: a
physics value or a perturbation key per axis). As in one dimension, every (policy, cell) uses the same env
seeds ``seed + i`` (common random numbers), on the gymnasium backend. Written: ``robustness_map.csv`` (one
row per cell and policy: episodes, mean, std and min of the return), a heatmap of the mean return per policy
and, for two policies, of the second minus the first, each with its colour bar and the training range of
each run drawn on it (``.png`` and ``.svg``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mjreinforce.config_bounds import CLI_BOUNDS, check_number
from mjreinforce.envs.perturb_config import check_env_fits
from mjreinforce.envs.physics import PhysicsUnstableError
from mjreinforce.errors import UserError
from mjreinforce.files import atomic_write
from mjreinforce.trained.evaluation import check_physics, evaluate_policy
from mjreinforce.trained.loading import TrainedPolicy
from mjreinforce.trained.robustness_axes import Axis, Range, training_range
from mjreinforce.training.evaluation import DEFAULT_EVAL_SEED, eval_config

SUMMARY_COLUMNS = ("episodes", "mean_return", "std_return", "min_return")
"""Columns of :func:`summary_table` after the label and the two axes."""


def evaluate_map(
    policies: Mapping[str, TrainedPolicy],
    x: Axis,
    y: Axis,
    episodes: int = 10,
    seed: int = DEFAULT_EVAL_SEED,
    perturb: Sequence[str] = (),
) -> pd.DataFrame:
    """Deterministic returns of every policy at every cell; one row per episode, columns ``label, <x.name>,
    <y.name>, episode, return, length``, ordered by label (as given), x, y, episode. ``perturb`` (``KEY=VALUE``)
    applies at every cell. The corner cells are checked for every policy before the first episode, so a bad
    key, name or perturbation fails before any work; an unstable cell raises PhysicsUnstableError naming the
    policy."""
    if not policies:
        raise UserError("no policies to evaluate")
    if x.name.rstrip("*") == y.name.rstrip("*"):
        raise UserError(f"the two --vary axes name the same key, {x.name}; vary two different keys")
    check_number("map cells", x.values.size * y.values.size, CLI_BOUNDS["map cells"])
    corners = [(0, 0), (x.values.size - 1, y.values.size - 1)]
    for trained in policies.values():
        for i, j in corners:
            (x_physics, x_perturb), (y_physics, y_perturb) = x.settings(i), y.settings(j)
            cfg = eval_config(trained.config, x_physics + y_physics, "gymnasium", [*perturb, *x_perturb, *y_perturb])
            check_physics(cfg)
            check_env_fits(cfg)
    frames = []
    for label, trained in policies.items():
        for i, x_value in enumerate(x.values):
            for j, y_value in enumerate(y.values):
                try:
                    returns, lengths = _cell(trained, x, y, i, j, episodes, seed, perturb)
                except PhysicsUnstableError as exc:
                    raise PhysicsUnstableError(f"policy '{label}': {exc}") from None
                columns = {"label": label, x.name: float(x_value), y.name: float(y_value)}
                episode = np.arange(1, episodes + 1)
                frames.append(pd.DataFrame({**columns, "episode": episode, "return": returns, "length": lengths}))
    return pd.concat(frames, ignore_index=True)


def _cell(
    trained: TrainedPolicy, x: Axis, y: Axis, i: int, j: int, episodes: int, seed: int, perturb: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    (x_physics, x_perturb), (y_physics, y_perturb) = x.settings(i), y.settings(j)
    result = evaluate_policy(
        trained,
        episodes,
        seed,
        physics=x_physics + y_physics,
        backend="gymnasium",
        perturb=[*perturb, *x_perturb, *y_perturb],
    )
    return result.returns, result.lengths


def summary_table(table: pd.DataFrame, x: Axis, y: Axis) -> pd.DataFrame:
    """One row per (label, x, y) in table order: ``episodes, mean_return, std_return`` (ddof=0, over episodes),
    ``min_return``."""
    grouped = table.groupby(["label", x.name, y.name], sort=False)
    out = grouped.agg(
        episodes=("return", "size"),
        mean_return=("return", "mean"),
        std_return=("return", lambda r: float(np.std(r))),
        min_return=("return", "min"),
    )
    return out.reset_index()


def mean_grid(summary: pd.DataFrame, label: str, x: Axis, y: Axis) -> np.ndarray:
    """The mean returns of ``label`` as an array (len(y), len(x)), rows in y order, columns in x order."""
    rows = summary[summary["label"] == label]
    pivot = rows.pivot(index=y.name, columns=x.name, values="mean_return")
    return pivot.loc[list(y.values), list(x.values)].to_numpy(dtype=np.float64)


def file_stems(labels: Sequence[str]) -> list[str]:
    """A distinct file-name stem per label: ``robustness_map_<label>`` with unsafe characters replaced."""
    safe = [re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("._") or "policy" for label in labels]
    if len(set(safe)) < len(safe):
        safe = [f"{i + 1}_{name}" for i, name in enumerate(safe)]
    return [f"robustness_map_{name}" for name in safe]


def output_names(labels: Sequence[str]) -> list[str]:
    """The file names :func:`write_map` writes for these policy labels (checked before any episode)."""
    stems = file_stems(labels) + (["robustness_map_difference"] if len(labels) == 2 else [])
    return ["robustness_map.csv"] + [f"{stem}.{ext}" for stem in stems for ext in ("png", "svg")]


def write_map(
    table: pd.DataFrame,
    out_dir: Path,
    x: Axis,
    y: Axis,
    ranges: Mapping[str, tuple[Range | None, Range | None]],
) -> list[Path]:
    """Write ``robustness_map.csv`` (:func:`summary_table`), a heatmap per policy and, for two policies, the
    difference map (second minus first) into ``out_dir``; ``ranges``: label -> its (x, y) training ranges.
    Returns the paths."""
    from mjreinforce.analysis.plotting import plot_heatmap

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summary_table(table, x, y)
    csv_path = out_dir / "robustness_map.csv"
    atomic_write(csv_path, summary.to_csv(index=False))
    paths = [csv_path]
    labels = list(dict.fromkeys(summary["label"]))
    episodes = int(summary["episodes"].max())
    for label, stem in zip(labels, file_stems(labels), strict=True):
        title = f"{label}: mean return over {episodes} episodes"
        paths += plot_heatmap(
            mean_grid(summary, label, x, y), x.values, y.values, (x.name, y.name), title, out_dir / stem,
            {label: ranges[label]},
        )  # fmt: skip
    if len(labels) == 2:
        first, second = labels
        difference = mean_grid(summary, second, x, y) - mean_grid(summary, first, x, y)
        title = f"mean return: {second} minus {first}"
        paths += plot_heatmap(
            difference, x.values, y.values, (x.name, y.name), title, out_dir / "robustness_map_difference",
            {label: ranges[label] for label in labels}, diverging=True,
        )  # fmt: skip
    return paths


def training_ranges(
    policies: Mapping[str, TrainedPolicy], x: Axis, y: Axis
) -> dict[str, tuple[Range | None, Range | None]]:
    """label -> the (x, y) ranges its run trained on (:func:`~mjreinforce.trained.robustness_axes.training_range`)."""
    return {label: (training_range(p.config, x), training_range(p.config, y)) for label, p in policies.items()}
