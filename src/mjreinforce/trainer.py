"""The training loop: collect, returns, update, log, evaluate, checkpoint -- read top to bottom.

:func:`train` runs every seed of a config into one run directory; :func:`train_seed` is one
seed's loop, which worker processes call directly.
"""

from __future__ import annotations

import json
import random
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mjreinforce import checkpoint, checkpoint_files, state
from mjreinforce import config as config_mod
from mjreinforce.config import Config, validate
from mjreinforce.envs import inspect_env, make_vec_env, resolve_backend
from mjreinforce.errors import UserError
from mjreinforce.evaluation import EVAL_SEED_OFFSET, run_episodes
from mjreinforce.interrupt import GracefulInterrupt
from mjreinforce.normalization import RunningNormalizer
from mjreinforce.policy import make_policy
from mjreinforce.progress import Progress, ProgressEvent, make_progress
from mjreinforce.records import SeedRecords
from mjreinforce.rollout import Collector
from mjreinforce.rundir import (
    prepare_run_dir,
    seed_dir,
    truncate_csv,
    write_json_atomic,
)
from mjreinforce.state import Counters, value_network
from mjreinforce.update import Learner


@dataclass(frozen=True)
class SeedResult:
    """What one seed's training produced (also its ``summary.json``)."""

    seed: int
    status: str
    episodes: int
    env_steps: int
    wall_seconds: float
    final_window_mean_return: float
    steps_per_second: float
    best_eval_mean_return: float | None = None
    steps_to_target: int | None = None
    seconds_to_target: float | None = None


@dataclass(frozen=True)
class RunResult:
    """A finished :func:`train` call: where it wrote and each seed's result."""

    run_dir: Path
    config: Config
    seeds: dict[int, SeedResult]
    plots: tuple[Path, ...] = ()


class Budget:
    """Progress through ``total_steps`` or ``total_episodes``."""

    def __init__(self, cfg: Config) -> None:
        self.unit, self.total = cfg.budget

    def done(self, episodes: int, env_steps: int) -> int:
        return episodes if self.unit == "episodes" else env_steps

    def fraction(self, episodes: int, env_steps: int) -> float:
        return min(1.0, self.done(episodes, env_steps) / self.total)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy's global RNG and torch, as the tutorial does once per seed."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train_seed(cfg: Config, seed: int, out: Path, progress: Progress, resume: bool = False) -> SeedResult:
    """Train one seed into ``out`` (its ``seed_<s>`` directory) and return its result.

    With ``resume`` the seed continues from its latest checkpoint (tables cut back to it).
    The first Ctrl-C finishes the current update, writes a checkpoint and stops the seed.
    """
    torch.set_num_threads(cfg.torch_threads)
    spec = inspect_env(cfg.env_id)
    backend = resolve_backend(cfg)
    seed_everything(seed)
    policy = make_policy(cfg, spec.obs_dim, spec.act_dim, spec.act_low, spec.act_high)
    learner = Learner(cfg, policy, value_network(cfg, spec.obs_dim))
    normalizer = RunningNormalizer(spec.obs_dim, enabled=cfg.normalize_obs)
    collector = Collector(make_vec_env(cfg, cfg.num_envs, seed, backend=backend), spec.obs_dim, spec.act_dim)
    counters = Counters(window=deque(maxlen=cfg.stats_window))
    out.mkdir(parents=True, exist_ok=True)
    if resume:
        counters = _resume(out, learner, normalizer, collector) or counters
    logs = SeedRecords(cfg, seed, out, counters, purge_step=collector.env_steps if resume else None)
    budget = Budget(cfg)
    start = time.perf_counter() - counters.wall_seconds
    status = "failed"

    def wall() -> float:
        return time.perf_counter() - start

    def report(rate: float, final: bool = False) -> None:
        done = budget.done(counters.episodes, collector.env_steps)
        mean = _mean(counters.window)
        progress.update(
            ProgressEvent(seed, counters.episodes, collector.env_steps, mean, rate, done, budget.total, final)
        )

    def save_checkpoint() -> None:
        counters.wall_seconds = wall()
        tensors, meta = state.capture(cfg, seed, learner, normalizer, collector, counters)
        checkpoint_files.save_checkpoint_rotating(
            out / "checkpoints",
            counters.updates,
            tensors,
            meta,
            info={"updates": counters.updates, "env_steps": collector.env_steps},
        )

    with GracefulInterrupt() as interrupt:
        try:
            while budget.done(counters.episodes, collector.env_steps) < budget.total:
                # 1. collect a rollout with the current policy (no autograd graph)
                rollout = collector.collect(
                    policy, normalizer, cfg.rollout_steps, on_episode=lambda ep: logs.episode(ep, wall())
                )
                # 2-3. returns/advantages and one update; normalizer statistics change only after it
                learner.set_progress(budget.fraction(counters.episodes, collector.env_steps))
                metrics = learner.update(rollout, normalizer)
                normalizer.update(rollout.obs[rollout.valid])
                counters.updates += 1
                # 4. log
                rate = collector.env_steps / max(wall(), 1e-9)
                logs.update(metrics, rate, collector.env_steps)
                report(rate)
                # 5. evaluate (deterministic, separate envs, fixed seeds) and stop at the target
                if cfg.eval_every and counters.updates % cfg.eval_every == 0:
                    evaluation = run_episodes(
                        cfg, policy, normalizer, cfg.eval_episodes, seed + EVAL_SEED_OFFSET, backend=backend
                    )
                    logs.evaluation(evaluation, collector.env_steps, wall())
                    if cfg.target_return is not None and evaluation.mean_return >= cfg.target_return:
                        counters.target_hit = (collector.env_steps, wall())
                        break
                # 6. checkpoint
                if cfg.checkpoint_every and counters.updates % cfg.checkpoint_every == 0:
                    save_checkpoint()
                if interrupt.requested:
                    break
            status = "interrupted" if interrupt.requested else "finished"
            save_checkpoint()
        except KeyboardInterrupt:
            status = "interrupted"  # a second Ctrl-C: stop now, keep the last checkpoint
            raise
        finally:
            result = _seed_result(seed, status, counters, collector.env_steps, wall())
            report(result.steps_per_second, final=True)
            write_json_atomic(out / "summary.json", result.__dict__ | {"backend": backend})
            logs.close()
            collector.env.close()
    if status == "interrupted":
        raise KeyboardInterrupt
    return result


