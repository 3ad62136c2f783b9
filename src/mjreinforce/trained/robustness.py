"""Robustness of trained policies to physics they were not trained on.

Every policy is evaluated deterministically at every point of a :class:`~mjreinforce.envs.physics_spec.PhysicsGrid`
(e.g. ``gravity=-15:-5:11``). All (policy, point) pairs use the same env seeds ``seed + i``, so they start
from the same initial states and differences come from the physics and the policy alone (common random
numbers). The result is one row per episode; :func:`summary_table` reduces it to mean/std per point.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mjreinforce.envs.perturb_config import check_env_fits
from mjreinforce.envs.physics import PhysicsUnstableError
from mjreinforce.envs.physics_spec import PhysicsGrid
from mjreinforce.errors import UserError
from mjreinforce.files import atomic_write
from mjreinforce.trained.evaluation import check_physics, evaluate_policy
from mjreinforce.trained.loading import TrainedPolicy
from mjreinforce.trained.robustness_axes import Axis, axis_of_grid, varying_column
from mjreinforce.training.evaluation import DEFAULT_EVAL_SEED, eval_config

COLUMNS = ("label", "value", "episode", "return", "length")
"""Columns of :func:`evaluate_grid`'s table; ``episode`` counts from 1 within each (label, value)."""


def grid_axis(grid: PhysicsGrid) -> np.ndarray:
    """The varied number at each grid point, shape ``(count,)``.

    ``grid.values`` is ``(count, numbers)``; with one number that column is the axis, otherwise exactly one
    column may change along the grid (``opt.gravity=0,0,-15:0,0,-5:11`` varies only z). A grid that moves
    several numbers at once has no single x axis and raises UserError.
    """
    return np.asarray(grid.values, dtype=np.float64)[:, varying_column(grid)]


def evaluate_grid(
    policies: Mapping[str, TrainedPolicy],
    grid: PhysicsGrid | Axis,
    episodes: int = 10,
    seed: int = DEFAULT_EVAL_SEED,
    perturb: Sequence[str] = (),
) -> pd.DataFrame:
    """Deterministic returns of every policy (label -> policy) at every grid point (with the ``KEY=VALUE``
    perturbations ``perturb`` at every point). ``grid``: a physics grid, or an :class:`Axis` (a perturbation
    key's values, :mod:`mjreinforce.trained.robustness_axes`).

    Physics at a point: the policy's own fixed training overrides with the grid's key replaced by the
    point's value (:func:`mjreinforce.training.evaluation.eval_config`), no randomization, gymnasium backend. The
    grid's key is checked against every policy's model before the first episode, so a bad field or name
    fails before any work. An unstable point raises PhysicsUnstableError naming the policy.

    Returns a DataFrame with :data:`COLUMNS`, ``len(policies) * count * episodes`` rows ordered by label
    (as given), value (grid order), episode.
    """
    if not policies:
        raise UserError("no policies to evaluate")
    if episodes < 1:
        raise UserError(f"episodes must be >= 1, got {episodes}")
    axis = axis_of_grid(grid) if isinstance(grid, PhysicsGrid) else grid
    for trained in policies.values():
        physics, items = axis.settings(0)
        cfg = eval_config(trained.config, physics, backend="gymnasium", perturb=[*perturb, *items])
        check_physics(cfg)
        check_env_fits(cfg)
    frames = []
    for label, trained in policies.items():
        for i, value in enumerate(axis.values):
            physics, items = axis.settings(i)
            try:
                result = evaluate_policy(
                    trained, episodes, seed, physics=physics, backend="gymnasium", perturb=[*perturb, *items]
                )
            except PhysicsUnstableError as exc:
                raise PhysicsUnstableError(f"policy '{label}': {exc}") from None
            frames.append(
                pd.DataFrame(
                    {
                        "label": label,
                        "value": float(value),
                        "episode": np.arange(1, episodes + 1),
                        "return": result.returns,
                        "length": result.lengths,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)[list(COLUMNS)]


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (label, value) in table order: ``episodes, mean_return, std_return`` (ddof=0, the spread
    over episodes), ``min_return, max_return, mean_length``."""
    grouped = table.groupby(["label", "value"], sort=False)
    out = grouped.agg(
        episodes=("return", "size"),
        mean_return=("return", "mean"),
        std_return=("return", lambda x: float(np.std(x))),
        min_return=("return", "min"),
        max_return=("return", "max"),
        mean_length=("length", "mean"),
    )
    return out.reset_index()


def markdown_report(table: pd.DataFrame, varied_key: str) -> str:
    """The Markdown file: a heading, how the numbers were made, and :func:`summary_table` as a table."""
    from mjreinforce.analysis.tables import to_markdown

    episodes = int(table.groupby(["label", "value"]).size().max())
    return (
        f"# Robustness: return vs {varied_key}\n\n"
        f"Deterministic policies, {episodes} episodes per point; std is over episodes.\n\n"
        + to_markdown(summary_table(table))
    )


def write_robustness(table: pd.DataFrame, out_dir: Path, varied_key: str) -> list[Path]:
    """Write ``robustness.csv`` (every episode), ``robustness.md`` (mean/std per label x value) and the
    plot ``robustness.png``/``.svg`` into ``out_dir``; return the paths. Tables are written atomically."""
    from mjreinforce.analysis.plotting import plot_robustness

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out_dir / "robustness.csv", out_dir / "robustness.md"
    atomic_write(csv_path, table.to_csv(index=False))
    atomic_write(md_path, markdown_report(table, varied_key))
    return [csv_path, md_path, *plot_robustness(table, out_dir / "robustness", varied_key)]
