"""Shared fixtures: the real ``mjreinforce`` CLI (in a subprocess or in this process), the one bad-input
harness, run-table reading and a trained run."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

# One intra-op thread, as training uses: on a loaded 2-core machine two torch threads spin-wait for
# each other, and a test of a few thousand small steps then takes minutes instead of seconds.
torch.set_num_threads(1)

# What the ``mjreinforce`` console script runs; a ``prelude`` can change the interpreter first
# (e.g. ``sys.modules['mujoco'] = None`` makes ``import mujoco`` fail as if it were not installed).
_ENTRY = "import sys\n{prelude}\nfrom mjreinforce.cli import main\nsys.exit(main())\n"


class Cli:
    """``cli(*args, cwd=...)`` runs ``mjreinforce ARGS`` to completion in a subprocess; :meth:`main` runs it in
    this process (no interpreter start, no torch import); :meth:`command` gives the argv for a
    :class:`subprocess.Popen` (e.g. to kill it); :meth:`env` the subprocess environment."""

    def command(self, *args: str, prelude: str = "") -> list[str]:
        return [sys.executable, "-c", _ENTRY.format(prelude=prelude), *args]

    def env(self, **extra: str | None) -> dict[str, str]:
        """This process's environment for a CLI subprocess; an ``extra`` value of None removes that variable."""
        env = dict(os.environ)
        env.update(MUJOCO_GL="osmesa", PYOPENGL_PLATFORM="osmesa", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
        for key, value in extra.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def __call__(
        self, *args: str, cwd: Path, prelude: str = "", timeout: float = 300, **env: str | None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args, prelude=prelude),
            cwd=cwd,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def popen(self, *args: str, cwd: Path, background: bool = False) -> subprocess.Popen[str]:
        """``mjreinforce ARGS`` started in a subprocess (stdout and stderr piped, as text); ``background``: as
        ``setsid mjreinforce ARGS &`` from a script starts it (its own session, SIGINT ignored)."""
        extra: dict[str, Any] = {"start_new_session": True, "preexec_fn": _ignore_sigint} if background else {}
        return subprocess.Popen(
            self.command(*args),
            cwd=cwd,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **extra,
        )

    def main(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        """``mjreinforce ARGS`` through :func:`mjreinforce.cli.main` in this process, in ``cwd``: its exit code and
        its stdout and stderr as a subprocess would show them. An exception that escapes ``main`` (a subprocess
        would print its traceback) and every warning that Python's default filters show are added to stderr.
        Not thread-safe (it changes the working directory): call it from the main thread only."""
        from mjreinforce.cli import main

        out, err = io.StringIO(), io.StringIO()
        with _in_directory(cwd), warnings.catch_warnings(record=True) as caught:
            _python_default_warning_filters()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(list(args))
                except SystemExit as exc:  # argparse's usage errors
                    code = exc.code if isinstance(exc.code, int) else 1
                except Exception:
                    traceback.print_exc()
                    code = 1
        shown = "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line) for w in caught)
        return subprocess.CompletedProcess(["mjreinforce", *args], code, out.getvalue(), err.getvalue() + shown)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def _in_directory(path: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _python_default_warning_filters() -> None:
    """The filters a fresh ``python`` starts with (no -W, no PYTHONWARNINGS): what the console script shows."""
    warnings.resetwarnings()
    warnings.simplefilter("default")
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
        warnings.simplefilter("ignore", category)


@pytest.fixture(scope="session")
def cli() -> Cli:
    return Cli()


def _one_error_line(proc: subprocess.CompletedProcess[str], command: str, fragments: Iterable[str] = ()) -> str:
    """Assert that ``proc`` failed as bad input must: exit 2, no traceback, exactly one stderr line
    ``mjreinforce COMMAND: error: ...`` holding every fragment. Returns that line."""
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"mjreinforce {command}: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@pytest.fixture(scope="session")
def one_error_line() -> Callable[..., str]:
    return _one_error_line


# --------------------------------------------------------------------------
# the bad-input harness
# --------------------------------------------------------------------------
WD = "{wd}"
"""Stands for the case's working directory (absolute) in its args, fragments and env values."""


@dataclass(frozen=True)
class Case:
    """One bad input: ``mjreinforce ARGS`` in its own prepared working directory must exit 2 with one stderr line
    ``mjreinforce COMMAND: error: ...`` holding every fragment, print no traceback, and leave the whole working
    directory byte-identical (every path, its bytes, symlink targets: nothing created, lost or half-written).

    It runs in this process (:meth:`Cli.main`) unless it needs a real one: an ``env``, a ``prelude``, or
    ``process=True`` (each corpus keeps one such case per kind of error, so the console script's own path, the
    interpreter start and what C libraries print to the file descriptors stay covered).
    """

    args: tuple[str, ...]  # after "mjreinforce"; args[0] is the command
    fragments: tuple[str, ...] = ()  # what the one stderr line must mention
    files: tuple[tuple[str, bytes], ...] = ()  # written (or overwritten) before the call: (relative path, bytes)
    setup: Callable[[Path], object] | None = None  # further preparation, given the working directory
    cwd: str = "."  # where the call runs, relative to the working directory
    during: Callable[[Path], contextlib.AbstractContextManager[tuple[str, ...]]] | None = None
    """Entered around the call (e.g. a process holding the run's lock); it yields further fragments."""
    env: Mapping[str, str | None] = field(default_factory=dict)  # a subprocess with these variables (None: unset)
    prelude: str = ""  # a subprocess that runs this Python code before the CLI
    process: bool = False  # a subprocess even without env or prelude

    @property
    def command(self) -> str:
        return self.args[0]

    @property
    def in_process(self) -> bool:
        return not (self.process or self.env or self.prelude)


@dataclass(frozen=True)
class Outcome:
    proc: subprocess.CompletedProcess[str]
    fragments: tuple[str, ...]  # the case's, with WD replaced, plus what ``during`` yielded
    before: dict[str, tuple]
    after: dict[str, tuple]


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` (symlinks not followed): ("file", bytes), ("link", target) or ("dir",)."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir",)
            else:
                out[rel] = ("file", path.read_bytes())
    return out


class BadInputs:
    """``run(cases, workdir)`` runs every case once (the subprocess ones a few at a time in threads, the in-process
    ones meanwhile in the main thread) and returns ``name -> Outcome``; ``check(case, outcome)`` asserts it."""

    def __init__(self, cli: Cli) -> None:
        self.cli = cli

    def run(
        self, cases: Mapping[str, Case], workdir: Callable[[str], Path], timeout: float = 240
    ) -> dict[str, Outcome]:
        """``workdir(name)`` makes a fresh working directory (e.g. holding a copy of a run) for case ``name``."""
        dirs = {name: self._prepare(case, workdir(name)) for name, case in cases.items()}
        with ThreadPoolExecutor(max_workers=3) as pool:
            futures = {
                name: pool.submit(self._call, case, dirs[name], timeout)
                for name, case in cases.items()
                if not case.in_process
            }
            done = {name: self._call(case, dirs[name], timeout) for name, case in cases.items() if case.in_process}
            done |= {name: future.result() for name, future in futures.items()}
        return {name: done[name] for name in cases}

    @staticmethod
    def _prepare(case: Case, wd: Path) -> Path:
        for rel, data in case.files:
            (wd / rel).parent.mkdir(parents=True, exist_ok=True)
            (wd / rel).write_bytes(data)
        if case.setup is not None:
            case.setup(wd)
        return wd

    def _call(self, case: Case, wd: Path, timeout: float) -> Outcome:
        def fill(text: str) -> str:
            return text.replace(WD, str(wd))

        args = tuple(fill(a) for a in case.args)
        with case.during(wd) if case.during else contextlib.nullcontext(()) as extra:
            before = snapshot(wd)
            if case.in_process:
                proc = self.cli.main(*args, cwd=wd / case.cwd)
            else:
                env = {k: None if v is None else fill(v) for k, v in case.env.items()}
                proc = self.cli(*args, cwd=wd / case.cwd, prelude=case.prelude, timeout=timeout, **env)
        return Outcome(proc, tuple(fill(f) for f in case.fragments) + tuple(extra), before, snapshot(wd))

    @staticmethod
    def check(case: Case, outcome: Outcome) -> str:
        """Exit 2, one line naming the command and holding every fragment, no traceback, nothing changed."""
        line = _one_error_line(outcome.proc, case.command, outcome.fragments)
        changed = sorted(
            k for k in set(outcome.before) | set(outcome.after) if outcome.before.get(k) != outcome.after.get(k)
        )
        assert not changed, f"changed: {changed}"
        return line


@pytest.fixture(scope="session")
def bad_inputs(cli: Cli) -> BadInputs:
    return BadInputs(cli)


def hold_lock(directory: Path) -> subprocess.Popen[str]:
    """A helper process that takes ``directory``'s :class:`~mjreinforce.runs.lock.RunLock`, says so, and sleeps
    (kill it to free the lock)."""
    code = (
        "import sys, time\nfrom mjreinforce.runs.lock import RunLock\n"
        "RunLock(sys.argv[1]).acquire()\nprint('held', flush=True)\ntime.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(directory)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def communicate_or_kill(proc: subprocess.Popen[str], timeout: float = 240) -> tuple[str, str]:
    """``proc.communicate(timeout)``; a process still running after it (or after an error) is killed and reaped."""
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def holding_lock(relative: str) -> Callable[[Path], contextlib.AbstractContextManager[tuple[str, ...]]]:
    """For :attr:`Case.during`: a helper process holds the lock of ``wd/relative`` during the call; the line
    must name its PID."""

    @contextlib.contextmanager
    def during(wd: Path) -> Iterator[tuple[str, ...]]:
        holder = hold_lock(wd / relative)
        try:
            yield (f"PID {holder.pid}",)
        finally:
            holder.kill()
            holder.wait()

    return during


def copies_of(
    template: Path,
    tmp_path_factory: pytest.TempPathFactory,
    name: str = "run",
    beside: Callable[[Path], object] | None = None,
) -> Callable[[str], Path]:
    """For :meth:`BadInputs.run`: a fresh working directory per case holding a copy of ``template`` at ``name``
    (symlinks kept), then given to ``beside`` (e.g. to put a file next to it)."""

    def workdir(case: str) -> Path:
        path = tmp_path_factory.mktemp(case)
        shutil.copytree(template, path / name, symlinks=True)
        if beside is not None:
            beside(path)
        return path

    return workdir


def selected_cases(request: pytest.FixtureRequest, cases: Mapping[str, Case], param: str = "name") -> dict[str, Case]:
    """The cases that this session's tests of ``request``'s module select (by parameter ``param``): a ``-k`` run
    pays only for what it runs."""
    names = {
        item.callspec.params[param]
        for item in request.session.items
        if item.module is request.module and param in getattr(getattr(item, "callspec", None), "params", {})
    }
    return {name: case for name, case in cases.items() if name in names}


# --------------------------------------------------------------------------
# a run killed mid-way
# --------------------------------------------------------------------------
def wait_for_checkpoint(seed_dir: Path, proc: subprocess.Popen, min_updates: int, timeout: float = 120) -> None:
    """Poll ``checkpoints/latest.json`` (written atomically) until it names ``min_updates`` updates."""
    latest = seed_dir / "checkpoints" / "latest.json"
    deadline = time.monotonic() + timeout
    while not (latest.exists() and json.loads(latest.read_text())["updates"] >= min_updates):
        assert proc.poll() is None, "the run ended before it could be killed (see killed.stderr)"
        assert time.monotonic() < deadline, f"no checkpoint of {min_updates} updates after {timeout} s"
        time.sleep(0.02)


def train_killed_after(cli: Cli, args: Iterable[str], out: Path, cwd: Path, min_updates: int) -> None:
    """``mjreinforce train ARGS --out OUT`` in a subprocess, SIGKILLed once its ``seed_1`` has a checkpoint of
    ``min_updates`` updates (before the seed finished); its stderr is in ``cwd/killed.stderr``."""
    with open(cwd / "killed.stderr", "w") as stderr:
        proc = subprocess.Popen(
            cli.command("train", *args, "--out", str(out)),
            cwd=cwd,
            env=cli.env(),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            wait_for_checkpoint(out / "seed_1", proc, min_updates)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "seed_1" / "summary.json").exists(), "the run finished before it was killed"


# --------------------------------------------------------------------------
# run tables and a trained run
# --------------------------------------------------------------------------
def _read_csv(path: Path, drop: tuple[str, ...] = ()) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(f)]


@pytest.fixture(scope="session")
def read_csv() -> Callable[..., list[dict[str, str]]]:
    """``read_csv(path, drop=("wall_seconds",))``: rows as dicts of strings, ``drop`` columns removed."""
    return _read_csv


@pytest.fixture(scope="session")
def read_only_dir(tmp_path_factory: pytest.TempPathFactory):
    """A directory on a tmpfs mounted read-only (root only: chmod does not stop root), or None."""
    if os.geteuid() != 0:
        yield None
        return
    path = tmp_path_factory.mktemp("read_only")
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,ro", "tmpfs", str(path)], capture_output=True
    ).returncode:
        yield None
        return
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], capture_output=True)


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A vpg policy trained on InvertedPendulum-v5 (gymnasium backend, seed 1) until its evaluation
    reaches 1000 or 80k steps; shared by the eval, video and robustness tests."""
    import mjreinforce
    from mjreinforce.config import load_preset, with_overrides

    path = tmp_path_factory.getbasetemp() / "trained-vpg-pendulum"
    settings = {
        "backend": "gymnasium",
        "seeds": (1,),
        "total_steps": 80_000,
        "target_return": 1000.0,
        "tensorboard": False,
    }
    mjreinforce.train(with_overrides(load_preset("vpg"), settings), path, quiet=True, plot=False)
    return path
