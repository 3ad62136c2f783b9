"""A whole run: every seed of a config into one run directory, in this process or in worker processes.

:func:`train` starts a run; :func:`mjreinforce.training.resume.resume_run` continues one. Both check their
input before the directory is touched, then, under the run's lock, end in :func:`run_seeds`.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mjreinforce import config as config_mod
from mjreinforce.analysis.plotting import plot_run
from mjreinforce.config import Config, validate
from mjreinforce.envs.custom import make_id, pin_model_file
from mjreinforce.envs.perturb_config import check_env_fits
from mjreinforce.envs.physics import make_physics_env
from mjreinforce.envs.vector import inspect_env, resolve_backend
from mjreinforce.errors import UserError
from mjreinforce.files import atomic_write, write_json_atomic
from mjreinforce.runs.layout import seed_dir
from mjreinforce.runs.lock import RunLock, lock_seed_dirs
from mjreinforce.runs.ownership import (
    RunMarker,
    check_new_run_dir,
    check_run_path,
    clear_run_dir,
    config_sha256,
    record_entries,
    write_marker,
)
from mjreinforce.training.interrupt import sigterm_raises
from mjreinforce.training.loop import train_seed
from mjreinforce.training.progress import Progress, make_progress
from mjreinforce.training.records import SeedResult
from mjreinforce.training.workers import run_seeds_parallel


@dataclass(frozen=True)
class RunResult:
    """A finished :func:`train` call: where it wrote and each seed's result."""

    run_dir: Path
    config: Config
    seeds: dict[int, SeedResult]
    plots: tuple[Path, ...] = ()


class RunIncomplete(Exception):
    """Some seed did not finish (a worker was killed or failed): no top-level ``summary.json`` is written;
    the finished seeds are kept and ``train --resume`` continues the others. The CLI exits with 1."""


def train(
    cfg: Config,
    run_dir: Path | str,
    *,
    overwrite: bool = False,
    quiet: bool = False,
    preset: str | None = None,
    preset_overrides: dict[str, Any] | None = None,
    plot: bool = True,
    workers: int = 1,
) -> RunResult:
    """Train every seed of ``cfg`` into ``run_dir`` and return a :class:`RunResult`.

    Everything is checked before the directory is touched, so bad input leaves nothing behind: the path
    (:func:`~mjreinforce.runs.ownership.check_run_path`), the config (:func:`check_run_input`), and what is
    in the directory (:func:`~mjreinforce.runs.ownership.check_new_run_dir`: ``overwrite`` deletes only the
    run's own files). The run holds :class:`~mjreinforce.runs.lock.RunLock` while it writes; the marker is
    written first, ``summary.json`` at the top last, and only when every seed finished (else
    :class:`RunIncomplete`). With ``workers > 1`` the seeds run in that many worker processes. SIGTERM
    stops the run like Ctrl-C (raising :class:`~mjreinforce.training.interrupt.Terminated`). ``preset`` and
    ``preset_overrides`` (the per-task overrides it applied) are recorded in ``config.toml``'s header and
    ``summary.json``. An ``env_kwargs.xml_file`` is stored absolute, with its sha256
    (:func:`~mjreinforce.envs.custom.pin_model_file`): the returned config is the one saved.
    """
    run_dir = check_run_path(run_dir)
    cfg = pin_model_file(validate(cfg))
    backend = check_run_input(cfg, workers)
    check_new_run_dir(run_dir, overwrite)
    run_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(run_dir), sigterm_raises():
        _open_new(run_dir, cfg, preset, preset_overrides)
        return run_seeds(
            run_dir,
            cfg,
            {},
            backend=backend,
            workers=workers,
            quiet=quiet,
            plot=plot,
            preset=preset,
            preset_overrides=preset_overrides,
        )


