"""A seed's training state as a checkpoint and back: what a checkpoint holds, capture, restore, the fit check.

A checkpoint carries everything needed to resume *and* to evaluate: the resolved config,
policy and value weights, optimizer states, observation-normalizer statistics, RNG states,
counters, the collector's open episodes and (gymnasium sync backend) every env's simulator state,
plus the config's hash and the digests of the tables it covers (which :mod:`~mjreinforce.training.resume`
checks). :func:`restore_latest` puts a seed back where its latest checkpoint left it; :func:`check_fits`
is the one check, for resume and for ``eval``, that a checkpoint fits the model.
"""

from __future__ import annotations

import math
import random
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mjreinforce import config
from mjreinforce.algo.normalization import RewardScaler, RunningNormalizer
from mjreinforce.algo.rollout import Collector
from mjreinforce.algo.update import Learner
from mjreinforce.config import Config
from mjreinforce.errors import UserError, one_line
from mjreinforce.files import truncate_csv
from mjreinforce.runs import checkpoint_dir, checkpoint_format
from mjreinforce.runs.ownership import config_sha256
from mjreinforce.training.counters import Counters

TABLES = ("episodes.csv", "evals.csv")
"""The tables a checkpoint covers (rows and digest of each)."""


def capture(
    cfg: Config,
    seed: int,
    learner: Learner,
    normalizer: RunningNormalizer,
    reward_scaler: RewardScaler,
    collector: Collector,
    counters: Counters,
    tables: dict[str, dict[str, Any]],
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(tensors, meta)`` for :func:`mjreinforce.runs.checkpoint_format.save_checkpoint`.

    ``meta`` also holds ``config_sha256`` (:func:`~mjreinforce.runs.ownership.config_sha256`) and ``tables``:
    ``{"episodes.csv": {"rows": n, "sha256": hex}, "evals.csv": ...}``, the digest of each table's bytes
    (header included) up to this checkpoint, which resume checks before it continues.
    """
    nested = {
        "policy": learner.policy.state_dict(),
        "value": learner.value.state_dict() if learner.value is not None else None,
        "policy_optimizer": learner.policy_optimizer.state_dict(),
        "value_optimizer": learner.value_optimizer.state_dict() if learner.value_optimizer is not None else None,
        "normalizer": normalizer.state(),
        "reward_scaler": reward_scaler.state(),
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
    tensors, skeleton = checkpoint_format.flatten_state("state", nested)
    meta = {
        "config": config.to_dict(cfg),
        "config_sha256": config_sha256(cfg),
        "seed": seed,
        "state": skeleton,
        "tables": tables,
    }
    return tensors, meta


def restore(
    file: Path,
    tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
    learner: Learner,
    normalizer: RunningNormalizer,
    reward_scaler: RewardScaler,
    collector: Collector,
) -> Counters:
    """Load a :func:`capture` into freshly built objects and return the counters; a checkpoint that does
    not fit them (:func:`check_fits`) or cannot be loaded raises a one-line UserError naming ``file``."""
    try:
        state = checkpoint_format.unflatten_state(meta["state"], tensors)
        check_fits(file, state, learner.policy, normalizer, learner)
        return _restore(state, learner, normalizer, reward_scaler, collector)
    except (KeyError, IndexError, RuntimeError, TypeError, ValueError) as exc:
        raise UserError(f"{file} is not a compatible mjreinforce checkpoint: {one_line(exc)}") from None


def has_checkpoint(out: Path) -> bool:
    """True when the seed directory ``out`` holds a checkpoint file."""
    ckpt_dir = out / "checkpoints"
    return ckpt_dir.is_dir() and any(ckpt_dir.glob("ckpt_*.safetensors"))


def restore_latest(
    out: Path, learner: Learner, normalizer: RunningNormalizer, reward_scaler: RewardScaler, collector: Collector
) -> Counters | None:
    """Restore the latest checkpoint in the seed directory ``out`` into freshly built objects and cut the tables
    back to it; None without one (the tables are emptied: the seed starts over)."""
    if not has_checkpoint(out):
        for name in TABLES:
            truncate_csv(out / name, 0)
        return None
    file = checkpoint_dir.latest_checkpoint(out)
    tensors, meta = checkpoint_format.load_checkpoint(file)
    counters = restore(file, tensors, meta, learner, normalizer, reward_scaler, collector)
    truncate_csv(out / "episodes.csv", counters.episodes)
    truncate_csv(out / "evals.csv", counters.evals)
    return counters


def _restore(
    state: dict[str, Any],
    learner: Learner,
    normalizer: RunningNormalizer,
    reward_scaler: RewardScaler,
    collector: Collector,
) -> Counters:
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
    envs_restored = c["env"] is not None and collector.env.get_state() is not None
    if "reward_scaler" in state:  # checkpoints written before normalize_rewards existed have none
        reward_scaler.load_state(state["reward_scaler"], with_returns=envs_restored)
    if envs_restored:
        collector.env.set_state(c["env"])
        collector.obs = np.asarray(c["obs"])
        collector.episode_return = np.asarray(c["episode_return"], dtype=np.float64).copy()
        collector.episode_length = np.asarray(c["episode_length"], dtype=np.int64).copy()
    # else: the envs cannot be restored (envpool, async): they start fresh episodes.
    counters = dict(state["counters"])
    window = deque(counters.pop("window"), maxlen=learner.cfg.stats_window)
    hit = counters.pop("target_hit")
    return Counters(**counters, window=window, target_hit=tuple(hit) if hit else None)


def check_fits(
    file: Path, state: dict[str, Any], policy: nn.Module, normalizer: RunningNormalizer, learner: Learner | None = None
) -> None:
    """Refuse, with a one-line UserError naming ``file``, a checkpoint ``state`` (unflattened) whose tensors do
    not fit freshly built objects or hold non-finite values. The one check for ``eval`` (policy and normalizer)
    and for resume (``learner`` too: critic, optimizer moments, and every float anywhere in the state).

    Fit: each tensor/array of ``policy.state_dict()``, ``normalizer.state()`` and the critic's state dict has
    a counterpart of the same shape and dtype; each optimizer moment has its parameter's shape.
    """
    expected: dict[str, Any] = {"policy": policy.state_dict(), "normalizer": normalizer.state()}
    if learner is not None and learner.value is not None:
        expected["value"] = learner.value.state_dict()
    _compare(file, "", state, expected)
    if learner is not None:
        _check_moments(file, "policy_optimizer", state["policy_optimizer"], learner.policy_optimizer)
        if learner.value_optimizer is not None:
            _check_moments(file, "value_optimizer", state["value_optimizer"], learner.value_optimizer)
    for key in expected if learner is None else state:
        _check_finite(file, key, state[key])


def _unfit(file: Path, what: str) -> UserError:
    return UserError(f"checkpoint {file} does not fit the model: {what}")


def _compare(file: Path, path: str, got: Any, want: Any) -> None:
    if isinstance(want, dict):
        if not isinstance(got, dict):
            raise _unfit(file, f"{path or 'its state'} is not a mapping")
        for key, value in want.items():
            if key not in got:
                raise _unfit(file, f"{path}/{key} is missing".lstrip("/"))
            _compare(file, f"{path}/{key}".lstrip("/"), got[key], value)
    elif isinstance(want, (torch.Tensor, np.ndarray)):
        same_kind = isinstance(got, type(want)) or (isinstance(got, np.ndarray) and isinstance(want, np.ndarray))
        if not same_kind or tuple(got.shape) != tuple(want.shape) or got.dtype != want.dtype:
            shown = f"{tuple(got.shape)} {got.dtype}" if hasattr(got, "shape") else type(got).__name__
            raise _unfit(file, f"{path} is {shown}, the model needs {tuple(want.shape)} {want.dtype}")


def _check_moments(file: Path, name: str, saved: Any, optimizer: torch.optim.Optimizer) -> None:
    """Each per-parameter tensor (Adam's ``exp_avg``...) in ``saved["state"]`` has its parameter's shape."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for index, moments in dict(saved["state"]).items():
        if not isinstance(index, int) or not 0 <= index < len(params) or not isinstance(moments, dict):
            raise _unfit(file, f"{name} has state for an unknown parameter {index!r}")
        for key, t in moments.items():
            if isinstance(t, torch.Tensor) and t.dim() > 0 and t.shape != params[index].shape:
                raise _unfit(
                    file,
                    f"{name}/state/{index}/{key} is {tuple(t.shape)}, the parameter is {tuple(params[index].shape)}",
                )


def _check_finite(file: Path, path: str, value: Any) -> None:
    """Every floating-point tensor, array and float under ``value`` is finite."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(file, f"{path}/{key}", item)
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_finite(file, f"{path}/{i}", item)
        return
    if isinstance(value, torch.Tensor):
        bad = value.is_floating_point() and not bool(torch.isfinite(value).all())
    elif isinstance(value, np.ndarray):
        bad = value.dtype.kind in "fc" and not bool(np.isfinite(value).all())
    else:
        bad = isinstance(value, float) and not math.isfinite(value)
    if bad:
        raise UserError(f"checkpoint {file} holds non-finite values (NaN or inf) in {path}; it is not loaded")
