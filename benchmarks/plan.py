"""What the benchmark runs, in which order, with which budgets.

Throughput rows are measured round-robin (repeat 1 of every row, then repeat 2, ...) so slow
drift of a shared machine hits every row alike; the report gives each row's median. The
presets are read from ``mjreinforce/presets`` at run time; only the keys named in
:func:`throughput.train_config` and :func:`solve.solve_config` are overridden.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from benchmarks.solve import SeedSolve, solve_config, solve_seed
from benchmarks.throughput import (
    Measurement,
    Row,
    raw_envpool_native,
    raw_gym_single,
    raw_vec,
    train_config,
    train_run,
)
from benchmarks.tutorial_reference import run_tutorial
from mjreinforce.config import Config, dumps, load_preset

ENV_ID = "InvertedPendulum-v5"
THROUGHPUT_SEED = 1
RAW_NUM_ENVS = 16


@dataclass(frozen=True)
class Budgets:
    """Sizes of every measurement. ``step_caps``: env-step cap per preset for time to solve."""

    repeats: int
    raw_steps: int
    train_steps: int
    tutorial_episodes: int
    step_caps: dict[str, int] = field(default_factory=dict)

    def with_repeats(self, repeats: int) -> Budgets:
        return replace(self, repeats=repeats)


FULL = Budgets(3, 50_000, 50_000, 300, {"vpg": 300_000, "reinforce": 1_000_000, "ppo": 300_000, "tutorial": 1_000_000})
QUICK = Budgets(2, 4_000, 4_000, 20, {"vpg": 20_000, "reinforce": 20_000, "ppo": 20_000, "tutorial": 5_000})
WARMUP = Budgets(1, 1_000, 1_000, 5)

Measure = Callable[[], tuple[Measurement, str]]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def throughput_plan(b: Budgets, presets: dict[str, Config]) -> list[tuple[Row, Measure]]:
    """Every throughput row with the function that measures it once (-> measurement, backend)."""
    tut_env = presets["tutorial"].env_id
    n, s, seed = RAW_NUM_ENVS, b.raw_steps, THROUGHPUT_SEED
    train_cfgs = {
        "tutorial": train_config(presets["tutorial"], ENV_ID, ("episodes", b.tutorial_episodes)),
        "reinforce": train_config(presets["reinforce"], ENV_ID, ("steps", b.train_steps)),
        "vpg": train_config(presets["vpg"], ENV_ID, ("steps", b.train_steps)),
        "ppo": train_config(presets["ppo"], ENV_ID, ("steps", b.train_steps)),
    }
    raw = "raw: gymnasium single env"
    plan: list[tuple[Row, Measure]] = [
        (
            Row("gym_single", f"{raw} (gym.make loop)", ENV_ID, "gymnasium", 1),
            lambda: (raw_gym_single(ENV_ID, s, seed), "gymnasium"),
        ),
        (
            Row("gym_sync", f"raw: gymnasium SyncVectorEnv (GymnasiumVecEnv, N={n})", ENV_ID, "gymnasium", n),
            lambda: (raw_vec("gymnasium", ENV_ID, n, s, seed), "gymnasium"),
        ),
        (
            Row("envpool", f"raw: envpool (EnvpoolVecEnv, same-step reset, N={n})", ENV_ID, "envpool", n),
            lambda: (raw_vec("envpool", ENV_ID, n, s, seed), "envpool"),
        ),
        (
            Row(
                "envpool_native",
                f"raw: envpool native API, next-step autoreset (N={n}; reference)",
                ENV_ID,
                "envpool",
                n,
            ),
            lambda: (raw_envpool_native(ENV_ID, n, s, seed), "envpool"),
        ),
    ]
    if tut_env != ENV_ID:
        name = f"{raw}, the tutorial preset's shipped env id (reference)"
        plan.append(
            (
                Row("gym_single_tutorial_env", name, tut_env, "gymnasium", 1),
                lambda: (raw_gym_single(tut_env, s, seed), "gymnasium"),
            )
        )
    for name, cfg in train_cfgs.items():
        budget = f"{b.tutorial_episodes} episodes" if name == "tutorial" else f"{b.train_steps:,} steps"
        plan.append((Row(name, f"train: preset `{name}` ({budget})", ENV_ID, cfg.backend, cfg.num_envs), _trainer(cfg)))
    original = f"train: the tutorial's original per-step code ({b.tutorial_episodes} episodes)"
    plan.append(
        (
            Row("tutorial_original", original, ENV_ID, "gymnasium", 1),
            lambda: (
                run_tutorial(ENV_ID, b.tutorial_episodes, seed, reseed_every_episode=True).measurement,
                "gymnasium",
            ),
        )
    )
    return plan


def _trainer(cfg: Config) -> Measure:
    return lambda: train_run(cfg, THROUGHPUT_SEED)


def load_presets(names: list[str]) -> dict[str, Config]:
    return {name: load_preset(name) for name in names}


def run_throughput(b: Budgets) -> tuple[dict[str, Row], dict[str, str]]:
    """Warm up every row once at a tiny budget, then measure ``b.repeats`` rounds; returns rows
    keyed by name and the resolved training configs (TOML text) that were used."""
    presets = load_presets(["tutorial", "reinforce", "vpg", "ppo"])
    log("throughput: warm-up")
    for _, measure in throughput_plan(WARMUP, presets):
        measure()
    plan = throughput_plan(b, presets)
    for r in range(b.repeats):
        for row, measure in plan:
            m, backend = measure()
            row.runs.append(m)
            row.backend = backend
            log(
                f"throughput {r + 1}/{b.repeats}: {row.name}: {m.steps_per_second:,.0f} steps/s "
                f"({m.env_steps:,} steps, {m.episodes:,} episodes, {m.seconds:.2f} s)"
            )
    configs = {
        name: dumps(
            train_config(
                presets[name],
                ENV_ID,
                ("episodes", b.tutorial_episodes) if name == "tutorial" else ("steps", b.train_steps),
            )
        )
        for name in presets
    }
    return {row.key: row for row, _ in plan}, configs


def run_solve(names: list[str], seeds: tuple[int, ...], b: Budgets) -> tuple[dict[str, list[SeedSolve]], dict]:
    """Each preset's seeds one after another; returns per-seed outcomes and the configs used."""
    presets = load_presets(names)
    results: dict[str, list[SeedSolve]] = {}
    configs: dict[str, str] = {}
    for name in names:
        cfg = solve_config(presets[name], ENV_ID, b.step_caps[name])
        configs[name] = dumps(cfg)
        results[name] = []
        for seed in seeds:
            r = solve_seed(cfg, seed)
            results[name].append(r)
            outcome = (
                f"solved at {r.steps_to_target:,} steps, {r.seconds_to_target:.1f} s"
                if r.solved
                else f"not solved in {r.env_steps:,} steps (best eval {r.best_eval_mean_return})"
            )
            log(f"solve {name} seed {seed}: {outcome}")
    return results, configs
