"""Sweep files: :func:`load_sweep` reads and validates one into a :class:`SweepSpec` of config points.

A sweep file (validated completely before Ray starts)::

    preset = "vpg"                          # base preset (default vpg)
    seeds = [1, 2]                          # every config point is trained over these seeds
    metric = "final_window_mean_return"     # or "final_eval_mean_return", "best_eval_mean_return"; mode = "max"
    search = "grid"                         # or "random" with num_samples = N (and sample_seed)
    [config]                                # fixed overrides of any config key
    total_steps = 20000
    [space]                                 # grid: lists; random: lists or {low, high, log}
    learning_rate = [1e-3, 3e-3]
    [asha]                                  # optional early stopping, in updates
    grace_period = 5

Grid search tries the Cartesian product of the ``[space]`` lists; random search draws ``num_samples``
points. Running them is :func:`mjreinforce.sweep.tune.run_sweep`.
"""

from __future__ import annotations

import itertools
import math
import random
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from mjreinforce.config import (
    DEFAULT_PRESET,
    FIELD_NAMES,
    Config,
    check_field,
    preset_names,
    resolve,
    validate,
    with_overrides,
)
from mjreinforce.config_bounds import CLI_BOUNDS
from mjreinforce.config_coercion import did_you_mean
from mjreinforce.errors import UserError, shown