def _resume(out: Path, learner: Learner, normalizer: RunningNormalizer, collector: Collector) -> Counters | None:
    """Restore the latest checkpoint in ``out`` and cut the tables back to it; None without one."""
    ckpt_dir = out / "checkpoints"
    if not ckpt_dir.exists() or not any(ckpt_dir.glob("ckpt_*.safetensors")):
        truncate_csv(out / "episodes.csv", 0)
        truncate_csv(out / "evals.csv", 0)
        return None
    tensors, meta = checkpoint.load_checkpoint(checkpoint_files.latest_checkpoint(out))
    counters = state.restore(tensors, meta, learner, normalizer, collector)
    truncate_csv(out / "episodes.csv", counters.episodes)
    truncate_csv(out / "evals.csv", counters.evals)
    return counters


def _seed_result(seed: int, status: str, c: Counters, env_steps: int, wall: float) -> SeedResult:
    return SeedResult(
        seed=seed,
        status=status,
        episodes=c.episodes,
        env_steps=env_steps,
        wall_seconds=wall,
        final_window_mean_return=_mean(c.window),
        steps_per_second=env_steps / max(wall, 1e-9),
        best_eval_mean_return=c.best_eval,
        steps_to_target=c.target_hit[0] if c.target_hit else None,
        seconds_to_target=c.target_hit[1] if c.target_hit else None,
    )


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
        from mjreinforce.physics import make_physics_env

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
            from mjreinforce.experiments import run_seeds_parallel

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
        from mjreinforce.plotting import plot_run

        plots = tuple(plot_run(run_dir))
    write_json_atomic(run_dir / "summary.json", summary)
    return RunResult(run_dir, cfg, results, plots)


def resume_run(run_dir: Path | str, **kwargs: Any) -> RunResult:
    """Continue the run in ``run_dir`` with its saved config, also after the process was killed."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.toml").exists():
        raise UserError(f"cannot resume {run_dir}: no config.toml there (not a mjreinforce run directory)")
    cfg = config_mod.from_dict(config_mod.read_toml(run_dir / "config.toml"))
    return train(cfg, run_dir, resume=True, **kwargs)


def _finished_seeds(run_dir: Path, cfg: Config) -> dict[int, SeedResult]:
    """Results of the seeds whose summary says finished (kept as they are on resume)."""
    out: dict[int, SeedResult] = {}
    for seed in cfg.seeds:
        path = seed_dir(run_dir, seed) / "summary.json"
        if path.exists():
            data = json.loads(path.read_text())
            if data.get("status") == "finished":
                out[seed] = SeedResult(**{k: data[k] for k in SeedResult.__dataclass_fields__})
    return out


def _mean(window: deque[float]) -> float:
    return float(np.mean(window)) if window else float("nan")
