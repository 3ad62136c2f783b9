"""Collect ``T x N`` steps with the policy under ``torch.inference_mode()``.

No autograd graph is kept while stepping: the update recomputes log-probs in one batched
forward pass over the stored observations and raw actions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from mjreinforce.algo.normalization import RunningNormalizer
from mjreinforce.algo.policy import GaussianPolicy
from mjreinforce.algo.returns import finished_episodes_mask
from mjreinforce.envs.vector import StepResult, VecEnv


@dataclass(frozen=True)
class Rollout:
    """A segment of ``T`` steps of ``N`` envs (``T`` varies in episode mode).

    - ``obs``: raw observations ``s_t`` the policy acted on, ``(T, N, obs_dim)``
    - ``raw_actions``: sampled ``u_t`` before clipping/squashing, ``(T, N, act_dim)``
    - ``rewards``: ``(T, N)``; ``terminated``, ``truncated``: ``(T, N)`` bool, never merged
    - ``next_obs``: the observation after step ``t`` *in the same episode*: the episode's final
      observation where it ended at ``t``, otherwise ``s_{t+1}``; ``(T, N, obs_dim)``
    - ``valid``: steps that enter the loss, ``(T, N)`` bool (all true in fixed-length mode; in episode
      mode every episode that finished in the rollout, only the ones still running at the cut left out)
    """

    obs: np.ndarray
    raw_actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    next_obs: np.ndarray
    valid: np.ndarray

    @property
    def episode_ends(self) -> np.ndarray:
        return self.terminated | self.truncated


@dataclass(frozen=True)
class Episode:
    """One finished training episode, a row of ``episodes.csv``."""

    env_steps: int
    ret: float
    length: int
    terminated: bool
    truncated: bool


@dataclass
class _Buffers:
    """Growable ``(T, N, ...)`` numpy buffers; ``capacity`` doubles when full."""

    num_envs: int
    obs_dim: int
    act_dim: int
    capacity: int
    arrays: dict[str, np.ndarray] = field(init=False)

    def __post_init__(self) -> None:
        self.arrays = self._alloc(self.capacity)

    def _alloc(self, cap: int) -> dict[str, np.ndarray]:
        n, o, a = self.num_envs, self.obs_dim, self.act_dim
        return {
            "obs": np.empty((cap, n, o)),
            "raw_actions": np.empty((cap, n, a), dtype=np.float32),
            "rewards": np.empty((cap, n)),
            "terminated": np.empty((cap, n), dtype=bool),
            "truncated": np.empty((cap, n), dtype=bool),
            "next_obs": np.empty((cap, n, o)),
        }

    def ensure(self, t: int) -> None:
        if t < self.capacity:
            return
        bigger = self._alloc(2 * self.capacity)
        for key, arr in self.arrays.items():
            bigger[key][: self.capacity] = arr
        self.arrays, self.capacity = bigger, 2 * self.capacity


class Collector:
    """Steps a :class:`VecEnv`, carrying the current observations and open episodes across rollouts."""

    def __init__(self, env: VecEnv, obs_dim: int, act_dim: int) -> None:
        self.env = env
        self.num_envs = env.num_envs
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.obs = env.reset()
        self.episode_return = np.zeros(self.num_envs)
        self.episode_length = np.zeros(self.num_envs, dtype=np.int64)
        self.env_steps = 0
        self._buffers: _Buffers | None = None

    def collect(
        self,
        policy: GaussianPolicy,
        normalizer: RunningNormalizer,
        rollout_steps: int,
        on_episode: Callable[[Episode], None],
        min_steps: int = 0,
    ) -> Rollout:
        """Collect ``rollout_steps`` steps per env, or with ``rollout_steps = 0`` until every env has
        finished an episode and at least ``min_steps`` env steps (``T * N``) were taken: an env that
        finishes first starts another, and every episode that finishes in the rollout enters the loss;
        only the episodes still running at the cut are dropped.
        ``on_episode`` is called as each episode finishes, so its record survives a crash."""
        episode_mode = rollout_steps == 0
        if episode_mode and self.episode_length.any():
            self._restart_all()
        capacity = rollout_steps or 256
        if self._buffers is None or self._buffers.capacity < capacity:
            self._buffers = _Buffers(self.num_envs, self.obs_dim, self.act_dim, capacity)
        buf = self._buffers
        ended_once = np.zeros(self.num_envs, dtype=bool)
        t, n = 0, self.num_envs
        with torch.inference_mode():
            while (t < rollout_steps) if not episode_mode else not (ended_once.all() and t * n >= min_steps):
                buf.ensure(t)
                a = buf.arrays
                raw = policy.sample(torch.from_numpy(normalizer(self.obs)))
                step = self.env.step(policy.env_action(raw).numpy())
                a["obs"][t], a["raw_actions"][t], a["next_obs"][t] = self.obs, raw.numpy(), step.final_obs
                a["rewards"][t], a["terminated"][t], a["truncated"][t] = step.rewards, step.terminated, step.truncated
                self.env_steps += self.num_envs
                self.episode_return += step.rewards
                self.episode_length += 1
                ended = step.terminated | step.truncated
                if ended.any():
                    for episode in self._finish_episodes(ended, step):
                        on_episode(episode)
                    ended_once |= ended
                self.obs = step.obs
                t += 1
        return self._snapshot(buf, t, episode_mode)

    def _finish_episodes(self, ended: np.ndarray, step: StepResult) -> list[Episode]:
        out = []
        for i in np.flatnonzero(ended):
            out.append(
                Episode(
                    env_steps=self.env_steps,
                    ret=float(self.episode_return[i]),
                    length=int(self.episode_length[i]),
                    terminated=bool(step.terminated[i]),
                    truncated=bool(step.truncated[i]),
                )
            )
        self.episode_return[ended] = 0.0
        self.episode_length[ended] = 0
        return out

    def _restart_all(self) -> None:
        """Episode mode: drop the open episodes so every env starts the rollout fresh."""
        self.obs = self.env.reset()
        self.episode_return[:] = 0.0
        self.episode_length[:] = 0

    @staticmethod
    def _snapshot(buf: _Buffers, t: int, episode_mode: bool) -> Rollout:
        a = {key: arr[:t].copy() for key, arr in buf.arrays.items()}
        ends = a["terminated"] | a["truncated"]
        valid = finished_episodes_mask(ends) if episode_mode else np.ones_like(ends)
        return Rollout(valid=valid, **a)
