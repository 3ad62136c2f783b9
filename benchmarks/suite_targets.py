"""The MuJoCo suite's targets, one by one, from a finished (or partial) ``mjreinforce benchmark`` directory.

Usage::

    .venv/bin/python -m benchmarks.suite_targets runs/benchmark > /tmp/targets.md
    .venv/bin/python -m benchmarks.suite_targets --ladder benchmarks/suite_benchmark.csv   # the README's table

Reads ``OUT/benchmark.csv`` (written by ``mjreinforce benchmark``) and prints a Markdown table per preset:
the final evaluation's IQM over seeds against each published reference the issue names, the collapse check
(final IQM >= 80% of the best IQM the same runs reached) and the evaluation cost (<= 10% of training env
steps). A task with fewer seeds than asked is marked so; nothing is called met that was not measured.
``--ladder`` prints one table instead: a row per task, a column per rung, and the best PPO published at 1M.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from mjreinforce.analysis.tables import to_markdown
from mjreinforce.suite.grid import DEFAULT_PRESETS
from mjreinforce.suite.references import load_references

# The references the issue names for each preset, as (source, env-step budget) in references.toml.
COMPARED_WITH = {
    "vpg": (("Tianshou REINFORCE", 10_000_000), ("Spinning Up VPG (PyTorch)", 3_000_000)),
    "reinforce": (("Tianshou REINFORCE", 3_000_000),),
    # beating all three is beating the best PPO figure published at 1M on each task
    "ppo": (("SB3 RL Zoo PPO", 1_000_000), ("Tianshou PPO", 1_000_000), ("CleanRL PPO", 1_000_000)),
}
EXTRA = {"vpg": {"InvertedDoublePendulum-v5": 9000.0}}  # the issue's own bar, besides the references


def reference_labels(preset: str) -> list[str]:
    """The labels (``benchmark.csv`` column names) of the references ``preset`` is compared with."""
    labels = {(r.source, r.budget_steps): r.label for r in load_references()}
    return [labels[key] for key in COMPARED_WITH[preset]]


def _fmt(x: float | None) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.1f}"


def targets(table: pd.DataFrame, preset: str, seeds: int) -> str:
    """The Markdown table of ``preset``'s targets, one row per task of ``table`` (``benchmark.csv``)."""
    refs = reference_labels(preset)
    head = ["task", "seeds", "final IQM [95% CI]", *refs, "beats all", "final / best IQM", "eval cost"]
    rows = [_task_row(r, preset, refs, seeds) for _, r in table[table["preset"] == preset].iterrows()]
    return to_markdown(pd.DataFrame(rows, columns=head, dtype=object))


def _task_row(r: pd.Series, preset: str, refs: list[str], seeds: int) -> list[str]:
    """One task's cells: seeds, final IQM and CI, each reference, the verdict, final / best IQM, eval cost."""
    if int(r["seeds"]) == 0:
        return [r["env_id"], f"0 (of {seeds})", "not run", *("–" for _ in refs), "–", "–", "–"]
    bars = [r.get(ref, float("nan")) for ref in refs]
    extra = EXTRA.get(preset, {}).get(r["env_id"])
    compared = [b for b in bars if not math.isnan(b)] + ([extra] if extra is not None else [])
    beats = all(r["final_iqm"] > b for b in compared) if compared else None
    ratio = r["final_iqm"] / r["best_iqm"] if r["best_iqm"] else float("nan")
    if r["best_iqm"] < 0:  # negative returns (Reacher): compare the other way round
        ratio = r["best_iqm"] / r["final_iqm"] if r["final_iqm"] else float("nan")
    verdict = {True: "yes", False: "**no**", None: "–"}[beats]
    if extra is not None:
        verdict += f" (and ≥ {extra:,.0f})"
    partial = "" if int(r["seeds"]) >= seeds else f" (of {seeds})"
    score = _score(r)
    collapse = f"{ratio:.0%}{'' if ratio >= 0.8 else ' **collapse**'}"
    return [
        r["env_id"],
        f"{int(r['seeds'])}{partial}",
        score,
        *(_fmt(b) for b in bars),
        verdict,
        collapse,
        f"{r['eval_fraction']:.1%}",
    ]


def _score(r: pd.Series) -> str:
    """``final IQM [CI low, CI high]`` of one ``benchmark.csv`` row."""
    return f"{_fmt(r['final_iqm'])} [{_fmt(r['final_ci_low'])}, {_fmt(r['final_ci_high'])}]"


def best_published_ppo(env_id: str) -> tuple[float, str] | None:
    """The highest PPO return published at 1M steps for ``env_id`` and its source, or None if none is."""
    compared = set(COMPARED_WITH["ppo"])
    found = [
        (r.returns[env_id], r.source)
        for r in load_references()
        if (r.source, r.budget_steps) in compared and env_id in r.returns
    ]
    return max(found) if found else None


def ladder(table: pd.DataFrame, seeds: int) -> str:
    """One row per task of ``table`` (``benchmark.csv`` rows): each rung's final IQM [95% CI], the best PPO
    published at 1M and whether ``ppo``'s final IQM beats it. A cell with fewer seeds than ``seeds`` says how
    many it has; one never run says so."""
    head = ["task", *(f"`{p}`" for p in DEFAULT_PRESETS), "best PPO published at 1M", "`ppo` beats it"]
    rows = []
    for env_id in dict.fromkeys(table["env_id"]):
        cells = {r["preset"]: r for _, r in table[table["env_id"] == env_id].iterrows() if int(r["seeds"]) > 0}
        scores = []
        for preset in DEFAULT_PRESETS:
            r = cells.get(preset)
            if r is None:
                scores.append("not run")
                continue
            partial = "" if int(r["seeds"]) >= seeds else f" ({int(r['seeds'])} of {seeds} seeds)"
            scores.append(_score(r) + partial)
        best = best_published_ppo(env_id)
        ppo = cells.get("ppo")
        if best is None or ppo is None:
            verdict = "–"
        else:
            beats = ppo["final_iqm"] > best[0]
            verdict = "yes" if beats else "**no**"
            if int(ppo["seeds"]) < seeds:  # no verdict on part of the seeds
                verdict = f"{'above' if beats else 'below'} on {int(ppo['seeds'])} seeds"
        published = "–" if best is None else f"{_fmt(best[0])} ({best[1].removesuffix(' PPO')})"
        rows.append([env_id, *scores, published, verdict])
    return to_markdown(pd.DataFrame(rows, columns=head, dtype=object))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="the benchmark directory, or a benchmark.csv")
    p.add_argument("--seeds", type=int, default=5, help="seeds the suite asks for per task")
    p.add_argument("--ladder", action="store_true", help="one table: a row per task, a column per rung")
    args = p.parse_args(argv)
    table = pd.read_csv(args.out if args.out.suffix == ".csv" else args.out / "benchmark.csv")
    if args.ladder:
        print(ladder(table, args.seeds), end="")
        return 0
    for preset in sorted(set(table["preset"]), reverse=True):
        print(f"### `{preset}`\n")
        print(targets(table, preset, args.seeds), end="")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
