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

from mjreinforce.algo.normalization import RunningNormalizer
from mjreinforce.algo.policy import make_policy, value_network
from mjreinforce.algo.returns import advantages_and_targets
from mjreinforce.algo.rollout import Collector
from mjreinforce.algo.update import Learner
from mjreinforce.config import Config
from mjreinforce.envs.vector import inspect_env, make_vec_env, resolve_backend
from mjreinforce.files import write_json_atomic
from mjreinforce.runs import checkpoint_dir
from mjreinforce.runs.layout import check_real_dirs
from mjreinforce.training import snapshot
from mjreinforce.training.counters import Counters
from mjreinforce.training.evaluation import EVAL_SEED_OFFSET, Evaluator, eval_config
from mjreinforce.training.interrupt import GracefulInterrupt
from mjreinforce.training.progress import Progress, ProgressEvent
from mjreinforce.training.records import SeedRecords
from mjreinforce.training.resume import resume_seed


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
    final_eval_mean_return: float | None = None
    """Mean return of the last deterministic evaluation, which is at the end of training."""
    eval_env_steps: int = 0
    """Env steps simulated by evaluations (their cost, beside ``env_steps`` of training)."""
    steps_to_target: int | None = None
    seconds_to_target: float | None = None
    diverged_at_update: int | None = None
    divergence: str | None = None
    """With status "diverged": what was not finite after update ``diverged_at_update``, e.g. "policy loss is nan"."""


class Budget:
    """Progress through ``total_steps`` or ``total_episodes``."""

    def __init__(self, cfg: Config) -> None:
        self.unit, self.total = cfg.budget

    def spent(self, episodes: int, env_steps: int) -> int:
        return episodes if self.unit == "episodes" else env_steps

    def fraction(self, episodes: int, env_steps: int) -> float:
        return min(1.0, self.spent(episodes, env_steps) / self.total)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy's global RNG and torch, as the tutorial does once per seed."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train_seed(cfg: Config, seed: int, out: Path, progress: Progress, resume: bool = False) -> SeedResult:
    """Train one seed into ``out`` (its ``seed_<s>`` directory) and return its result.

    With ``resume`` the seed continues from its latest checkpoint (tables cut back to it; the caller has
    verified them with :func:`mjreinforce.training.resume.verify_seed`). A symlinked seed, ``checkpoints/``
    or ``tb/`` directory is refused. The first Ctrl-C or SIGTERM finishes the current update, writes a
    checkpoint and stops the seed.
    An update that leaves a non-finite loss, gradient norm, std or weight (:meth:`Learner.divergence`) ends the
    seed with status "diverged" and no checkpoint of that state: the last good checkpoint stays the latest.
    """
    torch.set_num_threads(cfg.torch_threads)
    spec = inspect_env(cfg.env_id)
    backend = resolve_backend(cfg)
    seed_everything(seed)
    policy = make_policy(cfg, spec.obs_dim, spec.act_dim, spec.act_low, spec.act_high)
    learner = Learner(cfg, policy, value_network(cfg, spec.obs_dim))
    normalizer = RunningNormalizer(spec.obs_dim, enabled=cfg.normalize_obs)
    collector = Collector(make_vec_env(cfg, cfg.num_envs, seed, backend=backend), spec.obs_dim, spec.act_dim)
    evaluator = (
        Evaluator(eval_config(cfg, backend=backend), cfg.eval_episodes, seed + EVAL_SEED_OFFSET, backend)
        if cfg.evaluates
        else None
    )
    counters = Counters(window=deque(maxlen=cfg.stats_window))
    check_real_dirs(out)  # critical: never write through a symlinked seed, checkpoints or tb directory
    out.mkdir(parents=True, exist_ok=True)
    if resume:
        counters = resume_seed(out, learner, normalizer, collector) or counters
    logs = SeedRecords(cfg, seed, out, counters, purge_step=collector.env_steps if resume else None)
    budget = Budget(cfg)
    start = time.perf_counter() - counters.wall_seconds
    status = "failed"
    diverged: tuple[int, str] | None = None

    def wall() -> float:
        return time.perf_counter() - start

    def report(rate: float, final: bool = False) -> None:
        done = budget.spent(counters.episodes, collector.env_steps)
        mean = _mean(counters.window)
        progress.update(
            ProgressEvent(seed, counters.episodes, collector.env_steps, mean, rate, done, budget.total, final)
        )

    def save_checkpoint() -> None:
        counters.wall_seconds = wall()
        check_real_dirs(out)
        tensors, meta = snapshot.capture(cfg, seed, learner, normalizer, collector, counters, logs.digests())
        checkpoint_dir.save_checkpoint_rotating(
            out / "checkpoints",
            counters.updates,
            tensors,
            meta,
            info={"updates": counters.updates, "env_steps": collector.env_steps},
        )

    def evaluate() -> bool:
        """One deterministic evaluation, logged; True when it reaches ``target_return``."""
        assert evaluator is not None
        evaluation = evaluator(policy, normalizer)
        counters.eval_env_steps += evaluator.last_env_steps
        counters.last_eval, counters.last_eval_steps = evaluation.mean_return, collector.env_steps
        logs.evaluation(evaluation, collector.env_steps, wall())
        return cfg.target_return is not None and evaluation.mean_return >= cfg.target_return

    with GracefulInterrupt() as interrupt:
        try:
            while budget.spent(counters.episodes, collector.env_steps) < budget.total:
                # the schedule reads the progress before the rollout: no update runs at learning rate 0
                learner.set_progress(budget.fraction(counters.episodes, collector.env_steps))
                steps_before = collector.env_steps
                # 1. collect a rollout with the current policy (no autograd graph)
                rollout = collector.collect(
                    policy,
                    normalizer,
                    cfg.rollout_steps,
                    on_episode=lambda ep: logs.episode(ep, wall()),
                    min_steps=cfg.episode_batch_steps,
                )
                # 2. returns: bootstrap values and advantages (pure functions; terminated and truncated apart)
                obs, next_obs = normalizer(rollout.obs), normalizer(rollout.next_obs)
                batch = advantages_and_targets(
                    rollout.rewards,
                    rollout.terminated,
                    rollout.truncated,
                    learner.values(obs),
                    learner.values(next_obs),
                    method=cfg.advantage,
                    gamma=cfg.gamma,
                    lam=cfg.gae_lambda,
                    bootstrap_truncated=cfg.bootstrap_truncated,
                )
                # 3. update; normalizer statistics change only after it
                metrics = learner.update(obs, rollout.raw_actions, rollout.valid, batch)
                normalizer.update(rollout.obs[rollout.valid])
                counters.updates += 1
                # 4. log
                rate = collector.env_steps / max(wall(), 1e-9)
                logs.update(metrics, rate, collector.env_steps)
                report(rate)
                reason = learner.divergence(metrics)
                if reason is not None:
                    diverged = (counters.updates, reason)  # critical: no evaluation or checkpoint of this state
                    break
                # 5. evaluate (deterministic, one reused vector env, fixed seeds) and stop at the target
                if eval_due(cfg, counters.updates, steps_before, collector.env_steps) and evaluate():
                    counters.target_hit = (collector.env_steps, wall())
                    break
                # 6. checkpoint
                if cfg.checkpoint_every and counters.updates % cfg.checkpoint_every == 0:
                    save_checkpoint()
                if interrupt.requested:
                    break
            status = "diverged" if diverged else "interrupted" if interrupt.requested else "finished"
            if status == "finished" and evaluator is not None and counters.last_eval_steps != collector.env_steps:
                evaluate()  # the final policy is always evaluated
            if not diverged:
                save_checkpoint()
        except KeyboardInterrupt:
            status = "interrupted"  # a second Ctrl-C or SIGTERM: stop now, keep the last checkpoint
            raise
        finally:
            result = _seed_result(seed, status, counters, collector.env_steps, wall(), diverged)
            report(result.steps_per_second, final=True)
            write_json_atomic(out / "summary.json", result.__dict__ | {"backend": backend})
            logs.close()
            collector.env.close()
            if evaluator is not None:
                evaluator.close()
    if status == "interrupted":
        raise interrupt.exception()
    return result


