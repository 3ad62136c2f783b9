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

    def export_onnx(self, path: Path | str, overwrite: bool = False) -> ExportReport:
        """Write the deterministic policy, normalization included, to ``path`` as ONNX, verified with
        onnxruntime against :meth:`act` (:func:`mjreinforce.trained.export.export_onnx`)."""
        from mjreinforce.trained.export import export_onnx  # onnx takes seconds to import: only when exporting

        return export_onnx(self, Path(path), overwrite=overwrite)


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
