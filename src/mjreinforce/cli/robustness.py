"""``mjreinforce robustness``: return of trained policies across a grid of physics values."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from mjreinforce.cli.eval import add_perturb_flag
from mjreinforce.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    description = (
        "Evaluate each run's policy (deterministic) at every value of a physics or perturbation grid; write "
        "robustness.csv, robustness.md and a plot of return vs the value. With two --vary: every cell of the "
        "two-dimensional grid, robustness_map.csv and a heatmap per policy (and their difference for two)."
    )
    p = sub.add_parser("robustness", help="evaluate policies across a grid of physics values", description=description)
    p.add_argument(
        "run_dirs",
        nargs="+",
        type=Path,
        metavar="RUN_DIR",
        help="run directories, seed directories or checkpoint files",
    )
    p.add_argument(
        "--vary",
        required=True,
        action="append",
        metavar="KEY=LOW:HIGH:COUNT",
        help="the grid, e.g. gravity=-15:-5:11 or body_mass.pole*=0.5:2:7, or a perturbation key such as "
        "action_delay_steps=0:4:5; twice for a two-dimensional map (heatmaps)",
    )
    add_perturb_flag(p)
    p.add_argument("--episodes", type=int, default=10, help="episodes per policy and grid value (default 10)")
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the evaluation envs (env i gets seed + i); default: as mjreinforce eval",
    )
    p.add_argument(
        "--run-seed",
        type=int,
        default=None,
        metavar="K",
        help="which training seed's checkpoint to load from runs with several (default: the first)",
    )
    p.add_argument("--labels", help="comma-separated policy names, one per RUN_DIR (default: the directory names)")
    p.add_argument(
        "--allow-changed-model",
        action="store_true",
        help="use the run's model file (env_kwargs.xml_file) although it changed since training",
    )
    p.add_argument("--out", type=Path, help="output directory (default: the run directory of the first RUN_DIR)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace robustness.* in --out even if mjreinforce did not write them (never a run's own files)",
    )
    p.set_defaults(run=run)


def policy_labels(run_dirs: list[Path], labels: str | None) -> list[str]:
    """``--labels`` split on commas, or the paths' names (whole paths if two names collide); distinct."""
    if labels is not None:
        names = [name.strip() for name in labels.split(",")]
        if len(names) != len(run_dirs) or not all(names):
            raise UserError(
                f"--labels needs {len(run_dirs)} non-empty comma-separated names (one per RUN_DIR), got {labels!r}"
            )
    else:
        names = [p.resolve().name or str(p) for p in run_dirs]
        if len(set(names)) < len(names):
            names = [str(p) for p in run_dirs]
    if len(set(names)) < len(names):
        raise UserError(f"policy labels must be distinct, got {', '.join(names)}")
    return names


OUTPUT_NAMES = ("robustness.csv", "robustness.md", "robustness.png", "robustness.svg")
"""What :func:`mjreinforce.trained.robustness.write_robustness` writes into ``--out``."""


def check_outputs(out: Path, names: Sequence[str], sources: list[Path], overwrite: bool) -> None:
    """Refuse (one line) an ``--out`` that is a file, or whose robustness files the guards of
    :mod:`mjreinforce.runs.outputs` refuse; then check that the directory can be written."""
    from mjreinforce.files import probe_writable
    from mjreinforce.runs.outputs import check_output_file

    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; robustness writes several files into a directory")
    for name in names:
        check_output_file(out / name, overwrite, sources=sources)
    probe_writable(out / names[0])  # critical: before any episode, so a bad place costs nothing


def run(args: argparse.Namespace) -> int:
    from mjreinforce.cli.eval import check_flags, first_run_seed, silence_mujoco_warnings

    check_flags(args)
    labels = policy_labels(args.run_dirs, args.labels)
    from mjreinforce.runs.outputs import home_of, record_outputs
    from mjreinforce.trained import robustness, robustness_map
    from mjreinforce.trained.loading import load_policy
    from mjreinforce.trained.robustness_axes import parse_axis
    from mjreinforce.training.evaluation import DEFAULT_EVAL_SEED

    silence_mujoco_warnings()
    if len(args.vary) > 2:
        raise UserError(f"--vary is given {len(args.vary)} times; a robustness grid has one or two axes")
    axes = [parse_axis(text) for text in args.vary]  # a malformed axis fails before loading anything
    policies = {}
    for label, path in zip(labels, args.run_dirs, strict=True):
        run_seed = args.run_seed if args.run_seed is not None else first_run_seed(path)
        policies[label] = load_policy(path, seed=run_seed, allow_changed_model=args.allow_changed_model)
    seed = DEFAULT_EVAL_SEED if args.seed is None else args.seed
    out = args.out or home_of(args.run_dirs[0])
    if len(axes) == 2:
        from mjreinforce.analysis.tables import to_markdown

        x, y = axes
        check_outputs(out, robustness_map.output_names(labels), args.run_dirs, args.overwrite)
        ranges = robustness_map.training_ranges(policies, x, y)
        table = robustness_map.evaluate_map(policies, x, y, args.episodes, seed, args.perturb)
        paths = robustness_map.write_map(table, out, x, y, ranges)
        print(to_markdown(robustness_map.summary_table(table, x, y)), end="")
    else:
        check_outputs(out, OUTPUT_NAMES, args.run_dirs, args.overwrite)
        table = robustness.evaluate_grid(policies, axes[0], args.episodes, seed, args.perturb)
        paths = robustness.write_robustness(table, out, axes[0].name.rstrip("*"))
        print(robustness.markdown_report(table, axes[0].name.rstrip("*")), end="")
    record_outputs(paths)
    for path in paths:
        print(f"wrote {path}")
    return 0
