"""Seeds in worker processes (:func:`run_seeds_parallel`). Sweeps on Ray Tune are in
:mod:`mjreinforce.sweep.tune`; both call :func:`mjreinforce.training.loop.train_seed` and write the ordinary
run-directory format, so ``results``, ``plot`` and ``train --resume`` work on what they produce.

Worker processes (``spawn`` context: torch and fork do not mix) each train one seed exactly as
the in-process loop would (same ``train_seed`` call, same seeding), so a seed's ``episodes.csv``
does not depend on where it ran. Workers live in their own process group: a terminal Ctrl-C
reaches only the parent, which forwards one SIGINT to each worker (the trainer then finishes the
current update, checkpoints and stops); a second Ctrl-C, or a worker still running after
:data:`GRACE_SECONDS`, gets SIGTERM (in a worker a second stop signal: stop now), then SIGKILL.
SIGTERM to the parent (``kill``, a job scheduler) does the same as a Ctrl-C (the caller turns it into
:class:`~mjreinforce.training.interrupt.Terminated`), and a worker treats SIGTERM as it treats SIGINT.
Every worker is joined before returning.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_mod
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mjreinforce.config import Config
from mjreinforce.errors import UserError, error_line
from mjreinforce.files import os_error_text, read_json, write_json_atomic
from mjreinforce.runs.layout import seed_dir
from mjreinforce.training.interrupt import STOP_SIGNALS, GracefulInterrupt
from mjreinforce.training.progress import Progress, ProgressEvent

if TYPE_CHECKING:
    from mjreinforce.training.loop import SeedResult

GRACE_SECONDS = 30.0
"""How long stopped workers get to finish their update and checkpoint before SIGTERM."""
KILL_SECONDS = 5.0
"""How long a SIGTERM'd worker gets before SIGKILL."""


def mark_seed_failed(out: Path, seed: int, exc: BaseException) -> str:
    """Record a failed seed in ``out/summary.json`` (status "failed", the error line and the
    traceback, on top of whatever the trainer wrote) and return the error line. Never raises."""
    message = os_error_text(exc) if isinstance(exc, OSError) else error_line(exc)
    summary = read_json(out / "summary.json") | {
        "seed": seed,
        "status": "failed",
        "error": message,
        "traceback": "".join(traceback.format_exception(exc)),
    }
    with suppress(OSError):  # the seed directory itself may be unusable; the stderr line still reports it
        write_json_atomic(out / "summary.json", summary)
    return message


# --------------------------------------------------------------------------
# Seeds in worker processes
# --------------------------------------------------------------------------
_stop_requested = False  # set in a worker by SIGINT before the trainer's own handler is installed


def _request_stop(signum: int, frame: object) -> None:
    global _stop_requested
    _stop_requested = True


class QueueProgress:
    """The worker side of the progress display: events go to the parent through ``queue``.

    A non-final update raises KeyboardInterrupt (the trainer records "interrupted") when the
    parent asked this worker to stop before the trainer's handler was installed, or when the
    parent died (no one would ever stop this worker otherwise)."""

    def __init__(self, queue: Any, parent_pid: int) -> None:
        self.queue = queue
        self.parent_pid = parent_pid

    def update(self, event: ProgressEvent) -> None:
        self.queue.put(("progress", event))
        if not event.final and (_stop_requested or os.getppid() != self.parent_pid):
            raise KeyboardInterrupt

    def close(self) -> None:
        pass


def _worker_main(cfg: Config, seed: int, out: Path, queue: Any, parent_pid: int, resume: bool) -> None:
    """Entry point of a worker process: train one seed, send ``(outcome, seed, payload)``."""
    os.setpgrp()  # critical: a terminal Ctrl-C must reach only the parent, which forwards it once
    for signum in STOP_SIGNALS:
        signal.signal(signum, _request_stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, set(STOP_SIGNALS))  # critical: started with them held back
    try:
        # critical: the trainer (torch, MuJoCo) is imported only after the SIGINT handler is installed, so a
        # stop request during the slow import is not lost (workers start with SIGINT ignored).
        from mjreinforce.training.loop import train_seed

        if _stop_requested:
            raise KeyboardInterrupt
        result = train_seed(cfg, seed, out, QueueProgress(queue, parent_pid), resume=resume)
    except KeyboardInterrupt:
        queue.put(("interrupted", seed, None))
    except Exception as exc:  # noqa: BLE001 -- any error of one seed is reported, the others continue
        queue.put(("failed", seed, mark_seed_failed(out, seed, exc)))
    else:
        queue.put(("finished", seed, result))
    # critical: the outcome is sent and the seed's files are closed; skip the interpreter's teardown (torch,
    # MuJoCo: seconds of CPU on a loaded machine), so a stopped run's workers are gone at once
    queue.close()
    queue.join_thread()
    os._exit(0)


@contextmanager
def _sigint_deferred(children_ignore: bool) -> Iterator[None]:
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


