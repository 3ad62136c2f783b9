"""``mjreinforce export``: write a trained policy as an ONNX file, verified with onnxruntime."""

from __future__ import annotations

import argparse
from pathlib import Path

from mjreinforce.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a trained policy to ONNX",
        description=(
            "Write the deterministic policy (observation normalization included) as an ONNX graph from raw "
            "observations (batch, obs_dim) to env actions (batch, act_dim); it is checked with onnxruntime "
            "against the policy first, and not written if they differ by more than 1e-5."
        ),
    )
    p.add_argument(
        "path",
        type=Path,
        metavar="RUN_DIR",
        help="a run directory, a seed_<s> directory or a checkpoint file",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="which training seed's checkpoint to export when the run has several (default: the first)",
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        metavar="FILE",
        help="a checkpoint of that seed by name (e.g. ckpt_200.safetensors, in its checkpoints/), or a path "
        "to one (default: the latest)",
    )
    p.add_argument("--out", type=Path, required=True, metavar="FILE.onnx", help="the ONNX file to write")
    p.add_argument(
        "--allow-changed-model",
        action="store_true",
        help="use the run's model file (env_kwargs.xml_file) although it changed since training",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace --out even if mjreinforce did not write it (never a run's own files)",
    )
    p.set_defaults(run=run)


def checkpoint_to_load(path: Path, seed: int | None, checkpoint: Path | None) -> Path:
    """What :func:`~mjreinforce.trained.loading.load_policy` gets: ``path``, or with ``--checkpoint`` that file
    (a bare name is looked up in the chosen seed's ``checkpoints/`` directory)."""
    if checkpoint is None:
        return path
    if path.is_file():
        raise UserError(f"{path} is a checkpoint file already; --checkpoint picks one inside a run directory")
    if checkpoint.name != str(checkpoint):
        return checkpoint
    from mjreinforce.runs.checkpoint_dir import latest_checkpoint

    return latest_checkpoint(path, seed=seed).parent / checkpoint.name


def run(args: argparse.Namespace) -> int:
    from mjreinforce.cli.eval import first_run_seed, silence_mujoco_warnings
    from mjreinforce.config_bounds import CLI_BOUNDS, check_number

    if args.seed is not None:
        check_number("--seed", args.seed, CLI_BOUNDS["--run-seed"])
    from mjreinforce.trained.loading import load_policy

    silence_mujoco_warnings()
    seed = args.seed if args.seed is not None else first_run_seed(args.path)
    file = checkpoint_to_load(args.path, seed, args.checkpoint)
    trained = load_policy(file, seed=seed, allow_changed_model=args.allow_changed_model)
    print(f"checkpoint: {trained.path} (training seed {trained.seed}, {trained.config.env_id})")
    report = trained.export_onnx(args.out, overwrite=args.overwrite)
    print(
        f"verified with onnxruntime: max |difference| {report.max_abs_difference:.2g} from the policy over "
        f"{report.observations} observations at batch sizes {', '.join(map(str, report.batch_sizes))}"
    )
    print(f"wrote {report.path} (opset {report.opset})")
    return 0
