"""Sim-to-real perturbation keys of a config: their spelling, parsing and the rules between them.

The keys (fields of :class:`~mjreinforce.config.Config`, all unset by default, so a config without
perturbations is saved and hashed exactly as before they existed)::

    obs_noise_std        0.05  or  [0.05, 0.1, ...]   Gaussian noise on what the policy sees, raw obs units
    action_noise_std     0.1                          Gaussian noise on the action, in action half-widths
    action_delay_steps   "2"  or  "0:3"               the env applies the action of k steps earlier
    obs_delay_steps      "1"  or  "0:2"               the policy sees the observation of k steps earlier
    push_body            "torso"                      the body that pushes act on (an MJCF name)
    push_force           "50:150"                     newtons, drawn per push (a single number: fixed)
    push_interval_steps  "100:200"                    env steps from one push's start to the next one's
    push_duration_steps  5                            env steps a push lasts (unset: 1)
    eval_perturbed       true                         the evaluations during training are perturbed too

``K`` or ``LOW:HIGH`` is drawn uniformly per episode (integers, both ends included) for the delays and per
push for the force and the interval. :func:`parse_perturbations` turns the fields into a typed
:class:`Perturbations`; :func:`check_perturbations` is what :func:`mjreinforce.config.validate` calls. Each
number is checked against its bound in :data:`mjreinforce.config_bounds.SPEC_BOUNDS` or ``BOUNDS``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mjreinforce.config_bounds import SPEC_BOUNDS, check_number
from mjreinforce.errors import UserError, shown

NOISE_KEYS = ("obs_noise_std", "action_noise_std")
DELAY_KEYS = ("action_delay_steps", "obs_delay_steps")
PUSH_KEYS = ("push_body", "push_force", "push_interval_steps", "push_duration_steps")
PERTURBATION_KEYS = (*NOISE_KEYS, *DELAY_KEYS, *PUSH_KEYS)
"""Every perturbation key (``eval_perturbed`` says where they apply and is not one of them)."""
SPEC_KEYS = (*DELAY_KEYS, "push_force", "push_interval_steps")
"""The keys written ``K`` or ``LOW:HIGH`` (strings in the config; a bare TOML number is accepted)."""
INTEGER_KEYS = (*DELAY_KEYS, "push_interval_steps", "push_duration_steps")
"""The keys whose numbers are env steps, so integers."""


@dataclass(frozen=True)
class Uniform:
    """A number drawn uniformly from ``[low, high]``; integers (both ends included) when ``integer``."""

    low: float
    high: float
    integer: bool = False

    def draw(self, rng: np.random.Generator, size: int | None = None) -> Any:
        """One draw (``size`` None) or ``size`` draws; no random number is used when ``low == high``."""
        if self.low == self.high:
            value = int(self.low) if self.integer else self.low
            return value if size is None else np.full(size, value)
        if self.integer:
            return rng.integers(int(self.low), int(self.high) + 1, size=size)
        return rng.uniform(self.low, self.high, size=size)


NO_DELAY = Uniform(0, 0, integer=True)


@dataclass(frozen=True)
class PushSpec:
    """Pushes on ``body``: ``force`` newtons (per push), a new one ``interval`` steps after the last one's
    start, each lasting ``duration`` steps."""

    body: str
    force: Uniform
    interval: Uniform
    duration: int


@dataclass(frozen=True)
class Perturbations:
    """The perturbations of a config, parsed. ``obs_noise_std``: () for none, 1 number for every dimension, or
    one per dimension."""

    obs_noise_std: tuple[float, ...] = ()
    action_noise_std: float = 0.0
    action_delay: Uniform = NO_DELAY
    obs_delay: Uniform = NO_DELAY
    push: PushSpec | None = None

    @property
    def on_batches(self) -> bool:
        """True when noise or delays are asked for: what the vector env layer does, on either backend."""
        noisy = any(self.obs_noise_std) or self.action_noise_std > 0
        return noisy or self.action_delay != NO_DELAY or self.obs_delay != NO_DELAY

    @property
    def any(self) -> bool:
        return self.on_batches or self.push is not None


def parse_spec(name: str, text: str) -> Uniform:
    """``"3"`` -> Uniform(3, 3); ``"0:4"`` -> Uniform(0, 4) for the key ``name``; each number in its bound,
    integers for the step keys, low <= high. A bad spec is a one-line UserError."""
    integer = name in INTEGER_KEYS
    example = "2 or 0:3" if integer else "50 or 20:80"
    parts = str(text).strip().split(":")
    if len(parts) > 2 or not all(p.strip() for p in parts):
        raise UserError(f"{name} must be a number or LOW:HIGH, e.g. {example}; got {shown(text)}")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise UserError(f"{name} must be a number or LOW:HIGH, e.g. {example}; got {shown(text)}") from None
    for number in numbers:
        if integer and math.isfinite(number) and not number.is_integer():
            raise UserError(f"{name} counts env steps, so it takes integers; got {shown(text)}")
        check_number(name, int(number) if integer and math.isfinite(number) else number, SPEC_BOUNDS[name])
    low, high = numbers[0], numbers[-1]
    if low > high:
        raise UserError(f"{name} {text}: LOW is greater than HIGH")
    return Uniform(low, high, integer)


def parse_perturbations(cfg: Any) -> Perturbations:
    """The perturbation fields of ``cfg`` (a Config, or anything with those attributes), parsed and checked:
    :func:`parse_spec` for each spec, and the pushes' rules (a body needs a force and an interval; the other
    push keys need a body; a push lasts at most the shortest interval, so pushes never overlap)."""
    push_set = [key for key in PUSH_KEYS[1:] if getattr(cfg, key) is not None]
    body = cfg.push_body
    if body is None and push_set:
        raise UserError(f"{push_set[0]} is set but has no effect without push_body (the body to push, by name)")
    push = None
    if body is not None:
        if not str(body).strip():
            raise UserError("push_body must name a body of the model, got an empty string")
        missing = [key for key in ("push_force", "push_interval_steps") if getattr(cfg, key) is None]
        if missing:
            raise UserError(f'push_body needs {" and ".join(missing)} (e.g. push_force = "50:150")')
        interval = parse_spec("push_interval_steps", cfg.push_interval_steps)
        duration = 1 if cfg.push_duration_steps is None else int(cfg.push_duration_steps)
        if duration > interval.low:
            raise UserError(
                f"push_duration_steps ({duration}) must be at most the shortest push interval "
                f"({int(interval.low)} steps), so that pushes never overlap"
            )
        push = PushSpec(str(body).strip(), parse_spec("push_force", cfg.push_force), interval, duration)
    return Perturbations(
        obs_noise_std=tuple(cfg.obs_noise_std or ()),
        action_noise_std=float(cfg.action_noise_std or 0.0),
        action_delay=NO_DELAY if cfg.action_delay_steps is None else parse_spec(DELAY_KEYS[0], cfg.action_delay_steps),
        obs_delay=NO_DELAY if cfg.obs_delay_steps is None else parse_spec(DELAY_KEYS[1], cfg.obs_delay_steps),
        push=push,
    )


def check_perturbations(cfg: Any) -> None:
    """Raise a one-line UserError for a bad perturbation spec or rule (see :func:`parse_perturbations`), or
    for ``eval_perturbed`` without any perturbation to apply."""
    parsed = parse_perturbations(cfg)
    if cfg.eval_perturbed and not parsed.any:
        raise UserError("eval_perturbed is set but the config has no perturbation to evaluate with")


def raw_value(name: str, value: Any) -> Any:
    """A raw TOML/``--set`` value of a perturbation key made ready for its field's type: a bare number becomes
    a one-element list for ``obs_noise_std`` and the text ``K`` for the ``K``/``LOW:HIGH`` keys."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and name == "obs_noise_std":
        return [value]
    if number and name in SPEC_KEYS:
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return value
