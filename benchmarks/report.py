"""The Markdown report: machine and versions, throughput and ratios, time to solve, targets.

Targets are judged from the measurements of this one run and printed as PASS/FAIL; nothing
here raises on a miss.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from benchmarks.plan import ENV_ID, THROUGHPUT_SEED, Budgets
from benchmarks.solve import SeedSolve, SolveSummary, summarize
from benchmarks.throughput import Row
from mjreinforce.analysis.tables import to_markdown


@dataclass
class Results:
    """Everything one benchmark run measured; :func:`render` turns it into Markdown."""

    meta: dict[str, Any]
    quick: bool
    budgets: Budgets
    rows: dict[str, Row] = field(default_factory=dict)
    solves: dict[str, list[SeedSolve]] = field(default_factory=dict)
    configs: dict[str, dict[str, str]] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------
# formatting helpers
# ----------------------------------------------------------------------------------------------
def _num(x: float | None, digits: int = 0) -> str:
    if x is None or math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "not reached"
    return f"{x:,.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """The lines of a Markdown table of ready-formatted cells."""
    return to_markdown(pd.DataFrame(rows, columns=header, dtype=object)).splitlines()


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("PASS" if ok else "**FAIL**")


# ----------------------------------------------------------------------------------------------
# sections
# ----------------------------------------------------------------------------------------------
def _header(r: Results) -> list[str]:
    m = r.meta
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    lines = ["# mjreinforce benchmark results", ""]
    if r.quick:
        lines += [
            "> **--quick smoke run**: tiny budgets and one seed by default. These numbers check that the",
            "> benchmark works; they are not results and the targets below cannot be judged from them.",
            "",
        ]
    threads = ", ".join(m["threads_allowed"])
    lines += [
        f"- Date: {m['date']} to {m['date_end']} (UTC)",
        f"- Command: `{m['command']}` (in `{m['cwd']}`)",
        f"- Machine: {m['cpu']}, {m['physical_cores']} cores / {m['logical_cpus']} logical CPUs "
        "(shared, so absolute numbers are noisy; "
        "compare the ratios, which were measured side by side in this run)",
        f"- Pinned to core {m['core']} (`os.sched_setaffinity`); CPUs allowed for every thread of the benchmark "
        f"process at the end: {threads}; `torch.set_num_threads(1)`",
        f"- Load average (1, 5, 15 min): start {_load(m['load_start'])}, end {_load(m['load_end'])}",
        f"- Versions: {versions}",
        f"- mjreinforce commit: {m['commit']}; presets read from the package at run time",
        "",
    ]
    return lines


def _load(load: tuple[float, float, float]) -> str:
    return " / ".join(f"{x:.2f}" for x in load)


@dataclass(frozen=True)
class Ratio:
    """``num``/``den`` of two rows: ratio of the wall-clock medians, min and max of the per-round
    ratios (round i of both rows ran back to back), and the ratio of the CPU-time medians."""

    value: float
    low: float
    high: float
    cpu: float


def _ratio(rows: dict[str, Row], num: str, den: str) -> Ratio | None:
    """The :class:`Ratio` of two rows, or None when either is missing."""
    if num not in rows or den not in rows or not rows[num].runs or not rows[den].runs:
        return None
    a, b = rows[num], rows[den]
    rounds = [x.steps_per_second / y.steps_per_second for x, y in zip(a.runs, b.runs, strict=True)]
    return Ratio(a.median / b.median, min(rounds), max(rounds), a.cpu_median / b.cpu_median)


RATIOS = (
    ("reinforce", "envpool", "preset `reinforce` training / raw envpool stepping"),
    ("vpg", "envpool", "preset `vpg` training / raw envpool stepping"),
    ("ppo", "vpg", "preset `ppo` training / preset `vpg` training (10 passes over each rollout)"),
    ("reinforce", "tutorial", "preset `reinforce` / preset `tutorial`"),
    ("vpg", "tutorial", "preset `vpg` / preset `tutorial`"),
    ("tutorial", "tutorial_original", "preset `tutorial` / the tutorial's original code"),
    ("reinforce", "tutorial_original", "preset `reinforce` / the tutorial's original code"),
    ("vpg", "tutorial_original", "preset `vpg` / the tutorial's original code"),
    ("envpool", "gym_single", "raw envpool (N=16) / raw gymnasium single env"),
    ("gym_sync", "gym_single", "raw SyncVectorEnv (N=16) / raw gymnasium single env"),
    ("envpool", "envpool_native", "EnvpoolVecEnv (same-step reset) / envpool native API"),
)
THROUGHPUT_HEADER = ["Measurement", "env id", "backend", "envs", "env steps (last repeat)", "episodes"]
THROUGHPUT_HEADER += ["steps/s (median)", "steps/s (each repeat)", "steps per CPU second (median)"]


def _throughput_notes(b: Budgets) -> list[str]:
    return [
        f"Each row was measured {b.repeats} times, round-robin (repeat 1 of every row, then repeat 2, ...), "
        f"after a warm-up round. All rows step {ENV_ID} on the same pinned core. steps/s is wall-clock; "
        "steps per CPU second uses this process's CPU time (all threads), which does not grow while other "
        "processes hold the core, so it is the steadier number on a shared machine.",
        "",
        f"- **Raw** rows step with uniform random actions and no policy, {b.raw_steps:,} env steps each. With "
        "random actions an InvertedPendulum episode lasts only about 6 steps, so **resets are included** and "
        "are a large share of the cost (see the episodes column). Training episodes are longer (fewer resets "
        "per step), so a training row can come close to, or even above, raw stepping.",
        f"- **Train** rows run `mjreinforce.training.loop.train_seed` (seed {THROUGHPUT_SEED}, quiet progress) with "
        "the preset as shipped except: env id as above, `eval_every_steps = 0`, `tensorboard = false`, "
        f"`torch_threads = 1`, and the budget: {b.train_steps:,} env steps for `reinforce`/`vpg`/`ppo`, "
        f"{b.tutorial_episodes} episodes of a fresh run for `tutorial` (the early, short-episode regime, "
        "where its one update per episode dominates). steps/s = `env_steps / wall_seconds` from the seed's "
        "`summary.json`; the CPU time covers the whole call (setup included).",
        "- The **tutorial's original code** row re-implements the Gymnasium tutorial's loop "
        "(`benchmarks/tutorial_reference.py`: per-step autograd graph, Python-list returns, one episode per "
        f"update, one torch thread) on {b.tutorial_episodes} episodes from the same seed.",
        "",
    ]


def _throughput(r: Results) -> list[str]:
    rows = []
    for row in r.rows.values():
        last = row.runs[-1]
        repeats = ", ".join(f"{m.steps_per_second:,.0f}" for m in row.runs)
        rows.append([row.name, row.env_id, row.backend, str(row.num_envs), f"{last.env_steps:,}"])
        rows[-1] += [f"{last.episodes:,}", f"**{_num(row.median)}**", repeats, _num(row.cpu_median)]
    ratio_rows = []
    for num, den, label in RATIOS:
        q = _ratio(r.rows, num, den)
        if q is not None:
            ratio_rows.append([label, f"**{q.value:.2f}x**", f"[{q.low:.2f}-{q.high:.2f}]", f"{q.cpu:.2f}x"])
    lines = ["## 1. Throughput (env steps per second, one core, one process)", ""] + _throughput_notes(r.budgets)
    lines += _table(THROUGHPUT_HEADER, rows)
    lines += ["", "### Ratios", ""]
    header = ["Ratio", "wall-clock (median / median)", "per round (min-max)", "CPU time (median / median)"]
    return lines + _table(header, ratio_rows) + [""]


SEED_HEADER = ["preset", "seed", "solved", "env steps to target", "seconds to target", "env steps run"]
SEED_HEADER += ["wall s", "process CPU s", "best eval mean", "status"]
SUMMARY_HEADER = ["preset", "solved", "median env steps", "worst env steps", "median seconds", "worst seconds"]
SUMMARY_HEADER += ["median process CPU s"]


def _seed_row(name: str, s: SeedSolve) -> list[str]:
    row = [f"`{name}`", str(s.seed), "yes" if s.solved else "**no**", _num(s.steps_to_target)]
    row += [_num(s.seconds_to_target, 1), f"{s.env_steps:,}", _num(s.wall_seconds, 1), _num(s.cpu_seconds, 1)]
    return row + [_num(s.best_eval_mean_return, 1), s.status]


def _median_cpu(results: list[SeedSolve]) -> float:
    return statistics.median(s.cpu_seconds for s in results) if results else math.nan


def _solve(r: Results) -> list[str]:
    caps = ", ".join(f"{k} {v:,}" for k, v in r.budgets.step_caps.items() if k in r.solves)
    lines = [
        "## 2. Time to solve (deterministic evaluation mean return >= 1000 over 10 episodes)",
        "",
        f"Each preset as shipped except: env id {ENV_ID}, `target_return = 1000`, `eval_episodes = 10`, "
        "`eval_every_steps` as in the preset (5000 if the preset has 0), `torch_threads = 1`, "
        f"and an env-step cap ({caps}). "
        "Seeds ran one after another on the pinned core. Steps and seconds to target are the seed's "
        "`summary.json` `steps_to_target` / `seconds_to_target` (wall-clock); they include the evaluations "
        '(and TensorBoard writing if the preset enables it; see the configs at the end). "process CPU s" is '
        "the CPU time of the whole seed (setup included): it does not grow while other processes share the "
        "core, wall time does. An unsolved seed counts as infinite in the median and the worst case.",
        "",
    ]
    lines += _table(SEED_HEADER, [_seed_row(name, s) for name, res in r.solves.items() for s in res]) + [""]
    summary_rows = []
    for name, results in r.solves.items():
        s = summarize(results)
        summary_rows.append([f"`{name}`", f"{s.solved}/{s.seeds}", _num(s.median_steps), _num(s.worst_steps)])
        summary_rows[-1] += [_num(s.median_seconds, 1), _num(s.worst_seconds, 1), _num(_median_cpu(results), 1)]
    return lines + _table(SUMMARY_HEADER, summary_rows) + [""]


def _solve_targets(solves: dict[str, list[SeedSolve]]) -> list[list[str]]:
    rows: list[list[str]] = []
    for name, max_steps, max_seconds in (("vpg", 100_000, 10.0), ("reinforce", 300_000, None)):
        res = solves.get(name)
        s: SolveSummary | None = summarize(res) if res else None
        solved = f"{s.solved}/{s.seeds}" if s else "n/a"
        rows.append([f"`{name}` solves every seed", solved, _verdict(s.solved == s.seeds if s else None)])
        steps_ok = s.median_steps <= max_steps if s else None
        rows.append(
            [
                f"`{name}` median env steps to solve <= {max_steps:,}",
                _num(s.median_steps if s else None),
                _verdict(steps_ok),
            ]
        )
        if max_seconds is not None:
            measured = f"{_num(s.median_seconds, 1)} wall" if s else "n/a"
            measured += f" (median process CPU {_num(_median_cpu(res), 1)} s)" if res else ""
            seconds_ok = s.median_seconds <= max_seconds if s else None
            rows.append([f"`{name}` median seconds to solve <= {max_seconds:g}", measured, _verdict(seconds_ok)])
    ppo, vpg = solves.get("ppo"), solves.get("vpg")
    if ppo and vpg:  # issue 16: ppo as the default must solve every seed at least as fast in env steps as vpg
        p, v = summarize(ppo), summarize(vpg)
        rows.append(
            [
                "`ppo` solves every seed, median and worst env steps <= `vpg`'s (this run)",
                f"{p.solved}/{p.seeds}; median {_num(p.median_steps)} vs {_num(v.median_steps)}, "
                f"worst {_num(p.worst_steps)} vs {_num(v.worst_steps)}",
                _verdict(p.solved == p.seeds and p.median_steps <= v.median_steps and p.worst_steps <= v.worst_steps),
            ]
        )
    return rows


def _throughput_targets(rows: dict[str, Row]) -> list[list[str]]:
    checks = (
        ("training throughput >= 50% of raw envpool stepping", "envpool", 0.5, "{:.0%}"),
        ("training throughput >= 20x the tutorial preset's", "tutorial", 20.0, "{:.1f}x"),
    )
    trained = [k for k in ("reinforce", "vpg") if k in rows and rows[k].runs]
    if not trained:
        return [[label, "n/a", _verdict(None)] for label, *_ in checks]
    best = max(trained, key=lambda k: rows[k].median)
    out = []
    for label, den, threshold, fmt in checks:
        q = _ratio(rows, best, den)
        if q is None:
            out.append([label, "n/a", _verdict(None)])
            continue
        measured = (
            f"{fmt.format(q.value)} wall-clock, {fmt.format(q.cpu)} CPU time (best of reinforce/vpg: "
            f"`{best}` {rows[best].median:,.0f} steps/s vs `{den}` {rows[den].median:,.0f})"
        )
        out.append([label, measured, _verdict(q.value >= threshold)])
    return out


def _targets(r: Results) -> list[str]:
    head = ["## Targets from the issue", ""]
    if r.quick:
        head += ["(--quick run: budgets far too small; these verdicts say nothing about the code.)", ""]
    else:
        head += [
            "Verdicts use wall-clock numbers, as the targets are stated; the CPU-time values show what "
            "a quiet core would give.",
            "",
        ]
    rows = _solve_targets(r.solves) + _throughput_targets(r.rows)
    return head + _table(["Target", "Measured", "Result"], rows) + [""]


def _configs(r: Results) -> list[str]:
    lines = ["## Configs used (resolved, as the trainer saw them)", ""]
    for part, configs in r.configs.items():
        for name, text in configs.items():
            lines += [f"<details><summary>{part}: <code>{name}</code></summary>", "", "```toml", text.rstrip()]
            lines += ["```", "", "</details>", ""]
    return lines


def render(r: Results) -> str:
    """The whole report as Markdown."""
    lines = _header(r) + _targets(r)
    if r.rows:
        lines += _throughput(r)
    if r.solves:
        lines += _solve(r)
    lines += _configs(r)
    return "\n".join(lines).rstrip() + "\n"
