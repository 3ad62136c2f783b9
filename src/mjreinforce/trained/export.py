"""ONNX export of a trained policy: raw observations in, the deterministic env action out, checked with onnxruntime.

The graph is the trained torch modules themselves, traced: :class:`DeterministicActor` wraps the policy and the
checkpoint's normalizer statistics, and its forward is the one ``TrainedPolicy.act(obs)`` computes:

    obs (B, obs_dim) float32 -> float64 -> clip((obs - mean) / sqrt(var + eps), -clip, clip)   (normalize_obs)
        -> float32 -> policy mean (B, act_dim) -> clip(mean, low, high) or low + (tanh(mean) + 1) (high - low) / 2

The normalization is :func:`mjreinforce.algo.normalization.standardize` and the network and action bound are
:meth:`GaussianPolicy.deterministic_action`, the same functions training and ``act`` use. The file is written
to a temporary name beside the target, loaded with onnxruntime and compared with ``act`` on observations of a
short deterministic rollout and on random ones, at batch sizes 1, 7 and 256; it is renamed into place only
when the largest absolute difference is at most :data:`TOLERANCE`, else nothing is left behind.

Exporter: torch's TorchScript-based one (``dynamo=False``): it needs only ``onnx`` (to write the metadata)
and ``onnxruntime`` (to check), where the torch.export-based one would add onnxscript and onnx-ir.
"""

from __future__ import annotations

import importlib.metadata
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from mjreinforce import config
from mjreinforce.algo.normalization import RunningNormalizer, standardize
from mjreinforce.algo.policy import GaussianPolicy
from mjreinforce.config import Config
from mjreinforce.envs.vector import make_vec_env
from mjreinforce.errors import UserError
from mjreinforce.files import atomic_output, probe_writable
from mjreinforce.runs.outputs import check_output_file, record_outputs
from mjreinforce.runs.ownership import config_sha256, read_marker
from mjreinforce.training.evaluation import DEFAULT_EVAL_SEED, eval_config

OPSET = 17
"""ONNX opset of the exported graph (SB3 documents 17 too; onnxruntime has run it since 1.14)."""
TOLERANCE = 1e-5
"""Largest absolute difference between onnxruntime's and ``act``'s action that export accepts."""
BATCH_SIZES = (1, 7, 256)
"""Batch sizes of the verification (the graph's batch axis is dynamic)."""
ROLLOUT_STEPS = 300
"""Steps of the deterministic rollout whose observations the verification uses."""
INPUT_NAME, OUTPUT_NAME = "obs", "action"


class Exportable(Protocol):
    """What export needs of a :class:`~mjreinforce.trained.loading.TrainedPolicy`."""

    @property
    def config(self) -> Config: ...
    @property
    def policy(self) -> GaussianPolicy: ...
    @property
    def normalizer(self) -> RunningNormalizer: ...
    @property
    def seed(self) -> int: ...
    @property
    def path(self) -> Path: ...
    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray: ...


@dataclass(frozen=True)
class ExportReport:
    """A written, verified ONNX file: the largest ``|onnxruntime - act|`` over ``observations`` inputs."""

    path: Path
    max_abs_difference: float
    observations: int
    batch_sizes: tuple[int, ...]
    opset: int
    metadata: dict[str, str]


class DeterministicActor(nn.Module):
    """Raw observations ``(B, obs_dim)`` float32 -> deterministic env action ``(B, act_dim)`` float32.

    Holds the trained policy (not a copy) and the normalizer's mean and ``sqrt(var + eps)`` as float64
    buffers; normalizing in float64, as the numpy normalizer does, keeps the two bitwise equal up to the
    float32 cast. A disabled normalizer is the identity, as in training.
    """

    obs_mean: torch.Tensor
    obs_std: torch.Tensor

    def __init__(self, policy: GaussianPolicy, normalizer: RunningNormalizer) -> None:
        super().__init__()
        self.policy = policy
        self.normalize = normalizer.enabled
        self.clip = float(normalizer.clip)
        self.register_buffer("obs_mean", torch.from_numpy(normalizer.mean.astype(np.float64)))
        self.register_buffer("obs_std", torch.from_numpy(normalizer.std().astype(np.float64)))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            obs = standardize(obs.to(torch.float64), self.obs_mean, self.obs_std, self.clip).to(torch.float32)
        return self.policy.deterministic_action(obs)


def export_onnx(trained: Exportable, path: Path, overwrite: bool = False) -> ExportReport:
    """Write ``trained``'s deterministic policy to ``path`` as a verified, self-describing ONNX file.

    Refused with a one-line UserError, before anything is written: ``path`` exists, mjreinforce did not write it
    and not ``overwrite``; it is a directory; it is or goes inside a run's own files, or into another run's
    directory (:func:`~mjreinforce.runs.outputs.check_output_file`); an unwritable place raises
    OSError. The verification (see the module docstring) refuses a graph off by more than :data:`TOLERANCE`.
    """
    path = Path(path)
    check_output_file(path, overwrite, sources=(trained.path,))
    probe_writable(path)
    metadata = onnx_metadata(trained)
    recorded = rollout_observations(trained)
    batches = verification_batches(recorded, random_observations(recorded, max(BATCH_SIZES)))
    with atomic_output(path, suffix=".onnx") as tmp:
        write_onnx(DeterministicActor(trained.policy, trained.normalizer).eval(), metadata, tmp)
        worst = max_abs_difference(tmp, trained, batches)
        if not worst <= TOLERANCE:  # critical: also refuses NaN
            raise UserError(
                f"export refused: onnxruntime's actions differ from the policy's by up to {worst:.3g} "
                f"(more than {TOLERANCE:g}); no file written"
            )
    record_outputs([path])
    return ExportReport(path, worst, sum(len(b) for b in batches), BATCH_SIZES, OPSET, metadata)


