"""MuJoCo physics variation on a compiled model: overrides, per-episode randomization, a stability guard.

Specs (``gravity=-4.9``, ``body_mass.pole*=0.5:2``, ...) are parsed by :mod:`mjreinforce.envs.physics_spec`;
this module looks their keys up in a model (:func:`resolve`), reads and writes the numbers, and wraps a
gymnasium MuJoCo env so the settings are in force while it runs (:class:`PhysicsWrapper`).

Shapes: a set value must have exactly as many numbers as the selection (1 for body_mass, 3 for
geom_friction, 6 for actuator_gear), so nothing is filled in silently; a scale is one factor for every
number or one factor per number. Ranges sample each number independently. After writing, MuJoCo's
``mj_setConst`` recomputes the constants it derives at compile time (body_subtreemass, invweight0,
actuator_acc0, ...), so the model behaves as if it had been compiled with the new values; those derived
fields, and geom_size (whose collision bounds would go stale), cannot be set.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, SupportsFloat

import gymnasium
import mujoco
import numpy as np

from mjreinforce.envs.custom import require_mujoco
from mjreinforce.envs.physics_spec import (
    ENTITY_KINDS,
    PhysicsOverride,
    PhysicsRange,
    PhysicsTarget,
    format_numbers,
    parse_override,
    parse_range,
    parse_target,
    reject_duplicates,
)
from mjreinforce.errors import UserError

_DERIVED = frozenset(  # overwritten by mj_setConst, or (geom_size) would leave collision bounds stale
    ("actuator_acc0", "actuator_length0", "body_invweight0", "body_margin", "body_subtreemass", "dof_M0")
    + ("dof_invweight0", "dof_length", "geom_aabb", "geom_fluid", "geom_rbound", "geom_size")
    + ("tendon_invweight0", "tendon_length0")
)
_BADQPOS, _BADQVEL, _BADQACC = (
    int(mujoco.mjtWarning.mjWARN_BADQPOS),
    int(mujoco.mjtWarning.mjWARN_BADQVEL),
    int(mujoco.mjtWarning.mjWARN_BADQACC),
)


class PhysicsUnstableError(UserError):
    """The simulation produced non-finite values or MuJoCo flagged bad qpos/qvel/qacc."""


@dataclass(frozen=True)
class ModelSlot:
    """Where a target's numbers live in one compiled model."""

    target: PhysicsTarget
    attr: str  # attribute of model.opt (rows is None) or of model
    rows: slice | None
    size: int  # how many numbers a set value must have


def _model_name(model: mujoco.MjModel) -> str:
    return model.names.split(b"\0", 1)[0].decode() or "the model"


def _settable_fields(model: mujoco.MjModel, kind: str) -> list[str]:
    """Float arrays with one row per entity of ``kind``, minus derived and bookkeeping fields."""
    count = getattr(model, ENTITY_KINDS[kind][1])
    fields = []
    for name in dir(model):
        array = getattr(model, name) if name.startswith(kind + "_") else None
        if (
            isinstance(array, np.ndarray)
            and array.dtype == np.float64
            and array.shape[:1] == (count,)
            and math.prod(array.shape[1:]) > 0
            and name not in _DERIVED
            and not name.endswith("_user")
        ):
            fields.append(name)
    return fields


def entity_id(model: mujoco.MjModel, kind: str, entity: str) -> int:
    """The index of the ``kind`` entity named ``entity`` (or ``"#3"``); an unknown name is a UserError listing
    the valid ones."""
    obj_type, rows_attr, noun, plural = ENTITY_KINDS[kind]
    count = model.njnt if kind == "dof" else getattr(model, rows_attr)
    if entity.startswith("#") and entity[1:].isdigit() and int(entity[1:]) < count:
        return int(entity[1:])
    index = mujoco.mj_name2id(model, obj_type, entity)
    if index >= 0:
        return index
    names = [mujoco.mj_id2name(model, obj_type, i) for i in range(count)]
    listed = ", ".join(n if n else f"#{i}" for i, n in enumerate(names[:40])) + (", ..." if count > 40 else "")
    raise UserError(f"no {noun} named '{entity}' in {_model_name(model)}; {plural}: {listed or 'none'}")


def resolve(model: mujoco.MjModel, key: str | PhysicsTarget) -> ModelSlot:
    """Look a key up in ``model``; unknown fields or names raise UserError listing the valid ones."""
    target = parse_target(key) if isinstance(key, str) else key
    if target.entity is None:
        attr = target.field.removeprefix("opt.")
        size = 1 if target.component is not None else np.atleast_1d(getattr(model.opt, attr)).size
        return ModelSlot(target, attr, None, size)
    kind = target.field.partition("_")[0]
    fields = _settable_fields(model, kind)
    if target.field not in fields:
        raise UserError(f"unknown model field '{target.field}'; valid {kind} fields: {', '.join(fields)}")
    index = entity_id(model, kind, target.entity)
    if kind == "dof":  # critical: a joint's dofs are contiguous, from jnt_dofadr[j] to the next joint's
        start = int(model.jnt_dofadr[index])
        stop = int(model.jnt_dofadr[index + 1]) if index + 1 < model.njnt else model.nv
    else:
        start, stop = index, index + 1
    rows = slice(start, stop)
    return ModelSlot(target, target.field, rows, getattr(model, target.field)[rows].size)


