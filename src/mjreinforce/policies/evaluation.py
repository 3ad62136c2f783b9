"""Evaluating a loaded policy: reproducible episodes under the evaluation config."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mjreinforce.algo.evaluation import EvalResult, check_physics, eval_config, run_episodes
from mjreinforce.envs.vector import resolve_backend
from mjreinforce.errors import UserError
from mjreinforce.policies.trained import TrainedPolicy


def evaluate_policy(
    trained: TrainedPolicy,
    episodes: int,
    seed: int,
    deterministic: bool = True,
    physics: Sequence[str] = (),
    backend: str | None = None,
) -> EvalResult:
    """Evaluate a loaded policy for ``episodes`` episodes (env ``i`` seeded ``seed + i``) under
    :func:`eval_config`. Stochastic actions draw from ``torch.manual_seed(seed)`` in a forked RNG, so the
    result is reproducible and the caller's torch RNG is untouched. Raises UserError for bad physics and
    PhysicsUnstableError (a UserError) when the simulation blows up.
    """
    if episodes < 1:
        raise UserError(f"episodes must be >= 1, got {episodes}")
    cfg = eval_config(trained.config, physics, backend)
    check_physics(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return run_episodes(
            cfg, trained.policy, trained.normalizer, episodes, seed, deterministic, backend=resolve_backend(cfg)
        )
