"""Physics spec strings: syntax, parsing and checks, before anything is looked up in a model.

A spec is ``KEY=VALUES`` (set) or ``KEY*=VALUES`` (scale: multiply the model's own value)::

    KEY     gravity                      the z component of model.opt.gravity
            opt.FIELD                    a float field of model.opt: timestep, gravity, wind, density, ...
            KIND_FIELD.ENTITY            a row of a model array, e.g. body_mass.pole, geom_friction.cart
    KIND    body | geom | jnt | actuator | site | tendon, looked up by that entity's name, or "#3" by index
            dof_* fields take a *joint* name and select its dofs (1 for hinge/slide, 3 ball, 6 free)
    VALUES  a,b,c            fixed override           gravity=-4.9   opt.gravity=0,0,-4.9
            LOW:HIGH         uniform per episode      gravity=-12:-7   body_mass.pole*=0.5:2
            LOW:HIGH:COUNT   robustness grid          gravity=-15:-5:11  (np.linspace)

Parsing checks the syntax, that numbers are finite, that ranges are ordered and that fields which cannot be
negative (masses, frictions, damping, ...) are not; whether a key and its number of values fit a model is
checked when the spec is applied (:mod:`mjreinforce.envs.physics`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import mujoco
import numpy as np

from mjreinforce.config_bounds import CLI_BOUNDS
from mjreinforce.errors import UserError

# field prefix -> (object type, model attribute counting its array's rows, the entity's noun and plural)
ENTITY_KINDS: dict[str, tuple[mujoco.mjtObj, str, str, str]] = {
    "body": (mujoco.mjtObj.mjOBJ_BODY, "nbody", "body", "bodies"),
    "geom": (mujoco.mjtObj.mjOBJ_GEOM, "ngeom", "geom", "geoms"),
    "jnt": (mujoco.mjtObj.mjOBJ_JOINT, "njnt", "joint", "joints"),
    "dof": (mujoco.mjtObj.mjOBJ_JOINT, "nv", "joint", "joints"),  # rows are dofs, names are joints'
    "actuator": (mujoco.mjtObj.mjOBJ_ACTUATOR, "nu", "actuator", "actuators"),
    "site": (mujoco.mjtObj.mjOBJ_SITE, "nsite", "site", "sites"),
    "tendon": (mujoco.mjtObj.mjOBJ_TENDON, "ntendon", "tendon", "tendons"),
}
_DEFAULT_OPTION = mujoco.MjOption()
_OPT_FIELDS = tuple(n for n in dir(_DEFAULT_OPTION) if isinstance(getattr(_DEFAULT_OPTION, n), float | np.ndarray))
_NON_NEGATIVE = frozenset(
    ("body_mass", "body_inertia", "geom_friction", "dof_damping", "dof_armature", "dof_frictionloss")
    + ("jnt_stiffness", "opt.density", "opt.viscosity")
)
_SYNTAX = "use gravity, opt.<field> or <kind>_<field>.<name> with kind in " + ", ".join(ENTITY_KINDS)


@dataclass(frozen=True)
class PhysicsTarget:
    """What a key names, before it is looked up in a model."""

    key: str  # as typed: "gravity", "opt.timestep", "body_mass.pole"
    field: str  # "opt.gravity", "opt.timestep", "body_mass"
    entity: str | None = None  # entity name, or "#<index>", for per-entity arrays
    component: int | None = None  # a single number of the selection ("gravity" -> 2)


@dataclass(frozen=True)
class PhysicsOverride:
    """Set the target to ``value`` or, if ``scale``, multiply it by ``value`` (numbers per component)."""

    target: PhysicsTarget
    value: tuple[float, ...]
    scale: bool = False

    def __str__(self) -> str:
        return f"{self.target.key}{'*=' if self.scale else '='}{format_numbers(self.value)}"


@dataclass(frozen=True)
class PhysicsRange:
    """Uniform ``[low, high]`` per component, drawn once per episode."""

    target: PhysicsTarget
    low: tuple[float, ...]
    high: tuple[float, ...]
    scale: bool = False

    def __str__(self) -> str:
        return f"{self.target.key}{'*=' if self.scale else '='}{format_numbers(self.low)}:{format_numbers(self.high)}"

    def sample(self, rng: np.random.Generator) -> PhysicsOverride:
        value = rng.uniform(np.asarray(self.low), np.asarray(self.high))
        return PhysicsOverride(self.target, tuple(float(v) for v in value), self.scale)


@dataclass(frozen=True, eq=False)
class PhysicsGrid:
    """Evenly spaced settings for an evaluation sweep; ``values`` has shape (count, numbers)."""

    target: PhysicsTarget
    values: np.ndarray
    scale: bool = False

    def overrides(self) -> tuple[PhysicsOverride, ...]:
        return tuple(PhysicsOverride(self.target, tuple(map(float, row)), self.scale) for row in self.values)

    def specs(self) -> tuple[str, ...]:
        """One override spec string per grid point, e.g. ``("gravity=-15", ..., "gravity=-5")``."""
        return tuple(str(o) for o in self.overrides())


def format_numbers(numbers: Iterable[float]) -> str:
    """``(0.0, -4.9)`` -> ``"0,-4.9"``: the VALUES part of a spec, 12 significant digits."""
    return ",".join(f"{v:.12g}" for v in numbers)


def parse_target(key: str) -> PhysicsTarget:
    """Check a key's syntax (not yet against a model): ``gravity``, ``opt.timestep``, ``body_mass.pole``."""
    key = key.strip()
    if key == "gravity":
        return PhysicsTarget(key, "opt.gravity", None, 2)
    if key.startswith("opt."):
        if key[4:] not in _OPT_FIELDS:
            raise UserError(f"unknown option '{key}'; valid opt fields: {', '.join(_OPT_FIELDS)}")
        return PhysicsTarget(key, key)
    field, _, entity = key.partition(".")
    if field.partition("_")[0] not in ENTITY_KINDS or "_" not in field:
        raise UserError(f"unknown physics key '{key}'; {_SYNTAX}")
    if not entity:
        raise UserError(f"physics key '{key}' needs an entity name: {field}.<name>")
    return PhysicsTarget(key, field, entity)


