"""Graceful Ctrl-C for the training loop."""

from __future__ import annotations

import signal
import threading


class GracefulInterrupt:
    """First SIGINT sets ``requested`` (the loop checkpoints and stops); a second raises KeyboardInterrupt.
    Only installed in the main thread (signal handlers cannot be set elsewhere)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: object = None

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> GracefulInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)  # type: ignore[arg-type]