def check_run_input(cfg: Config, workers: int) -> str:
    """Check what a run is given before anything is written: the config, ``workers``, the env id, the
    physics specs and the perturbations' fit to the env (bad ones fail here, not in a worker). Returns the
    backend the seeds will use."""
    validate(cfg)
    if workers < 1:
        raise UserError(f"workers must be >= 1, got {workers}")
    inspect_env(cfg)
    backend = resolve_backend(cfg)
    if cfg.physics or cfg.randomize:
        make_physics_env(make_id(cfg), cfg.physics, cfg.randomize, env_kwargs=cfg.env_kwargs).close()
    check_env_fits(cfg)
    return backend


def _open_new(run_dir: Path, cfg: Config, preset: str | None, preset_overrides: dict[str, Any] | None) -> None:
    """Under the lock: clear the run's own old files (``--overwrite``; each seed directory's lock taken first, so
    one an orphaned worker still writes is refused, not deleted under it), write the marker, then config.toml."""
    with ExitStack() as seed_locks:
        lock_seed_dirs(run_dir, seed_locks)
        clear_run_dir(run_dir)
    entries = ("config.toml", "summary.json", *(seed_dir(run_dir, s).name for s in cfg.seeds))
    write_marker(run_dir, RunMarker(entries, preset, config_sha256(cfg)))
    atomic_write(run_dir / "config.toml", config_header(preset, preset_overrides) + config_mod.dumps(cfg))


def config_header(preset: str | None, overrides: dict[str, Any] | None) -> str:
    """TOML comment lines saying where the resolved config came from (ignored when it is read back)."""
    if preset is None:
        return "# resolved config\n"
    line = f"# resolved config: preset {preset}"
    if overrides:
        line += ", with its per-task overrides " + ", ".join(f"{k} = {v!r}" for k, v in overrides.items())
    return line + "\n"


def run_seeds(
    run_dir: Path,
    cfg: Config,
    done: dict[int, SeedResult],
    *,
    backend: str,
    workers: int,
    quiet: bool,
    plot: bool,
    preset: str | None,
    preset_overrides: dict[str, Any] | None,
    resume: bool = False,
) -> RunResult:
    """Under the lock: train the seeds of ``cfg`` not in ``done`` (continuing from their checkpoints with
    ``resume``), then, once every seed finished, plot and write the run's ``summary.json``."""
    todo = tuple(s for s in cfg.seeds if s not in done)
    progress = make_progress(quiet, cfg.budget[0], cfg.log_every_episodes)
    results = done | _train_seeds(cfg, todo, run_dir, workers, progress, resume)
    results = {s: results[s] for s in cfg.seeds if s in results}
    unfinished = [s for s in cfg.seeds if s not in results]
    if unfinished:
        raise RunIncomplete(
            f"seed{'s' * (len(unfinished) > 1)} {', '.join(map(str, unfinished))} did not finish; the run is "
            f"incomplete (no summary.json); continue it with: mjreinforce train --resume {run_dir}"
        )
    plots = tuple(plot_run(run_dir)) if plot else ()
    record_entries(run_dir, [p.name for p in plots])
    summary = {
        "env_id": cfg.env_id,
        "algorithm": cfg.algorithm_name,
        "preset": preset,
        "preset_overrides": preset_overrides or {},
        "backend": backend,
        "seeds": {str(s): r.__dict__ for s, r in results.items()},
    }
    write_json_atomic(run_dir / "summary.json", summary)
    return RunResult(run_dir, cfg, results, plots)


def _train_seeds(
    cfg: Config, todo: tuple[int, ...], run_dir: Path, workers: int, progress: Progress, resume: bool
) -> dict[int, SeedResult]:
    """Train the seeds ``todo`` of ``cfg`` (in worker processes when ``workers > 1``); the finished ones."""
    results: dict[int, SeedResult] = {}
    try:
        if workers > 1 and len(todo) > 1:
            results = run_seeds_parallel(cfg, run_dir, workers, progress, resume=resume, seeds=todo)
        else:
            for seed in todo:
                results[seed] = train_seed(cfg, seed, seed_dir(run_dir, seed), progress, resume=resume)
    finally:
        progress.close()
    return results