class _SeedWorkers:
    """The parent's bookkeeping: running workers, their outcomes, the progress forwarding."""

    def __init__(self, cfg: Config, run_dir: Path, progress: Progress, resume: bool) -> None:
        self.cfg, self.run_dir, self.progress, self.resume = cfg, run_dir, progress, resume
        self.ctx = mp.get_context("spawn")
        self.queue = self.ctx.Queue()
        self.running: dict[int, Any] = {}
        self.outcomes: dict[int, tuple[str, Any]] = {}
        self.stopping = False
        self.unreadable = False  # a message was cut by an interrupt: the queue cannot be read any more

    def start(self, seed: int) -> None:
        args = (self.cfg, seed, seed_dir(self.run_dir, seed), self.queue, os.getpid(), self.resume)
        # not daemonic: a worker may start processes of its own (env_workers > 0); every worker is joined
        process = self.ctx.Process(target=_worker_main, args=args, name=f"seed-{seed}")
        with _sigint_deferred(children_ignore=True):
            process.start()
        self.running[seed] = process

    def pump(self, timeout: float) -> None:
        """Handle every message waiting (blocking up to ``timeout`` for the first)."""
        if self.unreadable:
            time.sleep(timeout)
            return
        try:
            message = self.queue.get(timeout=timeout) if timeout > 0 else self.queue.get_nowait()
            while True:
                self._handle(message)
                message = self.queue.get_nowait()
        except queue_mod.Empty:
            pass
        except Exception:
            if not self.stopping:
                raise
            self.unreadable = True  # stopping anyway: SIGTERM/SIGKILL end workers blocked on a full pipe

    def _handle(self, message: tuple[Any, ...]) -> None:
        if message[0] == "progress":
            if not self.stopping:
                self.progress.update(message[1])
            return
        kind, seed, payload = message
        self.outcomes[seed] = (kind, payload)
        if kind == "failed":
            print(f"mjreinforce: seed {seed} failed: {payload}", file=sys.stderr, flush=True)
        elif kind == "interrupted" and not self.stopping:
            print(f"mjreinforce: seed {seed} was interrupted (signal to its worker)", file=sys.stderr, flush=True)

    def reap(self) -> None:
        """Join workers that exited; one that exited without an outcome has failed."""
        for seed, process in list(self.running.items()):
            if process.is_alive():
                continue
            process.join()
            self.pump(0)  # its last messages were flushed to the pipe before it exited
            del self.running[seed]
            if seed not in self.outcomes and not self.stopping:
                exc = RuntimeError(f"worker process exited with code {process.exitcode}")
                self._handle(("failed", seed, mark_seed_failed(seed_dir(self.run_dir, seed), seed, exc)))

    def stop(self) -> None:
        """SIGINT every worker (graceful: checkpoint and stop), then SIGTERM, then SIGKILL; join all."""
        self.stopping = True
        self._signal_all(signal.SIGINT)
        with suppress(KeyboardInterrupt):  # a second Ctrl-C: stop now
            self._wait(GRACE_SECONDS)
        with _sigint_deferred(children_ignore=False):
            self._signal_all(signal.SIGTERM)
            self._wait(KILL_SECONDS)
            self._signal_all(signal.SIGKILL)
            for process in self.running.values():
                process.join(KILL_SECONDS)
            self.running.clear()

    def _signal_all(self, signum: int) -> None:
        for process in self.running.values():
            if process.is_alive() and process.pid is not None:
                with suppress(ProcessLookupError):
                    os.kill(process.pid, signum)

    def _wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self.running and time.monotonic() < deadline:
            self.pump(0.05)  # keep draining: a worker cannot exit while its queue data is unsent
            self.reap()

    def close(self) -> None:
        self.queue.close()


def run_seeds_parallel(
    cfg: Config,
    run_dir: Path,
    workers: int,
    progress: Progress,
    resume: bool = False,
    seeds: tuple[int, ...] | None = None,
) -> dict[int, SeedResult]:
    """Train ``seeds`` (default: every seed of ``cfg``) into ``run_dir/seed_<s>``, at most ``workers``
    processes at once. Each worker gets the whole ``cfg`` (checkpoints record the run's config hash).

    Progress events of all workers are forwarded to ``progress`` (one combined display). A seed
    that raises is reported on one stderr line and in its ``summary.json`` (status "failed",
    ``error``) while the others continue. Returns the results of the seeds that finished, in the
    order of ``cfg.seeds`` (failed seeds are left out); raises :class:`UserError` if none
    finished. A KeyboardInterrupt stops and joins every worker, then propagates; seeds that had
    finished keep their files untouched.
    """
    if workers < 1:
        raise UserError(f"workers must be >= 1, got {workers}")
    seeds = tuple(cfg.seeds) if seeds is None else seeds
    pending = list(seeds)
    pool = _SeedWorkers(cfg, Path(run_dir), progress, resume)
    # critical: the first Ctrl-C or SIGTERM only sets a flag, so it never tears a message half-read from the
    # queue (a torn pipe cannot be drained, and workers blocked on it wait out the whole grace period)
    with GracefulInterrupt() as interrupt:
        try:
            while pending or pool.running:
                while pending and len(pool.running) < workers:
                    pool.start(pending.pop(0))
                pool.pump(0.2)
                pool.reap()
                if interrupt.requested:
                    raise interrupt.exception()
        except BaseException:
            pool.stop()
            raise
        finally:
            pool.close()
    kinds = {s: pool.outcomes.get(s, ("failed", None))[0] for s in seeds}
    finished = {s: pool.outcomes[s][1] for s in seeds if kinds[s] == "finished"}
    if not finished:
        failed = [s for s in seeds if kinds[s] == "failed"]
        detail = f"seed {failed[0]}: {pool.outcomes[failed[0]][1]}" if failed else "all were interrupted"
        what = f"all {len(seeds)} seeds failed" if len(failed) == len(seeds) else "no seed finished"
        raise UserError(f"{what}; {detail}")
    return finished
