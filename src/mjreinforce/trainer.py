"""The training loop: collect, returns, update, log, evaluate, checkpoint -- read top to bottom.

:func:`train` runs every seed of a config into one run directory; :func:`train_seed` is one
seed's loop, which worker processes call directly.
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mjreinforce import config as config_mod
from mjreinforce.config import Config, validate
from mjreinforce.envs import inspect_env, make_vec_env, resolve_backend
from mjreinforce.errors import UserError
from mjreinforce.evaluation import EVAL_SEED_OFFSET, run_episodes
from mjreinforce.normalization import RunningNormalizer
from mjreinforce.policy import ValueNetwork, make_policy
from mjreinforce.progress import Progress, ProgressEvent, make_progress
from mjreinforce.rollout import Collector, Episode
from mjreinforce.rundir import EPISODE_COLUMNS, EVAL_COLUMNS, CsvLog, prepare_run_dir, seed_dir, write_json_atomic
from mjreinforce.update import Learner, UpdateMetrics


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


def train_seed(cfg: Config, seed: int, out: Path, progress: Progress) -> SeedResult:
    """Train one seed into ``out`` (its ``seed_<s>`` directory) and return its result."""
    torch.set_num_threads(cfg.torch_threads)
    spec = inspect_env(cfg.env_id)
    backend = resolve_backend(cfg)
    seed_everything(seed)
    policy = make_policy(cfg, spec.obs_dim, spec.act_dim, spec.act_low, spec.act_high)
    value = ValueNetwork(spec.obs_dim, cfg.hidden_sizes, cfg.activation) if cfg.use_critic else None
    learner = Learner(cfg, policy, value)
    normalizer = RunningNormalizer(spec.obs_dim, enabled=cfg.normalize_obs)
    env = make_vec_env(cfg, cfg.num_envs, seed, backend=backend)
    collector = Collector(env, spec.obs_dim, spec.act_dim)
    budget = Budget(cfg)
    out.mkdir(parents=True, exist_ok=True)
    episode_log = CsvLog(out / "episodes.csv", EPISODE_COLUMNS)
    eval_log = CsvLog(out / "evals.csv", EVAL_COLUMNS)
    writer = _tensorboard(cfg, out)
    window: deque[float] = deque(maxlen=cfg.stats_window)
    episodes = updates = 0
    best_eval: float | None = None
    target_hit: tuple[int, float] | None = None
    start = time.perf_counter()
    status = "finished"

    def record(ep: Episode) -> None:
        nonlocal episodes
        episodes += 1
        window.append(ep.ret)
        wall = time.perf_counter() - start
        episode_log.write((seed, episodes, ep.env_steps, ep.ret, ep.length, int(ep.terminated), int(ep.truncated),
                           round(wall, 4)))
        if writer is not None:
            writer.add_scalar("episode/return", ep.ret, ep.env_steps)
            writer.add_scalar("episode/length", ep.length, ep.env_steps)

    try:
        while budget.done(episodes, collector.env_steps) < budget.total:
            # 1. collect a rollout with the current policy (no autograd graph)
            rollout = collector.collect(policy, normalizer, cfg.rollout_steps, on_episode=record)
            # 2-3. returns/advantages and one update (normalizer statistics still frozen)
            learner.set_progress(budget.fraction(episodes, collector.env_steps))
            metrics = learner.update(rollout, normalizer)
            normalizer.update(rollout.obs[rollout.valid])
            updates += 1
            # 4. log
            elapsed = time.perf_counter() - start
            rate = collector.env_steps / max(elapsed, 1e-9)
            _log_update(writer, metrics, rate, collector.env_steps)
            progress.update(ProgressEvent(seed, episodes, collector.env_steps, _mean(window), rate,
                                          budget.done(episodes, collector.env_steps), budget.total))
            # 5. evaluate (deterministic, separate envs, fixed seeds)
            if cfg.eval_every and updates % cfg.eval_every == 0:
                result = run_episodes(cfg, policy, normalizer, cfg.eval_episodes, seed + EVAL_SEED_OFFSET,
                                      backend=backend)
                eval_log.write((seed, updates, collector.env_steps, round(time.perf_counter() - start, 4),
                                result.mean_return, float(result.returns.std()), float(result.lengths.mean())))
                if writer is not None:
                    writer.add_scalar("eval/mean_return", result.mean_return, collector.env_steps)
                best_eval = result.mean_return if best_eval is None else max(best_eval, result.mean_return)
                if cfg.target_return is not None and result.mean_return >= cfg.target_return:
                    target_hit = (collector.env_steps, time.perf_counter() - start)
                    break
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        wall = time.perf_counter() - start
        result_ = SeedResult(
            seed=seed, status=status, episodes=episodes, env_steps=collector.env_steps, wall_seconds=wall,
            final_window_mean_return=_mean(window), steps_per_second=collector.env_steps / max(wall, 1e-9),
            best_eval_mean_return=best_eval,
            steps_to_target=target_hit[0] if target_hit else None,
            seconds_to_target=target_hit[1] if target_hit else None,
        )
        progress.update(ProgressEvent(seed, episodes, collector.env_steps, _mean(window), result_.steps_per_second,
                                      budget.done(episodes, collector.env_steps), budget.total, final=True))
        write_json_atomic(out / "summary.json", result_.__dict__ | {"backend": backend})
        episode_log.close()
        eval_log.close()
        env.close()
        if writer is not None:
            writer.close()
    return result_


def train(
    cfg: Config,
    run_dir: Path | str,
    *,
    overwrite: bool = False,
    quiet: bool = False,
    preset: str | None = None,
    plot: bool = True,
    workers: int = 1,
) -> RunResult:
    """Train every seed of ``cfg`` into ``run_dir`` and return a :class:`RunResult`.

    Everything is checked before the directory is created, so bad input leaves nothing behind.
    ``summary.json`` at the top is written last; a run directory without it is unfinished.
    With ``workers > 1`` the seeds run in that many worker processes.
    """
    run_dir = Path(run_dir)
    validate(cfg)
    if workers < 1:
        raise UserError(f"workers must be >= 1, got {workers}")
    inspect_env(cfg.env_id)
    backend = resolve_backend(cfg)
    prepare_run_dir(run_dir, overwrite)
    config_mod.save_toml(cfg, run_dir / "config.toml")
    progress = make_progress(quiet, cfg.budget[0], cfg.log_every_episodes)
    results: dict[int, SeedResult] = {}
    try:
        if workers > 1 and len(cfg.seeds) > 1:
            from mjreinforce.experiments import run_seeds_parallel

            results = run_seeds_parallel(cfg, run_dir, workers, progress)
        else:
            for seed in cfg.seeds:
                results[seed] = train_seed(cfg, seed, seed_dir(run_dir, seed), progress)
    finally:
        progress.close()
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


def _mean(window: deque[float]) -> float:
    return float(np.mean(window)) if window else float("nan")


def _tensorboard(cfg: Config, out: Path):  # type: ignore[no-untyped-def]
    if not cfg.tensorboard:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(out / "tb"))


def _log_update(writer, m: UpdateMetrics, rate: float, step: int) -> None:  # type: ignore[no-untyped-def]
    if writer is None:
        return
    for name, value in m.__dict__.items():
        if value is not None:
            writer.add_scalar(f"train/{name}", value, step)
    writer.add_scalar("train/steps_per_second", rate, step)
