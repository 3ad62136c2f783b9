"""Running statistics as state that checkpoints carry: of observations (:class:`RunningNormalizer`) and of the
discounted return, which scales rewards (:class:`RewardScaler`)."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def standardize(obs: ArrayT, mean: ArrayT, std: ArrayT, clip: float) -> ArrayT:
    """``clip((obs - mean) / std, -clip, clip)`` elementwise: obs ``(..., dim)``, mean and std ``(dim,)``.

    The same IEEE operations in the same order on a numpy array or a torch tensor, so the normalizer (numpy,
    float64) and the exported ONNX graph (torch traced in float64) give bitwise the same normalized values.
    """
    return ((obs - mean) / std).clip(-clip, clip)


class RunningNormalizer:
    """Running mean/variance (Chan et al. parallel update) and ``(x - mean) / sqrt(var + eps)``.

    Statistics change only through :meth:`update`, which the trainer calls once per rollout
    with that rollout's raw observations; normalization itself is a pure read, so collection,
    the update that follows and evaluation all see the same frozen statistics.
    A disabled normalizer is the identity and never updates.
    """

    def __init__(self, dim: int, enabled: bool = True, eps: float = 1e-8, clip: float = 10.0) -> None:
        self.enabled = enabled
        self.eps = eps
        self.clip = clip
        self.mean = np.zeros(dim, dtype=np.float64)
        self.var = np.ones(dim, dtype=np.float64)
        self.count = 0.0

    def update(self, batch: np.ndarray) -> None:
        """Merge a batch ``(..., dim)`` into the statistics (no-op when disabled)."""
        if not self.enabled:
            return
        batch = batch.reshape(-1, self.mean.shape[0]).astype(np.float64)
        b_mean, b_var, b_count = batch.mean(0), batch.var(0), batch.shape[0]
        total = self.count + b_count
        delta = b_mean - self.mean
        m2 = self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / total
        self.mean = self.mean + delta * b_count / total
        self.var = m2 / total
        self.count = total

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Normalized float32 copy of ``obs`` ``(..., dim)``, clipped to ``[-clip, clip]``."""
        if not self.enabled:
            return obs.astype(np.float32)
        return standardize(obs, self.mean, self.std(), self.clip).astype(np.float32)

    def std(self) -> np.ndarray:
        """``sqrt(var + eps)``, ``(dim,)`` float64: what :meth:`__call__` divides by."""
        return np.sqrt(self.var + self.eps)

    def state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": np.array([self.count])}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.mean = np.asarray(state["mean"], dtype=np.float64).copy()
        self.var = np.asarray(state["var"], dtype=np.float64).copy()
        self.count = float(np.asarray(state["count"]).reshape(-1)[0])


class RewardScaler:
    """Rewards divided by a running std of the discounted return, clipped: ``clip(r_t / sqrt(Var[G] + eps), -c, c)``.

    ``G_t = gamma * G_{t-1} + r_t`` runs per env and restarts after every episode end (terminated *or*
    truncated: the next step belongs to a new episode); ``Var[G]`` is the running variance of every ``G_t``
    seen so far (Stable-Baselines3's ``VecNormalize(norm_reward=True)``, CleanRL's ``NormalizeReward``). The
    scale is the same for every step of a rollout, so the returns stage sees the task's rewards times one
    positive constant: advantages keep their sign and order, and the critic learns returns of order one
    whatever the task's units. Training only: episode returns, evaluations and exported policies never see it.

    :meth:`update` merges a rollout first, then :meth:`__call__` scales that same rollout (its own steps
    included in the statistics). A disabled scaler is the identity and never updates.
    """

    def __init__(self, num_envs: int, gamma: float, enabled: bool = True, eps: float = 1e-8, clip: float = 10.0):
        self.enabled = enabled
        self.gamma = gamma
        self.clip = clip
        self.returns = np.zeros(num_envs, dtype=np.float64)
        self.stats = RunningNormalizer(1, eps=eps)

    def update(self, rewards: np.ndarray, episode_ends: np.ndarray) -> None:
        """Run the discounted returns through a rollout's ``rewards`` ``(T, N)`` (``episode_ends`` ``(T, N)``
        bool: terminated or truncated at that step) and merge every ``G_t`` into the variance."""
        if not self.enabled:
            return
        seen = np.empty(rewards.shape, dtype=np.float64)
        for t in range(rewards.shape[0]):
            self.returns = self.gamma * self.returns + rewards[t]
            seen[t] = self.returns
            self.returns[episode_ends[t]] = 0.0
        self.stats.update(seen.reshape(-1, 1))

    def __call__(self, rewards: np.ndarray) -> np.ndarray:
        """``rewards`` ``(T, N)`` scaled and clipped, same dtype (unchanged when disabled)."""
        if not self.enabled:
            return rewards
        return np.clip(rewards / float(self.stats.std()[0]), -self.clip, self.clip).astype(rewards.dtype)

    def state(self) -> dict[str, np.ndarray]:
        return {"returns": self.returns.copy()} | self.stats.state()

    def load_state(self, state: dict[str, np.ndarray], with_returns: bool) -> None:
        """Load :meth:`state`; the open returns only ``with_returns`` (the envs were restored mid-episode too;
        otherwise they start new episodes and their returns restart at 0)."""
        self.stats.load_state(state)
        if with_returns:
            self.returns = np.asarray(state["returns"], dtype=np.float64).copy()
