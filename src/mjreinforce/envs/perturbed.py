"""Observation and action noise and delays, as array operations on a whole vector env's batch.

:class:`PerturbedVecEnv` wraps either backend's vector env (same-step autoreset) and keeps its interface.
One vector step with actions ``a_t`` (N, act_dim) from the policy::

    applied_t = clip(A.read(k_act) + sigma_a * half_width * eps_t, low, high)   after A.push(a_t)
    env steps with applied_t -> raw obs o_t (and the final obs where an episode ended)
    measured_t = o_t + sigma_o * eta_t                                           eps, eta ~ N(0, I)
    the policy sees O.read(k_obs) after O.push(measured_t)

``A`` and ``O`` are per-env FIFO queues (:class:`DelayQueue`); ``k_act`` and ``k_obs`` are drawn per env and
episode and the queues start every episode filled with zeros, so for the first ``k`` steps of an episode
the env applies zero actions (clipped into the box) and the policy sees zero observations. Where an episode
ends, ``final_obs`` is what the policy would have seen next in that episode (the delayed, noisy final
observation: the critic bootstraps from the same view). Rewards and flags pass through untouched.

The noise and the delays draw from three generators of their own, seeded from the env's seed (and
reseeded by a seeded reset, as the evaluation envs are before every evaluation), so no other random
stream is touched.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from mjreinforce.config_perturbations import Perturbations
from mjreinforce.errors import UserError

NOISE_STREAM = 0x4E4F4953  # "NOIS": the three generators are [NOISE_STREAM, seed, 0 | 1 | 2]


class BatchEnv(Protocol):
    """What :class:`PerturbedVecEnv` needs of a backend's vector env (``step`` returns its ``StepResult``)."""

    num_envs: int

    def reset(self, seed: int | None = None) -> np.ndarray: ...
    def step(self, actions: np.ndarray) -> Any: ...
    def get_state(self) -> Any: ...
    def set_state(self, states: Any) -> None: ...
    def close(self) -> None: ...


class DelayQueue:
    """The last ``depth`` arrays of each env: ``buffer`` (depth, N, dim), ``head`` the slot written last.
    ``fixed``: the one delay every env has, when the delay is not drawn (then a read is one slot's copy)."""

    def __init__(self, num_envs: int, dim: int, max_delay: int, fixed: int | None = None) -> None:
        self.buffer = np.zeros((max_delay + 1, num_envs, dim))
        self.head = 0
        self.fixed = fixed
        self._rows = np.arange(num_envs)

    def push(self, x: np.ndarray) -> None:
        """Append ``x`` (N, dim) as every env's newest entry."""
        self.head = (self.head + 1) % self.buffer.shape[0]
        self.buffer[self.head] = x

    def read(self, delays: np.ndarray) -> np.ndarray:
        """Row ``i`` of the entry pushed ``delays[i]`` pushes ago (0: the newest), (N, dim); a new array."""
        if self.fixed is not None:  # the same slot for every env: no fancy indexing (a hot path)
            return self.buffer[(self.head - self.fixed) % self.buffer.shape[0]].copy()
        return self.buffer[(self.head - delays) % self.buffer.shape[0], self._rows]

    def clear(self, envs: np.ndarray | slice) -> None:
        """Fill the queues of ``envs`` with zeros (a new episode)."""
        self.buffer[:, envs] = 0.0


def noise_std(stds: tuple[float, ...], obs_dim: int) -> np.ndarray:
    """``obs_noise_std`` as an (obs_dim,) array: one number for every dimension, or one per dimension."""
    if len(stds) not in (0, 1, obs_dim):
        raise UserError(
            f"obs_noise_std has {len(stds)} numbers but the env has {obs_dim} observation dimensions; "
            f"give 1 or {obs_dim}"
        )
    return np.broadcast_to(np.asarray(stds or (0.0,), dtype=np.float64), (obs_dim,)).copy()


