"""A config's perturbations where envs are built: added or removed (``--perturb``, evaluation), checked against
the env, and the batch part wrapped around a backend's vector env.

The keys and their syntax are :mod:`mjreinforce.config_perturbations`'; the batch operations are
:mod:`mjreinforce.envs.perturbed`'s and the pushes :mod:`mjreinforce.envs.pushes`'.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import gymnasium as gym

from mjreinforce.config import Config, check_field, with_overrides
from mjreinforce.config_perturbations import PERTURBATION_KEYS, check_perturbations, parse_perturbations
from mjreinforce.envs.custom import make_env
from mjreinforce.envs.perturbed import BatchEnv, PerturbedVecEnv, noise_std
from mjreinforce.envs.pushes import PushWrapper
from mjreinforce.errors import UserError

PUSH_BACKEND_NOTE = "backend: gymnasium (pushes need MuJoCo's simulator data, which envpool does not expose)"


def without_perturbations(cfg: Config) -> Config:
    """``cfg`` with every perturbation key (and ``eval_perturbed``) unset."""
    unset: dict[str, Any] = dict.fromkeys((*PERTURBATION_KEYS, "eval_perturbed"))
    return replace(cfg, **unset)


def with_perturbations(cfg: Config, items: Sequence[str], flag: str = "--perturb") -> Config:
    """``cfg`` with ``KEY=VALUE`` items (``flag``'s, e.g. ``push_force=50:100``) set, later items winning; each
    value coerced and bounded as in a config file, then the perturbation rules checked. A bad item, an unknown
    key or a broken rule is a one-line UserError."""
    values: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"{flag} expects KEY=VALUE, e.g. obs_noise_std=0.05, got {item!r}")
        if key not in PERTURBATION_KEYS:
            raise UserError(f"{flag}: unknown perturbation key {key!r}; valid: {', '.join(PERTURBATION_KEYS)}")
        check_field(key, value.strip())
        values[key] = value.strip()
    if not values:
        return cfg
    out = with_overrides(cfg, values)
    check_perturbations(out)
    return out


def perturbation_items(cfg: Config) -> list[str]:
    """The perturbation keys ``cfg`` sets, as ``KEY=VALUE`` items (what ``--perturb`` takes)."""
    items = []
    for key in PERTURBATION_KEYS:
        value = getattr(cfg, key)
        if value is not None:
            items.append(f"{key}={','.join(f'{v:.12g}' for v in value) if isinstance(value, tuple) else value}")
    return items


def needs_gymnasium(cfg: Config) -> bool:
    """True when ``cfg`` asks for pushes, which only the gymnasium backend can apply."""
    return cfg.push_body is not None


def check_env_fits(cfg: Config) -> None:
    """Build one env of ``cfg`` (its module and arguments too) and check its perturbations against it (the push
    body exists, the observation noise has 1 or obs_dim numbers), so a mismatch fails before a run or an evaluation
    starts."""
    perturbations = parse_perturbations(cfg)
    if not perturbations.any:
        return
    env = make_env(cfg)
    try:
        assert env.observation_space.shape is not None
        noise_std(perturbations.obs_noise_std, int(env.observation_space.shape[0]))
        if perturbations.push is not None:
            PushWrapper(env, perturbations.push, 0)
    finally:
        env.close()


def batch_perturbed(env: Any, cfg: Config, seed: int) -> Any:
    """``env`` (a backend's vector env) in a :class:`PerturbedVecEnv` when ``cfg`` has noise or delays, else
    ``env`` itself (so a config without them steps exactly as before)."""
    perturbations = parse_perturbations(cfg)
    if not perturbations.on_batches:
        return env
    inner = env.env
    vector = isinstance(inner, gym.vector.VectorEnv)
    act_space = inner.single_action_space if vector else inner.action_space
    obs_space = inner.single_observation_space if vector else inner.observation_space
    batch: BatchEnv = env
    return PerturbedVecEnv(batch, perturbations, seed, act_space, int(obs_space.shape[0]))
