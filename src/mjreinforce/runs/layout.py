"""The run-directory layout: where each file of a run lives, its table columns, creating the directory.

Layout (read back by :mod:`mjreinforce.runs.reading`)::

    RUN_DIR/config.toml, summary.json (written last: its presence marks a finished run)
    RUN_DIR/seed_<s>/episodes.csv, evals.csv, summary.json, tb/, checkpoints/
"""

from __future__ import annotations

import shutil
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


def prepare_run_dir(path: Path, overwrite: bool) -> None:
    """Create an empty run directory. An existing run is refused unless ``overwrite``; a
    non-empty directory that is not a run is always refused (nothing of the user's is deleted)."""
    if path.exists() and not path.is_dir():
        raise UserError(f"output path {path} exists and is not a directory")
    if path.exists() and any(path.iterdir()):
        if not looks_like_run(path):
            raise UserError(f"output directory {path} is not empty and is not a mjreinforce run; choose another --out")
        if not overwrite:
            raise UserError(f"output directory {path} already holds a run; pass --overwrite to replace it")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
