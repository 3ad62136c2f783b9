"""A trained policy loaded from a checkpoint, ready to act in a plain Gymnasium loop."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from mjreinforce import config
from mjreinforce.algo.normalization import RunningNormalizer
from mjreinforce.algo.policy import GaussianPolicy, make_policy
from mjreinforce.config import Config
from mjreinforce.envs.custom import check_model_file
from mjreinforce.envs.vector import inspect_env
from mjreinforce.errors import UserError
from mjreinforce.runs import checkpoint_dir, checkpoint_format
from mjreinforce.training.snapshot import check_fits

if TYPE_CHECKING:
    from mjreinforce.trained.export import ExportReport


@dataclass(frozen=True)
class TrainedPolicy:
    """A policy loaded from a checkpoint, ready to act in a plain Gymnasium loop.

    ``act(obs, deterministic=True)`` takes one observation ``(obs_dim,)`` or a batch
    ``(B, obs_dim)`` and returns the env action(s), with observation normalization applied inside;
    ``export_onnx(path)`` writes the same deterministic action as an ONNX graph.
    """

    config: Config
    policy: GaussianPolicy
    normalizer: RunningNormalizer
    seed: int
    path: Path

    @property
    def obs_dim(self) -> int:
        """The length of one observation the policy was trained on."""
        return int(self.normalizer.mean.shape[0])

    def act(self, obs: np.ndarray, deterministic: bool = True, check: bool = True) -> np.ndarray:
        """The env action ``(act_dim,)`` for one observation ``(obs_dim,)``, or ``(B, act_dim)`` for a batch
        ``(B, obs_dim)``: the mean action, or a sample with ``deterministic=False`` (torch's global RNG).

        ``check`` (the default) refuses, with a ValueError, an observation of another shape (naming the
        expected one) and one holding NaN or infinity (naming the entries), which the network would turn
        into a NaN action without a word; ``check=False`` skips both, for speed in a loop the caller trusts.
        """
        obs = check_observation(obs, self.obs_dim) if check else np.asarray(obs, dtype=np.float64)
        batch = obs[None] if obs.ndim == 1 else obs
        with torch.inference_mode():
            obs_t = torch.from_numpy(self.normalizer(batch))
            if deterministic:
                actions = self.policy.deterministic_action(obs_t)
            else:
                actions = self.policy.env_action(self.policy.sample(obs_t))
        out = actions.numpy().astype(np.float64)
        return out[0] if obs.ndim == 1 else out

    def export_onnx(self, path: Path | str, overwrite: bool = False) -> ExportReport:
        """Write the deterministic policy, normalization included, to ``path`` as ONNX, verified with
        onnxruntime against :meth:`act` (:func:`mjreinforce.trained.export.export_onnx`)."""
        from mjreinforce.trained.export import export_onnx  # onnx takes seconds to import: only when exporting

        return export_onnx(self, Path(path), overwrite=overwrite)


SHOWN_ENTRIES = 5
"""Bad entries that a non-finite observation's error names (then how many more there are)."""


def check_observation(obs: object, obs_dim: int) -> np.ndarray:
    """``obs`` as float64, shape ``(obs_dim,)`` or ``(B, obs_dim)``, every entry finite; else a one-line ValueError
    naming the expected shape, or the first :data:`SHOWN_ENTRIES` non-finite entries (``obs[1, 2] = nan``)."""
    try:
        array = np.asarray(obs, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"obs must be an array of numbers of shape ({obs_dim},) or (B, {obs_dim}): {exc}") from None
    if array.ndim not in (1, 2) or array.shape[-1] != obs_dim:
        raise ValueError(
            f"obs has shape {array.shape}; the policy expects ({obs_dim},) for one observation "
            f"or (B, {obs_dim}) for a batch"
        )
    if not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array))
        entries = ", ".join(f"obs[{', '.join(map(str, i))}] = {array[tuple(i)]}" for i in bad[:SHOWN_ENTRIES])
        more = f" and {len(bad) - SHOWN_ENTRIES} more" if len(bad) > SHOWN_ENTRIES else ""
        raise ValueError(f"obs is not finite: {entries}{more} (pass check=False to skip this check)")
    return array


def load_policy(path: Path | str, seed: int | None = None, allow_changed_model: bool = False) -> TrainedPolicy:
    """Load the policy of a checkpoint file, a seed directory or a run directory (its latest checkpoint;
    ``seed`` picks one when the run has several). The env is rebuilt from the checkpoint's config: its module,
    its ``env_kwargs``, and its model file, refused when that changed since training unless ``allow_changed_model``."""
    file = checkpoint_dir.latest_checkpoint(Path(path), seed=seed)
    tensors, meta = checkpoint_format.load_checkpoint(file)
    try:
        cfg = config.from_dict(meta["config"])
    except (KeyError, TypeError) as exc:
        raise UserError(f"{file} is not a compatible mjreinforce checkpoint: {str(exc).splitlines()[0]}") from None
    check_model_file(cfg, allow_changed_model)
    try:
        state = checkpoint_format.unflatten_state(meta["state"], tensors)
        spec = inspect_env(cfg)
        policy = make_policy(cfg, spec.obs_dim, spec.act_dim, spec.act_low, spec.act_high)
        normalizer = RunningNormalizer(spec.obs_dim, enabled=cfg.normalize_obs)
        check_fits(file, state, policy, normalizer)  # the same check as resume: shapes, dtypes, finite values
        policy.load_state_dict(state["policy"])
        normalizer.load_state(state["normalizer"])
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise UserError(f"{file} is not a compatible mjreinforce checkpoint: {str(exc).splitlines()[0]}") from None
    policy.eval()
    return TrainedPolicy(cfg, policy, normalizer, int(meta["seed"]), file)
