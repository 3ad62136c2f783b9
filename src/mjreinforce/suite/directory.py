"""The benchmark directory (``mjreinforce benchmark --out OUT``), owned as a run directory is.

``OUT/.mjreinforce-benchmark.json`` (the marker) lists the run directories the benchmark makes (one per env
and preset, ``<preset>-<env>``), each before it is made; the benchmark's own entries are those, the files it
writes at the top (:data:`mjreinforce.runs.ownership.BENCHMARK_FILES`), its lock, its marker and temp files
(:func:`mjreinforce.runs.ownership.is_own_entry`). A benchmark made before the marker is known by its files
and by its run directories' ``config.toml`` header. :func:`check_benchmark_dir` refuses a directory holding
anything else; :func:`open_benchmark_dir` (``--overwrite``) deletes only the benchmark's own entries.
Each run directory gets the ordinary run marker too (its preset and config hash), so ``train --resume`` and
``plot`` work on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from mjreinforce import config as config_mod
from mjreinforce.config import Config
from mjreinforce.errors import UserError
from mjreinforce.files import atomic_write
from mjreinforce.runs.layout import seed_dir
from mjreinforce.runs.lock import LOCK_NAME
from mjreinforce.runs.ownership import (
    BENCHMARK_CELL_HEADER,
    BENCHMARK_MARKER_NAME,
    KIND_TEXT,
    RunMarker,
    clear_run_dir,
    config_sha256,
    directory_kind,
    foreign_entries,
    is_benchmark_cell_dir,
    is_own_entry,
    read_marker,
    record_entries,
    remove_entry,
    write_marker,
)


def check_benchmark_dir(out: Path, overwrite: bool) -> None:
    """Refuse (one-line UserError, read-only) an ``OUT`` that is a file, that holds a run, a sweep or anything
    mjreinforce did not make, or a benchmark holding an entry it did not write; with ``overwrite``, also a run
    directory of the benchmark holding such an entry (its deletion would take it along)."""
    kind = directory_kind(out)
    if kind in ("missing", "empty"):
        return
    if kind == "file":
        raise UserError(f"{out} is a file, not a directory; --out takes the benchmark's directory")
    if kind != "benchmark":
        what = f"holds {KIND_TEXT[kind]}, not a benchmark" if kind in KIND_TEXT else "is not a mjreinforce benchmark"
        raise UserError(f"{out} {what}; choose another --out")
    foreign = sorted(p.name for p in out.iterdir() if not is_own_entry(out, p))
    if foreign:
        raise UserError(
            f"{out} holds {foreign[0]!r}, which mjreinforce benchmark did not write ({len(foreign)} such "
            f"entr{'y' if len(foreign) == 1 else 'ies'}); move it away or choose another --out"
        )
    if overwrite:
        for run_dir in benchmark_run_dirs(out):
            inside = foreign_entries(run_dir)
            if inside:
                raise UserError(
                    f"--overwrite refused: {run_dir} holds {inside[0]!r}, which mjreinforce did not write; "
                    "move it away or choose another --out"
                )


def open_benchmark_dir(out: Path, run_names: Iterable[str], overwrite: bool) -> None:
    """Under the lock of ``out`` and of its run directories: check it again, delete its own entries with
    ``overwrite`` (the lock files and the run directories of ``run_names`` stay, emptied; the marker goes
    last), then list ``run_names`` in its marker (and the run directories of a benchmark made before it)."""
    check_benchmark_dir(out, overwrite)
    if overwrite:
        keep = set(run_names)
        for entry in sorted(out.iterdir(), key=lambda p: p.name == BENCHMARK_MARKER_NAME):
            if entry.name in keep and entry.is_dir() and not entry.is_symlink():
                clear_run_dir(entry)  # its lock, held by the caller, stays
            elif entry.name != LOCK_NAME:
                remove_entry(entry)
    legacy = [p.name for p in out.iterdir() if is_benchmark_cell_dir(p)]
    record_entries(out, [*legacy, *run_names], BENCHMARK_MARKER_NAME)


def benchmark_run_dirs(out: Path) -> list[Path]:
    """The benchmark's run directories that exist in ``out`` (listed in its marker, or recognized)."""
    marker = read_marker(out, BENCHMARK_MARKER_NAME)
    listed = set(marker.entries) if marker else set()
    return sorted(
        p for p in out.iterdir() if (p.name in listed and p.is_dir() and not p.is_symlink()) or is_benchmark_cell_dir(p)
    )


def run_config(run_dir: Path, cfg: Config) -> Config:
    """The config ``run_dir`` is to hold for ``cfg``: ``cfg`` itself for a new run directory; for an existing one
    its saved config with ``cfg``'s seeds added. Refuses (one-line UserError, read-only) a saved config that
    differs from ``cfg`` in anything but its seeds."""
    path = run_dir / "config.toml"
    if not path.exists():
        return cfg
    saved = config_mod.from_dict(config_mod.read_toml(path))
    ours = replace(cfg, seeds=saved.seeds)
    if saved != ours:
        diff = next(k for k in config_mod.FIELD_NAMES if getattr(saved, k) != getattr(ours, k))
        raise UserError(
            f"{run_dir} was run with {diff} = {getattr(saved, diff)!r}, not {getattr(ours, diff)!r}; "
            "use another --out, or --overwrite to start the benchmark over"
        )
    seeds = tuple(dict.fromkeys((*saved.seeds, *cfg.seeds)))
    return replace(cfg, seeds=seeds)


def write_run_dir(run_dir: Path, cfg: Config, preset: str) -> None:
    """Write the run marker of ``run_dir`` (made, and locked by the caller), then its ``config.toml``."""
    entries = ("config.toml", *(seed_dir(run_dir, s).name for s in cfg.seeds))
    old = read_marker(run_dir)
    write_marker(run_dir, RunMarker((*(old.entries if old else ()), *entries), preset, config_sha256(cfg)))
    header = f"{BENCHMARK_CELL_HEADER} preset {preset} on {cfg.env_id}\n"
    atomic_write(run_dir / "config.toml", header + config_mod.dumps(cfg))
