"""The run directory's guards in-process: RunLock, safe output paths, which entries are the run's own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mjreinforce.errors import UserError
from mjreinforce.runs.lock import LOCK_NAME, RunLock
from mjreinforce.runs.ownership import (
    BENCHMARK_CELL_HEADER,
    BENCHMARK_MARKER_NAME,
    MARKER_NAME,
    RunMarker,
    check_new_run_dir,
    check_run_path,
    clear_run_dir,
    directory_kind,
    foreign_entries,
    is_own_entry,
    is_run_output,
    read_marker,
    record_entries,
    write_marker,
)


def test_lock_refuses_a_second_holder_naming_the_pid_and_empties_on_release(tmp_path: Path) -> None:
    with RunLock(tmp_path):
        assert (tmp_path / LOCK_NAME).read_text() == f"{os.getpid()}\n"
        with pytest.raises(UserError, match=rf"in use by another mjreinforce process \(PID {os.getpid()}\)"):
            RunLock(tmp_path).acquire()
    assert (tmp_path / LOCK_NAME).read_bytes() == b""
    with RunLock(tmp_path):  # free again
        pass


def test_lock_file_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "target").write_text("mine\n")
    (tmp_path / LOCK_NAME).symlink_to(tmp_path / "target")
    with pytest.raises(UserError, match="is a symbolic link"):
        RunLock(tmp_path).acquire()
    assert (tmp_path / "target").read_text() == "mine\n"


@pytest.mark.parametrize("raw", ["", ".", "/", "..", "../.."])
def test_paths_a_run_never_uses(raw: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a" / "b")
    with pytest.raises(UserError, match="refusing|empty"):
        check_run_path(raw)


def test_home_is_refused_and_cwd_only_for_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="home directory"):
        check_run_path(str(tmp_path))
    (tmp_path / "run").mkdir()
    monkeypatch.chdir(tmp_path / "run")
    assert check_run_path(".", allow_cwd=True) == Path(".")
    assert check_run_path("sub") == Path("sub")


def test_own_entries_by_name_kind_and_marker(tmp_path: Path) -> None:
    for name in ("config.toml", "summary.json", "learning_curve_steps.svg", "eval.json", ".x.0123456789abcdef.tmp"):
        (tmp_path / name).write_text("")
    (tmp_path / "seed_3").mkdir()
    (tmp_path / "seed_x").mkdir()
    (tmp_path / "summary.md").mkdir()  # a directory where a file would be: not ours
    (tmp_path / "custom.bin").write_text("")
    assert is_run_output(tmp_path / "seed_3") and not is_run_output(tmp_path / "seed_x")
    assert foreign_entries(tmp_path) == ["custom.bin", "seed_x", "summary.md"]
    record_entries(tmp_path, ["custom.bin"])  # a command that wrote it listed it in the marker
    assert foreign_entries(tmp_path) == ["seed_x", "summary.md"]


def test_clear_run_dir_keeps_the_lock_and_refuses_foreign_entries(tmp_path: Path) -> None:
    write_marker(tmp_path, RunMarker(("config.toml", "seed_1"), "vpg", "abc"))
    assert read_marker(tmp_path) == RunMarker(("config.toml", "seed_1"), "vpg", "abc")
    (tmp_path / "config.toml").write_text("")
    (tmp_path / "seed_1").mkdir()
    with RunLock(tmp_path):
        clear_run_dir(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [LOCK_NAME]
    write_marker(tmp_path, RunMarker(("config.toml",)))
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="'notes.txt'"):
        check_new_run_dir(tmp_path, overwrite=True)
    (tmp_path / MARKER_NAME).write_text("[]")
    with pytest.raises(UserError, match="run marker"):
        read_marker(tmp_path)


def _make(root: Path, *paths: str) -> Path:
    """Directories (ending in /) and files (empty, or ``name=text``) under ``root``."""
    root.mkdir()
    for item in paths:
        name, _, text = item.partition("=")
        path = root / name
        if name.endswith("/"):
            path.mkdir(parents=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return root


def test_directory_kind_tells_runs_sweeps_and_benchmarks_apart(tmp_path: Path) -> None:
    cell = f"vpg-Hopper-v5/config.toml={BENCHMARK_CELL_HEADER} preset vpg on Hopper-v5\n"
    kinds = {
        "missing": None,
        "empty": (LOCK_NAME,),
        "run": (MARKER_NAME, "config.toml", "seed_1/"),
        "old run": ("summary.json", "seed_1/"),
        "benchmark": (BENCHMARK_MARKER_NAME, "summary.json"),
        "old benchmark": ("summary.json", cell),
        "sweep": ("trial_0/", "tune/"),
        "other": ("notes.txt",),
    }
    for name, paths in kinds.items():
        path = tmp_path / name.replace(" ", "_")
        if paths is not None:
            _make(path, *paths)
        assert directory_kind(path) == name.split()[-1], name
    (tmp_path / "file").write_text("x")
    assert directory_kind(tmp_path / "file") == "file"


def test_own_entries_of_a_benchmark_and_a_sweep(tmp_path: Path) -> None:
    bench = _make(tmp_path / "bench", "benchmark.csv", "learning_curves.png/", "vpg-Ant-v5/", "notes.txt", "mine/")
    record_entries(bench, ["vpg-Ant-v5"], BENCHMARK_MARKER_NAME)
    own = {p.name: is_own_entry(bench, p) for p in bench.iterdir()}
    assert own == {
        BENCHMARK_MARKER_NAME: True,
        "benchmark.csv": True,
        "learning_curves.png": False,  # a directory where one of its files goes
        "vpg-Ant-v5": True,  # listed in its marker
        "notes.txt": False,
        "mine": False,
    }
    sweep = _make(tmp_path / "sweep", "sweep_results.csv", "trial_3/", "trial_x/", "tune/")
    assert {p.name: is_own_entry(sweep, p) for p in sweep.iterdir()} == {
        "sweep_results.csv": True,
        "trial_3": True,
        "trial_x": False,
        "tune": True,
    }
    with pytest.raises(UserError, match="output directory .* holds a mjreinforce benchmark, not a run"):
        check_new_run_dir(bench, overwrite=True)
