"""The run directory's guards in-process: RunLock, safe output paths, which entries are the run's own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mjreinforce.errors import UserError
from mjreinforce.runs.lock import LOCK_NAME, RunLock
from mjreinforce.runs.ownership import (
    MARKER_NAME,
    RunMarker,
    check_new_run_dir,
    check_run_path,
    clear_run_dir,
    foreign_entries,
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
