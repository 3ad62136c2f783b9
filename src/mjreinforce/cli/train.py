"""``mjreinforce train``: train a preset or config over one or more seeds."""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from pathlib import Path

from mjreinforce import config as cfgmod
from mjreinforce.config_bounds import check_cli
from mjreinforce.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a policy", description="Train a policy over one or more seeds.")
    p.add_argument(
        "--preset",
        default=None,
        help=f"preset name ({', '.join(cfgmod.preset_names())}); default {cfgmod.DEFAULT_PRESET}",
    )
    p.add_argument("--config", type=Path, help="TOML file of config keys, applied on top of the preset")
    p.add_argument(
        "--env",
        dest="env_id",
        help="Gymnasium env id, e.g. InvertedPendulum-v5, HalfCheetah-v5, or MODULE:ID for an env a module registers "
        "(mypkg.envs:MyRobot-v0)",
    )
    p.add_argument(
        "--env-kwarg",
        action="append",
        metavar="KEY=VALUE",
        help="an argument of the env's constructor, VALUE a TOML literal: ctrl_cost_weight=1e-3, "
        "'healthy_z_range=[0.5, 2.0]', xml_file=models/my_hopper.xml (repeatable; gymnasium backend)",
    )
    p.add_argument("--seeds", help="comma-separated seeds, e.g. 1,2,3,5,8")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--episodes", type=int, help="episodes per seed")
    budget.add_argument("--steps", type=int, help="env steps per seed")
    p.add_argument("--backend", choices=["auto", "gymnasium", "envpool"])
    p.add_argument("--num-envs", type=int, help="vectorized envs per seed")
    p.add_argument("--env-workers", type=int, help="0: step envs in-process; k>0: async workers / envpool threads")
    p.add_argument(
        "--physics",
        action="append",
        metavar="KEY=VALUE",
        help="MuJoCo model override, e.g. gravity=-4.9 or body_mass.pole=2.0 (repeatable)",
    )
    p.add_argument(
        "--randomize",
        action="append",
        metavar="KEY=LOW:HIGH",
        help="re-draw a model value every episode, e.g. gravity=-12:-7 (repeatable)",
    )
    p.add_argument(
        "--target-return",
        type=float,
        help="stop a seed once its evaluation mean reaches this (a config without evaluations gets one "
        "about every 5 updates)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="seeds trained in parallel worker processes (default: number of cores)",
    )
    p.add_argument("--out", default=None, help="run directory (default runs/<preset>-<env>)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config key")
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted or killed run from its checkpoints (other config flags are ignored)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing run in --out (only the run's own files are deleted; anything else refuses)",
    )
    p.add_argument(
        "--allow-changed-model",
        action="store_true",
        help="with --resume: continue although the run's model file (env_kwargs.xml_file) changed since it started",
    )
    p.add_argument("--quiet", action="store_true", help="plain periodic lines instead of a progress bar")
    p.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard event files")
    p.add_argument("--no-plot", action="store_true", help="skip the learning-curve plot at the end")
    p.set_defaults(run=run)


def resolve_config(args: argparse.Namespace) -> tuple[cfgmod.Config, str, dict[str, object]]:
    """Preset, its per-task overrides, the --config file, the dedicated flags, then --set; validated.
    Returns the config, the preset name and the per-task overrides that were applied."""
    preset = args.preset or cfgmod.DEFAULT_PRESET
    file_values = cfgmod.read_toml(args.config) if args.config is not None else {}
    flags = {
        "env_id": args.env_id,
        "seeds": args.seeds,
        "total_episodes": args.episodes,
        "total_steps": args.steps,
        "backend": args.backend,
        "num_envs": args.num_envs,
        "env_workers": args.env_workers,
        "target_return": args.target_return,
        "tensorboard": False if args.no_tensorboard else None,
        "physics": tuple(args.physics) if args.physics else None,
        "randomize": tuple(args.randomize) if args.randomize else None,
    }
    if args.env_kwarg:  # on top of the --config file's table, name by name
        table = file_values.get("env_kwargs")
        flags["env_kwargs"] = {**(table if isinstance(table, dict) else {}), **parse_env_kwargs(args.env_kwarg)}
    flag_values = {k: v for k, v in flags.items() if v is not None}
    cfg, applied = cfgmod.resolve(preset, file_values, flag_values, cfgmod.parse_set(args.set))
    if cfg.target_return is not None and not cfg.evaluates:
        cfg = cfgmod.with_overrides(cfg, {"eval_every_steps": target_eval_every_steps(cfg)})
    return cfgmod.validate(cfg), preset, applied


