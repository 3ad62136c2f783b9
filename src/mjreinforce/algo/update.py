"""The update: losses, and one optimization step of the policy and the critic on a batch from the returns stage.

The learner only predicts values and steps optimizers; advantages come from :mod:`mjreinforce.algo.returns`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector

from mjreinforce.algo.policy import GaussianPolicy, ValueNetwork
from mjreinforce.algo.returns import Advantages, normalize
from mjreinforce.config import Config


@dataclass(frozen=True)
class UpdateMetrics:
    """Scalars logged after each update."""

    policy_loss: float
    value_loss: float | None
    entropy: float
    action_std: float
    explained_variance: float | None
    grad_norm: float
    learning_rate: float
    value_learning_rate: float | None


def policy_loss(
    log_probs: torch.Tensor, advantages: torch.Tensor, entropy: torch.Tensor, entropy_coef: float, reduction: str
) -> torch.Tensor:
    """``-sum_t log pi(u_t|s_t) A_t`` (``reduction="sum"``, the tutorial) or its mean over the
    batch, minus ``entropy_coef * mean(entropy)``. Inputs ``(B,)``, output a scalar."""
    weighted = log_probs * advantages
    surrogate = weighted.sum() if reduction == "sum" else weighted.mean()
    return -surrogate - entropy_coef * entropy.mean()


def value_loss(values: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error ``mean((V(s_t) - target_t)^2)``; inputs ``(B,)``."""
    return ((values - targets) ** 2).mean()


def explained_variance(predicted: np.ndarray, targets: np.ndarray) -> float:
    """``1 - Var(targets - predicted) / Var(targets)``; 1 is perfect, 0 no better than a constant
    (NaN when the targets are constant)."""
    var = np.var(targets)
    return float("nan") if var == 0 else float(1.0 - np.var(targets - predicted) / var)


def _as_tensor(x: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float32)


class Learner:
    """Policy (and optional critic) with their optimizers; :meth:`update` does one update."""

    def __init__(self, cfg: Config, policy: GaussianPolicy, value: ValueNetwork | None) -> None:
        self.cfg = cfg
        self.policy = policy
        self.value = value
        opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
        # foreach/fused: one multi-tensor kernel per step instead of a Python loop over parameters. The critic,
        # stepped value_iterations times per update, uses the fused CPU kernel (about 25% faster per step).
        self.policy_optimizer = opt_cls(policy.parameters(), lr=cfg.learning_rate, foreach=True)
        self.value_optimizer = (
            torch.optim.Adam(value.parameters(), lr=cfg.value_learning_rate, fused=True) if value is not None else None
        )

    def set_progress(self, fraction_done: float) -> None:
        """Apply the learning-rate schedule, to both optimizers, for a run ``fraction_done`` (0..1) through its
        budget: ``lr = lr_0 * (1 - fraction_done)`` with ``linear``. Call it before collecting, so the
        fraction is below 1 at every update."""
        if self.cfg.lr_schedule != "linear":
            return
        scale = max(0.0, 1.0 - fraction_done)
        for group in self.policy_optimizer.param_groups:
            group["lr"] = self.cfg.learning_rate * scale
        if self.value_optimizer is not None:
            for group in self.value_optimizer.param_groups:
                group["lr"] = self.cfg.value_learning_rate * scale

    def values(self, obs: np.ndarray) -> np.ndarray:
        """``V`` of normalized observations ``(..., obs_dim)`` -> ``(...)`` float64, without a graph;
        zeros without a critic."""
        if self.value is None:
            return np.zeros(obs.shape[:-1])
        with torch.inference_mode():
            flat = _as_tensor(obs.reshape(-1, obs.shape[-1]))
            return self.value(flat).numpy().astype(np.float64).reshape(obs.shape[:-1])

    def update(self, obs: np.ndarray, raw_actions: np.ndarray, valid: np.ndarray, batch: Advantages) -> UpdateMetrics:
        """One policy step (and ``value_iterations`` critic steps) on the ``valid`` steps.

        ``obs``: normalized observations ``(T, N, obs_dim)``; ``raw_actions``: the sampled pre-squash
        actions ``(T, N, act_dim)``; ``valid``: ``(T, N)`` bool; ``batch``: the returns stage's output.
        """
        cfg = self.cfg
        adv = batch.advantages
        if cfg.normalize_advantages:
            adv = normalize(adv, valid)
        obs_b = _as_tensor(obs[valid])
        log_probs, entropy = self.policy.log_prob(obs_b, _as_tensor(raw_actions[valid]))
        loss = policy_loss(log_probs, _as_tensor(adv[valid]), entropy, cfg.entropy_coef, cfg.loss_reduction)
        self.policy_optimizer.zero_grad()
        loss.backward()
        grad_norm = self._clip(self.policy)
        self.policy_optimizer.step()
        v_loss, ev = self._update_value(obs_b, batch.targets[valid], batch.values[valid])
        with torch.no_grad():
            _, std = self.policy.mean_std(obs_b)
        return UpdateMetrics(
            policy_loss=float(loss.item()),
            value_loss=v_loss,
            entropy=float(entropy.mean().item()),
            action_std=float(std.mean().item()),
            explained_variance=ev,
            grad_norm=grad_norm,
            learning_rate=float(self.policy_optimizer.param_groups[0]["lr"]),
            value_learning_rate=(
                float(self.value_optimizer.param_groups[0]["lr"]) if self.value_optimizer is not None else None
            ),
        )

    def divergence(self, metrics: UpdateMetrics) -> str | None:
        """Why the last update left training unusable, or None: a non-finite loss, gradient norm, action std or
        entropy in ``metrics``, or a non-finite weight (one ``isfinite`` over all parameters per network)."""
        for name, value in (
            ("policy loss", metrics.policy_loss),
            ("value loss", metrics.value_loss),
            ("gradient norm", metrics.grad_norm),
            ("action std", metrics.action_std),
            ("entropy", metrics.entropy),
        ):
            if value is not None and not math.isfinite(value):
                return f"{name} is {value}"
        for name, module in (("policy", self.policy), ("value network", self.value)):
            if module is not None and not bool(torch.isfinite(parameters_to_vector(module.parameters())).all()):
                return f"a {name} weight is not finite"
        return None

    def _clip(self, module: nn.Module) -> float:
        max_norm = self.cfg.max_grad_norm if self.cfg.max_grad_norm is not None else float("inf")
        return float(nn.utils.clip_grad_norm_(module.parameters(), max_norm))

    def _update_value(
        self, obs: torch.Tensor, targets: np.ndarray, values: np.ndarray
    ) -> tuple[float | None, float | None]:
        """``value_iterations`` critic steps; explained variance of the values before them."""
        if self.value is None or self.value_optimizer is None:
            return None, None
        target_t = _as_tensor(targets)
        ev = explained_variance(values, targets)
        loss = torch.zeros(())
        for _ in range(self.cfg.value_iterations):
            loss = value_loss(self.value(obs), target_t)
            self.value_optimizer.zero_grad()
            loss.backward()
            if self.cfg.max_grad_norm is not None:
                self._clip(self.value)
            self.value_optimizer.step()
        return float(loss.item()), ev
