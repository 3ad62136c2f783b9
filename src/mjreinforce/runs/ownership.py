"""Which files in a run directory are mjreinforce's: the run marker, ``--overwrite`` (where output flags may
write is :mod:`mjreinforce.runs.outputs`).

A run directory carries ``.mjreinforce-run.json`` (the *marker*), written first by ``train``: the top-level
entries the run writes (listed before they are written), its preset and the hash of its resolved config.
An entry is **ours** when the marker lists it, when it is the lock file, the marker or a temporary file of
the atomic writer, or when its name is one mjreinforce commands write into a run directory
(:func:`is_run_output`: ``config.toml``, ``summary.json``, real ``seed_<digits>`` directories, plots,
``eval.json``, ``summary.md``/``.csv``, ``robustness.*``). That last rule also covers run directories made
before the marker existed. ``--overwrite`` deletes only our entries and refuses a directory holding any
other one, naming it; it never deletes through a symlink (a link is unlinked, never followed).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from mjreinforce import config
from mjreinforce.config import Config
from mjreinforce.errors import UserError
from mjreinforce.files import is_temp_file, write_json_atomic
from mjreinforce.runs.layout import looks_like_run, seed_of
from mjreinforce.runs.lock import LOCK_NAME

MARKER_NAME = ".mjreinforce-run.json"
MARKER_FORMAT = 1
OUTPUTS_MANIFEST = ".mjreinforce-outputs.json"
"""The files mjreinforce's output commands wrote into a directory, with their sha256 (see runs.outputs)."""
OUTPUT_FILES = frozenset(
    {
        OUTPUTS_MANIFEST,
        "config.toml",
        "summary.json",
        "eval.json",
        "summary.md",
        "summary.csv",
        "summary_probability_of_improvement.csv",
        "robustness.csv",
        "robustness.md",
        "robustness_map.csv",
    }
)
"""File names that mjreinforce commands write into a run directory."""
OUTPUT_PATTERNS: tuple[str, ...] = (
    "learning_curve*.png",
    "learning_curve*.svg",
    "comparison_*.png",
    "comparison_*.svg",
    "robustness.png",
    "robustness.svg",
    "robustness_map_*.png",
    "robustness_map_*.svg",
)


@dataclass(frozen=True)
class RunMarker:
    """The marker's content: top-level entries the run writes, its preset, its config's hash."""

    entries: tuple[str, ...] = ()
    preset: str | None = None
    config_sha256: str | None = None


def config_sha256(cfg: Config) -> str:
    """sha256 of the resolved config (key-sorted JSON of :func:`mjreinforce.config.to_dict`)."""
    return hashlib.sha256(json.dumps(config.to_dict(cfg), sort_keys=True).encode()).hexdigest()


def read_marker(run_dir: Path) -> RunMarker | None:
    """The marker of ``run_dir``; None without one; a one-line UserError if it is unreadable."""
    path = run_dir / MARKER_NAME
    if not path.exists() and not path.is_symlink():
        return None
    try:
        if path.is_symlink():
            raise ValueError("a symbolic link")
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = tuple(data["entries"])
        if data["format"] > MARKER_FORMAT or not all(_bare_name(e) for e in entries):
            raise ValueError("unknown format")
        return RunMarker(entries, data.get("preset"), data.get("config_sha256"))
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"run marker {path} is unreadable or malformed; this directory is not touched") from None


def write_marker(run_dir: Path, marker: RunMarker) -> None:
    """Write the marker atomically (entries sorted, duplicates dropped)."""
    data = {
        "format": MARKER_FORMAT,
        "written_by": "mjreinforce",
        "entries": sorted(set(marker.entries)),
        "preset": marker.preset,
        "config_sha256": marker.config_sha256,
    }
    write_json_atomic(run_dir / MARKER_NAME, data)


def record_entries(run_dir: Path, names: list[str]) -> None:
    """Add top-level ``names`` to the marker (call before writing them, while holding the run's lock)."""
    marker = read_marker(run_dir) or RunMarker()
    write_marker(run_dir, RunMarker((*marker.entries, *names), marker.preset, marker.config_sha256))


