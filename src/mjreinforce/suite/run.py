"""``mjreinforce benchmark``: the grid env x preset x seed, each cell one seed of an ordinary run directory.

Layout of ``OUT``::

    OUT/<preset>-<env>/config.toml, seed_<s>/...   one run directory per (env, preset); a cell is one seed
    OUT/benchmark.csv, benchmark.md                 final deterministic evaluation per (env, preset)
    OUT/learning_curves.png, .svg                   one panel per env, one line per preset, references
    OUT/summary.json                                the grid, wall time, and each cell's status

A cell is finished when its ``seed_<s>/summary.json`` says so; a second call on the same ``OUT`` skips those
cells and resumes the others from their latest checkpoint, so a long suite survives interruption. Cells run
in worker processes (``workers`` at once), or as Ray tasks on a cluster with ``address``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mjreinforce import config as config_mod
from mjreinforce.analysis.suite_report import SuiteRun, plot_suite, suite_table, write_suite_table
from mjreinforce.config import Config
from mjreinforce.envs.vector import inspect_env
from mjreinforce.errors import UserError, error_line
from mjreinforce.files import atomic_write, read_json_or_empty, write_json_atomic
from mjreinforce.runs.layout import seed_dir
from mjreinforce.runs.lock import RunLock
from mjreinforce.runs.ownership import check_run_path
from mjreinforce.runs.reading import load_run
from mjreinforce.suite.grid import DEFAULT_ENVS, DEFAULT_PRESETS, DEFAULT_SEEDS, DEFAULT_STEPS
from mjreinforce.suite.references import load_references
from mjreinforce.sweep.tune import connect_ray
from mjreinforce.training.interrupt import sigterm_raises
from mjreinforce.training.loop import train_seed
from mjreinforce.training.progress import SilentProgress
from mjreinforce.training.workers import Outcome, SeedJob, run_jobs, say_unfinished

CHECKPOINT_EVERY = 50
"""Updates between a cell's checkpoints, so an interrupted cell loses little."""


@dataclass(frozen=True)
class Cell:
    """One seed of one (env, preset) run directory."""

    env_id: str
    preset: str
    seed: int


@dataclass(frozen=True)
class BenchmarkResult:
    out: Path
    table: Any  # pandas.DataFrame
    paths: tuple[Path, ...]
    failed: tuple[Cell, ...]
    wall_seconds: float


def run_name(preset: str, env_id: str) -> str:
    return f"{preset}-{env_id}"


def cell_config(preset: str, env_id: str, steps: int, seeds: Sequence[int]) -> Config:
    """The preset with its per-task overrides for ``env_id``, ``steps`` env steps per seed; no TensorBoard,
    a checkpoint every :data:`CHECKPOINT_EVERY` updates."""
    flags: dict[str, Any] = {"env_id": env_id, "total_steps": steps, "seeds": tuple(seeds)}
    cfg, _ = config_mod.resolve(preset, {}, flags, {"tensorboard": False, "checkpoint_every": CHECKPOINT_EVERY})
    if not cfg.evaluates:
        raise UserError(f"preset {preset} has no evaluation schedule for {env_id}; the suite scores evaluations")
    return config_mod.validate(cfg)


def run_cell(cfg: Config, seed: int, out: Path, resume: bool) -> dict[str, Any]:
    """Train one cell in a Ray task, showing no progress; its ``summary.json`` contents."""
    return dict(train_seed(cfg, seed, out, SilentProgress(), resume=resume).__dict__)


def _prepare(out: Path, configs: dict[tuple[str, str], Config]) -> None:
    """Create each run directory with its config, or check that an existing one asks for the same run."""
    for (env_id, preset), cfg in configs.items():
        run_dir = out / run_name(preset, env_id)
        path = run_dir / "config.toml"
        if path.exists():
            saved = config_mod.from_dict(config_mod.read_toml(path))
            ours = replace(cfg, seeds=saved.seeds)
            if saved != ours:
                diff = next(k for k in config_mod.FIELD_NAMES if getattr(saved, k) != getattr(ours, k))
                raise UserError(
                    f"{run_dir} was run with {diff} = {getattr(saved, diff)!r}, not {getattr(ours, diff)!r}; "
                    "use another --out"
                )
            cfg = replace(cfg, seeds=tuple(dict.fromkeys((*saved.seeds, *cfg.seeds))))
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(path, f"# mjreinforce benchmark cell: preset {preset} on {env_id}\n" + config_mod.dumps(cfg))


def _finished(out: Path, cell: Cell) -> bool:
    summary = read_json_or_empty(seed_dir(out / run_name(cell.preset, cell.env_id), cell.seed) / "summary.json")
    return summary.get("status") == "finished"


def run_benchmark(
    out: Path,
    envs: Sequence[str] = DEFAULT_ENVS,
    presets: Sequence[str] = DEFAULT_PRESETS,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    steps: int = DEFAULT_STEPS,
    workers: int = 2,
    address: str | None = None,
    quiet: bool = False,
) -> BenchmarkResult:
    """Run every unfinished cell of the grid, then write the table and the figure (see the module docstring).

    Everything is checked before anything runs. Failed cells are reported on one line each and left
    unfinished (a later call retries them); the table covers the finished seeds.
    """
    if workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    if not envs or not presets or not seeds:
        raise UserError("the grid is empty: give at least one env, one preset and one seed")
    for env_id in envs:
        inspect_env(env_id)
    configs = {(e, p): cell_config(p, e, steps, seeds) for e in envs for p in presets}
    out = check_run_path(out)
    out.mkdir(parents=True, exist_ok=True)
    with RunLock(out):  # one benchmark writes into OUT at a time; the cells' processes work under it
        return _run_grid(out, configs, envs, presets, seeds, steps, workers, address, quiet)


