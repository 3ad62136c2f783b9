"""Gaussian policies and the value network.

A policy maps observations ``(B, obs_dim)`` to a diagonal Gaussian over a *raw* action
``u`` of shape ``(B, act_dim)``. What the env receives is ``env_action(u)``:

- ``clip``: ``a = clip(u, low, high)``; ``log pi`` is the Gaussian density of ``u``
  (MuJoCo would clamp to its ``ctrlrange`` anyway, so clipping never changes the dynamics).
- ``tanh``: ``a = low + (tanh(u) + 1) / 2 * (high - low)``. ``log pi(a|s) = log N(u) -
  sum_j log(1 - tanh(u_j)^2) - sum_j log((high_j - low_j) / 2)``. The correction depends on
  ``u`` only, not on the parameters, so it does not change the policy gradient and is left out
  of :meth:`log_prob`; it matters only for reporting densities. The entropy (bonus and logs) is
  likewise the pre-squash Gaussian's.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.distributions import Normal
from torch.nn import functional as F

from mjreinforce.config import LOG_STD_MAX, LOG_STD_MIN, Config
from mjreinforce.errors import UserError

_ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU}


def run_sequential(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``layers(x)`` without ``nn.Module.__call__`` overhead (hooks are not used here): the same
    kernels in the same order, so results are bitwise identical; about 3x faster for one observation."""
    for layer in layers:
        if isinstance(layer, nn.Linear):
            x = F.linear(x, layer.weight, layer.bias)
        elif isinstance(layer, nn.Tanh):
            x = torch.tanh(x)
        elif isinstance(layer, nn.ReLU):
            x = torch.relu(x)
        else:
            x = layer(x)
    return x


def mlp(sizes: list[int], activation: str) -> nn.Sequential:
    """Linear layers of ``sizes`` with ``activation`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(_ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def orthogonal_init(linears: list[nn.Linear], output_gain: float) -> None:
    """Orthogonal weights, gain ``sqrt(2)`` for every layer but the last, ``output_gain`` for the last; zero
    biases. A ``(out, in)`` weight gets orthonormal rows or columns scaled by the gain."""
    for i, layer in enumerate(linears):
        nn.init.orthogonal_(layer.weight, gain=output_gain if i == len(linears) - 1 else math.sqrt(2))
        nn.init.zeros_(layer.bias)


def _linears(*modules: nn.Module) -> list[nn.Linear]:
    return [m for module in modules for m in module.modules() if isinstance(m, nn.Linear)]


class GaussianPolicy(nn.Module):
    """Base: subclasses implement ``mean_std(obs) -> (mean, std)``, each ``(B, act_dim)``."""

    #: how ``log_prob`` reduces over action dimensions: "sum" is log pi; "mean" is the tutorial's.
    log_prob_reduction = "sum"
    act_low: torch.Tensor
    act_high: torch.Tensor

    def __init__(self, act_low: np.ndarray, act_high: np.ndarray, action_bound: str) -> None:
        super().__init__()
        self.register_buffer("act_low", torch.as_tensor(act_low, dtype=torch.float32))
        self.register_buffer("act_high", torch.as_tensor(act_high, dtype=torch.float32))
        self.action_bound = action_bound

    def mean_std(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def distribution(self, obs: torch.Tensor) -> Normal:
        mean, std = self.mean_std(obs)
        return Normal(mean, std)

    def sample(self, obs: torch.Tensor) -> torch.Tensor:
        """Raw actions ``u ~ N(mean, std)``, ``(B, act_dim)``; one ``torch.normal`` draw."""
        mean, std = self.mean_std(obs)
        return torch.normal(mean, std)

    def log_prob(self, obs: torch.Tensor, raw_actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log pi(u|s), entropy)`` per sample, each ``(B,)``, from one batched forward pass."""
        dist = self.distribution(obs)
        log_probs = dist.log_prob(raw_actions)
        entropy = dist.entropy()
        if self.log_prob_reduction == "mean":
            return log_probs.mean(-1), entropy.mean(-1)
        return log_probs.sum(-1), entropy.sum(-1)

    def env_action(self, raw_actions: torch.Tensor) -> torch.Tensor:
        """Map raw actions to what the env receives (clip or tanh-rescale), ``(B, act_dim)``."""
        if self.action_bound == "tanh":
            half = (self.act_high - self.act_low) / 2
            return self.act_low + (torch.tanh(raw_actions) + 1) * half
        return torch.maximum(torch.minimum(raw_actions, self.act_high), self.act_low)

    def deterministic_action(self, obs: torch.Tensor) -> torch.Tensor:
        """The env action of the distribution's mean, ``(B, act_dim)``."""
        mean, _ = self.mean_std(obs)
        return self.env_action(mean)


