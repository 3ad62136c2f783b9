"""The worker side of :func:`mjreinforce.training.workers.run_jobs`: one :class:`SeedJob` in a spawned process
(:func:`worker_main`), and :func:`mark_seed_failed`.

A worker puts itself in its own process group, turns SIGINT and SIGTERM into a stop request, takes the
:class:`~mjreinforce.runs.lock.RunLock` of its job's seed directory (a directory another process writes fails
the job without touching it), imports the trainer and trains; it sends progress events and then its outcome
``(kind, index, payload)`` through the queue. When its parent dies it stops as if interrupted (checkpoint
first), so no orphan trains on.
"""

from __future__ import annotations

import os
import signal
import traceback
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mjreinforce.config import Config
from mjreinforce.errors import UserError, error_line
from mjreinforce.files import os_error_text, read_json_or_empty, write_json_atomic
from mjreinforce.runs.layout import check_real_dirs
from mjreinforce.runs.lock import RunLock
from mjreinforce.training.interrupt import STOP_SIGNALS
from mjreinforce.training.progress import ProgressEvent


def mark_seed_failed(out: Path, seed: int, exc: BaseException) -> str:
    """Record a failed seed in ``out/summary.json`` (status "failed", the error line and the
    traceback, on top of whatever the trainer wrote) and return the error line. Never raises."""
    message = os_error_text(exc) if isinstance(exc, OSError) else error_line(exc)
    summary = read_json_or_empty(out / "summary.json") | {
        "seed": seed,
        "status": "failed",
        "error": message,
        "traceback": "".join(traceback.format_exception(exc)),
    }
    with suppress(OSError):  # the seed directory itself may be unusable; the stderr line still reports it
        write_json_atomic(out / "summary.json", summary)
    return message


@dataclass(frozen=True)
class SeedJob:
    """One seed to train in a worker process: ``train_seed(cfg, seed, out, ..., resume=resume)``."""

    cfg: Config
    seed: int
    out: Path
    """The seed's directory (``seed_<s>`` of a run directory)."""
    resume: bool = False


_stop_requested = False  # set in a worker by SIGINT before the trainer's own handler is installed


def _request_stop(signum: int, frame: object) -> None:
    global _stop_requested
    _stop_requested = True


class QueueProgress:
    """The worker side of the progress display: events go to the parent through ``queue``.

    When the parent asked this worker to stop before the trainer's handler was installed, or when the parent
    died (no one would ever stop this worker otherwise), a non-final update sends this process one SIGINT:
    the trainer's first stop, so it finishes the update, writes a checkpoint and stops ("interrupted")."""

    def __init__(self, queue: Any, parent_pid: int) -> None:
        self.queue = queue
        self.parent_pid = parent_pid
        self.stop_sent = False

    def update(self, event: ProgressEvent) -> None:
        self.queue.put(("progress", event))
        if event.final or self.stop_sent:
            return
        if _stop_requested or os.getppid() != self.parent_pid:
            self.stop_sent = True
            os.kill(os.getpid(), signal.SIGINT)  # critical: once; a second SIGINT would stop without a checkpoint

    def close(self) -> None:
        pass


def worker_main(job: SeedJob, index: int, queue: Any, parent_pid: int) -> None:
    """Entry point of a worker process: train job number ``index``, send ``(kind, index, payload)``."""
    os.setpgrp()  # critical: a terminal Ctrl-C must reach only the parent, which forwards it once
    for signum in STOP_SIGNALS:
        signal.signal(signum, _request_stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, set(STOP_SIGNALS))  # critical: started with them held back
    kind, payload = _run_job(job, queue, parent_pid)
    queue.put((kind, index, payload))
    # critical: the outcome is sent and the seed's files are closed; skip the interpreter's teardown (torch,
    # MuJoCo: seconds of CPU on a loaded machine), so a stopped run's workers are gone at once
    if os.getppid() != parent_pid:
        queue.cancel_join_thread()  # no parent reads the queue: do not wait to flush it
    queue.close()
    queue.join_thread()
    os._exit(0)


def _run_job(job: SeedJob, queue: Any, parent_pid: int) -> tuple[str, Any]:
    """Train ``job`` under the lock of its seed directory: ``(kind, payload)`` of its outcome. A directory that
    another process writes (or that cannot be locked) fails the job without touching the directory."""
    try:
        check_real_dirs(job.out)
        job.out.mkdir(exist_ok=True)
        lock = RunLock(job.out)
        lock.acquire()
    except OSError as exc:
        return "failed", os_error_text(exc)
    except UserError as exc:
        return "failed", str(exc)
    try:
        # critical: the trainer (torch, MuJoCo) is imported only after the SIGINT handler is installed, so a
        # stop request during the slow import is not lost (workers start with SIGINT ignored).
        from mjreinforce.training.loop import train_seed

        if _stop_requested:
            raise KeyboardInterrupt
        progress = QueueProgress(queue, parent_pid)
        return "finished", train_seed(job.cfg, job.seed, job.out, progress, resume=job.resume)
    except KeyboardInterrupt:
        return "interrupted", None
    except Exception as exc:  # noqa: BLE001 -- any error of one job is reported, the others continue
        return "failed", mark_seed_failed(job.out, job.seed, exc)
    finally:
        lock.release()
