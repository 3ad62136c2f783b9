"""Resuming a run (:func:`resume_run`): what is kept, what is verified before anything is modified, and
what continues.

First resume takes the lock of every seed directory a worker ever locked, so a worker that still writes one
(the orphan of a killed run, before it noticed) is refused with one line naming its PID before anything is
read. Seeds whose ``summary.json`` says finished or diverged (:data:`DONE_STATUSES`) are kept as they are. For
every other seed, resume checks that ``config.toml`` still hashes as its checkpoint recorded (the marker's
hash too, which also covers seeds without a checkpoint), that ``episodes.csv`` and ``evals.csv`` still start
with exactly the rows the checkpoint covers (their count and the sha256 of the table's bytes up to them,
header included: not cut short, no junk line, no merged rows) and that the checkpoint fits the model
(:func:`mjreinforce.training.snapshot.check_fits`). Any difference, or a checkpoint without the config hash
and table digests, is a one-line UserError saying what differs, and nothing has been touched. Then stale
temp files are removed and each seed continues from its latest checkpoint
(:func:`mjreinforce.training.snapshot.restore_latest`: rows written *after* it by a killed run are cut off).
"""

from __future__ import annotations

import errno
import hashlib
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from mjreinforce import config
from mjreinforce.algo.normalization import RunningNormalizer
from mjreinforce.algo.policy import make_policy, value_network
from mjreinforce.algo.update import Learner
from mjreinforce.config import Config, preset_env_overrides, preset_names
from mjreinforce.envs.custom import check_model_file
from mjreinforce.envs.vector import inspect_env
from mjreinforce.errors import UserError, one_line
from mjreinforce.files import complete_lines, read_json_checked, read_nofollow, remove_stale_temp_files
from mjreinforce.runs import checkpoint_dir, checkpoint_format
from mjreinforce.runs.layout import check_real_dirs, seed_dir
from mjreinforce.runs.lock import RunLock, lock_seed_dirs
from mjreinforce.runs.ownership import RunMarker, check_run_path, config_sha256, is_run_dir, read_marker
from mjreinforce.training import snapshot
from mjreinforce.training.interrupt import sigterm_raises
from mjreinforce.training.records import SeedResult
from mjreinforce.training.run import RunResult, check_run_input, run_seeds

DONE_STATUSES = ("finished", "diverged")
"""Seeds with these statuses are kept as they are on resume (a diverged seed would diverge again)."""


def resume_run(
    run_dir: Path | str, *, quiet: bool = False, plot: bool = True, workers: int = 1, allow_changed_model: bool = False
) -> RunResult:
    """Continue the run in ``run_dir`` with its saved config (and its preset, kept in the run's marker),
    also after the process was killed; see the module docstring for what is verified first. Like
    :func:`~mjreinforce.training.run.train`, it holds the run's lock and SIGTERM stops it like Ctrl-C.
    A model file (``env_kwargs.xml_file``) that changed since the run started is refused unless
    ``allow_changed_model`` (:func:`~mjreinforce.envs.custom.check_model_file`)."""
    run_dir = check_run_path(run_dir, allow_cwd=True)
    if not (run_dir / "config.toml").is_file():
        raise UserError(f"cannot resume {run_dir}: no config.toml there (not a mjreinforce run directory)")
    raw = config.read_toml(run_dir / "config.toml")  # a malformed file: a UserError naming it
    try:
        cfg = config.from_dict(raw)
    except UserError as exc:
        raise UserError(f"cannot resume {run_dir}: {run_dir / 'config.toml'} holds a bad config: {exc}") from None
    check_model_file(cfg, allow_changed_model)
    backend = check_run_input(cfg, workers)
    if not is_run_dir(run_dir):
        raise UserError(f"cannot resume {run_dir}: it is not a mjreinforce run directory")
    with RunLock(run_dir), sigterm_raises():
        done = _open_resumed(run_dir, cfg)
        preset = (read_marker(run_dir) or RunMarker()).preset
        overrides = preset_env_overrides(preset, cfg.env_id) if preset in preset_names() else {}
        return run_seeds(
            run_dir,
            cfg,
            done,
            backend=backend,
            workers=workers,
            quiet=quiet,
            plot=plot,
            preset=preset,
            preset_overrides=overrides,
            resume=True,
        )


def _open_resumed(run_dir: Path, cfg: Config) -> dict[int, SeedResult]:
    """Under the run's lock and the seed directories' (:func:`~mjreinforce.runs.lock.lock_seed_dirs`): verify
    what will be continued, then remove stale temp files. Returns the seeds kept."""
    with ExitStack() as seed_locks:
        lock_seed_dirs(run_dir, seed_locks)
        done = finished_seeds(run_dir, cfg)
        verify_run(run_dir, cfg, tuple(s for s in cfg.seeds if s not in done))
        remove_stale_files(run_dir, cfg.seeds)
    return done


def finished_seeds(run_dir: Path, cfg: Config) -> dict[int, SeedResult]:
    """Results of the seeds whose summary says finished or diverged; a corrupted summary is a UserError."""
    out: dict[int, SeedResult] = {}
    for seed in cfg.seeds:
        path = seed_dir(run_dir, seed) / "summary.json"
        if path.exists():
            data = read_json_checked(path)
            if data.get("status") in DONE_STATUSES:
                try:
                    out[seed] = SeedResult(**{k: data[k] for k in SeedResult.__dataclass_fields__ if k in data})
                except TypeError:
                    raise UserError(f"{path} is corrupted: it lacks fields of a seed summary") from None
    return out


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
    if not snapshot.has_checkpoint(out):
        for name in snapshot.TABLES:
            if (out / name).is_symlink():
                raise UserError(f"{out / name} is a symbolic link; mjreinforce does not write through links")
        return  # the seed starts over
    file = checkpoint_dir.latest_checkpoint(out)
    tensors, meta = checkpoint_format.load_checkpoint(file)
    recorded_config, tables = _recorded(file, meta)
    if recorded_config != config_sha256(cfg):
        raise UserError(f"cannot resume: config.toml differs from {file}'s config ({_config_diff(meta, cfg)})")
    for name, (rows, sha256) in tables.items():
        _check_table(out / name, rows, sha256)
    _check_fit(file, tensors, meta, cfg)


def remove_stale_files(run_dir: Path, seeds: tuple[int, ...]) -> None:
    """Delete temp files of killed writers in the run dir, the seed dirs and their checkpoint dirs
    (call while holding the lock)."""
    remove_stale_temp_files(run_dir)
    for seed in seeds:
        remove_stale_temp_files(seed_dir(run_dir, seed))
        remove_stale_temp_files(seed_dir(run_dir, seed) / "checkpoints")


def _recorded(file: Path, meta: dict[str, Any]) -> tuple[str, dict[str, tuple[int, str]]]:
    """The config hash and, per table, ``(rows, sha256)`` that checkpoint ``file`` recorded; a checkpoint
    without them cannot be verified and is refused."""
    try:
        digests = meta["tables"]
        tables = {name: (int(digests[name]["rows"]), str(digests[name]["sha256"])) for name in snapshot.TABLES}
        return str(meta["config_sha256"]), tables
    except (KeyError, TypeError, ValueError):
        raise UserError(
            f"cannot resume: checkpoint {file} lacks the config hash or the table digests that resume verifies"
        ) from None


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
    spec = inspect_env(cfg)
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
