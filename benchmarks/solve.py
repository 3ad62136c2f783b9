"""Time to solve: train each seed until the deterministic evaluation mean reaches the target.

Seeds run one after another in this (pinned) process, so wall seconds are single-core times.
Steps and seconds to the target come from each seed's ``summary.json`` (``steps_to_target``,
``seconds_to_target``); ``seconds`` include the evaluations, as a user's run would.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from benchmarks.throughput import read_seed_summary
from mjreinforce.config import Config, validate, with_overrides
from mjreinforce.training.loop import train_seed
from mjreinforce.training.progress import SilentProgress

TARGET_RETURN = 1000.0
EVAL_EPISODES = 10
DEFAULT_EVAL_EVERY_STEPS = 5000  # about 5 updates of whole 1000-step episodes


@dataclass(frozen=True)
class SeedSolve:
    """One seed's outcome. ``steps_to_target``/``seconds_to_target`` are None when the cap was hit."""

    seed: int
    status: str
    env_steps: int
    wall_seconds: float
    best_eval_mean_return: float | None
    steps_to_target: int | None
    seconds_to_target: float | None
    cpu_seconds: float
    """CPU time this process used for the whole seed (setup included): unlike wall time, it does
    not grow when other processes share the core."""

    @property
    def solved(self) -> bool:
        return self.steps_to_target is not None


@dataclass(frozen=True)
class SolveSummary:
    """Across seeds: unsolved seeds count as ``inf`` in the median and the worst case, so a
    median is finite only when more than half the seeds solved."""

    solved: int
    seeds: int
    median_steps: float
    worst_steps: float
    median_seconds: float
    worst_seconds: float


def solve_config(preset: Config, env_id: str, step_cap: int) -> Config:
    """The preset with ``target_return = 1000``, the preset's evaluation schedule (every 5000 env steps if it has none),
    ``eval_episodes = 10``, a step cap, and one torch thread; everything else as shipped."""
    overrides = {"total_steps": step_cap, "eval_episodes": EVAL_EPISODES, "torch_threads": 1}
    if not preset.evaluates:
        overrides["eval_every_steps"] = DEFAULT_EVAL_EVERY_STEPS
    cfg = with_overrides(preset, overrides)
    return validate(replace(cfg, env_id=env_id, target_return=TARGET_RETURN))


def solve_seed(cfg: Config, seed: int) -> SeedSolve:
    """Train one seed of ``cfg`` in a temporary directory and read its summary."""
    cpu_start = time.process_time()
    with tempfile.TemporaryDirectory(prefix="mjreinforce-solve-") as tmp:
        out = Path(tmp) / f"seed_{seed}"
        train_seed(cfg, seed, out, SilentProgress())
        s = read_seed_summary(out)
    cpu_seconds = time.process_time() - cpu_start
    return SeedSolve(
        seed=seed,
        status=str(s["status"]),
        env_steps=int(s["env_steps"]),
        wall_seconds=float(s["wall_seconds"]),
        best_eval_mean_return=s.get("best_eval_mean_return"),
        steps_to_target=s.get("steps_to_target"),
        seconds_to_target=s.get("seconds_to_target"),
        cpu_seconds=cpu_seconds,
    )


def summarize(results: list[SeedSolve]) -> SolveSummary:
    """Solved count, median and worst steps/seconds to target (``inf`` for unsolved seeds)."""
    steps = [float(r.steps_to_target) if r.steps_to_target is not None else math.inf for r in results]
    seconds = [float(r.seconds_to_target) if r.seconds_to_target is not None else math.inf for r in results]
    return SolveSummary(
        solved=sum(r.solved for r in results),
        seeds=len(results),
        median_steps=_median(steps),
        worst_steps=max(steps, default=math.inf),
        median_seconds=_median(seconds),
        worst_seconds=max(seconds, default=math.inf),
    )


def _median(values: list[float]) -> float:
    """Median with ``inf`` entries; the mean of ``x`` and ``inf`` is ``inf`` (not NaN)."""
    if not values:
        return math.inf
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return statistics.fmean(ordered[mid - 1 : mid + 1])
