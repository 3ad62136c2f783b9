"""The one runner of seed jobs in worker processes (:func:`run_jobs`), for ``train --workers`` (through
:func:`run_seeds_parallel`) and for the suite's local cells. A job is one seed of a config, its seed
directory and whether it resumes (:class:`SeedJob`); each job may have its own config. Sweeps on Ray Tune
are in :mod:`mjreinforce.sweep.tune`; all of them call :func:`mjreinforce.training.loop.train_seed` and
write the ordinary run-directory format, so ``results``, ``plot`` and ``train --resume`` work on what they
produce.

Worker processes (``spawn`` context: torch and fork do not mix) each train one seed exactly as
the in-process loop would (same ``train_seed`` call, same seeding), so a seed's ``episodes.csv``
does not depend on where it ran. Workers live in their own process group: a terminal Ctrl-C
reaches only the parent, which forwards one SIGINT to each worker (the trainer then finishes the
current update, checkpoints and stops); a second Ctrl-C, or a worker still running after
:data:`GRACE_SECONDS`, gets SIGTERM (in a worker a second stop signal: stop now), then SIGKILL.
SIGTERM to the parent (``kill``, a job scheduler) does the same as a Ctrl-C (the caller turns it into
:class:`~mjreinforce.training.interrupt.Terminated`), and a worker treats SIGTERM as it treats SIGINT.
A worker whose parent died stops as if interrupted. Every worker is joined before returning.
The worker side is :mod:`mjreinforce.training.job_worker`.

Each worker holds the :class:`~mjreinforce.runs.lock.RunLock` of its seed directory while it writes there,
so two writers never share one (a second job on the same directory fails with the lock's line and writes
nothing), also after the parent died and before its worker noticed.
:func:`~mjreinforce.training.interrupt.stop_signals_raise` makes a stop signal that arrives before the workers
start end the caller at once.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_mod
import signal
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mjreinforce.config import Config
from mjreinforce.errors import UserError
from mjreinforce.runs.layout import seed_dir
from mjreinforce.training.interrupt import GracefulInterrupt, stop_signals_deferred
from mjreinforce.training.job_worker import SeedJob, mark_seed_failed, worker_main
from mjreinforce.training.progress import Progress

if TYPE_CHECKING:
    from mjreinforce.training.records import SeedResult

GRACE_SECONDS = 30.0
"""How long stopped workers get to finish their update and checkpoint before SIGTERM."""
KILL_SECONDS = 5.0
"""How long a SIGTERM'd worker gets before SIGKILL."""


@dataclass(frozen=True)
class Outcome:
    """How a job ended: ``kind`` "finished" (with its ``result``), "failed" (with the ``error`` line) or
    "interrupted" (its worker was stopped)."""

    kind: str
    result: SeedResult | None = None
    error: str | None = None


OnOutcome = Callable[[SeedJob, Outcome], None]


def say_unfinished(who: str, outcome: Outcome) -> None:
    """One stderr line ``<who> failed: <error>`` or ``<who> was interrupted ...`` for a job that did not finish;
    nothing for one that did."""
    if outcome.kind == "failed":
        print(f"{who} failed: {outcome.error}", file=sys.stderr, flush=True)
    elif outcome.kind == "interrupted":
        print(f"{who} was interrupted (its worker was stopped)", file=sys.stderr, flush=True)


def report_outcome(job: SeedJob, outcome: Outcome) -> None:
    """The default :data:`OnOutcome` of ``train``: :func:`say_unfinished` as ``mjreinforce: seed <s>``."""
    say_unfinished(f"mjreinforce: seed {job.seed}", outcome)


