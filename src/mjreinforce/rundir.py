"""Writing run directories: layout, the per-episode table, atomic JSON.

Layout (read back by :mod:`mjreinforce.results`)::

    RUN_DIR/config.toml, summary.json (written last: its presence marks a finished run)
    RUN_DIR/seed_<s>/episodes.csv, evals.csv, summary.json, tb/, checkpoints/
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

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


def seed_dir(run_dir: Path, seed: int) -> Path:
    return run_dir / f"seed_{seed}"


def looks_like_run(path: Path) -> bool:
    """True when ``path`` holds anything a run writes."""
    return (path / "config.toml").exists() or (path / "summary.json").exists() or any(path.glob("seed_*"))


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


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to a temporary file in the same directory, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; {} if it is missing or unreadable (e.g. half-written)."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


class CsvLog:
    """Append-only CSV with a fixed header, flushed after every row so a crash loses at most
    the row being written."""

    def __init__(self, path: Path, columns: tuple[str, ...]) -> None:
        self.path = path
        new = not path.exists() or path.stat().st_size == 0
        self._file = open(path, "a", newline="")  # noqa: SIM115 -- held open for the whole run
        self._writer = csv.writer(self._file)
        if new:
            self._writer.writerow(columns)
            self._file.flush()

    def write(self, row: tuple[Any, ...]) -> None:
        self._writer.writerow(row)
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def truncate_csv(path: Path, keep_rows: int) -> None:
    """Keep the header and the first ``keep_rows`` complete rows (used when resuming)."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    complete = [line for line in lines if line.endswith("\n")]
    path.write_text("".join(complete[: 1 + keep_rows]))
