"""``mjreinforce benchmark``: the grid env x preset x seed, each cell one seed of an ordinary run directory.

Layout of ``OUT``::

    OUT/<preset>-<env>/config.toml, seed_<s>/...   one run directory per (env, preset); a cell is one seed
    OUT/benchmark.csv, benchmark.md                 final deterministic evaluation per (env, preset)
    OUT/learning_curves.png, .svg                   one panel per env, one line per preset, references
    OUT/summary.json                                the grid, wall time, and each cell's status
    OUT/.mjreinforce-benchmark.json                 the marker (:mod:`mjreinforce.suite.directory`)

``OUT`` is owned like a run directory (:mod:`mjreinforce.suite.directory`): a directory holding anything else
is refused, ``overwrite`` deletes only the benchmark's own entries. A second call on the same ``OUT`` skips
the finished cells and resumes or redoes the others (:func:`mjreinforce.suite.cells.plan_cell`: finished means
summary, tables and final checkpoint agree), so a long suite survives interruption. The call holds the lock
of ``OUT`` and of each run directory; each cell's worker holds its seed directory's. Cells run in worker
processes (``workers`` at once, :func:`mjreinforce.training.workers.run_jobs`), or as Ray tasks on a cluster
with ``address``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mjreinforce import config as config_mod
from mjreinforce.analysis.suite_report import SuiteRun, plot_suite, suite_table, write_suite_table
from mjreinforce.config import Config
from mjreinforce.config_bounds import check_cli
from mjreinforce.envs.vector import inspect_env
from mjreinforce.errors import UserError, error_line
from mjreinforce.files import read_json_or_empty, write_json_atomic
from mjreinforce.runs.layout import check_real_dirs, seed_dir
from mjreinforce.runs.lock import LOCK_NAME, RunLock
from mjreinforce.runs.ownership import check_run_path, remove_entry
from mjreinforce.runs.reading import load_run
from mjreinforce.suite.cells import Cell, CellPlan, announce, cell_dir, plan_cells, run_name
from mjreinforce.suite.directory import (
    benchmark_run_dirs,
    check_benchmark_dir,
    open_benchmark_dir,
    run_config,
    write_run_dir,
)
from mjreinforce.suite.grid import DEFAULT_ENVS, DEFAULT_PRESETS, DEFAULT_SEEDS, DEFAULT_STEPS
from mjreinforce.suite.references import load_references
from mjreinforce.sweep.tune import connect_ray
from mjreinforce.training.interrupt import stop_signals_raise
from mjreinforce.training.loop import train_seed
from mjreinforce.training.progress import SilentProgress
from mjreinforce.training.workers import Outcome, SeedJob, run_jobs, say_unfinished

CHECKPOINT_EVERY = 50
"""Updates between a cell's checkpoints, so an interrupted cell loses little."""


@dataclass(frozen=True)
class BenchmarkResult:
    out: Path
    table: Any  # pandas.DataFrame
    paths: tuple[Path, ...]
    failed: tuple[Cell, ...]
    wall_seconds: float


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
    check_real_dirs(out)
    out.mkdir(exist_ok=True)
    with RunLock(out):  # the writer of a cell holds its seed directory's lock, on Ray as in workers
        return dict(train_seed(cfg, seed, out, SilentProgress(), resume=resume).__dict__)


def _check_distinct(what: str, names: Sequence[str]) -> None:
    """Refuse (one line) a grid list naming one entry twice."""
    twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if twice is not None:
        raise UserError(f"{what} must be distinct: {twice} is given twice")


def run_benchmark(
    out: Path,
    envs: Sequence[str] = DEFAULT_ENVS,
    presets: Sequence[str] = DEFAULT_PRESETS,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    steps: int = DEFAULT_STEPS,
    workers: int = 2,
    address: str | None = None,
    quiet: bool = False,
    overwrite: bool = False,
) -> BenchmarkResult:
    """Run every unfinished cell of the grid, then write the table and the figure (see the module docstring).

    Everything is checked before anything is written: the grid (no entry twice), ``workers``, the configs,
    ``out`` and, in it, each run directory's saved config. Failed cells are reported on one line each and left
    unfinished (a later call retries them); the table covers the finished seeds. A Ctrl-C or SIGTERM stops it
    at any point (raising KeyboardInterrupt or Terminated), also while it starts.
    """
    check_cli("--workers", workers)
    if not envs or not presets or not seeds:
        raise UserError("the grid is empty: give at least one env, one preset and one seed")
    _check_distinct("envs", envs)
    _check_distinct("presets", presets)
    with stop_signals_raise():
        for env_id in envs:
            inspect_env(env_id)
        grid = {(e, p): cell_config(p, e, steps, seeds) for e in envs for p in presets}
        out = check_run_path(out)
        check_benchmark_dir(out, overwrite)
        _run_configs(out, grid, overwrite)
        out.mkdir(parents=True, exist_ok=True)
        with RunLock(out):  # one benchmark writes into OUT at a time
            cells = [Cell(e, p, s) for s in seeds for e in envs for p in presets]  # seed-major: every task early
            return _run_grid(out, grid, cells, (envs, presets, seeds, steps), workers, address, quiet, overwrite)


def _run_configs(out: Path, grid: dict[tuple[str, str], Config], overwrite: bool) -> dict[tuple[str, str], Config]:
    """The config each run directory of the grid is to hold (:func:`mjreinforce.suite.directory.run_config`)."""
    if overwrite:
        return dict(grid)
    return {(e, p): run_config(out / run_name(p, e), cfg) for (e, p), cfg in grid.items()}


