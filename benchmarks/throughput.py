"""Throughput measurements: raw env stepping with random actions, and training runs of the presets.

Every function returns one :class:`Measurement` (env steps, episodes, seconds) and never asserts.
Timers start after the envs and networks are built, like the trainer's ``wall_seconds``.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import gymnasium as gym
import numpy as np

from mjreinforce.config import Backend, Config, validate, with_overrides
from mjreinforce.envs.vector import EnvpoolVecEnv, GymnasiumVecEnv, VecEnv, inspect_env
from mjreinforce.training.loop import train_seed
from mjreinforce.training.progress import SilentProgress


@dataclass(frozen=True)
class Measurement:
    """One timed run: ``env_steps`` summed over all envs, finished ``episodes``, wall ``seconds``
    and ``cpu_seconds`` (CPU time of this process, all threads: it does not grow while other
    processes hold the core, so it is the steadier number on a shared machine)."""

    env_steps: int
    episodes: int
    seconds: float
    cpu_seconds: float

    @property
    def steps_per_second(self) -> float:
        return self.env_steps / max(self.seconds, 1e-9)

    @property
    def steps_per_cpu_second(self) -> float:
        return self.env_steps / max(self.cpu_seconds, 1e-9)


class Stopwatch:
    """Wall time (``perf_counter``) and process CPU time (``process_time``) since construction."""

    def __init__(self) -> None:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        """``(wall seconds, CPU seconds)`` so far."""
        return time.perf_counter() - self.wall0, time.process_time() - self.cpu0


@dataclass
class Row:
    """A throughput row (``key`` for lookups, ``name`` for the report) and its repeated
    measurements; the report gives their median."""

    key: str
    name: str
    env_id: str
    backend: str
    num_envs: int
    note: str = ""
    runs: list[Measurement] = field(default_factory=list)

    @property
    def median(self) -> float:
        """Median wall-clock steps/s over the repeats."""
        return statistics.median(m.steps_per_second for m in self.runs) if self.runs else float("nan")

    @property
    def cpu_median(self) -> float:
        """Median steps per CPU second over the repeats."""
        return statistics.median(m.steps_per_cpu_second for m in self.runs) if self.runs else float("nan")


def _random_actions(rng: np.random.Generator, low: np.ndarray, high: np.ndarray, n: int) -> np.ndarray:
    """Uniform actions in the Box, ``(n, act_dim)`` float64."""
    return rng.uniform(low, high, size=(n, low.shape[0]))


def raw_gym_single(env_id: str, steps: int, seed: int) -> Measurement:
    """A plain ``gym.make`` loop: step with uniform random actions, reset when an episode ends."""
    spec = inspect_env(env_id)
    env = gym.make(env_id)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    episodes = 0
    watch = Stopwatch()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(_random_actions(rng, spec.act_low, spec.act_high, 1)[0])
        if terminated or truncated:
            env.reset()
            episodes += 1
    seconds, cpu_seconds = watch.read()
    env.close()
    return Measurement(steps, episodes, seconds, cpu_seconds)


def raw_vec(backend: Backend, env_id: str, num_envs: int, steps: int, seed: int) -> Measurement:
    """Step mjreinforce's ``GymnasiumVecEnv`` or ``EnvpoolVecEnv`` (same-step autoreset included)
    with uniform random actions for ``ceil(steps / num_envs)`` vector steps."""
    spec = inspect_env(env_id)
    cfg = Config(env_id=env_id, backend=backend)
    env: VecEnv = (EnvpoolVecEnv if backend == "envpool" else GymnasiumVecEnv)(cfg, num_envs, seed)
    rng = np.random.default_rng(seed)
    env.reset()
    vector_steps = -(-steps // num_envs)
    episodes = 0
    watch = Stopwatch()
    for _ in range(vector_steps):
        step = env.step(_random_actions(rng, spec.act_low, spec.act_high, num_envs))
        episodes += int(np.count_nonzero(step.terminated | step.truncated))
    seconds, cpu_seconds = watch.read()
    env.close()
    return Measurement(vector_steps * num_envs, episodes, seconds, cpu_seconds)


def raw_envpool_native(env_id: str, num_envs: int, steps: int, seed: int) -> Measurement:
    """envpool's own API with its own autoreset (an ended env resets on its *next* step, and that
    reset step counts as a step here): the ceiling for what the same-step wrapper costs."""
    import envpool

    spec = inspect_env(env_id)
    env = envpool.make_gymnasium(env_id, num_envs=num_envs, seed=seed)
    rng = np.random.default_rng(seed)
    env.reset()
    vector_steps = -(-steps // num_envs)
    episodes = 0
    watch = Stopwatch()
    for _ in range(vector_steps):
        _, _, terminated, truncated, _ = env.step(_random_actions(rng, spec.act_low, spec.act_high, num_envs))
        episodes += int(np.count_nonzero(terminated | truncated))
    seconds, cpu_seconds = watch.read()
    env.close()
    return Measurement(vector_steps * num_envs, episodes, seconds, cpu_seconds)


def train_config(preset: Config, env_id: str, budget: tuple[str, int]) -> Config:
    """The preset as shipped, with the benchmark's env id and budget, no evaluation, no target,
    no TensorBoard, one torch thread."""
    unit, total = budget
    budget_key = "total_episodes" if unit == "episodes" else "total_steps"
    cfg = with_overrides(preset, {budget_key: total, "eval_every_steps": 0, "tensorboard": False, "torch_threads": 1})
    return validate(replace(cfg, env_id=env_id, target_return=None))


def read_seed_summary(seed_out: Path) -> dict:
    """The trainer's ``seed_<s>/summary.json``."""
    with open(seed_out / "summary.json") as f:
        return json.load(f)


def train_run(cfg: Config, seed: int) -> tuple[Measurement, str]:
    """One seed of ``cfg`` through ``train_seed`` in a temporary directory; returns the
    measurement (wall seconds from its ``summary.json``; CPU seconds of the whole call, so
    including the setup that ``wall_seconds`` leaves out) and the backend it resolved to."""
    with tempfile.TemporaryDirectory(prefix="mjreinforce-bench-") as tmp:
        out = Path(tmp) / f"seed_{seed}"
        watch = Stopwatch()
        train_seed(cfg, seed, out, SilentProgress())
        _, cpu_seconds = watch.read()
        summary = read_seed_summary(out)
    wall = float(summary["wall_seconds"])
    measurement = Measurement(int(summary["env_steps"]), int(summary["episodes"]), wall, cpu_seconds)
    return measurement, str(summary.get("backend", cfg.backend))
