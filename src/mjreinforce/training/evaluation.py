"""Evaluation of a policy on separate envs with fixed seeds: deterministic (mean action) by default."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from mjreinforce.algo.normalization import RunningNormalizer
from mjreinforce.algo.policy import GaussianPolicy
from mjreinforce.config import Config
from mjreinforce.envs.perturb_config import needs_gymnasium, with_perturbations, without_perturbations
from mjreinforce.envs.physics_spec import parse_override
from mjreinforce.envs.vector import make_vec_env, resolve_backend

EVAL_SEED_OFFSET = 1_000_003
"""Evaluation envs use ``seed + EVAL_SEED_OFFSET`` so they never share states with training envs."""

DEFAULT_EVAL_SEED = 5_000_011
"""Seed of ``mjreinforce eval``'s envs unless ``--seed`` is given: far from training seeds (small integers)
and from the trainer's own evaluation seeds (``seed + EVAL_SEED_OFFSET``)."""


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


class Evaluator:
    """Deterministic (by default) evaluation episodes on one vector env of ``episodes`` envs, built once
    from ``cfg`` (pass :func:`eval_config`) and reused for every evaluation of a seed.

    Each call resets every env and runs one episode per env in parallel. On gymnasium every evaluation
    reseeds env ``i`` with ``seed + i``, so all evaluations of a run start from the same states (as if the
    envs were built anew; a resumed run evaluates exactly as an uninterrupted one). envpool seeds only at
    construction, so there successive evaluations start from new states, reproducible from ``seed``.
    ``last_env_steps`` counts the env steps the last call simulated (envs that finished keep stepping until
    the longest episode ends): the true cost of an evaluation.
    """

    def __init__(self, cfg: Config, episodes: int, seed: int, backend: str | None = None) -> None:
        self.env = make_vec_env(cfg, episodes, seed, backend=backend)
        self.episodes, self.seed = episodes, seed
        self.last_env_steps = 0

    def __call__(self, policy: GaussianPolicy, normalizer: RunningNormalizer, deterministic: bool = True) -> EvalResult:
        """Returns and lengths of one episode per env; the normalizer is only read, never updated."""
        n = self.episodes
        obs = self.env.reset(seed=self.seed)
        returns = np.zeros(n)
        lengths = np.zeros(n, dtype=np.int64)
        running = np.ones(n, dtype=bool)
        self.last_env_steps = 0
        while running.any():
            with torch.inference_mode():
                obs_t = torch.from_numpy(normalizer(obs))
                if deterministic:
                    actions = policy.deterministic_action(obs_t)
                else:
                    actions = policy.env_action(policy.sample(obs_t))
            step = self.env.step(actions.numpy().astype(np.float64))
            returns += np.where(running, step.rewards, 0.0)
            lengths += running
            running &= ~(step.terminated | step.truncated)
            obs = step.obs
            self.last_env_steps += n
        return EvalResult(returns, lengths)

    def close(self) -> None:
        self.env.close()


def run_episodes(
    cfg: Config,
    policy: GaussianPolicy,
    normalizer: RunningNormalizer,
    episodes: int,
    seed: int,
    deterministic: bool = True,
    backend: str | None = None,
) -> EvalResult:
    """One evaluation of ``episodes`` episodes (env ``i`` seeded ``seed + i``) on fresh envs built from ``cfg``."""
    evaluator = Evaluator(cfg, episodes, seed, backend=backend)
    try:
        return evaluator(policy, normalizer, deterministic)
    finally:
        evaluator.close()


def merge_physics(base: Sequence[str], extra: Sequence[str]) -> tuple[str, ...]:
    """``base`` override specs without those whose key ``extra`` sets again, then ``extra``.

    Keys compare as typed (``"gravity"`` and ``"opt.gravity"`` are different keys; both then apply, in
    order, so the later one wins for the z component). Specs are parsed, so a malformed one raises UserError.
    """
    replaced = {parse_override(spec).target.key for spec in extra}
    kept = tuple(spec for spec in base if parse_override(spec).target.key not in replaced)
    return kept + tuple(extra)


def eval_config(
    cfg: Config, physics: Sequence[str] = (), backend: str | None = None, perturb: Sequence[str] = ()
) -> Config:
    """The config evaluation envs are built from: the training env's fixed ``cfg.physics`` with ``physics``
    merged on top (:func:`merge_physics`), no per-episode randomization (evaluation is at fixed physics), no
    perturbations unless ``cfg.eval_perturbed`` (then the training ones), ``perturb`` (``KEY=VALUE`` items,
    ``--perturb``) set on top, envs stepped in-process. ``backend`` (default: the training backend, or
    gymnasium when any physics override or push is in force) is checked: physics overrides or pushes on
    envpool raise UserError.
    """
    merged = merge_physics(cfg.physics, physics)
    perturbed = with_perturbations(cfg if cfg.eval_perturbed else without_perturbations(cfg), perturb)
    chosen = backend or ("gymnasium" if merged or needs_gymnasium(perturbed) else cfg.backend)
    out = replace(perturbed, physics=merged, randomize=(), backend=chosen)  # type: ignore[arg-type]
    if resolve_backend(out) == "gymnasium":
        out = replace(out, env_workers=0)  # one process; 100 async workers would cost more than they save
    return out
