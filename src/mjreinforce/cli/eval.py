"""``mjreinforce eval``: evaluate a trained policy (and optionally record a video of it)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from mjreinforce.config_bounds import check_cli
from mjreinforce.errors import UserError, shown


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a trained policy",
        description="Evaluate a trained policy on fresh envs; deterministic (mean action) by default.",
    )
    p.add_argument(
        "path",
        type=Path,
        metavar="RUN_DIR|CHECKPOINT",
        help="a run directory, a seed_<s> directory or a checkpoint file",
    )
    p.add_argument("--episodes", type=int, default=100, help="evaluation episodes (default 100)")
    p.add_argument("--stochastic", action="store_true", help="sample actions (default: the mean action)")
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the evaluation envs (env i gets seed + i); default: a fixed seed distinct from training seeds",
    )
    p.add_argument(
        "--run-seed",
        type=int,
        default=None,
        metavar="K",
        help="which training seed's checkpoint to load when the run has several (default: the first)",
    )
    p.add_argument(
        "--physics",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="physics override on every eval env, e.g. gravity=-5 body_mass.pole*=2 (gymnasium backend)",
    )
    add_perturb_flag(p)
    p.add_argument(
        "--backend",
        choices=["auto", "gymnasium", "envpool"],
        help="env backend (default: the training backend; gymnasium with --physics or pushes)",
    )
    p.add_argument("--video", type=Path, metavar="FILE.mp4", help="also record episode(s) to this MP4 file")
    p.add_argument("--video-episodes", type=int, default=1, metavar="N", help="episodes in the video (default 1)")
    p.add_argument("--video-size", default="480x480", metavar="WxH", help="video frame size (default 480x480)")
    p.add_argument(
        "--allow-changed-model",
        action="store_true",
        help="use the run's model file (env_kwargs.xml_file) although it changed since training",
    )
    p.add_argument(
        "--out",
        type=Path,
        metavar="FILE.json",
        help="where to write the results (default: eval.json in the run directory, or next to a checkpoint file "
        "outside a run)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace --out or --video even if mjreinforce did not write it (never a run's own files)",
    )
    p.set_defaults(run=run)


def add_perturb_flag(p: argparse.ArgumentParser) -> None:
    """``--perturb KEY=VALUE`` (repeatable), shared with ``robustness``."""
    p.add_argument(
        "--perturb",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a sim-to-real perturbation on every eval env, e.g. obs_noise_std=0.05, action_delay_steps=0:2, "
        "push_body=torso (repeatable; see docs/perturbations.md)",
    )


def first_run_seed(path: Path) -> int | None:
    """For a run dir with several ``seed_<s>`` dirs: the first seed of its ``config.toml`` that has a dir
    (the smallest if the config is unreadable); None otherwise (a single seed, a seed dir or a file)."""
    if not path.is_dir():
        return None
    from mjreinforce.runs.layout import list_seeds

    seeds = list_seeds(path)
    if len(seeds) < 2:
        return None
    from mjreinforce import config

    try:
        order = [int(s) for s in config.read_toml(path / "config.toml").get("seeds", [])]
    except (UserError, OSError, ValueError, TypeError):
        order = []
    return next((s for s in order if s in seeds), seeds[0])


def parse_size(text: str) -> tuple[int, int]:
    """``"640x480"`` -> ``(640, 480)`` (width, height), each side within ``CLI_BOUNDS["--video-size"]``."""
    m = re.fullmatch(r"\s*(\d{1,9})\s*[xX]\s*(\d{1,9})\s*", text)
    if not m:
        raise UserError(f"--video-size must look like WIDTHxHEIGHT, e.g. 480x480, got {shown(text)}")
    width, height = int(m.group(1)), int(m.group(2))
    check_cli("--video-size", width)
    check_cli("--video-size", height)
    return width, height


def check_flags(args: argparse.Namespace) -> None:
    """The numeric flags shared with ``robustness`` inside their bounds (:mod:`mjreinforce.config_bounds`)."""
    for flag in ("--episodes", "--seed", "--run-seed", "--video-episodes"):
        check_cli(flag, getattr(args, flag[2:].replace("-", "_"), None))


def silence_mujoco_warnings() -> None:
    """Stop MuJoCo printing its warnings to stderr (and MUJOCO_LOG.TXT); the physics guard turns the ones
    that matter (bad qpos/qvel/qacc) into a one-line PhysicsUnstableError."""
    import mujoco

    mujoco.set_mju_user_warning(lambda _message: None)


def default_output(path: Path) -> Path:
    """``eval.json`` in the run directory of ``path`` (above a seed directory or one of its checkpoints), or
    beside a checkpoint file outside a run (:func:`mjreinforce.runs.outputs.home_of`)."""
    from mjreinforce.runs.outputs import home_of

    return home_of(path) / "eval.json"


def check_outputs(path: Path, out: Path, video: Path | None, overwrite: bool) -> None:
    """Refuse (one line) an ``--out`` or ``--video`` file that the guards of :mod:`mjreinforce.runs.outputs`
    refuse, or one file given for both; then check that both places can be written."""
    from mjreinforce.files import probe_writable
    from mjreinforce.runs.outputs import check_output_file

    targets = {"--out": out} | ({"--video": video} if video is not None else {})
    for flag, target in targets.items():
        check_output_file(target, overwrite, sources=(path,), flag=flag)
    if video is not None and out.parent.resolve() / out.name == video.parent.resolve() / video.name:
        raise UserError(f"--out and --video name the same file {out}")
    for target in targets.values():  # critical: before any episode, so a bad place costs nothing
        probe_writable(target)


def run(args: argparse.Namespace) -> int:
    if args.video is not None:
        from mjreinforce.trained.gl import check_gl_settings

        check_gl_settings()  # before anything imports mujoco: a bad MUJOCO_GL breaks that import
    check_flags(args)
    width, height = parse_size(args.video_size)
    from mjreinforce.envs.vector import resolve_backend
    from mjreinforce.files import write_json_atomic
    from mjreinforce.runs.outputs import record_outputs
    from mjreinforce.trained.evaluation import evaluate_policy
    from mjreinforce.trained.loading import load_policy
    from mjreinforce.training.evaluation import DEFAULT_EVAL_SEED, eval_config

    silence_mujoco_warnings()
    seed = DEFAULT_EVAL_SEED if args.seed is None else args.seed
    run_seed = args.run_seed if args.run_seed is not None else first_run_seed(args.path)
    trained = load_policy(args.path, seed=run_seed, allow_changed_model=args.allow_changed_model)
    cfg = eval_config(trained.config, args.physics, args.backend, args.perturb)
    if args.perturb and args.video is not None:
        raise UserError("--video records unperturbed episodes; record it in a call without --perturb")
    out = args.out or default_output(args.path)
    check_outputs(args.path, out, args.video, args.overwrite)
    print(f"checkpoint: {trained.path} (training seed {trained.seed}, {cfg.env_id})")
    if args.video is not None:
        from mjreinforce.trained.video import record_video

        video = record_video(
            trained, args.video, args.video_episodes, seed, not args.stochastic, args.physics, width, height
        )
        print(
            f"video: {video.path} ({video.frames} frames at {video.fps:g} fps, "
            f"returns {', '.join(f'{r:.1f}' for r in video.returns)})"
        )
        record_outputs([video.path])
    from mjreinforce.envs.perturb_config import PUSH_BACKEND_NOTE, needs_gymnasium, perturbation_items

    if args.backend in (None, "auto") and needs_gymnasium(cfg):
        print(PUSH_BACKEND_NOTE)
    result = evaluate_policy(
        trained, args.episodes, seed, not args.stochastic, args.physics, args.backend, args.perturb
    )
    summary = result.summary()
    write_json_atomic(
        out,
        {
            **summary,
            "checkpoint": str(trained.path),
            "env_id": cfg.env_id,
            "training_seed": trained.seed,
            "eval_seed": seed,
            "deterministic": not args.stochastic,
            "physics": list(cfg.physics),
            "perturbations": perturbation_items(cfg),
            "backend": resolve_backend(cfg),
        },
    )
    record_outputs([out])
    mode = "stochastic" if args.stochastic else "deterministic"
    physics = ", ".join(cfg.physics) or "default"
    perturbed = ", ".join(perturbation_items(cfg)) or "none"
    print(f"{summary['episodes']} episodes, {mode}, eval seed {seed}, physics: {physics}, perturbations: {perturbed}")
    for name in ("return", "length"):
        print(
            f"  {name:<6}  mean {summary[f'{name}_mean']:10.2f}  std {summary[f'{name}_std']:9.2f}  "
            f"min {summary[f'{name}_min']:10.2f}  max {summary[f'{name}_max']:10.2f}"
        )
    print(f"wrote {out}")
    return 0