def is_run_output(path: Path) -> bool:
    """True for a top-level entry whose name and kind are one that mjreinforce writes into a run directory
    (a ``seed_<digits>`` entry must be a real directory; an output file may be a file or a symlink)."""
    name = path.name
    if name in (LOCK_NAME, MARKER_NAME) or is_temp_file(name):
        return True
    if seed_of(path) is not None:
        return path.is_dir() and not path.is_symlink()
    known = name in OUTPUT_FILES or any(fnmatch.fnmatchcase(name, p) for p in OUTPUT_PATTERNS)
    return known and (path.is_symlink() or not path.is_dir())


def foreign_entries(run_dir: Path) -> list[str]:
    """Top-level entries of ``run_dir`` that are not ours (sorted)."""
    marker = read_marker(run_dir)
    listed = set(marker.entries) if marker else set()
    return sorted(p.name for p in run_dir.iterdir() if p.name not in listed and not is_run_output(p))


def is_run_dir(path: Path) -> bool:
    """A directory with a marker, or one that looks like a run (made before markers existed)."""
    return (path / MARKER_NAME).exists() or looks_like_run(path)


def check_run_path(raw: Path | str, *, allow_cwd: bool = False) -> Path:
    """``raw`` as a Path, refused (one-line UserError) when it is empty, the filesystem root, the home
    directory, the current directory (unless ``allow_cwd``) or a parent of it (symlinks resolved)."""
    if str(raw) == "":
        raise UserError("the run directory path is empty")
    path = Path(raw)
    resolved, cwd = path.resolve(), Path.cwd().resolve()
    if resolved == Path(resolved.anchor):
        why = "the filesystem root"
    elif resolved == Path.home().resolve():
        why = "the home directory"
    elif resolved == cwd and not allow_cwd:
        why = "the current directory"
    elif resolved in cwd.parents:
        why = "a parent of the current directory"
    else:
        return path
    raise UserError(f"refusing to use {str(raw)!r} as a run directory: it is {why}")


def check_new_run_dir(path: Path, overwrite: bool) -> None:
    """Refuse (one-line UserError, nothing touched) an output path that a new run may not use: a file,
    a non-empty directory that is not a run, a run without ``overwrite``, or a run holding foreign entries."""
    if path.is_symlink() and not path.is_dir():
        raise UserError(f"output path {path} is a symbolic link to no directory")
    if path.exists() and not path.is_dir():
        raise UserError(f"output path {path} exists and is not a directory")
    if not path.exists() or all(p.name == LOCK_NAME for p in path.iterdir()):
        return  # new, empty, or holding only a lock file
    if not is_run_dir(path):
        raise UserError(f"output directory {path} is not empty and is not a mjreinforce run; choose another --out")
    if not overwrite:
        raise UserError(f"output directory {path} already holds a run; pass --overwrite to replace it")
    foreign = foreign_entries(path)
    if foreign:
        raise UserError(
            f"--overwrite refused: {path} holds {foreign[0]!r}, which mjreinforce did not write "
            f"({len(foreign)} such entr{'y' if len(foreign) == 1 else 'ies'}); move it away or choose another --out"
        )


def clear_run_dir(path: Path) -> None:
    """Delete our entries of ``path`` except the lock file (call while holding the lock): checks again
    first, so a foreign entry that appeared meanwhile still refuses. Symlinks are unlinked, not followed."""
    check_new_run_dir(path, overwrite=True)
    for entry in sorted(path.iterdir(), key=lambda p: p.name == MARKER_NAME):  # the marker goes last
        if entry.name != LOCK_NAME:
            remove_entry(entry)


def remove_entry(entry: Path) -> None:
    """Delete one directory entry: a real directory with everything in it, anything else (a symlink too,
    even one to a directory) unlinked; a link is never followed."""
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
    else:
        entry.unlink(missing_ok=True)


def _bare_name(name: object) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\0" not in name