SWEEP_KEYS = ("preset", "seeds", "metric", "mode", "search", "num_samples", "sample_seed", "config", "space", "asha")
SWEEP_METRICS = ("final_window_mean_return", "final_eval_mean_return", "best_eval_mean_return")
"""Per seed, from its ``summary.json``: the training window's mean return at the end, the last deterministic
evaluation (at the end of training; what ``benchmark`` scores), or the best evaluation during training."""
ASHA_DEFAULTS: dict[str, float] = {"grace_period": 1, "reduction_factor": 4, "max_t": 10**9}
"""ASHA in units of updates (one ``tune.report`` per update); max_t is effectively unlimited."""


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: ``points`` are the searched values of each config point (key -> TOML
    value, trial order); each point is ``base`` with its values and is trained over ``base.seeds``."""

    base: Config
    preset: str
    points: tuple[dict[str, Any], ...]
    metric: str = "final_window_mean_return"
    mode: str = "max"
    asha: dict[str, float] | None = None

    def config(self, k: int) -> Config:
        """The validated config of point ``k``."""
        return validate(with_overrides(self.base, self.points[k]))

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.points[0]) if self.points else ()


def load_sweep(path: Path | str, allow_large: bool = False) -> SweepSpec:
    """Read and validate a sweep file (see :func:`parse_sweep`); a missing or malformed file is a
    :class:`UserError`."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except (FileNotFoundError, IsADirectoryError):
        raise UserError(f"sweep file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"sweep file {path} is not valid TOML: {exc}") from None
    return parse_sweep(raw, source=f"sweep file {path}", allow_large=allow_large)


def parse_sweep(raw: dict[str, Any], source: str = "sweep file", allow_large: bool = False) -> SweepSpec:
    """Validate a sweep table and enumerate its config points, all before anything runs.

    Grid search: every ``[space]`` value is a non-empty list; the points are their Cartesian
    product (file order, last key fastest). Random search: ``num_samples`` points, each value drawn
    independently from a list (uniform choice) or a ``{low, high, log}`` range (integers when both
    bounds are integers, inclusive; log-uniform with ``log = true``), by ``random.Random(sample_seed)``.
    Every value of a list and each bound of a range is checked alone first (type, finite, inside its bound in
    :mod:`mjreinforce.config_bounds`), then every point's config is validated; the first problem is one
    :class:`UserError` line. More than ``CLI_BOUNDS["grid points"]`` grid points or ``CLI_BOUNDS["num_samples"]``
    random samples are refused unless ``allow_large``.
    """
    unknown = sorted(set(raw) - set(SWEEP_KEYS))
    if unknown:
        raise UserError(f"unknown key {unknown[0]!r} in {source} (expected: {', '.join(SWEEP_KEYS)})")
    preset = _option(raw, "preset", [*preset_names()], DEFAULT_PRESET)
    try:  # the preset with its per-task table for the [config] env, then [config]
        base, _ = resolve(preset, _table(raw, "config"), {}, {})
    except UserError as exc:
        raise UserError(f"[config]: {exc}") from None
    if "seeds" in raw:
        base = with_overrides(base, {"seeds": raw["seeds"]})
    metric = _option(raw, "metric", SWEEP_METRICS, SWEEP_METRICS[0])
    mode = _option(raw, "mode", ("max", "min"), "max")
    search = _option(raw, "search", ("grid", "random"), "grid")
    space = _table(raw, "space")
    _check_space(space, search)
    if search == "grid":
        if "num_samples" in raw:
            raise UserError("num_samples needs search = 'random' (a grid tries every combination once)")
        _check_size("grid points", math.prod(len(values) for values in space.values()), allow_large)
        points = [dict(zip(space, values, strict=True)) for values in itertools.product(*space.values())]
    else:
        num_samples, sample_seed = raw.get("num_samples"), raw.get("sample_seed", 0)
        if not _is_int(num_samples) or num_samples < 1:
            raise UserError(f"search = 'random' needs num_samples = N >= 1, got {shown(num_samples)}")
        _check_size("num_samples", num_samples, allow_large)
        if not _is_int(sample_seed):
            raise UserError(f"sample_seed must be an integer, got {shown(sample_seed)}")
        rng = random.Random(sample_seed)
        points = [{key: _draw(rng, spec) for key, spec in space.items()} for _ in range(num_samples)]
    spec = SweepSpec(base, preset, tuple(points), metric, mode, _asha(raw.get("asha")))
    for k, point in enumerate(points):
        try:
            cfg = spec.config(k)
        except UserError as exc:
            raise UserError(f"config point {k} ({_describe(point)}): {exc}") from None
        if metric.endswith("_eval_mean_return") and not cfg.evaluates:
            raise UserError(f"metric {metric!r} needs eval_every_steps > 0 in [config]")
    return spec


def _check_size(what: str, size: int, allow_large: bool) -> None:
    """Refuse a sweep larger than its documented limit unless ``allow_large`` (``--allow-large``)."""
    limit = int(CLI_BOUNDS[what].high)
    if size > limit and not allow_large:
        label = "grid points" if what == "grid points" else "random samples (num_samples)"
        raise UserError(f"the sweep has {shown(size)} {label}, more than {limit}; pass --allow-large to run it anyway")


def _option(raw: dict[str, Any], key: str, choices: Any, default: str) -> str:
    value = raw.get(key, default)
    if value not in choices:
        raise UserError(f"{key} must be one of {', '.join(map(str, choices))}; got {value!r}")
    return str(value)


def _table(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise UserError(f"{key} must be a table ([{key}] with key = value lines), got {value!r}")
    return value


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_space(space: dict[str, Any], search: str) -> None:
    """Reject an empty space, unknown or unsearchable keys and malformed value specs."""
    if not space:
        raise UserError("[space] is empty: give at least one config key with the values to search")
    for key, spec in space.items():
        if key not in FIELD_NAMES:
            raise UserError(f"unknown config key {key!r} in [space]{did_you_mean(key, FIELD_NAMES)}")
        if key == "seeds":
            raise UserError("seeds cannot be searched: list them in the top-level seeds = [...]")
        if isinstance(spec, list):
            if not spec:
                raise UserError(f"[space] {key} is an empty list: give at least one value")
            for value in spec:
                _check_value(key, value)
            continue
        if search == "grid":
            raise UserError(
                f"[space] {key}: grid search needs a list of values ({{low, high}} ranges need search = 'random')"
            )
        _check_range(key, spec)


def _check_range(key: str, spec: Any) -> None:
    if not isinstance(spec, dict) or not {"low", "high"} <= set(spec) or set(spec) - {"low", "high", "log"}:
        raise UserError(f"[space] {key} must be a list or {{low = ..., high = ..., log = true|false}}; got {spec!r}")
    low, high, log = spec["low"], spec["high"], spec.get("log", False)
    if not (_is_number(low) and _is_number(high)):
        raise UserError(f"[space] {key}: low and high must be numbers; got {shown(low)} and {shown(high)}")
    _check_value(key, low)
    _check_value(key, high)
    if not low < high:
        raise UserError(f"[space] {key}: a range needs low < high; got {low!r} and {high!r}")
    if not isinstance(log, bool) or (log and low <= 0):
        raise UserError(f"[space] {key}: log must be true or false, and log = true needs low > 0")


def _check_value(key: str, value: Any) -> None:
    """One searched value (or range bound) of ``key``: its type and bound, before any point is built."""
    try:
        check_field(key, value)
    except UserError as exc:
        raise UserError(f"[space] {key}: {exc}") from None


def _draw(rng: random.Random, spec: Any) -> Any:
    """One value from a list (uniform choice) or a range (integers if both bounds are)."""
    if isinstance(spec, list):
        return spec[rng.randrange(len(spec))]
    low, high, log = spec["low"], spec["high"], spec.get("log", False)
    if log:
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
        return min(high, max(low, round(value))) if _is_int(low) and _is_int(high) else value
    return rng.randint(low, high) if _is_int(low) and _is_int(high) else rng.uniform(low, high)


def _asha(table: Any) -> dict[str, float] | None:
    """``[asha]`` with ``grace_period`` (updates), ``reduction_factor``, ``max_t``; None if absent."""
    if table is None:
        return None
    if not isinstance(table, dict) or set(table) - set(ASHA_DEFAULTS):
        raise UserError(f"[asha] accepts only {', '.join(ASHA_DEFAULTS)}; got {table!r}")
    asha = ASHA_DEFAULTS | table
    grace_period, max_t = asha["grace_period"], asha["max_t"]
    if not (_is_int(grace_period) and _is_int(max_t) and 1 <= grace_period <= max_t):
        raise UserError("[asha] grace_period and max_t must be integers with 1 <= grace_period <= max_t")
    if not _is_number(asha["reduction_factor"]) or asha["reduction_factor"] <= 1:
        raise UserError(f"[asha] reduction_factor must be a number > 1, got {asha['reduction_factor']!r}")
    return asha


def _describe(point: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in point.items())
