"""What observation and action noise and delays cost on envpool: training with and without them, side by side.

Usage, from the repository root::

    .venv/bin/python -m benchmarks.run --only perturb             # HalfCheetah-v5, 3 rounds of 100k -> RESULTS.md
    .venv/bin/python -m benchmarks.run --only perturb --quick --out /tmp/p.md     # a smoke check (1 round of 20k)

Each round measures, one after another in this process pinned to one core: raw envpool stepping through
mjreinforce's vector env (16 envs, uniform random actions) without and with the perturbations, then ``vpg``
training with the preset's settings for the task (evaluation and TensorBoard off) without and with them. The
perturbations are :data:`PERTURBATIONS`: every batch perturbation at once, so the ratio is the worst case. The
report gives the medians, the per-round ratios, and the issue's target (training within 10%: ratio >= 0.90).
It replaces the block between the markers in ``benchmarks/RESULTS.md`` (``run.py`` keeps that block when it
rewrites the file).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

# Imported by run.py after it pinned the process (see machine.pin_to_one_core).
from benchmarks.results_file import PERTURB_COST

if TYPE_CHECKING:
    from benchmarks.throughput import Measurement
    from mjreinforce.config import Config

PERTURBATIONS = {
    "obs_noise_std": 0.05,
    "action_noise_std": 0.1,
    "action_delay_steps": "0:2",
    "obs_delay_steps": "0:1",
}
"""Noise on every observation and action, and delays drawn per episode: all that runs on envpool."""
TARGET = 0.90
RAW_ENVS = 16


COMPARISON_COLUMNS = ["comparison", "median per-round ratio", "target"]


def run(out: Path, core: int, env_id: str, steps: int, rounds: int, command: str) -> int:
    """Measure (see the module docstring) and write the block into ``out``; the process is pinned already."""
    import torch

    from benchmarks.machine import machine_and_versions

    torch.set_num_threads(1)
    plain, perturbed = configs(env_id, steps)
    rows: dict[str, list[Measurement]] = {"raw": [], "raw_perturbed": [], "train": [], "train_perturbed": []}
    start, meta = time.time(), machine_and_versions(core)
    for r in range(rounds):
        rows["raw"].append(raw_envpool(plain, steps, r))
        rows["raw_perturbed"].append(raw_envpool(perturbed, steps, r))
        rows["train"].append(train(plain))
        rows["train_perturbed"].append(train(perturbed))
        line = ", ".join(f"{k} {v[-1].steps_per_second:,.0f}" for k, v in rows.items())
        print(f"round {r + 1}: {line} env steps/s", file=sys.stderr)
    load = meta["load_start"][0]
    where = f"`{command}`; pinned to core {core}, commit {meta['commit']}, load average {load:.2f} at the start"
    text = render(env_id, steps, rounds, where, rows, time.time() - start)
    old = out.read_text() if out.exists() else ""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(PERTURB_COST.replaced(old, text))
    print(f"wrote {out}", file=sys.stderr)
    return 0


def configs(env_id: str, steps: int) -> tuple[Config, Config]:
    """``vpg`` with its settings for ``env_id`` on envpool, no evaluation, no TensorBoard; and the same with
    :data:`PERTURBATIONS`."""
    from mjreinforce.config import load_preset, validate, with_overrides

    settings = {"backend": "envpool", "total_steps": steps, "eval_every_steps": 0, "tensorboard": False, "seeds": (1,)}
    plain = validate(with_overrides(load_preset("vpg", env_id), settings))
    return plain, validate(with_overrides(plain, PERTURBATIONS))


def raw_envpool(cfg: Config, steps: int, seed: int) -> Measurement:
    """``make_vec_env(cfg)`` (16 envs on envpool, wrapped when ``cfg`` perturbs) stepped with uniform random
    actions for ``ceil(steps / 16)`` vector steps."""
    import numpy as np

    from benchmarks.throughput import Measurement, Stopwatch
    from mjreinforce.envs.vector import inspect_env, make_vec_env

    spec = inspect_env(cfg.env_id)
    env = make_vec_env(cfg, RAW_ENVS, seed)
    rng = np.random.default_rng(seed)
    env.reset()
    vector_steps, episodes = -(-steps // RAW_ENVS), 0
    watch = Stopwatch()
    for _ in range(vector_steps):
        step = env.step(rng.uniform(spec.act_low, spec.act_high, size=(RAW_ENVS, spec.act_dim)))
        episodes += int(np.count_nonzero(step.terminated | step.truncated))
    seconds, cpu_seconds = watch.read()
    env.close()
    return Measurement(vector_steps * RAW_ENVS, episodes, seconds, cpu_seconds)


def train(cfg: Config) -> Measurement:
    from benchmarks.throughput import train_run

    measured, backend = train_run(cfg, 1)
    assert backend == "envpool", backend  # a bug, not a measurement: the benchmark is about envpool
    return measured


def render(env_id: str, steps: int, rounds: int, where: str, rows: dict[str, list[Measurement]], seconds: float) -> str:
    """The block (markers included): medians, per-round ratios and the target's verdict."""
    import pandas as pd  # after pinning (see main)

    from mjreinforce.analysis.tables import to_markdown

    def median(key: str) -> float:
        return statistics.median(m.steps_per_second for m in rows[key])

    def ratio(num: str, den: str) -> tuple[float, str]:
        per_round = [a.steps_per_second / b.steps_per_second for a, b in zip(rows[num], rows[den], strict=True)]
        return statistics.median(per_round), f"[{min(per_round):.2f}–{max(per_round):.2f}]"

    perturbations = ", ".join(f"`{k} = {v!r}`" for k, v in PERTURBATIONS.items())
    measurements = [
        [f"raw envpool through `make_vec_env` ({RAW_ENVS} envs, random actions)", f"{median('raw'):,.0f}"],
        ["the same, perturbed", f"{median('raw_perturbed'):,.0f}"],
        ["`vpg` training, evaluation off", f"{median('train'):,.0f}"],
        ["`vpg` training, evaluation off, perturbed", f"{median('train_perturbed'):,.0f}"],
    ]
    raw_ratio, raw_range = ratio("raw_perturbed", "raw")
    train_ratio, train_range = ratio("train_perturbed", "train")
    verdict = "PASS" if train_ratio >= TARGET else "FAIL"
    comparisons = [
        ["raw stepping, perturbed vs plain", f"{raw_ratio:.2f}× {raw_range}", ""],
        ["**training, perturbed vs plain**", f"**{train_ratio:.2f}×** {train_range}", f"≥ {TARGET:.2f}: {verdict}"],
    ]
    lines = [
        PERTURB_COST.begin,
        f"## The cost of noise and delays on envpool ({env_id}, vpg with its {env_id.split('-v')[0]} settings)",
        "",
        f"Command: {where}; {rounds} rounds of {steps:,} env steps per measurement, {seconds:.0f} s in all. "
        f"Perturbed: {perturbations}. The steps/s are medians over rounds; a ratio is the median of the "
        "per-round ratios (each round measures both sides back to back), with their range in brackets.",
        "",
        to_markdown(pd.DataFrame(measurements, columns=["measurement", "env steps/s"], dtype=object)),
        to_markdown(pd.DataFrame(comparisons, columns=COMPARISON_COLUMNS, dtype=object)),
        PERTURB_COST.end,
    ]
    return "\n".join(lines) + "\n"
