"""Evaluating a loaded policy: reproducible episodes under the evaluation config."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mjreinforce.config import Config
from mjreinforce.envs.custom import make_id
from mjreinforce.envs.perturb_config import check_env_fits
from mjreinforce.envs.physics import make_physics_env
from mjreinforce.envs.vector import resolve_backend
from mjreinforce.errors import UserError
from mjreinforce.trained.loading import TrainedPolicy
from mjreinforce.training.evaluation import EvalResult, eval_config, run_episodes


def evaluate_policy(
    trained: TrainedPolicy,
    episodes: int,
    seed: int,
    deterministic: bool = True,
    physics: Sequence[str] = (),
    backend: str | None = None,
    perturb: Sequence[str] = (),
) -> EvalResult:
    """Evaluate a loaded policy for ``episodes`` episodes (env ``i`` seeded ``seed + i``) under
    :func:`eval_config` (``perturb``: ``KEY=VALUE`` perturbations on top). Stochastic actions draw from
    ``torch.manual_seed(seed)`` in a forked RNG, so the result is reproducible and the caller's torch RNG is
    untouched. Raises UserError for bad physics or perturbations and PhysicsUnstableError (a UserError) when
    the simulation blows up.
    """
    if episodes < 1:
        raise UserError(f"episodes must be >= 1, got {episodes}")
    cfg = eval_config(trained.config, physics, backend, perturb)
    check_physics(cfg)
    check_env_fits(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return run_episodes(
            cfg, trained.policy, trained.normalizer, episodes, seed, deterministic, backend=resolve_backend(cfg)
        )


def check_physics(cfg: Config) -> None:
    """Build (and close) one env with ``cfg.physics`` so an unknown field or name fails before any episode."""
    if cfg.physics:
        make_physics_env(make_id(cfg), cfg.physics, env_kwargs=cfg.env_kwargs).close()