class TutorialPolicy(GaussianPolicy):
    """The tutorial's network: shared ``obs -> 16 -> tanh -> 32 -> tanh``, then a linear mean
    head and a linear std head through ``softplus(x) = log(1 + exp(x))``.

    As in the tutorial, ``1e-6`` is added to the mean *and* the std, and log-probs are averaged
    over action dimensions (identical to the sum for InvertedPendulum's single action).
    Layers are created in the tutorial's order, so a seed gives the tutorial's initial weights.
    """

    log_prob_reduction = "mean"
    eps = 1e-6

    def __init__(self, obs_dim: int, act_dim: int, act_low: np.ndarray, act_high: np.ndarray) -> None:
        super().__init__(act_low, act_high, "clip")
        self.shared_net = nn.Sequential(nn.Linear(obs_dim, 16), nn.Tanh(), nn.Linear(16, 32), nn.Tanh())
        self.policy_mean_net = nn.Linear(32, act_dim)
        self.policy_stddev_net = nn.Linear(32, act_dim)

    def mean_std(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = run_sequential(self.shared_net, obs)
        mean = F.linear(features, self.policy_mean_net.weight, self.policy_mean_net.bias)
        # The tutorial's literal softplus; torch.nn.functional.softplus differs for large inputs.
        std = torch.log(1 + torch.exp(F.linear(features, self.policy_stddev_net.weight, self.policy_stddev_net.bias)))
        return mean + self.eps, std + self.eps


class MLPPolicy(GaussianPolicy):
    """Configurable Gaussian MLP: mean from an MLP; log-std state-independent (a free
    parameter, as in Spinning Up and PPO) or from a second head on a shared trunk."""

    def __init__(self, obs_dim: int, act_dim: int, act_low: np.ndarray, act_high: np.ndarray, cfg: Config):
        super().__init__(act_low, act_high, cfg.action_bound)
        hidden = list(cfg.hidden_sizes)
        self.state_dependent_std = cfg.state_dependent_std
        if self.state_dependent_std:
            self.trunk = nn.Sequential(mlp([obs_dim, *hidden], cfg.activation), _ACTIVATIONS[cfg.activation]())
            self.mean_head = nn.Linear(hidden[-1], act_dim)
            self.log_std_head = nn.Linear(hidden[-1], act_dim)
            if cfg.orthogonal_init:
                orthogonal_init(_linears(self.trunk, self.mean_head), output_gain=0.01)
            nn.init.zeros_(self.log_std_head.weight)
            nn.init.constant_(self.log_std_head.bias, cfg.init_log_std)
        else:
            self.mean_net = mlp([obs_dim, *hidden, act_dim], cfg.activation)
            if cfg.orthogonal_init:
                orthogonal_init(_linears(self.mean_net), output_gain=0.01)
            self.log_std = nn.Parameter(torch.full((act_dim,), float(cfg.init_log_std)))

    def mean_std(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.state_dependent_std:
            features = run_sequential(self.trunk, obs)
            mean, log_std = self.mean_head(features), self.log_std_head(features)
        else:
            mean = run_sequential(self.mean_net, obs)
            log_std = self.log_std.expand_as(mean)
        return mean, torch.exp(log_std.clamp(LOG_STD_MIN, LOG_STD_MAX))


class ValueNetwork(nn.Module):
    """``V(s)``: MLP ``obs -> hidden -> 1``, returns ``(B,)``."""

    def __init__(self, obs_dim: int, hidden_sizes: tuple[int, ...], activation: str, orthogonal: bool = False) -> None:
        super().__init__()
        self.net = mlp([obs_dim, *hidden_sizes, 1], activation)
        if orthogonal:
            orthogonal_init(_linears(self.net), output_gain=1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return run_sequential(self.net, obs).squeeze(-1)


def make_policy(cfg: Config, obs_dim: int, act_dim: int, low: np.ndarray, high: np.ndarray) -> GaussianPolicy:
    """Build the policy named by ``cfg.policy``."""
    if cfg.policy == "tutorial":
        return TutorialPolicy(obs_dim, act_dim, low, high)
    if cfg.action_bound == "tanh" and not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise UserError("action_bound = 'tanh' needs finite action bounds; use 'clip'")
    return MLPPolicy(obs_dim, act_dim, low, high, cfg)


def value_network(cfg: Config, obs_dim: int) -> ValueNetwork | None:
    """The critic ``cfg`` asks for, or None."""
    return ValueNetwork(obs_dim, cfg.hidden_sizes, cfg.activation, cfg.orthogonal_init) if cfg.use_critic else None
