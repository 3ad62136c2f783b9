"""One seed's parts: built before its loop, in the order that fixes its random numbers, and closed after it.

:func:`build_seed` seeds Python, NumPy and torch, then builds the policy, the critic, the normalizer, the
collector's envs and the evaluation envs, in that order (the tutorial's: ``tutorial`` starts from its initial
weights), opens the seed's tables and, when resuming, restores its latest checkpoint. :func:`finishing`
wraps the loop: whatever ends it, the seed's ``summary.json`` is written and its files and envs are closed.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mjreinforce.algo.normalization import RewardScaler, RunningNormalizer
from mjreinforce.algo.policy import GaussianPolicy, make_policy, value_network
from mjreinforce.algo.rollout import Collector
from mjreinforce.algo.update import Learner
from mjreinforce.config import Config
from mjreinforce.envs.vector import inspect_env, make_vec_env, resolve_backend
from mjreinforce.files import write_json_atomic
from mjreinforce.runs.layout import check_real_dirs
from mjreinforce.training import snapshot
from mjreinforce.training.counters import Budget, Counters
from mjreinforce.training.evaluation import EVAL_SEED_OFFSET, Evaluator, eval_config
from mjreinforce.training.progress import Progress, ProgressEvent
from mjreinforce.training.records import SeedRecords, SeedResult, seed_result, window_mean


@dataclass(frozen=True)
class SeedParts:
    """What one seed's loop works with. ``started`` is the ``perf_counter`` time the seed's wall clock
    counts from (a resumed seed's earlier wall seconds included)."""

    cfg: Config
    seed: int
    out: Path
    backend: str
    learner: Learner
    normalizer: RunningNormalizer
    reward_scaler: RewardScaler
    collector: Collector
    evaluator: Evaluator | None
    counters: Counters
    logs: SeedRecords
    budget: Budget
    started: float

    @property
    def policy(self) -> GaussianPolicy:
        """The policy being trained (the learner's)."""
        return self.learner.policy

    def wall(self) -> float:
        """Wall seconds of this seed so far."""
        return time.perf_counter() - self.started

    def report(self, progress: Progress, rate: float, final: bool = False) -> None:
        """Send the seed's progress (``rate``: env steps per second) to ``progress``."""
        c, steps = self.counters, self.collector.env_steps
        spent = self.budget.spent(c.episodes, steps)
        mean = window_mean(c.window)
        progress.update(ProgressEvent(self.seed, c.episodes, steps, mean, rate, spent, self.budget.total, final))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy's global RNG and torch, as the tutorial does once per seed."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_seed(cfg: Config, seed: int, out: Path, resume: bool) -> SeedParts:
    """Build the parts of seed ``seed`` writing into ``out`` (see the module docstring). With ``resume`` its
    latest checkpoint is restored and its tables cut back to it (none: it starts over). A symlinked seed,
    ``checkpoints/`` or ``tb/`` directory is refused."""
    torch.set_num_threads(cfg.torch_threads)
    spec = inspect_env(cfg)
    backend = resolve_backend(cfg)
    # critical: this order fixes the random numbers of the seed (weights, then envs)
    seed_everything(seed)
    policy = make_policy(cfg, spec.obs_dim, spec.act_dim, spec.act_low, spec.act_high)
    learner = Learner(cfg, policy, value_network(cfg, spec.obs_dim))
    normalizer = RunningNormalizer(spec.obs_dim, enabled=cfg.normalize_obs)
    reward_scaler = RewardScaler(cfg.num_envs, cfg.gamma, enabled=bool(cfg.normalize_rewards))
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
        counters = snapshot.restore_latest(out, learner, normalizer, reward_scaler, collector) or counters
    logs = SeedRecords(cfg, seed, out, counters, purge_step=collector.env_steps if resume else None)
    started = time.perf_counter() - counters.wall_seconds
    return SeedParts(
        cfg,
        seed,
        out,
        backend,
        learner,
        normalizer,
        reward_scaler,
        collector,
        evaluator,
        counters,
        logs,
        Budget(cfg),
        started,
    )


@dataclass
class SeedEnd:
    """How the loop ended: ``status`` ("failed" until the loop says otherwise), the divergence if any
    (the update and what was not finite), and the :class:`SeedResult` once the seed is closed."""

    status: str = "failed"
    diverged: tuple[int, str] | None = None
    result: SeedResult | None = None


@contextmanager
def finishing(parts: SeedParts, progress: Progress) -> Iterator[SeedEnd]:
    """Around the loop: on the way out, whatever ended it, send the final progress event, write the seed's
    ``summary.json`` and close its tables and envs. A KeyboardInterrupt inside (a second Ctrl-C or SIGTERM:
    stop now) records the seed as "interrupted" and propagates."""
    end = SeedEnd()
    try:
        yield end
    except KeyboardInterrupt:
        end.status = "interrupted"
        raise
    finally:
        wall = parts.wall()
        end.result = seed_result(parts.seed, end.status, parts.counters, parts.collector.env_steps, wall, end.diverged)
        parts.report(progress, end.result.steps_per_second, final=True)
        write_json_atomic(parts.out / "summary.json", end.result.__dict__ | {"backend": parts.backend})
        parts.logs.close()
        parts.collector.env.close()
        if parts.evaluator is not None:
            parts.evaluator.close()
