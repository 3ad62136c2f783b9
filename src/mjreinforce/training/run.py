"""A whole run: every seed of a config into one run directory (in-process or in worker processes), resume."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mjreinforce import config as config_mod
from mjreinforce.analysis.plotting import plot_run
from mjreinforce.config import Config, preset_env_overrides, preset_names, validate
from mjreinforce.envs.physics import make_physics_env
from mjreinforce.envs.vector import inspect_env, resolve_backend
from mjreinforce.errors import UserError
from mjreinforce.files import atomic_write, read_json, write_json_atomic
from mjreinforce.runs.layout import seed_dir
from mjreinforce.runs.lock import RunLock
from mjreinforce.runs.ownership import (
    RunMarker,
    check_new_run_dir,
    check_run_path,
    clear_run_dir,
    config_sha256,
    is_run_dir,
    read_marker,
    record_entries,
    write_marker,
)
from mjreinforce.runs.reading import read_json_file
from mjreinforce.training.interrupt import sigterm_raises
from mjreinforce.training.loop import SeedResult, train_seed
from mjreinforce.training.progress import Progress, make_progress
from mjreinforce.training.resume import remove_stale_files, verify_run


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
    resume: bool = False,
) -> RunResult:
    """Train every seed of ``cfg`` into ``run_dir`` and return a :class:`RunResult`.

    Everything is checked before the directory is touched, so bad input leaves nothing behind: the path
    (:func:`~mjreinforce.runs.ownership.check_run_path`), the config, and what is in the directory
    (:func:`~mjreinforce.runs.ownership.check_new_run_dir`: ``overwrite`` deletes only the run's own files).
    The run holds :class:`~mjreinforce.runs.lock.RunLock` while it writes; the marker is written first,
    ``summary.json`` at the top last, and only when every seed finished (else :class:`RunIncomplete`).
    With ``workers > 1`` the seeds run in that many worker processes. With ``resume`` the directory must
    hold this run already: finished seeds are kept, the others are verified
    (:func:`~mjreinforce.training.resume.verify_run`) and continue from their latest checkpoint.
    SIGTERM stops the run like Ctrl-C (raising :class:`~mjreinforce.training.interrupt.Terminated`).
    ``preset`` and ``preset_overrides`` (the per-task overrides it applied) are recorded in ``config.toml``'s
    header and ``summary.json``.
    """
    run_dir = check_run_path(run_dir, allow_cwd=resume)
    validate(cfg)
    if workers < 1:
        raise UserError(f"workers must be >= 1, got {workers}")
    inspect_env(cfg.env_id)
    backend = resolve_backend(cfg)
    if cfg.physics or cfg.randomize:
        make_physics_env(cfg.env_id, cfg.physics, cfg.randomize).close()  # bad specs fail here, not in a worker
    if resume and not is_run_dir(run_dir):
        raise UserError(f"cannot resume {run_dir}: it is not a mjreinforce run directory")
    if not resume:
        check_new_run_dir(run_dir, overwrite)
    run_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(run_dir), sigterm_raises():
        results = _open_resumed(run_dir, cfg) if resume else _open_new(run_dir, cfg, preset, preset_overrides)
        todo = tuple(s for s in cfg.seeds if s not in results)
        results |= _train_seeds(
            cfg, todo, run_dir, workers, make_progress(quiet, cfg.budget[0], cfg.log_every_episodes), resume
        )
        results = {s: results[s] for s in cfg.seeds if s in results}
        unfinished = [s for s in cfg.seeds if s not in results]
        if unfinished:
            raise RunIncomplete(
                f"seed{'s' * (len(unfinished) > 1)} {', '.join(map(str, unfinished))} did not finish; the run is "
                f"incomplete (no summary.json); continue it with: mjreinforce train --resume {run_dir}"
            )
        if resume:
            preset = (read_marker(run_dir) or RunMarker()).preset
            preset_overrides = preset_env_overrides(preset, cfg.env_id) if preset in preset_names() else {}
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


def _open_new(
    run_dir: Path, cfg: Config, preset: str | None, preset_overrides: dict[str, Any] | None
) -> dict[int, SeedResult]:
    """Under the lock: clear the run's own old files (``--overwrite``), write the marker, then config.toml."""
    clear_run_dir(run_dir)
    entries = ("config.toml", "summary.json", *(seed_dir(run_dir, s).name for s in cfg.seeds))
    write_marker(run_dir, RunMarker(entries, preset, config_sha256(cfg)))
    atomic_write(run_dir / "config.toml", config_header(preset, preset_overrides) + config_mod.dumps(cfg))
    return {}


def config_header(preset: str | None, overrides: dict[str, Any] | None) -> str:
    """TOML comment lines saying where the resolved config came from (ignored when it is read back)."""
    if preset is None:
        return "# resolved config\n"
    line = f"# resolved config: preset {preset}"
    if overrides:
        line += ", with its per-task overrides " + ", ".join(f"{k} = {v!r}" for k, v in overrides.items())
    return line + "\n"


def _open_resumed(run_dir: Path, cfg: Config) -> dict[int, SeedResult]:
    """Under the lock: verify what will be continued, then remove stale temp files; a run made before
    markers existed gets one (its preset from an old summary.json). Returns the finished seeds."""
    finished = _finished_seeds(run_dir, cfg)
    verify_run(run_dir, cfg, tuple(s for s in cfg.seeds if s not in finished))
    remove_stale_files(run_dir, cfg.seeds)
    if read_marker(run_dir) is None:
        entries = ("config.toml", "summary.json", *(seed_dir(run_dir, s).name for s in cfg.seeds))
        preset = read_json(run_dir / "summary.json").get("preset")
        write_marker(run_dir, RunMarker(entries, preset if isinstance(preset, str) else None, config_sha256(cfg)))
    return finished


def _train_seeds(
    cfg: Config, todo: tuple[int, ...], run_dir: Path, workers: int, progress: Progress, resume: bool
) -> dict[int, SeedResult]:
    """Train the seeds ``todo`` of ``cfg`` (in worker processes when ``workers > 1``); the finished ones."""
    results: dict[int, SeedResult] = {}
    try:
        if workers > 1 and len(todo) > 1:
            from mjreinforce.training.workers import run_seeds_parallel

            results = run_seeds_parallel(cfg, run_dir, workers, progress, resume=resume, seeds=todo)
        else:
            for seed in todo:
                results[seed] = train_seed(cfg, seed, seed_dir(run_dir, seed), progress, resume=resume)
    finally:
        progress.close()
    return results


def resume_run(run_dir: Path | str, **kwargs: Any) -> RunResult:
    """Continue the run in ``run_dir`` with its saved config (and its preset, kept in the run's marker),
    also after the process was killed; see :mod:`mjreinforce.training.resume` for what is verified first."""
    run_dir = check_run_path(run_dir, allow_cwd=True)
    if not (run_dir / "config.toml").is_file():
        raise UserError(f"cannot resume {run_dir}: no config.toml there (not a mjreinforce run directory)")
    raw = config_mod.read_toml(run_dir / "config.toml")  # a malformed file: a UserError naming it
    try:
        cfg = config_mod.from_dict(raw)
    except UserError as exc:
        raise UserError(f"cannot resume {run_dir}: {run_dir / 'config.toml'} holds a bad config: {exc}") from None
    return train(cfg, run_dir, resume=True, **kwargs)


DONE_STATUSES = ("finished", "diverged")
"""Seeds with these statuses are kept as they are on resume (a diverged seed would diverge again)."""


def _finished_seeds(run_dir: Path, cfg: Config) -> dict[int, SeedResult]:
    """Results of the seeds whose summary says finished or diverged; a corrupted summary is a UserError."""
    out: dict[int, SeedResult] = {}
    for seed in cfg.seeds:
        path = seed_dir(run_dir, seed) / "summary.json"
        if path.exists():
            data = read_json_file(path)
            if data.get("status") in DONE_STATUSES:
                try:
                    out[seed] = SeedResult(**{k: data[k] for k in SeedResult.__dataclass_fields__ if k in data})
                except TypeError:
                    raise UserError(f"{path} is corrupted: it lacks fields of a seed summary") from None
    return out
