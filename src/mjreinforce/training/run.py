"""A whole run: every seed of a config into one run directory (in-process or in worker processes), resume."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mjreinforce import config as config_mod
from mjreinforce.analysis.plotting import plot_run
from mjreinforce.config import Config, validate
from mjreinforce.envs.physics import make_physics_env
from mjreinforce.envs.vector import inspect_env, resolve_backend
from mjreinforce.errors import UserError
from mjreinforce.files import write_json_atomic
from mjreinforce.runs.layout import prepare_run_dir, seed_dir
from mjreinforce.runs.reading import read_json_file
from mjreinforce.training.loop import SeedResult, train_seed
from mjreinforce.training.progress import make_progress


@dataclass(frozen=True)
class RunResult:
    """A finished :func:`train` call: where it wrote and each seed's result."""

    run_dir: Path
    config: Config
    seeds: dict[int, SeedResult]
    plots: tuple[Path, ...] = ()


def train(
    cfg: Config,
    run_dir: Path | str,
    *,
    overwrite: bool = False,
    quiet: bool = False,
    preset: str | None = None,
    plot: bool = True,
    workers: int = 1,
    resume: bool = False,
) -> RunResult:
    """Train every seed of ``cfg`` into ``run_dir`` and return a :class:`RunResult`.

    Everything is checked before the directory is created, so bad input leaves nothing behind.
    ``summary.json`` at the top is written last; a run directory without it is unfinished.
    With ``workers > 1`` the seeds run in that many worker processes. With ``resume`` the
    directory must hold this run already: finished seeds are kept, the others continue from
    their latest checkpoint (see :func:`resume_run`).
    """
    run_dir = Path(run_dir)
    validate(cfg)
    if workers < 1:
        raise UserError(f"workers must be >= 1, got {workers}")
    inspect_env(cfg.env_id)
    backend = resolve_backend(cfg)
    if cfg.physics or cfg.randomize:
        make_physics_env(cfg.env_id, cfg.physics, cfg.randomize).close()  # bad specs fail here, not in a worker
    results: dict[int, SeedResult] = {}
    if resume:
        results = _finished_seeds(run_dir, cfg)
    else:
        prepare_run_dir(run_dir, overwrite)
        config_mod.save_toml(cfg, run_dir / "config.toml")
    todo = replace(cfg, seeds=tuple(s for s in cfg.seeds if s not in results))
    progress = make_progress(quiet, cfg.budget[0], cfg.log_every_episodes)
    try:
        if workers > 1 and len(todo.seeds) > 1:
            from mjreinforce.training.parallel import run_seeds_parallel

            results |= run_seeds_parallel(todo, run_dir, workers, progress, resume=resume)
        else:
            for seed in todo.seeds:
                results[seed] = train_seed(cfg, seed, seed_dir(run_dir, seed), progress, resume=resume)
    finally:
        progress.close()
    results = {s: results[s] for s in cfg.seeds if s in results}
    summary = {
        "env_id": cfg.env_id,
        "algorithm": cfg.algorithm_name,
        "preset": preset,
        "backend": backend,
        "seeds": {str(s): r.__dict__ for s, r in results.items()},
    }
    plots: tuple[Path, ...] = ()
    if plot:
        plots = tuple(plot_run(run_dir))
    write_json_atomic(run_dir / "summary.json", summary)
    return RunResult(run_dir, cfg, results, plots)


def resume_run(run_dir: Path | str, **kwargs: Any) -> RunResult:
    """Continue the run in ``run_dir`` with its saved config, also after the process was killed."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.toml").exists():
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
