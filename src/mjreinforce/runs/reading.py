"""Read run directories written by the trainer into typed tables.

A run directory holds ``config.toml``, ``summary.json`` and one ``seed_<s>/``
directory per seed with ``episodes.csv`` (one row per finished episode) and
``evals.csv``. This module only *reads*; the trainer writes. Partial runs are
normal: a seed interrupted by Ctrl-C or a crash has no (or a "failed")
``summary.json`` and an ``episodes.csv`` whose last line may be cut short.
Anything else that does not parse (bad bytes, a junk row, a JSON or TOML file
that is not what the trainer writes) is corruption: a one-line :class:`UserError`
naming the file, never a guess.
"""

from __future__ import annotations

import io
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mjreinforce.config import from_dict
from mjreinforce.errors import UserError, one_line
from mjreinforce.files import read_json_checked
from mjreinforce.runs.layout import EPISODE_COLUMNS, EVAL_COLUMNS, list_seeds, seed_dir

_INT_COLUMNS = frozenset({"seed", "episode", "env_steps", "length", "terminated", "truncated", "update"})
NO_SUMMARY = "incomplete"
"""``seed_status`` value of a seed directory without a readable ``summary.json``."""


@dataclass(frozen=True)
class RunData:
    """Everything read from one run directory.

    ``episodes`` has the ``episodes.csv`` columns of all seeds with at least one
    episode, sorted by (seed, episode); ``evals`` the ``evals.csv`` columns (may
    be empty). ``seed_status`` maps every ``seed_<s>`` directory to the status in
    its ``summary.json`` ("finished", "interrupted", "diverged", "failed") or ``"incomplete"``
    when that file is missing; it can list seeds absent from ``episodes``.
    """

    run_dir: Path
    label: str
    env_id: str
    algorithm: str
    episodes: pd.DataFrame
    evals: pd.DataFrame
    seed_status: dict[int, str]
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def seeds(self) -> list[int]:
        """Seeds with at least one finished episode, ascending."""
        return sorted(int(s) for s in self.episodes["seed"].unique())

    def by_seed(self) -> Iterator[tuple[int, pd.DataFrame]]:
        """``(seed, episodes of that seed in episode order)`` for every seed with episodes."""
        for seed, frame in self.episodes.groupby("seed", sort=True):
            yield int(seed), frame


def read_csv_tolerant(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    """Read a trainer CSV, tolerating a crash mid-write; empty frame with ``columns`` if no rows.

    The trainer writes whole lines, so a file that does not end in a newline
    was cut off while writing its last line: that line is dropped (its numbers
    may be truncated, so parsing it would give wrong values). A missing or
    empty file has no rows. Anything else that does not parse (bytes that are
    not UTF-8, a header without ``columns``, a row with too many or too few
    fields or a value that is not a number) is a :class:`UserError` naming the
    file. Integer columns get int64, the others float64.
    """
    data = path.read_bytes() if path.is_file() else b""
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
    if not data:
        return _empty_frame(columns)
    try:
        header = data.split(b"\n", 1)[0].decode().strip().split(",")
        if not set(columns) <= set(header):
            raise ValueError(f"its header lacks the columns {', '.join(c for c in columns if c not in header)}")
        _check_field_counts(data)
        text = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, index_col=False, encoding="utf-8")
        frame = text.apply(pd.to_numeric, errors="coerce")
        bad = (frame.isna() & (text.apply(lambda column: column.str.strip().str.lower()) != "nan")).any(axis=1)
        if bad.any():
            raise ValueError(f"data row {int(bad.to_numpy().argmax()) + 1} is not a row of numbers")
    except (ValueError, pd.errors.ParserError) as exc:  # UnicodeDecodeError is a ValueError
        raise UserError(f"{path} is corrupted: {one_line(exc)}") from None
    frame = frame[list(columns)].dropna()  # a "nan" the trainer wrote: no number to plot
    return frame.astype({c: "int64" if c in _INT_COLUMNS else "float64" for c in columns})


