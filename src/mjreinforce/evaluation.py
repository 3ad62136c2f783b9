"""Evaluation of a policy on separate envs with fixed seeds: deterministic (mean action) by default."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mjreinforce.config import Config
from mjreinforce.envs import make_vec_env
from mjreinforce.normalization import RunningNormalizer
from mjreinforce.policy import GaussianPolicy

EVAL_SEED_OFFSET = 1_000_003
"""Evaluation envs use ``seed + EVAL_SEED_OFFSET`` so they never share states with training envs."""


@dataclass(frozen=True)
class EvalResult:
    """Per-episode returns and lengths, each ``(episodes,)``."""

    returns: np.ndarray
    lengths: np.ndarray

    @property
    def mean_return(self) -> float:
        return float(self.returns.mean())

    def summary(self) -> dict[str, float]:
        """Mean, std, min and max of return and length (JSON-ready)."""
        out: dict[str, float] = {"episodes": int(self.returns.size)}
        for name, x in (("return", self.returns), ("length", self.lengths)):
            out[f"{name}_mean"] = float(x.mean())
            out[f"{name}_std"] = float(x.std())
            out[f"{name}_min"] = float(x.min())
            out[f"{name}_max"] = float(x.max())
        return out


def run_episodes(
    cfg: Config,
    policy: GaussianPolicy,
    normalizer: RunningNormalizer,
    episodes: int,
    seed: int,
    deterministic: bool = True,
    backend: str | None = None,
) -> EvalResult:
    """Run ``episodes`` episodes in parallel (one per env, envs seeded ``seed + i``) and return
    their returns and lengths. The normalizer is only read, never updated."""
    env = make_vec_env(cfg, episodes, seed, backend=backend)
    try:
        obs = env.reset()
        returns = np.zeros(episodes)
        lengths = np.zeros(episodes, dtype=np.int64)
        running = np.ones(episodes, dtype=bool)
        while running.any():
            with torch.inference_mode():
                obs_t = torch.from_numpy(normalizer(obs))
                if deterministic:
                    actions = policy.deterministic_action(obs_t)
                else:
                    actions = policy.env_action(policy.sample(obs_t))
            step = env.step(actions.numpy().astype(np.float64))
            returns += np.where(running, step.rewards, 0.0)
            lengths += running
            running &= ~(step.terminated | step.truncated)
            obs = step.obs
        return EvalResult(returns, lengths)
    finally:
        env.close()
