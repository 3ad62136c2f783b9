"""The axes of a robustness grid: a physics value or a perturbation key, and each run's training range on it.

``--vary KEY=LOW:HIGH:COUNT`` names either a physics key (:mod:`mjreinforce.envs.physics_spec`: ``gravity``,
``body_mass.torso*``, ...) or a numeric perturbation key (:mod:`mjreinforce.config_perturbations`:
``action_delay_steps``, ``push_force``, ``obs_noise_std``, ...). Its points are ``np.linspace(LOW, HIGH,
COUNT)``; the step keys need whole numbers at every point. At a point, a physics axis adds one override and a
perturbation axis one ``KEY=VALUE`` perturbation (a fixed value: ``push_force=50`` pushes with exactly 50 N).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mjreinforce.config import Config, check_field
from mjreinforce.config_bounds import CLI_BOUNDS
from mjreinforce.config_perturbations import INTEGER_KEYS, PERTURBATION_KEYS, SPEC_KEYS, parse_perturbations, parse_spec
from mjreinforce.envs.custom import make_id
from mjreinforce.envs.physics import make_physics_env, read, resolve
from mjreinforce.envs.physics_spec import PhysicsGrid, parse_grid, parse_override, parse_range
from mjreinforce.errors import UserError

Range = tuple[float, float]


@dataclass(frozen=True, eq=False)
class Axis:
    """``values`` (count,) of the varied number named ``name``; per point, the physics override specs or the
    perturbation items it adds (``physics`` or ``perturb``, one entry per point, the other empty)."""

    name: str
    values: np.ndarray
    physics: tuple[str, ...] = ()
    perturb: tuple[str, ...] = ()
    grid: PhysicsGrid | None = None

    def settings(self, index: int) -> tuple[list[str], list[str]]:
        """``(physics specs, perturbation items)`` at point ``index``."""
        return list(self.physics[index : index + 1]), list(self.perturb[index : index + 1])


def parse_axis(text: str) -> Axis:
    """``--vary`` text -> :class:`Axis`; a malformed one is a one-line UserError."""
    key = text.partition("=")[0].strip()
    if key in PERTURBATION_KEYS:
        return _perturbation_axis(key, text)
    return axis_of_grid(parse_grid(text))


def axis_of_grid(grid: PhysicsGrid) -> Axis:
    """A physics grid as an :class:`Axis` (its varied number, :func:`varying_column`, at each point)."""
    values = np.asarray(grid.values, dtype=np.float64)[:, varying_column(grid)]
    return Axis(grid.target.key + ("*" if grid.scale else ""), values, physics=grid.specs(), grid=grid)


def varying_column(grid: PhysicsGrid) -> int:
    """The column of ``grid.values`` that changes along the grid (0 for one number); see :func:`grid_axis`."""
    values = np.asarray(grid.values, dtype=np.float64)
    if values.shape[1] == 1:
        return 0
    varying = [j for j in range(values.shape[1]) if np.ptp(values[:, j]) > 0]
    if len(varying) != 1:
        raise UserError(
            f"robustness grid for '{grid.target.key}' varies {len(varying)} numbers at once; "
            "vary exactly one, e.g. gravity=-15:-5:11"
        )
    return varying[0]


def _perturbation_axis(key: str, text: str) -> Axis:
    if key == "push_body":
        raise UserError("push_body names a body, it has no numbers to vary; give it with --perturb push_body=NAME")
    parts = text.partition("=")[2].split(":")
    example = f"{key}=LOW:HIGH:COUNT, e.g. {key}=0:4:5"
    if len(parts) != 3:
        raise UserError(f"--vary {text!r} has {len(parts)} ':'-separated parts; expected {example}")
    count, digits = CLI_BOUNDS["COUNT"], parts[2].strip()
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 9 and count.contains(int(digits))):
        raise UserError(f"--vary {text!r}: COUNT must be an integer in {count.interval()} ({count.why})")
    try:
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        raise UserError(f"--vary {text!r}: LOW and HIGH must be numbers; expected {example}") from None
    values = np.linspace(low, high, int(digits))
    if key in INTEGER_KEYS and not np.all(values == np.round(values)):
        raise UserError(
            f"--vary {text!r} gives steps that are not whole numbers ({', '.join(f'{v:g}' for v in values[:4])}, "
            "...); choose COUNT so that (HIGH - LOW) / (COUNT - 1) is a whole number"
        )
    items = tuple(f"{key}={int(v) if key in INTEGER_KEYS else float(v):.12g}" for v in values)
    for item in (items[0], items[-1]):  # the ends bound every point between them
        value = item.partition("=")[2]
        check_field(key, value)
        if key in SPEC_KEYS:
            parse_spec(key, value)
    return Axis(key, values, perturb=items)


def training_range(cfg: Config, axis: Axis) -> Range | None:
    """The values of ``axis`` that the run of ``cfg`` trained on, ``(low, high)`` (low == high: one value);
    None where the run's training defines none (push intervals of a run trained without pushes)."""
    if axis.grid is None:
        return _perturbation_range(cfg, axis.name)
    return _physics_range(cfg, axis.grid)


def _perturbation_range(cfg: Config, key: str) -> Range | None:
    p = parse_perturbations(cfg)
    ranges: dict[str, Any] = {
        "action_delay_steps": (p.action_delay.low, p.action_delay.high),
        "obs_delay_steps": (p.obs_delay.low, p.obs_delay.high),
        "obs_noise_std": (min(p.obs_noise_std or (0.0,)), max(p.obs_noise_std or (0.0,))),
        "action_noise_std": (p.action_noise_std, p.action_noise_std),
        "push_force": (0.0, 0.0) if p.push is None else (p.push.force.low, p.push.force.high),
        "push_interval_steps": None if p.push is None else (p.push.interval.low, p.push.interval.high),
        "push_duration_steps": None if p.push is None else (p.push.duration, p.push.duration),
    }
    found = ranges[key]
    return None if found is None else (float(found[0]), float(found[1]))


def _physics_range(cfg: Config, grid: PhysicsGrid) -> Range | None:
    """From the run's randomization of the key, else its fixed override, else the model's own value (a scale
    axis: factor 1). A range given as a scale on a set axis (or the reverse) is converted with the model's
    value under the run's other fixed overrides."""
    key, column = grid.target.key, varying_column(grid)
    randomized = [r for r in map(parse_range, cfg.randomize) if r.target.key == key]
    fixed = [o for o in map(parse_override, cfg.physics) if o.target.key == key]
    if randomized:
        low, high, scale = randomized[-1].low, randomized[-1].high, randomized[-1].scale
    elif fixed:
        low = high = fixed[-1].value
        scale = fixed[-1].scale
    else:
        return (1.0, 1.0) if grid.scale else (_model_value(cfg, grid, column),) * 2
    pick = column if len(low) > 1 else 0
    lo, hi = low[pick], high[pick]
    if scale == grid.scale:
        return (lo, hi)
    base = _model_value(cfg, grid, column)
    if grid.scale:
        return None if base == 0 else (lo / base, hi / base)
    return (lo * base, hi * base)


def _model_value(cfg: Config, grid: PhysicsGrid, column: int) -> float:
    """The number ``column`` of the grid's key in the run's model, under its fixed overrides of other keys."""
    others = [spec for spec in cfg.physics if parse_override(spec).target.key != grid.target.key]
    env = make_physics_env(make_id(cfg), others, env_kwargs=cfg.env_kwargs)
    try:
        model = env.unwrapped.model  # type: ignore[attr-defined]
        return float(read(model, resolve(model, grid.target))[column])
    finally:
        env.close()
