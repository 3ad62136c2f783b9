"""Training throughput on a MuJoCo suite task against raw envpool stepping, side by side, one pinned core.

Usage, from the repository root::

    .venv/bin/python -m benchmarks.suite_throughput                  # HalfCheetah-v5, 3 rounds -> RESULTS.md
    .venv/bin/python -m benchmarks.suite_throughput --steps 50000 --rounds 1 --out /tmp/t.md   # smoke check

Each round measures, one after another in this process: raw envpool stepping through mjreinforce's
same-step wrapper (16 envs, uniform random actions), envpool's native API, and ``vpg`` training with the
preset's settings for the task, once with its evaluation schedule on and once with evaluation off. The
report gives the medians and the per-round ratios. It replaces the block between the markers in
``benchmarks/RESULTS.md`` (``run.py`` keeps that block when it rewrites the file).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

# Only the standard library is imported before pinning (see machine.pin_to_one_core).
from benchmarks.machine import pin_to_one_core
from benchmarks.results_file import RESULTS, SUITE_THROUGHPUT

if TYPE_CHECKING:
    from mjreinforce.config import Config


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--steps", type=int, default=200_000, help="env steps per measurement")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    core = pin_to_one_core(None)
    import torch

    torch.set_num_threads(1)
    from benchmarks.throughput import raw_envpool_native, raw_vec, train_run  # after pinning
    from mjreinforce.config import load_preset, validate, with_overrides

    cfg = load_preset("vpg", args.env)
    with_eval = validate(with_overrides(cfg, {"total_steps": args.steps, "tensorboard": False, "seeds": (1,)}))
    no_eval = validate(with_overrides(with_eval, {"eval_every_steps": 0}))
    rows: dict[str, list[float]] = {"raw_wrapper": [], "raw_native": [], "train_eval": [], "train_no_eval": []}
    eval_steps: list[int] = []
    start = time.time()
    for r in range(args.rounds):
        rows["raw_wrapper"].append(raw_vec("envpool", args.env, 16, args.steps, r).steps_per_second)
        rows["raw_native"].append(raw_envpool_native(args.env, 16, args.steps, r).steps_per_second)
        measured, _ = train_run(with_eval, 1)
        rows["train_eval"].append(measured.steps_per_second)
        rows["train_no_eval"].append(train_run(no_eval, 1)[0].steps_per_second)
        eval_steps.append(_eval_steps(with_eval, args.steps))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in rows.items()), file=sys.stderr)
    text = _render(args, core, rows, eval_steps, time.time() - start, with_eval)
    old = args.out.read_text() if args.out.exists() else ""
    args.out.write_text(SUITE_THROUGHPUT.replaced(old, text))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _eval_steps(cfg: Config, total_steps: int) -> int:
    """Evaluation env steps of one run of ``total_steps`` at most: evaluations x episodes x the task's
    episode length."""
    import gymnasium as gym  # after pinning (see main)

    evaluations = total_steps // cfg.eval_every_steps
    max_steps = gym.spec(cfg.env_id).max_episode_steps
    if max_steps is None:
        raise ValueError(f"{cfg.env_id} has no episode length limit, so its evaluation steps have no bound")
    return int(evaluations * cfg.eval_episodes * max_steps)


def _render(
    args: argparse.Namespace,
    core: int,
    rows: dict[str, list[float]],
    eval_steps: list[int],
    seconds: float,
    cfg: Config,
) -> str:
    """The block (markers included): the median of every measurement, then the per-round ratios."""
    import pandas as pd  # after pinning (see main)

    from mjreinforce.analysis.tables import to_markdown

    med = {k: statistics.median(v) for k, v in rows.items()}

    def ratios(num: str, den: str) -> str:
        per_round = [a / b for a, b in zip(rows[num], rows[den], strict=True)]
        return f"{statistics.median(per_round):.2f}× [{min(per_round):.2f}–{max(per_round):.2f}]"

    evaluation = f"{cfg.eval_episodes} episodes every {cfg.eval_every_steps:,} steps"
    measurements = [
        ["raw envpool through the same-step wrapper (16 envs, random actions)", f"{med['raw_wrapper']:,.0f}"],
        ["raw envpool, native API (16 envs)", f"{med['raw_native']:,.0f}"],
        [f"**`vpg` training, evaluation on** ({evaluation})", f"**{med['train_eval']:,.0f}**"],
        ["`vpg` training, evaluation off", f"{med['train_no_eval']:,.0f}"],
    ]
    comparisons = [
        ["training with evaluation vs raw envpool through the wrapper", ratios("train_eval", "raw_wrapper")],
        ["training with evaluation vs raw envpool, native API", ratios("train_eval", "raw_native")],
        ["training without evaluation vs raw envpool through the wrapper", ratios("train_no_eval", "raw_wrapper")],
    ]
    lines = [
        SUITE_THROUGHPUT.begin,
        f"## Training throughput on {args.env} (vpg with its {args.env.split('-v')[0]} settings)",
        "",
        f"Command: `.venv/bin/python -m benchmarks.suite_throughput --env {args.env} --steps {args.steps} "
        f"--rounds {args.rounds}`; pinned to core {core}; {args.rounds} rounds of {args.steps:,} env steps per "
        f"measurement, {seconds:.0f} s in all. Medians, and in brackets the range of the per-round ratios.",
        "",
        to_markdown(pd.DataFrame(measurements, columns=["measurement", "env steps/s"], dtype=object)),
        to_markdown(pd.DataFrame(comparisons, columns=["comparison", "ratio"], dtype=object)),
        f"Evaluation simulated at most {max(eval_steps):,} env steps per run "
        f"({max(eval_steps) / args.steps:.0%} of the training steps).",
        SUITE_THROUGHPUT.end,
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
