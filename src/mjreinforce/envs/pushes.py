"""Random pushes on a named body of a gymnasium MuJoCo env, through MuJoCo's ``xfrc_applied``.

Schedule of one episode (steps counted from 1 at the first ``step`` after a reset)::

    s_1 = I_1,  s_{j+1} = s_j + I_{j+1}          I_j ~ push_interval_steps (uniform integers)
    push j acts during steps s_j, ..., s_j + D - 1 (D = push_duration_steps <= min I, so never overlapping)
    force_j = F_j (cos th_j, sin th_j, 0) N       F_j ~ push_force,  th_j ~ U[0, 2 pi)

The force is in the world frame, at the body's centre of mass, constant over the frame-skip substeps of a
step; on a planar model (Hopper, Walker2d, HalfCheetah) only its x part can move the body. Draws come from
this wrapper's own generator, seeded from the env's seed (``np.random.default_rng([PUSH_STREAM, seed])``)
and reseeded by a seeded reset, so no other random stream is touched. Pushes need the simulator's data,
so they exist on the gymnasium backend only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, SupportsFloat

import gymnasium
import mujoco
import numpy as np

from mjreinforce.config_perturbations import PushSpec
from mjreinforce.envs.physics import entity_id
from mjreinforce.errors import UserError

PUSH_STREAM = 0x50555348  # "PUSH": keeps this generator apart from every other seeded from the same seed


class PushWrapper(gymnasium.Wrapper):
    """Applies the pushes of ``push`` (see the module docstring); ``last_force`` is the force (3,) the last
    step applied, zeros when it applied none."""

    def __init__(self, env: gymnasium.Env, push: PushSpec, seed: int) -> None:
        super().__init__(env)
        model, data = getattr(env.unwrapped, "model", None), getattr(env.unwrapped, "data", None)
        if not isinstance(model, mujoco.MjModel) or not isinstance(data, mujoco.MjData):
            raise UserError(f"pushes need a MuJoCo env; {env.spec.id if env.spec else env} is not one")
        self.push = push
        self.body = entity_id(model, "body", push.body)
        self._xfrc = data.xfrc_applied  # a view: writing it sets the force of the next mj_step
        self._rng = np.random.default_rng([PUSH_STREAM, seed])
        self.episode_steps = 0
        self.next_push = 0  # the step at which the next push starts
        self.remaining = 0  # steps the current push still lasts
        self.force = np.zeros(3)
        self.last_force = np.zeros(3)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        """Reset the wrapped env (``mj_resetData`` clears ``xfrc_applied``) and draw the first push's step."""
        if seed is not None:
            self._rng = np.random.default_rng([PUSH_STREAM, seed])
        out = self.env.reset(seed=seed, options=options)
        self.episode_steps, self.remaining = 0, 0
        self.force[:], self.last_force[:] = 0.0, 0.0
        self.next_push = int(self.push.interval.draw(self._rng))
        return out

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        self.episode_steps += 1
        if self.episode_steps == self.next_push:
            magnitude, angle = float(self.push.force.draw(self._rng)), self._rng.uniform(0.0, 2 * math.pi)
            self.force[:] = (magnitude * math.cos(angle), magnitude * math.sin(angle), 0.0)
            self.remaining = self.push.duration
            self.next_push += int(self.push.interval.draw(self._rng))
        if self.remaining:
            self._xfrc[self.body, :3] = self.force
            self.last_force[:] = self.force
        else:
            self.last_force[:] = 0.0
        result = self.env.step(action)
        if self.remaining:
            self.remaining -= 1
            if not self.remaining:
                self._xfrc[self.body, :3] = 0.0  # critical: the push ends with its last step
        return result


def make_pushed_env(make_env: Callable[[], gymnasium.Env], push: PushSpec, seed: int) -> gymnasium.Env:
    """``make_env()`` in a :class:`PushWrapper`; a top-level function, so a partial of it pickles for workers."""
    env = make_env()
    try:
        return PushWrapper(env, push, seed)
    except Exception:
        env.close()
        raise


def with_pushes(
    factories: Sequence[partial[gymnasium.Env]], push: PushSpec | None, seed: int
) -> list[partial[gymnasium.Env]]:
    """The env factories of a vector env, each wrapped to push (env ``i`` seeded ``seed + i``); as given
    without pushes."""
    if push is None:
        return list(factories)
    return [partial(make_pushed_env, make, push, seed + i) for i, make in enumerate(factories)]


def _push_wrapper(env: gymnasium.Env) -> PushWrapper | None:
    while isinstance(env, gymnasium.Wrapper):
        if isinstance(env, PushWrapper):
            return env
        env = env.env
    return None


def push_state(env: gymnasium.Env) -> dict[str, Any] | None:
    """The push schedule of a PushWrapper in ``env``'s chain (for checkpoints), or None. The force being
    applied lives in ``xfrc_applied``, part of MuJoCo's integration state, which the checkpoint holds too."""
    wrapper = _push_wrapper(env)
    if wrapper is None:
        return None
    return {
        "rng": wrapper._rng.bit_generator.state,
        "episode_steps": wrapper.episode_steps,
        "next_push": wrapper.next_push,
        "remaining": wrapper.remaining,
        "force": wrapper.force.copy(),
    }


def restore_push_state(env: gymnasium.Env, state: dict[str, Any] | None) -> None:
    """Inverse of :func:`push_state` (nothing to do for None)."""
    wrapper = _push_wrapper(env)
    if state is None or wrapper is None:
        return
    wrapper._rng.bit_generator.state = state["rng"]
    wrapper.episode_steps, wrapper.next_push = int(state["episode_steps"]), int(state["next_push"])
    wrapper.remaining = int(state["remaining"])
    wrapper.force[:] = np.asarray(state["force"], dtype=np.float64)
