"""What a checkpoint holds, and turning a seed's training state into one and back.

A checkpoint carries everything needed to resume *and* to evaluate: the resolved config,
policy and value weights, optimizer states, observation-normalizer statistics, RNG states,
counters, the collector's open episodes and (gymnasium sync backend) every env's simulator state.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mjreinforce import checkpoint, checkpoint_files, config
from mjreinforce.config import Config
from mjreinforce.envs import inspect_env
from mjreinforce.errors import UserError
from mjreinforce.normalization import RunningNormalizer
from mjreinforce.policy import GaussianPolicy, ValueNetwork, make_policy
from mjreinforce.rollout import Collector
from mjreinforce.update import Learner


@dataclass
class Counters:
    """A seed's progress, restored on resume."""

    episodes: int = 0
    updates: int = 0
    evals: int = 0
    wall_seconds: float = 0.0
    best_eval: float | None = None
    target_hit: tuple[int, float] | None = None
    window: deque[float] = field(default_factory=deque)


def capture(
    cfg: Config, seed: int, learner: Learner, normalizer: RunningNormalizer, collector: Collector, counters: Counters
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(tensors, meta)`` for :func:`mjreinforce.checkpoint.save_checkpoint`."""
    nested = {
        "policy": learner.policy.state_dict(),
        "value": learner.value.state_dict() if learner.value is not None else None,
        "policy_optimizer": learner.policy_optimizer.state_dict(),
        "value_optimizer": learner.value_optimizer.state_dict() if learner.value_optimizer is not None else None,
        "normalizer": normalizer.state(),
        "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
        "collector": {
            "obs": collector.obs,
            "episode_return": collector.episode_return,
            "episode_length": collector.episode_length,
            "env_steps": collector.env_steps,
            "env": collector.env.get_state(),
        },
        "counters": {**counters.__dict__, "window": list(counters.window)},
    }
    tensors, skeleton = checkpoint.flatten_state("state", nested)
    meta = {"config": config.to_dict(cfg), "seed": seed, "state": skeleton}
    return tensors, meta


def restore(
    tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
    learner: Learner,
    normalizer: RunningNormalizer,
    collector: Collector,
) -> Counters:
    """Load a :func:`capture` into freshly built objects; return the counters."""
    state = checkpoint.unflatten_state(meta["state"], tensors)
    learner.policy.load_state_dict(state["policy"])
    learner.policy_optimizer.load_state_dict(state["policy_optimizer"])
    if learner.value is not None:
        learner.value.load_state_dict(state["value"])
        assert learner.value_optimizer is not None
        learner.value_optimizer.load_state_dict(state["value_optimizer"])
    normalizer.load_state(state["normalizer"])
    torch.set_rng_state(state["rng"]["torch"])
    np.random.set_state(state["rng"]["numpy"])
    random.setstate(state["rng"]["python"])
    c = state["collector"]
    collector.env_steps = int(c["env_steps"])
    if c["env"] is not None and collector.env.get_state() is not None:
        collector.env.set_state(c["env"])
        collector.obs = np.asarray(c["obs"])
        collector.episode_return = np.asarray(c["episode_return"], dtype=np.float64).copy()
        collector.episode_length = np.asarray(c["episode_length"], dtype=np.int64).copy()
    # else: the envs cannot be restored (envpool, async): they start fresh episodes.
    counters = dict(state["counters"])
    window = deque(counters.pop("window"), maxlen=learner.cfg.stats_window)
    hit = counters.pop("target_hit")
    return Counters(**counters, window=window, target_hit=tuple(hit) if hit else None)


@dataclass(frozen=True)
class TrainedPolicy:
    """A policy loaded from a checkpoint, ready to act in a plain Gymnasium loop.

    ``act(obs, deterministic=True)`` takes one observation ``(obs_dim,)`` or a batch
    ``(B, obs_dim)`` and returns the env action(s), with observation normalization applied inside.
    """

    config: Config
    policy: GaussianPolicy
    normalizer: RunningNormalizer
    seed: int
    path: Path

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        batch = obs[None] if obs.ndim == 1 else obs
        with torch.inference_mode():
            obs_t = torch.from_numpy(self.normalizer(batch))
            if deterministic:
                actions = self.policy.deterministic_action(obs_t)
            else:
                actions = self.policy.env_action(self.policy.sample(obs_t))
        out = actions.numpy().astype(np.float64)
        return out[0] if obs.ndim == 1 else out


def load_policy(path: Path | str, seed: int | None = None) -> TrainedPolicy:
    """Load the policy of a checkpoint file, a seed directory or a run directory (its latest checkpoint;
    ``seed`` picks one when the run has several)."""
    file = checkpoint_files.latest_checkpoint(Path(path), seed=seed)
    tensors, meta = checkpoint.load_checkpoint(file)
    try:
        cfg = config.from_dict(meta["config"])
        state = checkpoint.unflatten_state(meta["state"], tensors)
        spec = inspect_env(cfg.env_id)
        policy = make_policy(cfg, spec.obs_dim, spec.act_dim, spec.act_low, spec.act_high)
        policy.load_state_dict(state["policy"])
        normalizer = RunningNormalizer(spec.obs_dim, enabled=cfg.normalize_obs)
        normalizer.load_state(state["normalizer"])
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise UserError(f"{file} is not a compatible mjreinforce checkpoint: {str(exc).splitlines()[0]}") from None
    policy.eval()
    return TrainedPolicy(cfg, policy, normalizer, int(meta["seed"]), file)


def value_network(cfg: Config, obs_dim: int) -> ValueNetwork | None:
    """The critic ``cfg`` asks for, or None."""
    return ValueNetwork(obs_dim, cfg.hidden_sizes, cfg.activation) if cfg.use_critic else None
