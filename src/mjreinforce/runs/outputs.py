"""Where an output flag may write (:func:`check_output_file`), and which files mjreinforce wrote (the manifest).

``eval --out``, ``eval --video``, ``robustness --out``, ``plot --out`` and ``export --out`` write files that are
not part of a run. Before anything is computed, each file they will write is checked:

- **never a record.** In a *mjreinforce directory* (a run, sweep or benchmark directory: :func:`is_mjreinforce_dir`)
  a file may not be, or go inside, one of the directory's records (:func:`is_record`): its config, summary,
  tables, checkpoints, seed, trial or cell directories, marker, lock or temporary files.
- **never another run's directory.** A file may go into a mjreinforce directory only when it is the *home*
  (:func:`home_of`) of a path the command reads: ``eval RUN_A --out RUN_B/eval.json`` is refused, as is
  ``plot RUN_A --out RUN_B``. A seed directory's or a checkpoint's home is the run above it.
- **never a file mjreinforce did not write**, unless ``--overwrite``. mjreinforce wrote a file when the manifest
  ``.mjreinforce-outputs.json`` in its directory lists its name with the sha256 of its current bytes (an output
  command adds each file it wrote: :func:`record_outputs`), or, in a run directory, when its name is one
  mjreinforce commands write there (``eval.json``, ``summary.md``, ``robustness.*``, ...: the names
  ``train --overwrite`` counts as the run's too). A file edited, replaced or copied elsewhere since is not.

Each refusal is a one-line :class:`UserError` naming the path.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from mjreinforce.errors import UserError
from mjreinforce.files import is_temp_file, read_nofollow, write_json_atomic
from mjreinforce.runs.layout import list_seeds, seed_of
from mjreinforce.runs.ownership import (
    BENCHMARK_FILES,
    BENCHMARK_MARKER_NAME,
    MARKER_NAME,
    OUTPUTS_MANIFEST,
    SWEEP_FILES,
    is_run_output,
    read_marker,
)

OWNER_FILES = (MARKER_NAME, BENCHMARK_MARKER_NAME, "sweep_results.csv", "benchmark.csv")
"""A directory holding one of these is a mjreinforce directory. The lock is not one of them: a run's
``seed_<s>`` directories hold their worker's lock too, and are the run's records, not runs."""

RECORD_FILES = frozenset({"config.toml", "summary.json", "tune"}) | SWEEP_FILES | BENCHMARK_FILES
"""Top-level names of what ``train``, ``sweep`` and ``benchmark`` keep in their directory (ownership's lists)."""
RECORD_PATTERNS = ("learning_curve*.png", "learning_curve*.svg", "trial_*", ".mjreinforce*")


def is_mjreinforce_dir(path: Path) -> bool:
    """A run, sweep or benchmark directory: it holds one of :data:`OWNER_FILES`, or (a run made before markers
    existed) a ``config.toml`` and a ``seed_<s>`` directory."""
    if any(os.path.lexists(path / name) for name in OWNER_FILES):
        return True
    return (path / "config.toml").is_file() and bool(list_seeds(path))


def is_record(directory: Path, entry: Path) -> bool:
    """True when the top-level ``entry`` of the mjreinforce directory ``directory`` is, or would be, one of its
    records: a name of :data:`RECORD_FILES` or :data:`RECORD_PATTERNS`, a ``seed_<s>`` name, a temporary file,
    an entry its marker lists, or a real directory that is itself a mjreinforce directory (a benchmark's cell)."""
    name = entry.name
    if name in RECORD_FILES or seed_of(entry) is not None or is_temp_file(name):
        return True
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in RECORD_PATTERNS):
        return True
    for marker in (read_marker(directory), read_marker(directory, BENCHMARK_MARKER_NAME)):
        if marker is not None and name in marker.entries:
            return True
    return entry.is_dir() and not entry.is_symlink() and is_mjreinforce_dir(entry)


