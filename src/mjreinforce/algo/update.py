"""The update: losses, and one optimization step of the policy and the critic on a batch from the returns stage.

The learner only predicts values and steps optimizers; advantages come from :mod:`mjreinforce.algo.returns`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector

from mjreinforce.algo.policy import GaussianPolicy, ValueNetwork
from mjreinforce.algo.ppo_loss import (
    KL_STOP_FACTOR,
    approx_kl,
    clip_fraction,
    clipped_surrogate_loss,
    clipped_values,
    minibatch_indices,
)
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
    clip_fraction: float | None = None
    """ppo: fraction of the samples whose ratio was outside the clip range, mean over the minibatches stepped."""
    approx_kl: float | None = None
    """ppo: approximate KL divergence from the collecting policy (:func:`~mjreinforce.algo.ppo_loss.approx_kl`),
    mean over the minibatches evaluated."""
    epochs: float | None = None
    """ppo: optimizer steps / num_minibatches, the passes run (below ``update_epochs`` when ``target_kl`` stopped
    them)."""


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


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


@dataclass
class _PpoStats:
    """Per-minibatch scalars of one PPO update."""

    policy: list[float] = field(default_factory=list)
    value: list[float] = field(default_factory=list)
    entropy: list[float] = field(default_factory=list)
    clip_fraction: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)

    def record(
        self,
        pi_loss: torch.Tensor,
        v_loss: torch.Tensor | None,
        entropy: torch.Tensor,
        clipped: torch.Tensor,
        grad_norm: float,
    ) -> None:
        self.policy.append(float(pi_loss.item()))
        if v_loss is not None:
            self.value.append(float(v_loss.item()))
        self.entropy.append(float(entropy.mean().item()))
        self.clip_fraction.append(float(clipped.item()))
        self.grad_norm.append(grad_norm)


class Learner:
    """Policy (and optional critic) with their optimizers; :meth:`update` does one update."""

    def __init__(self, cfg: Config, policy: GaussianPolicy, value: ValueNetwork | None) -> None:
        self.cfg = cfg
        self.policy = policy
        self.value = value
        opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
        # foreach/fused: one multi-tensor kernel per step instead of a Python loop over parameters. The critic,
        # stepped value_iterations times per update, uses the fused CPU kernel (about 25% faster per step); so does
        # the policy with ppo, which steps once per minibatch.
        fused = cfg.algorithm == "ppo"
        self.policy_optimizer = opt_cls(
            policy.parameters(), lr=cfg.learning_rate, eps=cfg.adam_eps, foreach=not fused or None, fused=fused or None
        )
        self.value_optimizer = (
            torch.optim.Adam(value.parameters(), lr=cfg.value_learning_rate, eps=cfg.adam_eps, fused=True)
            if value is not None
            else None
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
        With ``algorithm = "ppo"`` the update is :meth:`_update_ppo`'s instead.
        """
        if self.cfg.algorithm == "ppo":
            return self._update_ppo(obs, raw_actions, valid, batch)
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

    def _clip(self, *modules: nn.Module) -> float:
        """Clip the global gradient norm of all ``modules`` together to ``max_grad_norm``; the norm before."""
        max_norm = self.cfg.max_grad_norm if self.cfg.max_grad_norm is not None else float("inf")
        return float(nn.utils.clip_grad_norm_([p for m in modules for p in m.parameters()], max_norm))

    def _update_ppo(
        self, obs: np.ndarray, raw_actions: np.ndarray, valid: np.ndarray, batch: Advantages
    ) -> UpdateMetrics:
        """PPO's update: ``update_epochs`` passes over the ``valid`` steps in shuffled minibatches
        (:func:`~mjreinforce.algo.ppo_loss.minibatch_indices`), one step of both optimizers per minibatch.

        The loss of a minibatch is ``clipped surrogate - entropy_coef * mean(entropy) + vf_coef * value loss``
        (:meth:`_step_jointly`). ``log pi_old`` comes from one batched forward pass before the first step, so
        the first minibatch has ``r = 1``. With ``target_kl`` the passes stop at the first minibatch whose
        approximate KL exceeds ``1.5 * target_kl``, before its step. Shapes as in :meth:`update`.
        """
        cfg = self.cfg
        flat_obs = _as_tensor(obs.reshape(-1, obs.shape[-1]))
        flat_actions = _as_tensor(raw_actions.reshape(-1, raw_actions.shape[-1]))
        advantages = batch.advantages.reshape(-1)
        targets, old_values = _as_tensor(batch.targets.reshape(-1)), _as_tensor(batch.values.reshape(-1))
        rows = torch.as_tensor(np.flatnonzero(valid.reshape(-1)))
        old_log_probs = torch.zeros(flat_obs.shape[0])
        with torch.no_grad():
            old_log_probs[rows] = self.policy.log_prob(flat_obs[rows], flat_actions[rows])[0]
        stats = _PpoStats()
        for _ in range(cfg.update_epochs):
            for idx in minibatch_indices(valid, cfg.num_minibatches):
                log_probs, entropy = self.policy.log_prob(flat_obs[idx], flat_actions[idx])
                log_ratio = log_probs - old_log_probs[idx]
                stats.kl.append(float(approx_kl(log_ratio.detach())))
                if cfg.target_kl is not None and stats.kl[-1] > KL_STOP_FACTOR * cfg.target_kl:
                    return self._ppo_metrics(stats, flat_obs[rows], batch, valid)
                adv = advantages[idx.numpy()]
                adv_t = _as_tensor(normalize(adv) if cfg.normalize_advantages else adv)
                pi_loss = clipped_surrogate_loss(log_ratio, adv_t, cfg.clip_range) - cfg.entropy_coef * entropy.mean()
                v_loss = None
                if self.value is not None:
                    predicted = clipped_values(self.value(flat_obs[idx]), old_values[idx], cfg.clip_range_vf)
                    v_loss = value_loss(predicted, targets[idx])
                grad_norm = self._step_jointly(pi_loss, v_loss)
                stats.record(pi_loss, v_loss, entropy, clip_fraction(log_ratio.detach(), cfg.clip_range), grad_norm)
        return self._ppo_metrics(stats, flat_obs[rows], batch, valid)

    def _step_jointly(self, pi_loss: torch.Tensor, v_loss: torch.Tensor | None) -> float:
        """One step of both optimizers on ``pi_loss + vf_coef * v_loss``, the gradient clipped over policy and
        critic together; returns the norm before clipping. This is Stable-Baselines3's joint loss: the two Adam
        optimizers hold disjoint parameters and Adam is elementwise, so with equal learning rates (and ``adam``
        for the policy) they are one Adam over both networks."""
        loss = pi_loss if v_loss is None else pi_loss + self.cfg.vf_coef * v_loss
        modules: list[nn.Module] = [self.policy]
        self.policy_optimizer.zero_grad()
        if self.value is not None and self.value_optimizer is not None:
            modules.append(self.value)
            self.value_optimizer.zero_grad()
        loss.backward()
        grad_norm = self._clip(*modules)
        self.policy_optimizer.step()
        if self.value_optimizer is not None:
            self.value_optimizer.step()
        return grad_norm

    def _ppo_metrics(self, stats: _PpoStats, obs: torch.Tensor, batch: Advantages, valid: np.ndarray) -> UpdateMetrics:
        """The update's metrics: means over the minibatches stepped (KL: over those evaluated)."""
        with torch.no_grad():
            _, std = self.policy.mean_std(obs)
        ev = explained_variance(batch.values[valid], batch.targets[valid]) if self.value is not None else None
        return UpdateMetrics(
            policy_loss=_mean(stats.policy),
            value_loss=_mean(stats.value) if self.value is not None else None,
            entropy=_mean(stats.entropy),
            action_std=float(std.mean().item()),
            explained_variance=ev,
            grad_norm=_mean(stats.grad_norm),
            learning_rate=float(self.policy_optimizer.param_groups[0]["lr"]),
            value_learning_rate=(
                float(self.value_optimizer.param_groups[0]["lr"]) if self.value_optimizer is not None else None
            ),
            clip_fraction=_mean(stats.clip_fraction),
            approx_kl=_mean(stats.kl),
            epochs=len(stats.policy) / max(1, min(self.cfg.num_minibatches, int(valid.sum()))),
        )

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