def _numbers(text: str, spec: str) -> tuple[float, ...]:
    try:
        numbers = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise UserError(f"bad number '{text}' in physics spec '{spec}'; use comma-separated numbers") from None
    if not all(math.isfinite(v) for v in numbers):
        raise UserError(f"physics spec '{spec}' has a non-finite number")
    return numbers


def _split(spec: str, form: str, example: str) -> tuple[PhysicsTarget, bool, list[str]]:
    """``KEY=V`` or ``KEY*=V`` -> (target, scale, V split on ':'), checking the part count for ``form``."""
    key, sep, values = spec.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise UserError(f"malformed physics spec '{spec}': expected {example}")
    scale = key.rstrip().endswith("*")
    target = parse_target(key.rstrip().removesuffix("*"))
    parts = values.strip().split(":")
    expected = {"override": 1, "range": 2, "grid": 3}[form]
    if len(parts) != expected:
        raise UserError(f"physics {form} '{spec}' has {len(parts)} ':'-separated parts; expected {example}")
    return target, scale, parts


def _check_sign(target: PhysicsTarget, numbers: Iterable[float], spec: str) -> None:
    if target.field == "opt.timestep" and not all(v > 0 for v in numbers):
        raise UserError(f"physics spec '{spec}': opt.timestep must be positive")
    if target.field in _NON_NEGATIVE and not all(v >= 0 for v in numbers):
        raise UserError(f"physics spec '{spec}': {target.field} cannot be negative")


def parse_override(spec: str) -> PhysicsOverride:
    """``gravity=-4.9``, ``opt.gravity=0,0,-4.9``, ``body_mass.pole*=2`` -> PhysicsOverride."""
    target, scale, (text,) = _split(spec, "override", "KEY=VALUE, e.g. gravity=-4.9 (ranges go in randomize)")
    value = _numbers(text, spec)
    _check_sign(target, value, spec)
    return PhysicsOverride(target, value, scale)


def _bounds(low_text: str, high_text: str, spec: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    low, high = _numbers(low_text, spec), _numbers(high_text, spec)
    if len(low) != len(high):
        raise UserError(f"physics spec '{spec}': low has {len(low)} numbers but high has {len(high)}")
    return low, high


def parse_range(spec: str) -> PhysicsRange:
    """``gravity=-12:-7`` -> uniform on [-12, -7]; low must not exceed high in any component."""
    target, scale, (low_text, high_text) = _split(spec, "range", "KEY=LOW:HIGH, e.g. gravity=-12:-7")
    low, high = _bounds(low_text, high_text, spec)
    if any(lo > hi for lo, hi in zip(low, high, strict=True)):
        raise UserError(f"physics range '{spec}': low is greater than high")
    _check_sign(target, low + high, spec)
    return PhysicsRange(target, low, high, scale)


def parse_grid(spec: str) -> PhysicsGrid:
    """``gravity=-15:-5:11`` -> values ``np.linspace(-15, -5, 11)[:, None]``, shape (count, numbers).

    Descending grids (``gravity=-5:-15:11``) are allowed: linspace keeps the given order.
    """
    target, scale, (low_text, high_text, count_text) = _split(spec, "grid", "KEY=LOW:HIGH:COUNT")
    low, high = _bounds(low_text, high_text, spec)
    count = CLI_BOUNDS["COUNT"]
    digits = count_text.strip()
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 9 and count.contains(int(digits))):
        raise UserError(f"physics grid '{spec}': COUNT must be an integer in {count.interval()} ({count.why})")
    _check_sign(target, low + high, spec)
    return PhysicsGrid(target, np.linspace(low, high, int(digits)), scale)


def reject_duplicates(specs: Sequence[PhysicsOverride] | Sequence[PhysicsRange], what: str) -> None:
    """Raise UserError if two specs name the same key (``what``: "overrides" or "randomize")."""
    keys = [s.target.key for s in specs]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise UserError(f"physics {what} name {', '.join(repeated)} more than once")
