"""The one table of limits: every number a run accepts, with the range it must lie in and why.

:data:`BOUNDS` holds a :class:`Bound` for every numeric :class:`~mjreinforce.config.Config` field, an entry per
element of a list field (``hidden_sizes``, ``seeds``), :data:`LENGTH_BOUNDS` the number of elements of list fields,
and :data:`CLI_BOUNDS` the command-line numbers that never enter a config (``--workers``, ``eval --episodes``, ...).
A number outside its bound, and any float that is NaN or infinite, is a one-line :class:`UserError`. The upper
bounds are far above any useful setting; they exist so that a typo such as ``num_envs = 1e18`` is refused at once
instead of hanging or crashing deep in MuJoCo or numpy. The README's "Limits" section prints this table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mjreinforce.errors import UserError, shown

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
"""The ``mlp`` policy's log-std is clamped to this range in the forward pass (std from 2e-9 to 7.39);
outside it the gradient is zero, so ``init_log_std`` must lie inside it."""
SEED_LIMIT = 2**31
"""Seeds are integers in ``[0, 2^31)``: NumPy and MuJoCo accept them, and ``seed + i`` stays in range."""


@dataclass(frozen=True)
class Bound:
    """``low <= value <= high`` (``low < value`` when ``low_open``; ``value < high`` when ``high_open``)."""

    low: float
    high: float
    why: str = ""
    low_open: bool = False
    high_open: bool = False

    def contains(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return not (isinstance(value, float) and math.isnan(value)) and above and below

    def interval(self) -> str:
        """The range in interval notation, e.g. ``(0, 1]``."""
        return f"{'(' if self.low_open else '['}{_num(self.low)}, {_num(self.high)}{')' if self.high_open else ']'}"


def _num(value: float) -> str:
    """``1e12`` for powers of ten from a million up, other integers in full, ``0.5`` for fractions."""
    if not float(value).is_integer():
        return f"{value:g}"
    digits = str(abs(int(value)))
    if len(digits) > 6 and digits.rstrip("0") == "1":
        return f"{'-' if value < 0 else ''}1e{len(digits) - 1}"
    return str(int(value))


_BIG = 10**12
_STEPS = Bound(1, _BIG, "10^12 env steps is years of compute")
_UPDATES = Bound(0, 10**9, "0 disables it")

BOUNDS: dict[str, Bound] = {
    # environment
    "num_envs": Bound(1, 4096, "envs are stepped in one process; more is memory, not speed"),
    "env_workers": Bound(0, 1024, "worker processes or threads"),
    # budget and seeds
    "seeds": Bound(0, SEED_LIMIT, "each seed", high_open=True),
    "total_episodes": Bound(1, 10**10, "episodes per seed"),
    "total_steps": _STEPS,
    "target_return": Bound(-1e12, 1e12, "a finite return"),
    # policy
    "hidden_sizes": Bound(1, 4096, "width of each hidden layer"),
    "init_log_std": Bound(LOG_STD_MIN, LOG_STD_MAX, "the log-std is clamped to that range in the forward pass"),
    # algorithm
    "rollout_steps": Bound(0, 1_000_000, "0: one whole episode per update"),
    "episode_batch_steps": Bound(0, 10_000_000, "the least env steps of one episode-mode update"),
    "gamma": Bound(0.0, 1.0, "a discount factor", low_open=True),
    "gae_lambda": Bound(0.0, 1.0, "a mixing weight"),
    "learning_rate": Bound(0.0, 1.0, "Adam steps each weight by about the learning rate", low_open=True),
    "value_learning_rate": Bound(0.0, 1.0, "Adam steps each weight by about the learning rate", low_open=True),
    "value_iterations": Bound(1, 10_000, "critic gradient steps per update"),
    "entropy_coef": Bound(0.0, 1e6, "weight of the entropy bonus"),
    "max_grad_norm": Bound(0.0, 1e12, "a gradient-norm clip", low_open=True),
    "adam_eps": Bound(0.0, 1.0, "added to Adam's denominator", low_open=True),
    # ppo
    "clip_range": Bound(0.0, 1.0, "the ratio is clipped to [1 - clip_range, 1 + clip_range]", low_open=True),
    "update_epochs": Bound(1, 10_000, "passes over the rollout per update"),
    "num_minibatches": Bound(1, 10_000_000, "optimizer steps per pass; at most the steps of one update"),
    "clip_range_vf": Bound(0.0, 1e12, "a change of the value, in return units", low_open=True),
    "target_kl": Bound(0.0, 1e6, "a KL divergence, in nats", low_open=True),
    "vf_coef": Bound(0.0, 1e6, "weight of the value loss; 0 would never train the critic", low_open=True),
    # evaluation, logging, checkpoints
    "eval_every_steps": Bound(0, _BIG, "env steps between evaluations; 0 disables them"),
    "eval_episodes": Bound(1, 10_000, "one env per episode, all stepped at once"),
    "stats_window": Bound(1, 1_000_000, "episodes in the moving window"),
    "log_every_episodes": Bound(1, 10**10, "episodes between progress lines"),
    "checkpoint_every": _UPDATES,
    "torch_threads": Bound(1, 1024, "threads per process"),
    # sim-to-real perturbations (the K / LOW:HIGH keys are in SPEC_BOUNDS)
    "obs_noise_std": Bound(0.0, 1e6, "each std, in raw observation units"),
    "action_noise_std": Bound(0.0, 100.0, "a std in units of the action box's half-width"),
    "push_duration_steps": Bound(1, 10**9, "env steps a push lasts"),
}
"""Config field -> its bound (for a list field: the bound of each element)."""

LENGTH_BOUNDS: dict[str, Bound] = {
    "seeds": Bound(1, 10_000, "seeds per run"),
    "hidden_sizes": Bound(1, 64, "hidden layers"),
    "physics": Bound(0, 1024, "physics overrides"),
    "randomize": Bound(0, 1024, "randomized physics values"),
    "env_kwargs": Bound(0, 1024, "arguments of the env's constructor"),
    "obs_noise_std": Bound(1, 100_000, "one std for every dimension, or one per dimension"),
}
"""List config field -> the bound on its number of elements."""

SPEC_BOUNDS: dict[str, Bound] = {
    "action_delay_steps": Bound(0, 1000, "env steps of latency, K or each end of LOW:HIGH"),
    "obs_delay_steps": Bound(0, 1000, "env steps of latency, K or each end of LOW:HIGH"),
    "push_force": Bound(0.0, 1e6, "newtons, F or each end of LOW:HIGH"),
    "push_interval_steps": Bound(1, 10**9, "env steps between push starts, K or each end of LOW:HIGH"),
}
"""Perturbation keys written ``K`` or ``LOW:HIGH`` -> the bound of each of their numbers."""

BATCH_BOUND = Bound(0, 10_000_000, "the env steps of one update, held in memory at once")
"""The bound of ``rollout_steps * num_envs``."""

CLI_BOUNDS: dict[str, Bound] = {
    "--workers": Bound(1, 1024, "worker processes"),
    "--episodes": Bound(1, 10_000, "one env per episode, all stepped at once"),
    "--seed": Bound(0, SEED_LIMIT, "env i gets seed + i", high_open=True),
    "--run-seed": Bound(0, SEED_LIMIT, "a training seed", high_open=True),
    "--video-episodes": Bound(1, 1000, "episodes in one video"),
    "--video-size": Bound(16, 4096, "pixels per side"),
    "--window": Bound(1, 1_000_000, "episodes in the moving window"),
    "--target": Bound(-1e12, 1e12, "a finite return"),
    "COUNT": Bound(2, 1000, "points of a robustness grid"),
    "map cells": Bound(4, 10_000, "cells of a two-dimensional robustness map, COUNT x COUNT"),
    "grid points": Bound(1, 10_000, "config points of a grid sweep; --allow-large lifts it"),
    "num_samples": Bound(1, 10_000, "config points of a random sweep; --allow-large lifts it"),
}
"""Command-line numbers that are not config fields -> their bound."""


def check_number(name: str, value: float, bound: Bound) -> None:
    """Raise a one-line :class:`UserError` unless ``value`` is a finite number inside ``bound``."""
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{name} must be a finite number, got {value}")
    if not bound.contains(value):
        why = f" ({bound.why})" if bound.why else ""
        raise UserError(f"{name} must be in {bound.interval()}{why}, got {shown(value)}")


def check_cli(flag: str, value: float | None) -> None:
    """:func:`check_number` for a command-line flag of :data:`CLI_BOUNDS`; None (not given) passes."""
    if value is not None:
        check_number(flag, value, CLI_BOUNDS[flag])


def limit_rows() -> list[tuple[str, str, str]]:
    """``(value, range, why)`` for every bound: :data:`BOUNDS`, :data:`SPEC_BOUNDS`, :data:`LENGTH_BOUNDS`, the
    batch and :data:`CLI_BOUNDS` (the Limits table of docs/configuration.md:
    :func:`mjreinforce.analysis.tables.limits_table`)."""
    rows = []
    tables = (("", BOUNDS), ("", SPEC_BOUNDS), ("number of ", LENGTH_BOUNDS))
    for title, table in (*tables, ("", {"rollout_steps * num_envs": BATCH_BOUND})):
        rows += [(f"{title}`{name}`", b.interval(), b.why) for name, b in table.items()]
    return rows + [(f"`{name}`", b.interval(), b.why) for name, b in CLI_BOUNDS.items()]