def _run_grid(
    out: Path,
    configs: dict[tuple[str, str], Config],
    envs: Sequence[str],
    presets: Sequence[str],
    seeds: Sequence[int],
    steps: int,
    workers: int,
    address: str | None,
    quiet: bool,
) -> BenchmarkResult:
    """:func:`run_benchmark`'s writing part, under the lock of ``out``."""
    _prepare(out, configs)
    # seed-major: an interrupted suite has results on every task, not all seeds of a few
    cells = [Cell(e, p, s) for s in seeds for e in envs for p in presets]
    todo = [c for c in cells if not _finished(out, c)]
    say = (lambda text: None) if quiet else (lambda text: print(text, flush=True))
    say(f"benchmark: {len(cells)} cells, {len(cells) - len(todo)} already finished, {len(todo)} to run")
    start = time.perf_counter()
    jobs = [(c, configs[(c.env_id, c.preset)], seed_dir(out / run_name(c.preset, c.env_id), c.seed)) for c in todo]
    runner = _run_on_ray if address is not None else _run_in_workers
    with sigterm_raises():  # a suite started in the background by a shell has SIGINT ignored: SIGTERM stops it
        failed = runner(jobs, workers, address, quiet, say)
    wall = time.perf_counter() - start
    table, paths = report(out, envs, presets)
    write_json_atomic(
        out / "summary.json",
        {
            "envs": list(envs),
            "presets": list(presets),
            "seeds": list(seeds),
            "steps": steps,
            "wall_seconds_this_call": wall,
            "failed": [c.__dict__ for c in failed],
        },
    )
    return BenchmarkResult(out, table, tuple(paths), tuple(failed), wall)


Job = tuple[Cell, Config, Path]


def _line(cell: Cell, summary: dict[str, Any]) -> str:
    final = summary.get("final_eval_mean_return")
    return (
        f"{cell.env_id} {cell.preset} seed {cell.seed}: final eval {final if final is None else round(final, 1)}, "
        f"{summary['env_steps']:,} env steps, {summary['wall_seconds']:.0f} s"
    )


def _run_in_workers(
    jobs: list[Job], workers: int, address: str | None, quiet: bool, say: Callable[[str], None]
) -> list[Cell]:
    """Cells in worker processes, one process per cell, ``workers`` at once
    (:func:`mjreinforce.training.workers.run_jobs`: the first Ctrl-C or SIGTERM checkpoints the running cells
    and stops them, a second stops them at once); a line per cell as it ends. Returns the cells that did
    not finish."""
    if not jobs:
        return []
    cells = {out: cell for cell, _, out in jobs}

    def on_outcome(job: SeedJob, outcome: Outcome) -> None:
        cell = cells[job.out]
        if outcome.result is not None:
            say(_line(cell, outcome.result.__dict__))
        else:
            say_unfinished(f"mjreinforce benchmark: {cell.env_id} {cell.preset} seed {cell.seed}", outcome)

    seed_jobs = [SeedJob(cfg, cell.seed, out, resume=out.exists()) for cell, cfg, out in jobs]
    outcomes = run_jobs(seed_jobs, workers, SilentProgress(), on_outcome)
    return [cell for (cell, _, _), outcome in zip(jobs, outcomes, strict=True) if outcome.kind != "finished"]


def _run_on_ray(jobs: list[Job], workers: int, address: str | None, quiet: bool, say: Callable[[str], None]) -> list:
    """Cells as Ray tasks (one CPU each) on the cluster at ``address`` (``local``: a new local instance).
    The run directories must be on a file system the cluster's nodes share."""
    import ray

    failed: list[Cell] = []
    started = connect_ray(address, workers, quiet)
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(run_cell)
        refs = {task.remote(cfg, cell.seed, out, out.exists()): cell for cell, cfg, out in jobs}
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            cell = refs.pop(done[0])
            try:
                say(_line(cell, ray.get(done[0])))
            except Exception as exc:  # noqa: BLE001 -- RayTaskError wraps the cell's own error
                failed.append(cell)
                cause = getattr(exc, "cause", None) or exc
                print(
                    f"mjreinforce benchmark: {cell.env_id} {cell.preset} seed {cell.seed} failed: {error_line(cause)}",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        if started:
            ray.shutdown()
    return failed


def report(out: Path, envs: Sequence[str], presets: Sequence[str]) -> tuple[Any, list[Path]]:
    """Read every (env, preset) run directory of ``out`` and write the table and the figure."""
    references = {r.label: r.returns for r in load_references()}
    cells = []
    for env_id in envs:
        for preset in presets:
            run_dir = out / run_name(preset, env_id)
            try:
                run = load_run(run_dir, label=preset)
            except UserError:
                continue  # no seed has an episode yet
            summaries = {
                s: data
                for s in run.seed_status
                if (data := read_json_or_empty(seed_dir(run_dir, s) / "summary.json")).get("status") == "finished"
            }
            cells.append(SuiteRun(env_id, preset, run, summaries))
    if not cells:
        raise UserError(f"no cell of the benchmark in {out} has finished an episode yet")
    table = suite_table(cells, references)
    paths = write_suite_table(table, out)
    paths += plot_suite(cells, references, out / "learning_curves")
    return table, paths
