"""Resume verifies what it continues, before anything is modified.

A checkpoint records the hash of the resolved config and, for ``episodes.csv`` and ``evals.csv``, the
number of rows it covers and the sha256 of the table's bytes up to them (header included). Resume checks,
for every seed it will continue, that ``config.toml`` still hashes the same (the marker's hash too, which
also covers seeds without a checkpoint), that each table still starts with exactly the rows the checkpoint
covers (not cut short, no junk line, no merged rows) and that the checkpoint fits the model. Any difference
is a one-line UserError saying what differs, and nothing has been touched. Rows written *after* the
checkpoint (a killed run) are then cut off, as before. Checkpoints from before the digests skip the table check.
"""

from __future__ import annotations

import errno
import hashlib
from pathlib import Path
from typing import Any

from mjreinforce import config
from mjreinforce.algo.normalization import RunningNormalizer
from mjreinforce.algo.policy import make_policy, value_network
from mjreinforce.algo.rollout import Collector
from mjreinforce.algo.update import Learner
from mjreinforce.config import Config
from mjreinforce.envs.vector import inspect_env
from mjreinforce.errors import UserError, one_line
from mjreinforce.files import complete_lines, read_nofollow, truncate_csv
from mjreinforce.files import remove_stale_temp_files as remove_stale
from mjreinforce.runs import checkpoint_dir, checkpoint_format
from mjreinforce.runs.layout import check_real_dirs, seed_dir
from mjreinforce.runs.ownership import config_sha256, read_marker
from mjreinforce.training import snapshot
from mjreinforce.training.counters import Counters

TABLES = ("episodes.csv", "evals.csv")


def verify_run(run_dir: Path, cfg: Config, seeds: tuple[int, ...]) -> None:
    """Check ``config.toml`` against the marker and every seed in ``seeds`` (see the module docstring);
    read-only. Call while holding the run's lock."""
    for seed in seeds:  # first: a checkpoint can say which keys differ
        verify_seed(seed_dir(run_dir, seed), cfg)
    marker = read_marker(run_dir)
    if marker is not None and marker.config_sha256 not in (None, config_sha256(cfg)):
        raise UserError(f"cannot resume {run_dir}: config.toml was edited after the run started; restore it")


def verify_seed(out: Path, cfg: Config) -> None:
    """Check one seed directory: real directories, the checkpoint's config hash, tables and fit."""
    check_real_dirs(out)
    if not _has_checkpoint(out):
        for name in TABLES:
            if (out / name).is_symlink():
                raise UserError(f"{out / name} is a symbolic link; mjreinforce does not write through links")
        return  # the seed starts over
    file = checkpoint_dir.latest_checkpoint(out)
    tensors, meta = checkpoint_format.load_checkpoint(file)
    if meta.get("config_sha256", config_sha256(cfg)) != config_sha256(cfg):
        raise UserError(f"cannot resume: config.toml differs from {file}'s config ({_config_diff(meta, cfg)})")
    for name, record in dict(meta.get("tables", {})).items():
        _check_table(out / name, int(record["rows"]), str(record["sha256"]))
    _check_fit(file, tensors, meta, cfg)


def resume_seed(out: Path, learner: Learner, normalizer: RunningNormalizer, collector: Collector) -> Counters | None:
    """Restore the latest checkpoint in ``out`` and cut the tables back to it; None without one (the
    tables are emptied: the seed starts over)."""
    if not _has_checkpoint(out):
        for name in TABLES:
            truncate_csv(out / name, 0)
        return None
    file = checkpoint_dir.latest_checkpoint(out)
    tensors, meta = checkpoint_format.load_checkpoint(file)
    counters = snapshot.restore(file, tensors, meta, learner, normalizer, collector)
    truncate_csv(out / "episodes.csv", counters.episodes)
    truncate_csv(out / "evals.csv", counters.evals)
    return counters


def remove_stale_files(run_dir: Path, seeds: tuple[int, ...]) -> None:
    """Delete temp files of killed writers in the run dir, the seed dirs and their checkpoint dirs
    (call while holding the lock)."""
    remove_stale(run_dir)
    for seed in seeds:
        remove_stale(seed_dir(run_dir, seed))
        remove_stale(seed_dir(run_dir, seed) / "checkpoints")


def _has_checkpoint(out: Path) -> bool:
    ckpt_dir = out / "checkpoints"
    return ckpt_dir.is_dir() and any(ckpt_dir.glob("ckpt_*.safetensors"))


def _check_table(path: Path, rows: int, sha256: str) -> None:
    """``path`` starts with its header and exactly the ``rows`` rows whose bytes hash to ``sha256``."""
    try:
        data = read_nofollow(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UserError(f"{path} is a symbolic link; mjreinforce does not write through links") from None
        why = "is missing" if e.errno == errno.ENOENT else f"cannot be read ({one_line(e.strerror)})"
        raise UserError(f"cannot resume: {path} {why}; its checkpoint covers {rows} rows") from None
    lines = complete_lines(data)
    if len(lines) < 1 + rows:
        raise UserError(
            f"cannot resume: {path} has {max(len(lines) - 1, 0)} complete rows but its checkpoint covers {rows} "
            "(cut short, or rows merged)"
        )
    if hashlib.sha256(b"".join(lines[: 1 + rows])).hexdigest() != sha256:
        raise UserError(
            f"cannot resume: the first {rows} rows of {path} differ from what its checkpoint recorded "
            "(edited, a junk line, or rows merged)"
        )


def _check_fit(file: Path, tensors: dict[str, Any], meta: dict[str, Any], cfg: Config) -> None:
    """The checkpoint fits freshly built models of ``cfg`` (:func:`mjreinforce.training.snapshot.check_fits`)."""
    spec = inspect_env(cfg.env_id)
    policy = make_policy(cfg, spec.obs_dim, spec.act_dim, spec.act_low, spec.act_high)
    learner = Learner(cfg, policy, value_network(cfg, spec.obs_dim))
    try:
        saved = checkpoint_format.unflatten_state(meta["state"], tensors)
        snapshot.check_fits(file, saved, policy, RunningNormalizer(spec.obs_dim, enabled=cfg.normalize_obs), learner)
    except (KeyError, IndexError, RuntimeError, TypeError, ValueError) as exc:
        raise UserError(f"{file} is not a compatible mjreinforce checkpoint: {one_line(exc)}") from None


def _config_diff(meta: dict[str, Any], cfg: Config) -> str:
    """``key: old -> new`` for the first keys that differ between the checkpoint's config and ``cfg``."""
    old, new = meta.get("config", {}), config.to_dict(cfg)
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    shown = "; ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys[:3])
    return (shown + (f"; {len(keys) - 3} more" if len(keys) > 3 else "")) or "its hash differs"