def _all_numbers(model: mujoco.MjModel, slot: ModelSlot) -> np.ndarray:
    if slot.rows is None:
        return np.atleast_1d(np.asarray(getattr(model.opt, slot.attr), dtype=np.float64)).copy()
    return getattr(model, slot.attr)[slot.rows].reshape(-1).copy()


def read(model: mujoco.MjModel, slot: ModelSlot) -> np.ndarray:
    """The slot's current numbers, a copy of shape (slot.size,)."""
    numbers = _all_numbers(model, slot)
    component = slot.target.component
    return numbers if component is None else numbers[component : component + 1]


def write(model: mujoco.MjModel, slot: ModelSlot, value: np.ndarray) -> None:
    """Store ``value`` (shape (slot.size,)) in the model; call ``mj_setConst`` after a batch of writes."""
    numbers = _all_numbers(model, slot)
    if slot.target.component is None:
        numbers[:] = value
    else:
        numbers[slot.target.component] = value[0]
    if slot.rows is None:
        scalar = isinstance(getattr(model.opt, slot.attr), float)
        setattr(model.opt, slot.attr, float(numbers[0]) if scalar else numbers)
    else:
        array = getattr(model, slot.attr)
        array[slot.rows] = numbers.reshape(array[slot.rows].shape)


def _check_size(model: mujoco.MjModel, slot: ModelSlot, count: int, scale: bool, spec: str) -> None:
    if count == slot.size or (scale and count == 1):
        return
    need = f"1 or {slot.size} factors" if scale else f"{slot.size} numbers"
    now = format_numbers(read(model, slot))
    raise UserError(f"physics spec '{spec}' gives {count} but {slot.target.key} needs {need} (now {now})")


def apply_overrides(
    model: mujoco.MjModel, overrides: Iterable[PhysicsOverride], data: mujoco.MjData | None = None
) -> None:
    """Apply each override in order (a scale multiplies the current value), then ``mj_setConst``.

    Every override is resolved and size-checked before the first write, so a bad one changes nothing.
    """
    overrides = tuple(overrides)
    slots = [resolve(model, override.target) for override in overrides]
    for slot, override in zip(slots, overrides, strict=True):
        _check_size(model, slot, len(override.value), override.scale, str(override))
    for slot, override in zip(slots, overrides, strict=True):
        value = np.asarray(override.value)
        write(model, slot, read(model, slot) * value if override.scale else value)
    mujoco.mj_setConst(model, data if data is not None else mujoco.MjData(model))


def describe(model: mujoco.MjModel, keys: Iterable[str | PhysicsTarget]) -> dict[str, float | list[float]]:
    """Current values of ``keys``: a float for single numbers, else a list (for logging)."""
    described: dict[str, float | list[float]] = {}
    for key in keys:
        slot = resolve(model, key)
        numbers = [float(v) for v in read(model, slot)]
        described[slot.target.key] = numbers[0] if len(numbers) == 1 else numbers
    return described