def home_of(source: Path | str) -> Path:
    """The directory that a command reading ``source`` (a run, seed or checkpoint path) may write into, as an
    absolute path: a run directory itself, the run above a ``seed_<s>`` directory or a ``seed_<s>/checkpoints/``
    file, else the directory of a file."""
    path = Path(os.path.abspath(source))
    if not path.is_dir():
        path = path.parent
        if path.name == "checkpoints":
            path = path.parent
    return path.parent if seed_of(path) is not None else path


def check_output_file(path: Path, overwrite: bool, sources: Sequence[Path] = (), flag: str = "--out") -> None:
    """Refuse (one-line UserError naming ``path``) an output file given by ``flag`` that is a directory, would
    be or go inside a record of a mjreinforce directory, would go into a mjreinforce directory that is not the
    home of one of ``sources`` (checked only when ``sources`` are given), or exists and was not written by
    mjreinforce (unless ``overwrite``). See the module docstring."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        raise UserError(f"{path} is a directory; {flag} names the file to write")
    where = path.parent.resolve() / path.name
    homes = {home_of(s).resolve() for s in sources}
    for directory in where.parents:
        entry = directory / where.relative_to(directory).parts[0]
        owned = is_mjreinforce_dir(directory)
        if (owned or directory in homes) and is_record(directory, entry):
            what = "one of its own files" if entry == where else f"inside its own {entry.name}/"
            raise UserError(f"refusing to write {path}: it is {what} (the run {directory}); choose another {flag}")
        if directory in homes:
            break  # what is above the run a command reads holds that run as a record
        if owned and homes:
            raise UserError(
                f"refusing to write {path}: it would go into {directory}, the directory of a run, sweep or "
                f"benchmark that this command does not read; choose another {flag}"
            )
    if where.name == OUTPUTS_MANIFEST:
        raise UserError(f"refusing to write {path}: mjreinforce keeps its list of written files there")
    if os.path.lexists(where) and not overwrite and not written_by_mjreinforce(where, homes):
        raise UserError(f"{flag} {path} exists and mjreinforce did not write it; pass --overwrite to replace it")


def written_by_mjreinforce(path: Path, homes: Iterable[Path] = ()) -> bool:
    """True for a regular file (not a symlink) that its directory's manifest lists with the sha256 of its
    bytes, or that has a name mjreinforce writes into a run directory and lies in one (or in a home)."""
    if path.is_symlink() or not path.is_file():
        return False
    if read_manifest(path.parent).get(path.name) == _sha256(path):
        return True
    return is_run_output(path) and (path.parent in set(homes) or is_mjreinforce_dir(path.parent))


def read_manifest(directory: Path) -> dict[str, str]:
    """``{name: sha256}`` of the manifest in ``directory``; {} when it is missing, a symlink or unreadable."""
    try:
        files = json.loads(read_nofollow(directory / OUTPUTS_MANIFEST))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    if not isinstance(files, dict):
        return {}
    return {name: digest for name, digest in files.items() if isinstance(digest, str)}


def record_outputs(paths: Iterable[Path]) -> None:
    """Add each written file to the manifest of its directory (with the sha256 of its bytes), dropping entries
    whose files are gone; written atomically, so an interrupted update leaves the old manifest."""
    by_dir: dict[Path, list[Path]] = {}
    for path in paths:
        where = Path(path).parent.resolve() / Path(path).name
        by_dir.setdefault(where.parent, []).append(where)
    for directory, written in by_dir.items():
        files = {name: digest for name, digest in read_manifest(directory).items() if (directory / name).is_file()}
        files.update({p.name: _sha256(p) for p in written})
        write_json_atomic(directory / OUTPUTS_MANIFEST, {"format": 1, "written_by": "mjreinforce", "files": files})


def _sha256(path: Path) -> str:
    return hashlib.sha256(read_nofollow(path)).hexdigest()