def eval_due(cfg: Config, updates: int, steps_before: int, steps_now: int) -> bool:
    """True when the update that took the env steps from ``steps_before`` to ``steps_now`` (and made the
    update count ``updates``) is followed by an evaluation: it crossed a multiple of ``eval_every_steps``,
    or (the older schedule) ``updates`` is a multiple of ``eval_every``."""
    if cfg.eval_every_steps:
        return steps_now // cfg.eval_every_steps > steps_before // cfg.eval_every_steps
    return bool(cfg.eval_every) and updates % cfg.eval_every == 0


def _seed_result(
    seed: int, status: str, c: Counters, env_steps: int, wall: float, diverged: tuple[int, str] | None
) -> SeedResult:
    return SeedResult(
        seed=seed,
        status=status,
        episodes=c.episodes,
        env_steps=env_steps,
        wall_seconds=wall,
        final_window_mean_return=_mean(c.window),
        steps_per_second=env_steps / max(wall, 1e-9),
        best_eval_mean_return=c.best_eval,
        final_eval_mean_return=c.last_eval,
        eval_env_steps=c.eval_env_steps,
        steps_to_target=c.target_hit[0] if c.target_hit else None,
        seconds_to_target=c.target_hit[1] if c.target_hit else None,
        diverged_at_update=diverged[0] if diverged else None,
        divergence=diverged[1] if diverged else None,
    )


def _mean(window: deque[float]) -> float:
    return float(np.mean(window)) if window else float("nan")
