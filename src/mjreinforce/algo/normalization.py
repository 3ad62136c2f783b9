"""Running mean and variance of observations, as state that checkpoints carry."""

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
