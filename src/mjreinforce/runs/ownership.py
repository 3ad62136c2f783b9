"""Which files in a run directory are mjreinforce's: the run marker, ``--overwrite``; and what kind of
mjreinforce directory a path is (:func:`directory_kind`: a run, a sweep or a benchmark), with whose entries
(:func:`is_own_entry`). Where output flags may write is :mod:`mjreinforce.runs.outputs`.

A run directory carries ``.mjreinforce-run.json`` (the *marker*), written first by ``train``: the top-level
entries the run writes (listed before they are written), its preset and the hash of its resolved config.
An entry is **ours** when the marker lists it, when it is the lock file, the marker or a temporary file of
the atomic writer, or when its name is one mjreinforce commands write into a run directory
(:func:`is_run_output`: ``config.toml``, ``summary.json``, real ``seed_<digits>`` directories, plots,
``eval.json``, ``summary.md``/``.csv``, ``robustness.*``). That last rule also covers run directories made
before the marker existed. ``--overwrite`` deletes only our entries and refuses a directory holding any
other one, naming it; it never deletes through a symlink (a link is unlinked, never followed).

A benchmark directory (``mjreinforce benchmark --out``) carries ``.mjreinforce-benchmark.json`` instead,
listing its run directories (one per env and preset) before they are made; its own files are
:data:`BENCHMARK_FILES`. A sweep directory has no marker: it is known by its result files and its
``trial_<k>/`` and ``tune/`` directories (:func:`is_sweep_output`).
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
BENCHMARK_MARKER_NAME = ".mjreinforce-benchmark.json"
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
BENCHMARK_FILES = frozenset(
    {"summary.json", "benchmark.csv", "benchmark.md", "learning_curves.png", "learning_curves.svg"}
)
"""The files ``mjreinforce benchmark`` writes at the top of its directory (beside its run directories)."""
BENCHMARK_CELL_HEADER = "# mjreinforce benchmark cell:"
"""How the ``config.toml`` of a benchmark's run directory begins (recognizes benchmarks made before the marker)."""
SWEEP_FILES = frozenset({"sweep_results.csv", "best_config.toml", "summary.json"})
"""The files ``mjreinforce sweep`` writes at the top of its directory (beside ``trial_<k>/`` and ``tune/``)."""
KIND_TEXT = {"run": "a mjreinforce run", "sweep": "a mjreinforce sweep", "benchmark": "a mjreinforce benchmark"}
"""How an error line names each kind of :func:`directory_kind`."""


@dataclass(frozen=True)
class RunMarker:
    """The marker's content: top-level entries the run writes, its preset, its config's hash."""

    entries: tuple[str, ...] = ()
    preset: str | None = None
    config_sha256: str | None = None


def config_sha256(cfg: Config) -> str:
    """sha256 of the resolved config (key-sorted JSON of :func:`mjreinforce.config.to_dict`)."""
    return hashlib.sha256(json.dumps(config.to_dict(cfg), sort_keys=True).encode()).hexdigest()


def read_marker(run_dir: Path, name: str = MARKER_NAME) -> RunMarker | None:
    """The marker of ``run_dir`` (``name``: the benchmark's marker, :data:`BENCHMARK_MARKER_NAME`); None without
    one; a one-line UserError if it is unreadable."""
    path = run_dir / name
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
        what = "run" if name == MARKER_NAME else "benchmark"
        raise UserError(f"{what} marker {path} is unreadable or malformed; this directory is not touched") from None


def write_marker(run_dir: Path, marker: RunMarker, name: str = MARKER_NAME) -> None:
    """Write the marker (``name``: the run's or the benchmark's) atomically (entries sorted, duplicates dropped)."""
    data = {
        "format": MARKER_FORMAT,
        "written_by": "mjreinforce",
        "entries": sorted(set(marker.entries)),
        "preset": marker.preset,
        "config_sha256": marker.config_sha256,
    }
    write_json_atomic(run_dir / name, data)


