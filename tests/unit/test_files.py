"""The one writer every run file goes through: atomic, one file mode, no symlink followed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mjreinforce.files import (
    CsvLog,
    atomic_output,
    atomic_write,
    errors_name,
    is_temp_file,
    os_error_text,
    probe_writable,
    remove_stale_temp_files,
    truncate_csv,
    write_json_atomic,
)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_writer_gives_0644_under_umask_022(tmp_path: Path, umask_022) -> None:
    atomic_write(tmp_path / "a.txt", "x")
    write_json_atomic(tmp_path / "b.json", {"k": 1})
    with atomic_output(tmp_path / "c.bin") as tmp:
        tmp.write_bytes(b"123")
    log = CsvLog(tmp_path / "d.csv", ("a", "b"))
    log.close()
    for name in ("a.txt", "b.json", "c.bin", "d.csv"):
        assert _mode(tmp_path / name) == 0o644, name
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b.json", "c.bin", "d.csv"]  # no temp file left


def test_the_umask_still_applies(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        atomic_write(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a.txt") == 0o600


def test_a_symlink_at_the_target_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "summary.json"
    link.symlink_to(victim)
    write_json_atomic(link, {"k": 1})
    assert victim.read_text() == "precious"
    assert not link.is_symlink() and '"k": 1' in link.read_text()


def test_csv_log_refuses_a_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "episodes.csv").symlink_to(victim)
    with pytest.raises(OSError):
        CsvLog(tmp_path / "episodes.csv", ("a",))
    assert victim.read_text() == "precious"


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    atomic_write(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError), atomic_output(tmp_path / "a.txt") as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk on fire")
    assert (tmp_path / "a.txt").read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_stale_temp_files_are_recognised_and_removed_but_nothing_else(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), atomic_output(tmp_path / "x.json") as tmp:
        name = tmp.name
        raise KeyboardInterrupt
    assert is_temp_file(name)
    stale = tmp_path / name  # as a killed process (no cleanup) would leave it
    stale.write_text("{")
    mine = [tmp_path / ".hidden.tmp", tmp_path / ".notes.0123.tmp", tmp_path / "data.tmp"]
    for p in mine:
        p.write_text("user data")
    assert remove_stale_temp_files(tmp_path) == [stale]
    assert all(p.read_text() == "user data" for p in mine)


def test_truncate_csv_keeps_complete_rows_atomically(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("h\n1\n2\n3")  # the last row was cut mid-line
    truncate_csv(path, 5)
    assert path.read_text() == "h\n1\n2\n"
    truncate_csv(path, 1)
    assert path.read_text() == "h\n1\n"


def test_os_error_text_names_the_path_and_the_target_of_a_temp_file(tmp_path: Path) -> None:
    temp = tmp_path / ".summary.json.0123456789abcdef.tmp"
    assert os_error_text(OSError(28, "No space left on device", str(temp))) == (
        f"{tmp_path / 'summary.json'}: No space left on device"
    )
    assert (
        os_error_text(OSError(18, "Invalid cross-device link", "a", None, "b")) == "a -> b: Invalid cross-device link"
    )
    assert os_error_text(OSError(28, "No space left on device")) == "No space left on device"


def test_errors_name_gives_a_path_to_an_error_without_one(tmp_path: Path) -> None:
    with pytest.raises(OSError) as exc, errors_name(tmp_path / "x.csv"):
        raise OSError(28, "No space left on device")
    assert exc.value.filename == str(tmp_path / "x.csv") and exc.value.errno == 28
    with pytest.raises(OSError) as exc, errors_name(tmp_path / "x.csv"):
        raise FileNotFoundError(2, "No such file or directory", "other")
    assert exc.value.filename == "other"


def test_probe_writable_leaves_nothing_behind(tmp_path: Path) -> None:
    probe_writable(tmp_path / "a" / "b" / "eval.json")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError) as exc:
        probe_writable(tmp_path / "file" / "sub" / "eval.json")
    assert exc.value.filename == str(tmp_path / "file")
    with pytest.raises(IsADirectoryError):
        probe_writable(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]