class PhysicsWrapper(gymnasium.Wrapper):
    """Fixed overrides once at construction, ranges re-drawn at every reset, and a per-step stability guard.

    All specs are resolved against the model here, so a bad key fails when the env is built, not mid-run.
    Randomized targets win over fixed ones (a scale range multiplies the value left by the fixed overrides,
    never the previous episode's draw). Draws come from ``np.random.default_rng(seed)``, so the sequence of
    physics settings depends only on ``seed`` and the number of resets; ``reset(seed=...)`` does not touch it.
    """

    def __init__(
        self,
        env: gymnasium.Env,
        overrides: Sequence[PhysicsOverride] = (),
        randomize: Sequence[PhysicsRange] = (),
        seed: int = 0,
    ) -> None:
        super().__init__(env)
        require_mujoco(env, "physics variation (--physics, --randomize, --vary)")
        model, data = env.unwrapped.model, env.unwrapped.data  # type: ignore[attr-defined]
        reject_duplicates(overrides, "overrides")
        reject_duplicates(randomize, "randomize")
        self._model, self._data = model, data
        apply_overrides(model, overrides, data)
        self._ranges = [(resolve(model, r.target), r) for r in randomize]
        for slot, physics_range in self._ranges:
            _check_size(model, slot, len(physics_range.low), physics_range.scale, str(physics_range))
        self._bases = [read(model, slot) for slot, _ in self._ranges]  # after the fixed overrides
        self._rng = np.random.default_rng(seed)
        self._fixed = tuple(overrides)
        self._drawn: tuple[PhysicsOverride, ...] = ()
        self._warning_counts = data.warning.number  # a view into mjData, refreshed by MuJoCo in place
        self._episode_steps = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        """Draw this episode's physics, write it to the model, then reset the wrapped env."""
        if self._ranges:
            self._drawn = tuple(r.sample(self._rng) for _, r in self._ranges)
            self._write_drawn()  # data is scratch here: the reset below clears it
        self._episode_steps = 0
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step; raise PhysicsUnstableError on a non-finite obs/reward or a bad qpos/qvel/qacc warning."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._episode_steps += 1
        # critical: mj_resetData zeroes the counts, so any nonzero count happened in this episode
        counts = self._warning_counts
        # a sum is finite iff every term is (a finite overflow to inf is unstable too): one cheap check
        if counts[_BADQPOS] or counts[_BADQVEL] or counts[_BADQACC] or not math.isfinite(np.sum(obs) + reward):
            raise PhysicsUnstableError(self._unstable_message())
        return obs, reward, terminated, truncated, info

    def physics_in_force(self) -> tuple[PhysicsOverride, ...]:
        """The fixed overrides followed by this episode's draws (draws win for their target)."""
        return self._fixed + self._drawn

    def describe(self) -> dict[str, float | list[float]]:
        """Current model values of every key in use, for logging."""
        return describe(self._model, [o.target for o in self.physics_in_force()])

    def _write_drawn(self) -> None:
        """Write this episode's draws (a scale multiplies the base), then ``mj_setConst``; no-op without ranges."""
        for (slot, _), base, drawn in zip(self._ranges, self._bases, self._drawn, strict=True):
            value = np.asarray(drawn.value)
            write(self._model, slot, base * value if drawn.scale else value)
        if self._ranges:
            mujoco.mj_setConst(self._model, self._data)

    def _unstable_message(self) -> str:
        warnings = (_BADQPOS, _BADQVEL, _BADQACC)
        names = [mujoco.mjtWarning(w).name for w in warnings if self._warning_counts[w]]
        cause = f"MuJoCo warning {', '.join(names)}" if names else "non-finite observation or reward"
        in_force = ", ".join(str(o) for o in self.physics_in_force()) or "no physics overrides"
        return (
            f"physics became unstable after {self._episode_steps} steps of the episode ({cause}) with "
            f"{in_force}; try a smaller opt.timestep or milder overrides"
        )


def make_physics_env(
    env_id: str,
    overrides: Sequence[str] = (),
    randomize: Sequence[str] = (),
    seed: int = 0,
    env_kwargs: Mapping[str, Any] | None = None,
    **make_kwargs: Any,
) -> gymnasium.Env:
    """``gymnasium.make(env_id, **env_kwargs, **make_kwargs)`` in a PhysicsWrapper; specs are parsed before the
    build. ``env_id`` may be gymnasium's ``module:EnvId``; ``env_kwargs`` are the env's own arguments (a config's),
    kept apart from the keyword names here.

    A plain top-level function: ``functools.partial(make_physics_env, ...)`` pickles for vector-env workers.
    Give each sub-env its own ``seed`` (e.g. ``seed + index``) so their physics draws differ.
    """
    parsed_overrides = [parse_override(spec) for spec in overrides]
    parsed_ranges = [parse_range(spec) for spec in randomize]
    env = gymnasium.make(env_id, **{**(env_kwargs or {}), **make_kwargs})
    try:
        return PhysicsWrapper(env, parsed_overrides, parsed_ranges, seed)
    except Exception:
        env.close()
        raise


def wrapper_state(env: gymnasium.Env) -> dict[str, Any] | None:
    """The randomization state of a PhysicsWrapper in ``env``'s wrapper chain (for checkpoints), or None."""
    while isinstance(env, gymnasium.Wrapper):
        if isinstance(env, PhysicsWrapper):
            return {
                "rng": env._rng.bit_generator.state,
                "drawn": [list(d.value) for d in env._drawn],
                "episode_steps": env._episode_steps,
            }
        env = env.env
    return None


def restore_wrapper_state(env: gymnasium.Env, state: dict[str, Any] | None) -> None:
    """Inverse of :func:`wrapper_state`: the RNG, and this episode's drawn values written back to the model."""
    while state is not None and isinstance(env, gymnasium.Wrapper):
        if isinstance(env, PhysicsWrapper):
            env._rng.bit_generator.state = state["rng"]
            env._drawn = tuple(
                PhysicsOverride(r.target, tuple(value), r.scale)
                for (_, r), value in zip(env._ranges, state["drawn"], strict=True)
            )
            env._write_drawn()
            env._episode_steps = state["episode_steps"]
            return
        env = env.env