class _Workers:
    """The parent's bookkeeping: running workers (by job index), their outcomes, the progress forwarding."""

    def __init__(self, jobs: Sequence[SeedJob], progress: Progress, on_outcome: OnOutcome) -> None:
        self.jobs, self.progress, self.on_outcome = jobs, progress, on_outcome
        self.ctx = mp.get_context("spawn")
        self.queue = self.ctx.Queue()
        self.running: dict[int, Any] = {}
        self.outcomes: dict[int, Outcome] = {}
        self.stopping = False
        self.unreadable = False  # a message was cut by an interrupt: the queue cannot be read any more

    def start(self, index: int) -> None:
        args = (self.jobs[index], index, self.queue, os.getpid())
        # not daemonic: a worker may start processes of its own (env_workers > 0); every worker is joined
        process = self.ctx.Process(target=worker_main, args=args, name=f"seed-{self.jobs[index].seed}")
        with stop_signals_deferred(children_ignore=True):
            process.start()
        self.running[index] = process

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
        kind, index, payload = message
        outcome = Outcome(kind, result=payload) if kind == "finished" else Outcome(kind, error=payload)
        self.outcomes[index] = outcome
        self.on_outcome(self.jobs[index], outcome)

    def reap(self) -> None:
        """Join workers that exited; one that exited without an outcome has failed."""
        for index, process in list(self.running.items()):
            if process.is_alive():
                continue
            process.join()
            self.pump(0)  # its last messages were flushed to the pipe before it exited
            del self.running[index]
            if index not in self.outcomes and not self.stopping:
                job = self.jobs[index]
                exc = RuntimeError(f"its worker process {_exit_text(process.exitcode)}")
                self._handle(("failed", index, mark_seed_failed(job.out, job.seed, exc)))

    def stop(self) -> None:
        """SIGINT every worker (graceful: checkpoint and stop), then SIGTERM, then SIGKILL; join all."""
        self.stopping = True
        self._signal_all(signal.SIGINT)
        with suppress(KeyboardInterrupt):  # a second Ctrl-C: stop now
            self._wait(GRACE_SECONDS)
        with stop_signals_deferred(children_ignore=False):
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


def _exit_text(code: int | None) -> str:
    """How a process ended, from its exit code: "was killed by SIGKILL" or "exited with code 1"."""
    if code is not None and code < 0:
        with suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def run_jobs(
    jobs: Sequence[SeedJob], workers: int, progress: Progress, on_outcome: OnOutcome = report_outcome
) -> list[Outcome]:
    """Train every job in a worker process of its own, at most ``workers`` at once, in the order given;
    return their outcomes in that order.

    Progress events of all workers are forwarded to ``progress`` (one combined display). ``on_outcome(job,
    outcome)`` is called as each job ends (while stopping too: the interrupted ones). A job that raises is recorded
    in its ``summary.json`` (status "failed", ``error``, ``traceback``) while the others continue; a worker
    that exits without an outcome has failed. A KeyboardInterrupt (the first Ctrl-C or SIGTERM) stops and
    joins every worker as the module docstring says, then propagates; jobs that had finished keep their
    files untouched.
    """
    if workers < 1:
        raise UserError(f"workers must be >= 1, got {workers}")
    pending = list(range(len(jobs)))
    pool = _Workers(jobs, progress, on_outcome)
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
    return [pool.outcomes.get(i, Outcome("failed")) for i in range(len(jobs))]


def run_seeds_parallel(
    cfg: Config,
    run_dir: Path,
    workers: int,
    progress: Progress,
    resume: bool = False,
    seeds: tuple[int, ...] | None = None,
) -> dict[int, SeedResult]:
    """Train ``seeds`` (default: every seed of ``cfg``) into ``run_dir/seed_<s>`` with :func:`run_jobs`,
    at most ``workers`` processes at once. Each worker gets the whole ``cfg`` (checkpoints record the run's
    config hash). A failed seed is reported on one stderr line while the others continue. Returns the
    results of the seeds that finished, in the order of ``seeds`` (failed seeds are left out); raises
    :class:`UserError` if none finished.
    """
    seeds = tuple(cfg.seeds) if seeds is None else seeds
    jobs = [SeedJob(cfg, seed, seed_dir(Path(run_dir), seed), resume) for seed in seeds]
    outcomes = dict(zip(seeds, run_jobs(jobs, workers, progress), strict=True))
    finished = {s: o.result for s, o in outcomes.items() if o.kind == "finished" and o.result is not None}
    if not finished:
        failed = [s for s, o in outcomes.items() if o.kind == "failed"]
        detail = f"seed {failed[0]}: {outcomes[failed[0]].error}" if failed else "all were interrupted"
        what = f"all {len(seeds)} seeds failed" if len(failed) == len(seeds) else "no seed finished"
        raise UserError(f"{what}; {detail}")
    return finished
