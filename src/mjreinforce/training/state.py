"""What a checkpoint holds, and turning a seed's training state into one and back.

A checkpoint carries everything needed to resume *and* to evaluate: the resolved config,
policy and value weights, optimizer states, observation-normalizer statistics, RNG states,
counters, the collector's open episodes and (gymnasium sync backend) every env's simulator state.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

import numpy as np
import torch

from mjreinforce import config
from mjreinforce.algo.normalization import RunningNormalizer
from mjreinforce.algo.rollout import Collector
from mjreinforce.algo.update import Learner
from mjreinforce.config import Config
from mjreinforce.runs import checkpoint
from mjreinforce.training.counters import Counters


def capture(
    cfg: Config, seed: int, learner: Learner, normalizer: RunningNormalizer, collector: Collector, counters: Counters
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(tensors, meta)`` for :func:`mjreinforce.runs.checkpoint.save_checkpoint`."""
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
