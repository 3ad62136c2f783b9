"""One writer per run directory: an advisory ``fcntl.flock`` on ``RUN_DIR/.mjreinforce.lock``.

``with RunLock(run_dir): ...`` holds the lock for the block. A second writer (another process, or a second
``RunLock`` in this one: the lock is not reentrant) is refused at once with a one-line
:class:`~mjreinforce.errors.UserError` naming the holder's PID. The kernel drops the lock when the holder
dies, so a ``kill -9`` never leaves a stale lock. The file holds the holder's PID while held and is emptied
on release; it is never deleted (deleting a lock file lets two processes lock two different files).
"""

from __future__ import annotations

import errno
import fcntl
import os
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType

from mjreinforce.errors import UserError, one_line
from mjreinforce.files import FILE_MODE
from mjreinforce.runs.layout import list_seeds, seed_dir

LOCK_NAME = ".mjreinforce.lock"


class RunLock:
    """Exclusive, non-blocking lock of one directory (which must exist) for as long as the block runs."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock or raise UserError (held by another process; lock file unusable)."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
        except OSError as e:
            why = "is a symbolic link" if e.errno == errno.ELOOP else f"cannot be opened ({one_line(e.strerror)})"
            raise UserError(f"lock file {self.path} {why}; refusing to write into {self.directory}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise UserError(
                f"{self.directory} is in use by another mjreinforce process (PID {holder}); "
                "wait for it to finish or stop it"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Empty the lock file and let it go (no-op when not held)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the last descriptor releases the flock


def _read_pid(fd: int) -> str:
    """The PID text in the lock file ("unknown" while the holder has not written it yet)."""
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return text if text.isdigit() else "unknown"


def lock_seed_dirs(run_dir: Path, stack: ExitStack) -> None:
    """Take, into ``stack``, the lock of every ``seed_<s>`` directory of ``run_dir`` that has a lock file.

    A seed directory that a worker still writes (the orphan of a killed parent that has not stopped yet) is
    refused with the lock's line naming its PID, before its tables are read (resume) or deleted (overwrite).
    A seed directory without a lock file was never written by a worker (each locks it before it writes), so
    none can hold it; nothing is created there. A seed directory that is a link is never locked through it
    (the callers refuse it), and a lock file that is a link is refused by :class:`RunLock`.
    """
    if run_dir.is_symlink():
        return
    for seed in list_seeds(run_dir):  # real directories only, never through a link
        if os.path.lexists(seed_dir(run_dir, seed) / LOCK_NAME):
            stack.enter_context(RunLock(seed_dir(run_dir, seed)))