def record_entries(run_dir: Path, names: list[str], name: str = MARKER_NAME) -> None:
    """Add top-level ``names`` to the marker (call before writing them, while holding the directory's lock)."""
    marker = read_marker(run_dir, name) or RunMarker()
    write_marker(run_dir, RunMarker((*marker.entries, *names), marker.preset, marker.config_sha256), name)


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


def is_sweep_output(path: Path) -> bool:
    """True for an entry a sweep writes at its top level: a real ``trial_<digits>`` or ``tune`` directory,
    its result files (:data:`SWEEP_FILES`), the lock, a temporary file of the atomic writer."""
    name = path.name
    if name in SWEEP_FILES or name == LOCK_NAME or is_temp_file(name):
        return not path.is_dir() or path.is_symlink()
    digits = name.removeprefix("trial_")
    is_trial = digits != name and digits.isascii() and digits.isdigit()
    return (is_trial or name == "tune") and path.is_dir() and not path.is_symlink()


def is_benchmark_cell_dir(path: Path) -> bool:
    """A real directory whose ``config.toml`` begins as a benchmark's run directory's does."""
    if not path.is_dir() or path.is_symlink():
        return False
    try:
        with open(path / "config.toml", encoding="utf-8") as f:
            return f.readline().startswith(BENCHMARK_CELL_HEADER)
    except (OSError, UnicodeDecodeError):
        return False


def directory_kind(path: Path) -> str:
    """What ``path`` is: "missing" (no such entry), "file" (not a directory), "empty" (nothing but a lock
    file), "benchmark", "run", "sweep" (see the module docstring; directories made before the markers by
    what they hold), or "other" (a directory mjreinforce did not make)."""
    if not path.exists():
        return "file" if path.is_symlink() else "missing"
    if not path.is_dir():
        return "file"
    entries = [p for p in path.iterdir() if p.name != LOCK_NAME]
    if not entries:
        return "empty"
    names = {p.name for p in entries}
    if BENCHMARK_MARKER_NAME in names:
        return "benchmark"
    if MARKER_NAME in names:
        return "run"
    if names & {"benchmark.csv", "benchmark.md"} or any(is_benchmark_cell_dir(p) for p in entries):
        return "benchmark"
    if names & (SWEEP_FILES - {"summary.json"}) or any(is_sweep_output(p) and p.is_dir() for p in entries):
        return "sweep"
    return "run" if looks_like_run(path) else "other"


def is_own_entry(directory: Path, entry: Path) -> bool:
    """True when ``entry`` (a top-level entry of ``directory``) is one that ``directory``'s kind writes: a
    run's (:func:`is_run_output` or in its marker), a sweep's (:func:`is_sweep_output`) or a benchmark's (in
    its marker, :data:`BENCHMARK_FILES`, a benchmark run directory, its lock, marker or a temp file). False
    in a directory of any other kind."""
    kind = directory_kind(directory)
    if kind == "sweep":
        return is_sweep_output(entry)
    if kind == "run":
        marker = read_marker(directory)
        return is_run_output(entry) or (marker is not None and entry.name in marker.entries)
    if kind != "benchmark":
        return False
    name = entry.name
    if name in (LOCK_NAME, BENCHMARK_MARKER_NAME) or is_temp_file(name):
        return True
    if name in BENCHMARK_FILES:
        return not entry.is_dir() or entry.is_symlink()
    marker = read_marker(directory, BENCHMARK_MARKER_NAME)
    listed = marker is not None and name in marker.entries
    return (listed and (not entry.exists() or (entry.is_dir() and not entry.is_symlink()))) or is_benchmark_cell_dir(
        entry
    )


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
    kind = directory_kind(path)
    if kind in ("sweep", "benchmark"):
        raise UserError(f"output directory {path} holds {KIND_TEXT[kind]}, not a run; choose another --out")
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
