"""The run-directory layout: where each file of a run lives, its table columns, creating the directory.

Layout (read back by :mod:`mjreinforce.runs.reading`)::

    RUN_DIR/config.toml, summary.json (written last: its presence marks a finished run)
    RUN_DIR/seed_<s>/episodes.csv, evals.csv, summary.json, tb/, checkpoints/
    RUN_DIR/.mjreinforce-run.json (the marker), .mjreinforce.lock (see runs.ownership, runs.lock)
"""

from __future__ import annotations

from pathlib import Path

from mjreinforce.errors import UserError

EPISODE_COLUMNS = ("seed", "episode", "env_steps", "return", "length", "terminated", "truncated", "wall_seconds")
EVAL_COLUMNS = (
    "seed",
    "update",
    "env_steps",
    "wall_seconds",
    "eval_mean_return",
    "eval_std_return",
    "eval_mean_length",
)


SEED_PREFIX = "seed_"


def seed_dir(run_dir: Path, seed: int) -> Path:
    """``run_dir/seed_<seed>``."""
    return run_dir / f"{SEED_PREFIX}{seed}"


def seed_of(path: Path) -> int | None:
    """The seed a directory name ``seed_<s>`` stands for (``s`` decimal digits), else None."""
    digits = path.name.removeprefix(SEED_PREFIX)
    if digits == path.name or not digits.isascii() or not digits.isdigit():
        return None
    return int(digits)


def list_seeds(run_dir: Path) -> list[int]:
    """Seeds of the ``seed_<s>`` directories in ``run_dir`` (symlinks not followed), ascending."""
    if not run_dir.is_dir():
        return []
    found = (seed_of(p) for p in run_dir.iterdir() if p.is_dir() and not p.is_symlink())
    return sorted(s for s in found if s is not None)


def looks_like_run(path: Path) -> bool:
    """True when ``path`` holds anything a run writes."""
    return (path / "config.toml").exists() or (path / "summary.json").exists() or bool(list_seeds(path))


def check_real_dirs(seed_out: Path) -> None:
    """Refuse (one-line UserError) a seed directory, or its ``checkpoints/`` or ``tb/``, that is a symbolic
    link: the run never writes through a link. Missing directories are fine (they are created later)."""
    for path in (seed_out, seed_out / "checkpoints", seed_out / "tb"):
        if path.is_symlink():
            raise UserError(f"{path} is a symbolic link; mjreinforce does not write through links")
        if path.exists() and not path.is_dir():
            raise UserError(f"{path} exists and is not a directory")