def _check_field_counts(data: bytes) -> None:
    """Raise ValueError at the first row whose number of fields differs from the header's (the trainer's rows
    hold numbers only, so counting commas is exact)."""
    lines = data.split(b"\n")[:-1]
    fields = lines[0].count(b",")
    for number, line in enumerate(lines[1:], start=1):
        if line.count(b",") != fields:
            raise ValueError(f"data row {number} has {line.count(b',') + 1} fields, the header {fields + 1}")


def _empty_frame(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="int64" if c in _INT_COLUMNS else "float64") for c in columns})


def _read_config(run_dir: Path) -> dict[str, Any]:
    """``config.toml`` of a run as a dict; {} when it is missing; corrupted: a UserError naming it."""
    path = run_dir / "config.toml"
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_bytes().decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is corrupted: {one_line(exc)}") from None


def _algorithm_from_config(values: dict[str, Any]) -> str:
    """The config's ``algorithm_name`` (e.g. "VPG (GAE)"), or "unknown" if the config is unusable."""
    try:
        return from_dict(values).algorithm_name if values else "unknown"
    except (UserError, TypeError, ValueError):
        return "unknown"


def _seed_dirs(run_dir: Path) -> list[tuple[int, Path]]:
    """``(seed, path)`` of every ``seed_<s>`` directory, by ascending seed."""
    return [(seed, seed_dir(run_dir, seed)) for seed in list_seeds(run_dir)]


def load_run(run_dir: Path, label: str | None = None) -> RunData:
    """Read a (possibly partial) run directory.

    ``label`` defaults to the directory name. ``env_id`` and ``algorithm`` come
    from the run's ``summary.json``, else from ``config.toml``. Seeds without
    episodes are left out of ``episodes`` but kept in ``seed_status``. Raises
    :class:`UserError` when ``run_dir`` has no ``seed_*/episodes.csv``.
    """
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise UserError(f"run directory not found: {run_dir}")
    seed_dirs = [(s, p) for s, p in _seed_dirs(run_dir) if (p / "episodes.csv").is_file()]
    if not seed_dirs:
        raise UserError(f"{run_dir} is not a mjreinforce run directory (no seed_*/episodes.csv)")
    summary = read_json_checked(run_dir / "summary.json")
    config = _read_config(run_dir)
    episode_frames, eval_frames, status = [], [], {}
    for seed, path in seed_dirs:
        status[seed] = str(read_json_checked(path / "summary.json").get("status", NO_SUMMARY))
        episodes = read_csv_tolerant(path / "episodes.csv", EPISODE_COLUMNS)
        if len(episodes):
            episode_frames.append(episodes.sort_values("episode", kind="stable"))
        evals = read_csv_tolerant(path / "evals.csv", EVAL_COLUMNS)
        if len(evals):
            eval_frames.append(evals)
    return RunData(
        run_dir=run_dir,
        label=label or run_dir.resolve().name,
        env_id=str(summary.get("env_id") or config.get("env_id") or "unknown env"),
        algorithm=str(summary.get("algorithm") or _algorithm_from_config(config)),
        episodes=_concat(episode_frames, EPISODE_COLUMNS),
        evals=_concat(eval_frames, EVAL_COLUMNS),
        seed_status=status,
        config=config,
    )


def _concat(frames: list[pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    if not frames:
        return _empty_frame(columns)
    return pd.concat(frames, ignore_index=True)


def load_runs(run_dirs: Sequence[Path]) -> list[RunData]:
    """:func:`load_run` for each directory, with labels made unique.

    Labels default to directory names; when two runs share a name, each of
    those is labelled ``parent/name`` instead.
    """
    paths = [Path(p) for p in run_dirs]
    names = [p.resolve().name for p in paths]
    labels = [
        f"{p.resolve().parent.name}/{name}" if names.count(name) > 1 else name
        for p, name in zip(paths, names, strict=True)
    ]
    return [load_run(p, label) for p, label in zip(paths, labels, strict=True)]


__all__ = [
    "EPISODE_COLUMNS",
    "EVAL_COLUMNS",
    "NO_SUMMARY",
    "RunData",
    "load_run",
    "load_runs",
    "read_csv_tolerant",
]
