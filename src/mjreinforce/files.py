"""Writing and reading a run's files: one atomic writer, append-only CSV tables, the two JSON readers.

Every file a run writes goes through here, so all of them share one behaviour:

- **atomic**: a temporary file beside the target (``.<name>.<token>.tmp``), written, fsynced, then renamed
  over the target and the directory fsynced, so a reader sees the old file or the complete new one;
- **one mode**: ``0644`` minus the process umask, like any output file (readable by the user's group);
- **no symlink is followed**: the temporary file is created with ``O_EXCL | O_NOFOLLOW`` and the rename
  replaces a symlink at the target rather than writing through it; appends open with ``O_NOFOLLOW``.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from mjreinforce.errors import UserError, one_line

FILE_MODE = 0o644
"""Mode of every file a run writes, before the umask."""
_TEMP_SUFFIX = ".tmp"
_TOKEN_HEX = 16


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _new_file(path: Path, flags: int) -> int:
    """Open a new file that must not exist (and is not a symlink) with :data:`FILE_MODE`."""
    return os.open(path, flags | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)


@contextmanager
def errors_name(path: Path) -> Iterator[None]:
    """Give an OSError raised inside without a file name (a failed ``write``, ``flush`` or ``fsync``: a full
    disk) the name ``path``, so that its one-line report says where."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None:
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc


def _temp_path(path: Path, suffix: str = "") -> Path:
    """A fresh temporary name beside ``path``: ``.<name>.<16 hex>.tmp<suffix>``."""
    return path.with_name(f".{path.name}.{secrets.token_hex(_TOKEN_HEX // 2)}{_TEMP_SUFFIX}{suffix}")


@contextmanager
def atomic_output(path: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path`` for the caller to write (by name: a video encoder,
    ``savefig``); on success it is fsynced and renamed over ``path``, on any failure (Ctrl-C too) deleted.

    ``suffix`` ends the temporary name (``".mp4"``: encoders pick the container from the extension).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(path, suffix)
    os.close(_new_file(tmp, os.O_WRONLY))
    try:
        with errors_name(path):
            yield tmp
            fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                os.fsync(fd)  # critical: data on disk before the rename makes it visible
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)  # the rename itself survives a crash


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write ``data`` (text is UTF-8) to ``path`` atomically (see the module docstring)."""
    raw = data.encode() if isinstance(data, str) else data
    with atomic_output(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_NOFOLLOW | os.O_TRUNC)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)


def write_json_atomic(path: Path, obj: Any) -> None:
    """``obj`` as indented, key-sorted JSON, written with :func:`atomic_write`."""
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def is_temp_file(name: str) -> bool:
    """True for the name of a temporary file :func:`atomic_output` makes: ``.<name>.<16 hex>.tmp[suffix]``."""
    if not name.startswith(".") or _TEMP_SUFFIX not in name:
        return False
    stem = name[1:].split(_TEMP_SUFFIX)[0]
    target, _, token = stem.rpartition(".")
    return bool(target) and len(token) == _TOKEN_HEX and all(c in "0123456789abcdef" for c in token)


def os_error_text(exc: OSError) -> str:
    """One line for an operating-system error: the path (a temporary file named as the file it was to become)
    and the reason, e.g. ``"/runs/a/summary.json: No space left on device"``."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    paths = [_target_name(str(name)) for name in (exc.filename, exc.filename2) if name is not None]
    return f"{' -> '.join(paths)}: {reason}" if paths else reason


def _target_name(name: str) -> str:
    """``dir/.summary.json.<token>.tmp`` -> ``dir/summary.json``; any other path unchanged."""
    path = Path(name)
    if not is_temp_file(path.name):
        return name
    return str(path.with_name(path.name[1:].split(_TEMP_SUFFIX)[0].rpartition(".")[0]))


def probe_writable(path: Path) -> None:
    """Check now that ``path`` can be written later: create its missing parent directories and a temporary file
    beside it, then remove both again. Raises OSError naming the place that cannot be written, or
    IsADirectoryError when ``path`` is a directory."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    first = path.parent.parents[len(missing) - 1] if missing else path.parent  # the nearest existing ancestor
    if not first.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(first))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temp_path(path)
        os.close(_new_file(tmp, os.O_WRONLY))
        tmp.unlink()
    finally:
        for directory in missing:  # innermost first
            with suppress(OSError):
                directory.rmdir()


def remove_stale_temp_files(directory: Path) -> list[Path]:
    """Delete temporary files left in ``directory`` by a writer that was killed mid-write; return them.
    Only names of :func:`is_temp_file`'s form are touched (call it while holding the run's lock)."""
    if not directory.is_dir():
        return []
    stale = [p for p in directory.iterdir() if is_temp_file(p.name) and p.is_file() and not p.is_symlink()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def read_json_or_empty(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; {} if it is missing or unreadable (e.g. half-written), or not an object.
    For files whose absence or damage is normal; :func:`read_json_checked` for those that must parse."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def read_json_checked(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; {} when the file does not exist. A file that is not a JSON object (bad
    bytes, junk, a list) is a :class:`~mjreinforce.errors.UserError` naming it; other OS errors propagate."""
    if not path.exists():
        return {}
    try:
        value = json.loads(path.read_bytes().decode())
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise UserError(f"{path} is corrupted: {one_line(exc)}") from None
    if not isinstance(value, dict):
        raise UserError(f"{path} is corrupted: it holds a JSON {type(value).__name__}, not an object")
    return value


def read_nofollow(path: Path) -> bytes:
    """The bytes of ``path``; a symlink there raises OSError (ELOOP) instead of being followed."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        return f.read()


def complete_lines(data: bytes) -> list[bytes]:
    """The lines of ``data`` that end in ``\n`` (each with its ending; a cut-off last line is dropped)."""
    lines = data.split(b"\n")[:-1]
    return [line + b"\n" for line in lines]


class CsvLog:
    """Append-only CSV with a fixed header, flushed after every row so a crash loses at most
    the row being written. Opened with ``O_NOFOLLOW``: a symlink planted at ``path`` is refused.

    :attr:`sha256` is the running digest of every byte of the file (what was there when it was opened,
    then each row written), so a checkpoint can record which rows it covers.
    """

    def __init__(self, path: Path, columns: tuple[str, ...]) -> None:
        self.path = path
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
        self._file = os.fdopen(fd, "ab")
        self.sha256 = hashlib.sha256(read_nofollow(path))
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)
        if os.fstat(fd).st_size == 0:
            self.write(columns)

    def write(self, row: tuple[Any, ...]) -> None:
        with errors_name(self.path):
            self._buffer.seek(0)
            self._buffer.truncate()
            self._writer.writerow(row)
            data = self._buffer.getvalue().encode()
            self._file.write(data)
            self._file.flush()
            self.sha256.update(data)

    def close(self) -> None:
        with errors_name(self.path):
            self._file.close()


def truncate_csv(path: Path, keep_rows: int) -> None:
    """Keep the header and the first ``keep_rows`` complete rows, byte for byte (used when resuming),
    atomically; a symlink at ``path`` raises OSError. Nothing is written when nothing is cut."""
    if not os.path.lexists(path):
        return
    data = read_nofollow(path)
    kept = b"".join(complete_lines(data)[: 1 + keep_rows])
    if kept != data:
        atomic_write(path, kept)
