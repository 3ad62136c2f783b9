"""Graceful stops for the training loop: Ctrl-C (SIGINT) and SIGTERM behave alike.

The first signal lets the current update finish, then the trainer checkpoints and stops; a second one
stops at once. A stop caused by SIGTERM surfaces as :class:`Terminated` (a KeyboardInterrupt), so the CLI
can exit with 143 (128 + SIGTERM, what shells and supervisors expect of a process ended by SIGTERM)
instead of 130 (128 + SIGINT, a Ctrl-C).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """A stop requested by SIGTERM; handled everywhere like a Ctrl-C."""

    signum = signal.SIGTERM


def stop_exception(signum: int) -> KeyboardInterrupt:
    """The exception that reports a stop by ``signum``: Terminated for SIGTERM, else KeyboardInterrupt."""
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


class GracefulInterrupt:
    """The first SIGINT or SIGTERM sets ``requested`` (the loop checkpoints and stops, then raises
    :meth:`exception`); a second raises at once. Only installed in the main thread (signal handlers
    cannot be set elsewhere)."""

    def __init__(self) -> None:
        self.requested = False
        self.signum = int(signal.SIGINT)
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise stop_exception(signum)
        self.requested, self.signum = True, signum

    def exception(self) -> KeyboardInterrupt:
        """What to raise once the loop stopped for a signal."""
        return stop_exception(self.signum)

    def __enter__(self) -> GracefulInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)  # type: ignore[arg-type]


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """For the block, SIGTERM raises :class:`Terminated` in the main thread, as Ctrl-C raises KeyboardInterrupt,
    so ``finally`` blocks and worker shutdown run (by default SIGTERM ends the process on the spot)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def stop_signals_raise() -> Iterator[None]:
    """For the block (in the main thread), SIGINT raises KeyboardInterrupt even in a process that started with
    it ignored (a background job of a shell, ``cmd &``), and SIGTERM raises :class:`Terminated`: a stop that
    arrives before the trainer's or the workers' own handlers are installed (imports, checks) ends the caller
    at once; :class:`GracefulInterrupt` then takes over."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with sigterm_raises():
            yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def stop_signals_deferred(children_ignore: bool) -> Iterator[None]:
    """Hold back SIGINT and SIGTERM in this (main) thread; one arriving meanwhile is delivered on exit.
    With ``children_ignore`` processes started inside inherit both ignored (until they install their
    handlers), so a stop signal during their start-up cannot kill them mid-import."""
    if sys.platform == "win32":  # pragma: no cover
        yield
        return
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, set(STOP_SIGNALS))
    main = children_ignore and threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in STOP_SIGNALS} if main else {}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