def onnx_metadata(trained: Exportable) -> dict[str, str]:
    """The ONNX ``metadata_props``: what the graph expects and where it came from (docs/export.md lists them)."""
    cfg, policy = trained.config, trained.policy
    return {
        "mjreinforce_version": package_version(),
        "env_id": cfg.env_id,
        "env_kwargs": json.dumps(cfg.env_kwargs, sort_keys=True),
        "env_module": cfg.env_module or "",
        "xml_file_sha256": cfg.xml_file_sha256 or "",
        "obs_dim": str(trained.normalizer.mean.shape[0]),
        "act_dim": str(policy.act_low.shape[0]),
        "action_low": json.dumps(policy.act_low.tolist()),
        "action_high": json.dumps(policy.act_high.tolist()),
        "action_bound": policy.action_bound,
        "normalize_obs": json.dumps(trained.normalizer.enabled),
        "obs_clip": repr(float(trained.normalizer.clip)),
        "input": INPUT_NAME,
        "output": OUTPUT_NAME,
        "preset": str(getattr(cfg, "preset", None) or run_preset(trained.path)),
        "config_sha256": config_sha256(cfg),
        "config": json.dumps(config.to_dict(cfg), sort_keys=True),
        "training_seed": str(trained.seed),
        "checkpoint": trained.path.name,
    }


def package_version() -> str:
    """The installed mjreinforce's version (the package's ``__init__`` is above every layer, so not from there)."""
    try:
        return importlib.metadata.version("mjreinforce")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def run_preset(checkpoint: Path) -> str:
    """The preset in the run marker of the run a ``RUN_DIR/seed_<s>/checkpoints/`` file is in, else ``""``."""
    if checkpoint.parent.name != "checkpoints":
        return ""
    try:
        marker = read_marker(checkpoint.parent.parent.parent)
    except UserError:
        return ""
    return (marker.preset if marker else None) or ""


def write_onnx(actor: DeterministicActor, metadata: dict[str, str], file: Path) -> None:
    """``actor`` traced to an ONNX model (opset :data:`OPSET`, dynamic batch axis) carrying ``metadata``, written
    to ``file`` (an existing temporary file: the exporter writes it, then it is rewritten with the metadata)."""
    obs_dim = int(metadata["obs_dim"])
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter; see the module docstring
        torch.onnx.export(
            actor,
            (torch.zeros(2, obs_dim),),
            file,
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )
    model = onnx.load_model(file)
    model.producer_name, model.producer_version = "mjreinforce", metadata["mjreinforce_version"]
    model.doc_string = (
        f"Deterministic policy for {metadata['env_id']}: {INPUT_NAME} (batch, {obs_dim}) float32 raw observations "
        f"-> {OUTPUT_NAME} (batch, {metadata['act_dim']}) float32 env actions; normalization inside."
    )
    onnx.helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    onnx.save_model(model, file)


def rollout_observations(trained: Exportable, steps: int = ROLLOUT_STEPS) -> np.ndarray:
    """Observations ``(steps, obs_dim)`` float32 of ``trained``'s deterministic policy on one env of its
    evaluation config seeded like ``mjreinforce eval`` (:data:`DEFAULT_EVAL_SEED`), through resets."""
    env = make_vec_env(eval_config(trained.config), 1, DEFAULT_EVAL_SEED)
    try:
        obs = env.reset()
        rows = []
        for _ in range(steps):
            rows.append(obs.astype(np.float32))
            obs = env.step(trained.act(obs)).obs
    finally:
        env.close()
    return np.concatenate(rows)


def random_observations(recorded: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """``count`` random observations ``(count, obs_dim)`` float32 around ``recorded``: its mean plus normal
    noise of its spread (std + 1), the noise scaled by 1, 10 or 100 per row, so that normalizer clipping,
    action clipping and tanh saturation are all reached."""
    rng = np.random.default_rng(seed)
    centre, spread = recorded.mean(0), recorded.std(0) + 1.0
    scale = rng.choice([1.0, 10.0, 100.0], size=(count, 1))
    return (centre + spread * scale * rng.standard_normal((count, recorded.shape[1]))).astype(np.float32)


def verification_batches(*sources: np.ndarray) -> list[np.ndarray]:
    """The first ``b`` rows of each source, for each ``b`` in :data:`BATCH_SIZES`."""
    return [source[:b] for source in sources for b in BATCH_SIZES]


def max_abs_difference(model_file: Path, trained: Exportable, batches: Sequence[np.ndarray]) -> float:
    """Largest ``|onnxruntime(obs) - trained.act(obs)|`` over ``batches`` (inf for a wrong shape, NaN for a
    non-finite action), with the file loaded by onnxruntime's CPU provider on one thread."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
    worst = 0.0
    for obs in batches:
        (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: obs})
        want = trained.act(obs)
        if got.shape != want.shape:
            return float("inf")
        difference = float(np.max(np.abs(got - want)))
        if np.isnan(difference):
            return difference
        worst = max(worst, difference)
    return worst
