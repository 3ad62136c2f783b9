"""The pieces of PPO's update (Schulman et al. 2017), as pure functions.

Notation: ``B`` samples of a minibatch; ``log_ratio = log pi(u|s) - log pi_old(u|s)``, the log of the
probability ratio ``r`` of the current policy to the one that collected the rollout (whose log-probs are
computed once, before the update's first step, so ``r = 1`` exactly at the first minibatch).
"""

from __future__ import annotations

import numpy as np
import torch

KL_STOP_FACTOR = 1.5
"""``target_kl`` stops the epochs once the approximate KL exceeds ``1.5 * target_kl`` (Stable-Baselines3 and
Spinning Up use the same margin)."""


def clipped_surrogate_loss(log_ratio: torch.Tensor, advantages: torch.Tensor, clip_range: float) -> torch.Tensor:
    """``-mean(min(r A, clip(r, 1 - eps, 1 + eps) A))`` with ``r = exp(log_ratio)``, ``eps = clip_range``.

    Inputs ``(B,)``, output a scalar. Where the ratio has left the clip range in the direction the
    advantage pushes it (``A > 0`` and ``r > 1 + eps``; ``A < 0`` and ``r < 1 - eps``) the minimum is the
    clipped, constant term, so that sample's gradient is 0; on the other side the unclipped term is the
    minimum and the gradient is that of ``r A``. At ``r = 1`` the gradient equals the vanilla policy
    gradient's, ``-mean(A grad log pi)``.
    """
    ratio = torch.exp(log_ratio)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range) * advantages
    return -torch.minimum(unclipped, clipped).mean()


def clipped_values(values: torch.Tensor, old_values: torch.Tensor, clip_range_vf: float | None) -> torch.Tensor:
    """Stable-Baselines3's value clipping: ``V_old + clip(V - V_old, -c, c)``; ``values`` unchanged when
    ``clip_range_vf`` is None. Shapes ``(B,)``. (CleanRL and OpenAI Baselines instead take the larger of the
    clipped and unclipped squared errors.)"""
    if clip_range_vf is None:
        return values
    return old_values + torch.clamp(values - old_values, -clip_range_vf, clip_range_vf)


def approx_kl(log_ratio: torch.Tensor) -> torch.Tensor:
    """``mean((r - 1) - log r)``, Schulman's low-variance estimator ``k3`` of ``KL(pi_old || pi)`` from samples
    drawn by ``pi_old``: unbiased (``E_old[r] = 1``) and never negative. ``(B,)`` -> scalar."""
    return (torch.expm1(log_ratio) - log_ratio).mean()


def clip_fraction(log_ratio: torch.Tensor, clip_range: float) -> torch.Tensor:
    """Fraction of the samples whose ratio is outside ``[1 - eps, 1 + eps]``: ``|r - 1| > eps``. ``(B,)`` -> scalar."""
    return (torch.abs(torch.expm1(log_ratio)) > clip_range).float().mean()


def minibatch_indices(valid: np.ndarray, num_minibatches: int) -> list[torch.Tensor]:
    """One epoch's minibatches: the positions of the ``valid`` steps in the flattened ``(T * N)`` rollout,
    shuffled with torch's global RNG (one ``randperm`` per epoch, saved in checkpoints like every torch draw)
    and cut into ``min(num_minibatches, n_valid)`` near-equal parts.

    Every valid step is in exactly one minibatch, no invalid step in any. ``valid``: ``(T, N)`` bool ->
    a list of int64 tensors whose sizes differ by at most one.
    """
    positions = torch.as_tensor(np.flatnonzero(valid.reshape(-1)))
    if positions.numel() == 0:
        return []
    shuffled = positions[torch.randperm(positions.numel())]
    return list(torch.tensor_split(shuffled, min(num_minibatches, positions.numel())))
