"""Shared fixtures: the real ``mjreinforce`` CLI in a subprocess, and run-table reading."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
import torch

# One intra-op thread, as training uses: on a loaded 2-core machine two torch threads spin-wait for
# each other, and a test of a few thousand small steps then takes minutes instead of seconds.
torch.set_num_threads(1)

# What the ``mjreinforce`` console script runs; a ``prelude`` can change the interpreter first
# (e.g. ``sys.modules['mujoco'] = None`` makes ``import mujoco`` fail as if it were not installed).
_ENTRY = "import sys\n{prelude}\nfrom mjreinforce.cli import main\nsys.exit(main())\n"


class Cli:
    """``cli(*args, cwd=...)`` runs ``mjreinforce ARGS`` to completion; :meth:`command` gives the argv
    for a :class:`subprocess.Popen` (e.g. to kill it); :meth:`env` the subprocess environment."""

    def command(self, *args: str, prelude: str = "") -> list[str]:
        return [sys.executable, "-c", _ENTRY.format(prelude=prelude), *args]

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(MUJOCO_GL="osmesa", PYOPENGL_PLATFORM="osmesa", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
        env.update(extra)
        return env

    def __call__(
        self, *args: str, cwd: Path, prelude: str = "", timeout: float = 300, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args, prelude=prelude),
            cwd=cwd,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )


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


@pytest.fixture(scope="session")
def cli() -> Cli:
    return Cli()


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