class PerturbedVecEnv:
    """A vector env whose observations and actions are perturbed as the module docstring says."""

    def __init__(self, env: BatchEnv, perturbations: Perturbations, seed: int, act_space: Any, obs_dim: int) -> None:
        self.env, self.num_envs, self.p = env, env.num_envs, perturbations
        self.act_low = np.asarray(act_space.low, dtype=np.float64)
        self.act_high = np.asarray(act_space.high, dtype=np.float64)
        self._act_scale = perturbations.action_noise_std * (self.act_high - self.act_low) / 2
        self._obs_std = noise_std(perturbations.obs_noise_std, obs_dim)
        n, act, obs = self.num_envs, perturbations.action_delay, perturbations.obs_delay
        self._actions = DelayQueue(n, self.act_low.size, int(act.high), int(act.low) if act.low == act.high else None)
        self._observations = DelayQueue(n, obs_dim, int(obs.high), int(obs.low) if obs.low == obs.high else None)
        self._act_noisy, self._obs_noisy = bool(self._act_scale.any()), bool(self._obs_std.any())
        self._acts_perturbed = self._act_noisy or act.high > 0  # else actions pass through untouched
        self._obs_perturbed = self._obs_noisy or obs.high > 0  # else observations do
        self._act_delay = np.zeros(n, dtype=np.int64)
        self._obs_delay = np.zeros(n, dtype=np.int64)
        self._seed_generators(seed)

    def _seed_generators(self, seed: int) -> None:
        self._obs_rng, self._act_rng, self._delay_rng = (
            np.random.default_rng([NOISE_STREAM, seed, k]) for k in range(3)
        )

    def _measure(self, obs: np.ndarray) -> np.ndarray:
        """``obs`` (n, obs_dim) plus its observation noise; no draw without noise."""
        if not self._obs_noisy:
            return obs
        return obs + self._obs_std * self._obs_rng.standard_normal(obs.shape)

    def _new_episodes(self, envs: np.ndarray | slice) -> None:
        """Draw the delays of ``envs``' new episodes and empty their queues."""
        count = self.num_envs if isinstance(envs, slice) else envs.size
        self._act_delay[envs] = self.p.action_delay.draw(self._delay_rng, count)
        self._obs_delay[envs] = self.p.obs_delay.draw(self._delay_rng, count)
        self._actions.clear(envs)
        self._observations.clear(envs)

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Reset every env and start new episodes (a ``seed`` also reseeds the perturbations' generators)."""
        if seed is not None:
            self._seed_generators(seed)
        obs = self.env.reset(seed=seed)
        self._new_episodes(slice(None))
        if not self._obs_perturbed:
            return obs
        self._observations.push(self._measure(obs))
        return self._observations.read(self._obs_delay)

    def _applied(self, actions: np.ndarray) -> np.ndarray:
        """The actions the env applies: delayed, noisy, clipped into the box (N, act_dim)."""
        self._actions.push(actions)
        applied = self._actions.read(self._act_delay)
        if self._act_noisy:
            applied += self._act_scale * self._act_rng.standard_normal(applied.shape)
        return np.clip(applied, self.act_low, self.act_high, out=applied)

    def step(self, actions: np.ndarray) -> Any:
        """Step with the policy's ``actions`` (N, act_dim); the result as the backend's, perturbed."""
        step = self.env.step(self._applied(actions) if self._acts_perturbed else actions)
        ended = np.flatnonzero(step.terminated | step.truncated)
        if not self._obs_perturbed:
            if ended.size:
                self._new_episodes(ended)
            return step
        measured = self._measure(step.obs)  # where an episode ended: the reset obs, measured
        if not ended.size:
            self._observations.push(measured)
            seen = self._observations.read(self._obs_delay)
            return step._replace(obs=seen, final_obs=seen)
        measured_reset = measured[ended].copy()
        measured = measured.copy()
        measured[ended] = self._measure(step.final_obs[ended])  # critical: the episode's last view, not the reset
        self._observations.push(measured)
        final_obs = self._observations.read(self._obs_delay)
        self._new_episodes(ended)
        self._observations.buffer[self._observations.head, ended] = measured_reset
        obs = final_obs.copy()
        obs[ended] = self._observations.read(self._obs_delay)[ended]
        return step._replace(obs=obs, final_obs=final_obs)

    def get_state(self) -> dict[str, Any] | None:
        """The backend's env state and the queues, delays and generators; None when the backend's envs cannot
        be restored (envpool, async workers), as without perturbations."""
        envs = self.env.get_state()
        if envs is None:
            return None
        generators = [rng.bit_generator.state for rng in (self._obs_rng, self._act_rng, self._delay_rng)]
        queues = {
            name: {"buffer": q.buffer.copy(), "head": q.head}
            for name, q in (("actions", self._actions), ("observations", self._observations))
        }
        delays = {"actions": self._act_delay.copy(), "observations": self._obs_delay.copy()}
        return {"envs": envs, "perturbations": {"generators": generators, "queues": queues, "delays": delays}}

    def set_state(self, state: dict[str, Any]) -> None:
        self.env.set_state(state["envs"])
        saved = state["perturbations"]
        for rng, generator in zip((self._obs_rng, self._act_rng, self._delay_rng), saved["generators"], strict=True):
            rng.bit_generator.state = generator
        for name, q in (("actions", self._actions), ("observations", self._observations)):
            q.buffer[...] = saved["queues"][name]["buffer"]
            q.head = int(saved["queues"][name]["head"])
        self._act_delay[:] = saved["delays"]["actions"]
        self._obs_delay[:] = saved["delays"]["observations"]

    def close(self) -> None:
        self.env.close()