def _run_grid(
    out: Path,
    grid: dict[tuple[str, str], Config],
    cells: list[Cell],
    summary: tuple[Sequence[str], Sequence[str], Sequence[int], int],
    workers: int,
    address: str | None,
    quiet: bool,
    overwrite: bool,
) -> BenchmarkResult:
    """:func:`run_benchmark`'s writing part, under the lock of ``out``."""
    say = (lambda text: None) if quiet else (lambda text: print(text, flush=True))
    with ExitStack() as run_locks:  # held while the cells run: no train --resume or --overwrite meanwhile
        configs, plans = _open_grid(out, grid, cells, overwrite, run_locks)
        todo = [c for c in cells if plans[c].action != "done"]
        say(f"benchmark: {len(cells)} cells, {len(cells) - len(todo)} already finished, {len(todo)} to run")
        start = time.perf_counter()
        jobs = [(c, configs[(c.env_id, c.preset)], cell_dir(out, c), plans[c].action == "resume") for c in todo]
        runner = _run_on_ray if address is not None else _run_in_workers
        failed = runner(jobs, workers, address, quiet, say)
        wall = time.perf_counter() - start
    envs, presets, seeds, steps = summary
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


def _open_grid(
    out: Path, grid: dict[tuple[str, str], Config], cells: list[Cell], overwrite: bool, run_locks: ExitStack
) -> tuple[dict[tuple[str, str], Config], dict[Cell, CellPlan]]:
    """Lock the run directories (into ``run_locks``), check ``out`` again, plan every cell (holding the locks
    of their seed directories), then write: ``overwrite``'s deletions, the marker, each run directory's marker
    and config; clear the cells to redo. Returns each run directory's config and each cell's plan."""
    for run_dir in {*benchmark_run_dirs(out), *(p for p in _run_dirs(out, grid) if p.is_dir())}:
        run_locks.enter_context(RunLock(run_dir))
    check_benchmark_dir(out, overwrite)  # again, under the locks
    configs = _run_configs(out, grid, overwrite)
    with ExitStack() as cell_locks:
        plans = plan_cells(out, configs, cells, overwrite, cell_locks)
        open_benchmark_dir(out, [p.name for p in _run_dirs(out, grid)], overwrite)
        for (env_id, preset), cfg in configs.items():
            run_dir = out / run_name(preset, env_id)
            if not run_dir.is_dir():
                run_dir.mkdir()
                run_locks.enter_context(RunLock(run_dir))
            write_run_dir(run_dir, cfg, preset)
        for cell, plan in plans.items():
            announce(cell, plan)
            if plan.action == "redo":
                for entry in cell_dir(out, cell).iterdir():
                    if entry.name != LOCK_NAME:
                        remove_entry(entry)
    return configs, plans


def _run_dirs(out: Path, grid: dict[tuple[str, str], Config]) -> list[Path]:
    return [out / run_name(p, e) for e, p in grid]


Job = tuple[Cell, Config, Path, bool]
"""A cell to run: the cell, its config, its seed directory, whether it resumes."""


def _line(cell: Cell, summary: dict[str, Any]) -> str:
    final = summary.get("final_eval_mean_return")
    return (
        f"{cell}: final eval {final if final is None else round(final, 1)}, "
        f"{summary['env_steps']:,} env steps, {summary['wall_seconds']:.0f} s"
    )


def _run_in_workers(
    jobs: list[Job], workers: int, address: str | None, quiet: bool, say: Callable[[str], None]
) -> list[Cell]:
    """Cells in worker processes, one process per cell, ``workers`` at once
    (:func:`mjreinforce.training.workers.run_jobs`: the first Ctrl-C or SIGTERM checkpoints the running cells
    and stops them, a second stops them at once); a line per cell as it ends (stderr for one that failed or
    was interrupted). Returns the cells that did not finish."""
    if not jobs:
        return []
    cells = {out: cell for cell, _, out, _ in jobs}

    def on_outcome(job: SeedJob, outcome: Outcome) -> None:
        cell = cells[job.out]
        if outcome.result is not None:
            say(_line(cell, outcome.result.__dict__))
        else:
            say_unfinished(f"mjreinforce benchmark: {cell}", outcome)

    seed_jobs = [SeedJob(cfg, cell.seed, out, resume) for cell, cfg, out, resume in jobs]
    outcomes = run_jobs(seed_jobs, workers, SilentProgress(), on_outcome)
    return [job[0] for job, outcome in zip(jobs, outcomes, strict=True) if outcome.kind != "finished"]


def _run_on_ray(jobs: list[Job], workers: int, address: str | None, quiet: bool, say: Callable[[str], None]) -> list:
    """Cells as Ray tasks (one CPU each) on the cluster at ``address`` (``local``: a new local instance).
    The run directories must be on a file system the cluster's nodes share."""
    import ray

    failed: list[Cell] = []
    started = connect_ray(address, workers, quiet)
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(run_cell)
        refs = {task.remote(cfg, cell.seed, out, resume): cell for cell, cfg, out, resume in jobs}
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            cell = refs.pop(done[0])
            try:
                say(_line(cell, ray.get(done[0])))
            except Exception as exc:  # noqa: BLE001 -- RayTaskError wraps the cell's own error
                failed.append(cell)
                cause = getattr(exc, "cause", None) or exc
                print(f"mjreinforce benchmark: {cell} failed: {error_line(cause)}", file=sys.stderr, flush=True)
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