def parse_env_kwargs(items: list[str]) -> dict[str, object]:
    """``["KEY=VALUE", ...]`` of ``--env-kwarg``: each VALUE a TOML literal (``1e-3``, ``[0.5, 2.0]``, ``true``,
    ``"text"``), or else the text as it is (``models/my_hopper.xml``). A malformed or repeated KEY is a UserError."""
    out: dict[str, object] = {}
    for item in items:
        key, sep, text = (part.strip() for part in item.partition("="))
        if not sep or not key.isidentifier():
            raise UserError(f"--env-kwarg expects KEY=VALUE with KEY an argument name, got {item!r}")
        if key in out:
            raise UserError(f"--env-kwarg {key} is given twice")
        try:
            out[key] = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = text
    return out


def target_eval_every_steps(cfg: cfgmod.Config) -> int:
    """The evaluation schedule ``--target-return`` sets when the config has none: the env steps of about 5
    updates, each ``rollout_steps * num_envs``, or in episode mode ``num_envs`` whole episodes of the MuJoCo
    tasks' 1000-step time limit (at least ``episode_batch_steps``), the length they have near a target."""
    per_update = cfg.rollout_steps * cfg.num_envs or max(cfg.episode_batch_steps, 1000 * cfg.num_envs)
    return 5 * per_update


EXIT_DIVERGED = 3
"""Exit code of ``train`` when every seed ended but at least one diverged (its ``summary.json`` says why)."""


def run(args: argparse.Namespace) -> int:
    """Train (or resume); 0 when every seed finished, 1 when some seed did not (the line says which), 2 for
    bad input. A stop by Ctrl-C or SIGTERM propagates (the entry point exits 130 or 143)."""
    from mjreinforce.training.run import RunIncomplete

    try:
        return _run(args)
    except RunIncomplete as exc:
        print(f"mjreinforce train: error: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    check_cli("--workers", args.workers)
    if args.resume is not None:
        from mjreinforce.training.resume import resume_run

        result = resume_run(
            args.resume,
            quiet=args.quiet,
            plot=not args.no_plot,
            workers=args.workers or min(os.cpu_count() or 1, 2),
            allow_changed_model=args.allow_changed_model,
        )
        return _report(result)
    if args.allow_changed_model:
        raise UserError("--allow-changed-model applies only with --resume (a new run records its model file)")
    cfg, preset, applied = resolve_config(args)
    from mjreinforce.envs.vector import backend_reason
    from mjreinforce.training.run import train  # imports torch: after the cheap checks

    print(overrides_line(preset, cfg.env_id, applied), flush=True)
    note = backend_reason(cfg)  # why auto picks gymnasium: pushes, or env arguments
    if note:
        print(note, flush=True)
    out = args.out if args.out is not None else Path("runs") / f"{preset}-{cfg.env_id}"
    if args.seeds is not None and not cfg.seeds:
        raise UserError("--seeds needs at least one seed")
    workers = args.workers if args.workers is not None else min(os.cpu_count() or 1, len(cfg.seeds))
    result = train(
        cfg,
        out,
        overwrite=args.overwrite,
        quiet=args.quiet,
        preset=preset,
        preset_overrides=applied,
        plot=not args.no_plot,
        workers=workers,
    )
    return _report(result)


def overrides_line(preset: str, env_id: str, applied: dict[str, object]) -> str:
    """``preset vpg, tuned for Hopper: learning_rate=0.001, ...`` (or that it has no overrides for the env)."""
    task = cfgmod.env_name(env_id)
    if not applied:
        return f"preset {preset}: no per-task overrides for {task}"
    return f"preset {preset}, tuned for {task}: " + ", ".join(f"{k}={v}" for k, v in applied.items())


def _report(result) -> int:  # type: ignore[no-untyped-def]
    """Print the run's outcome; one stderr line per diverged seed. Returns the exit code."""
    print(f"run directory: {result.run_dir}")
    for seed, r in result.seeds.items():
        print(
            f"  seed {seed}: {r.episodes} episodes, {r.env_steps} env steps, {r.wall_seconds:.1f} s, "
            f"final mean return (last {result.config.stats_window}) {r.final_window_mean_return:.1f}"
        )
    for path in result.plots:
        print(f"plot: {path}")
    diverged = [r for r in result.seeds.values() if r.status == "diverged"]
    for r in diverged:
        print(f"mjreinforce train: {divergence_line(result.run_dir, r)}", file=sys.stderr)
    return EXIT_DIVERGED if diverged else 0


def divergence_line(run_dir: Path, r) -> str:  # type: ignore[no-untyped-def]
    """``seed 1 diverged at update 37 (policy loss is nan); the last good checkpoint is kept``."""
    from mjreinforce.runs.layout import seed_dir

    kept = (seed_dir(run_dir, r.seed) / "checkpoints" / "latest.json").exists()
    after = "the last good checkpoint is kept" if kept else "no checkpoint was written before it"
    return f"seed {r.seed} diverged at update {r.diverged_at_update} ({r.divergence}); {after}"
