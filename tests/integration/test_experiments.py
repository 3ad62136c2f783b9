"""Seeds in worker processes (``mjreinforce.training.workers.run_seeds_parallel``), with real training.

Real processes, real MuJoCo, tiny budgets. A seed fails for a real reason: its ``episodes.csv``
path is taken by a directory, so the trainer's ``open()`` raises IsADirectoryError in that worker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from mjreinforce.config import Config, load_preset, with_overrides
from mjreinforce.errors import UserError
from mjreinforce.runs.reading import load_run
from mjreinforce.training.progress import ProgressEvent
from mjreinforce.training.run import train
from mjreinforce.training.workers import run_seeds_parallel

os.environ.setdefault("MUJOCO_GL", "osmesa")  # spawned workers inherit it (as from the CLI)
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

pytestmark = pytest.mark.slow


TINY = {"backend": "gymnasium", "num_envs": 8, "rollout_steps": 32, "eval_every_steps": 0, "tensorboard": False}
"""The vpg preset made CI-sized: 8 envs x 32 steps = 256 env steps per update, no evaluation."""


def tiny_config(seeds: tuple[int, ...], steps: int = 2000) -> Config:
    """The vpg preset on InvertedPendulum for ``steps`` env steps per seed."""
    return with_overrides(load_preset("vpg"), TINY | {"seeds": list(seeds), "total_steps": steps})


class RecordingProgress:
    """A Progress that keeps every event it is given."""

    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []

    def update(self, event: ProgressEvent) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass


def summary(path: Path) -> dict:
    return json.loads((path / "summary.json").read_text())


def test_seeds_in_workers_give_the_same_episodes_as_in_process(tmp_path, read_csv):
    cfg = tiny_config((1, 2))
    in_process = train(cfg, tmp_path / "sequential", workers=1, plot=False, quiet=True)
    in_workers = train(cfg, tmp_path / "parallel", workers=2, plot=False, quiet=True)

    assert set(in_workers.seeds) == set(in_process.seeds) == {1, 2}
    for seed in (1, 2):
        expected = read_csv(tmp_path / "sequential" / f"seed_{seed}" / "episodes.csv", drop=("wall_seconds",))
        got = read_csv(tmp_path / "parallel" / f"seed_{seed}" / "episodes.csv", drop=("wall_seconds",))
        assert len(got) > 10
        assert got == expected
        assert in_workers.seeds[seed].episodes == len(got)
    # the two seeds differ (the comparison above is not trivially true)
    assert read_csv(tmp_path / "parallel" / "seed_1" / "episodes.csv", drop=("wall_seconds",)) != read_csv(
        tmp_path / "parallel" / "seed_2" / "episodes.csv", drop=("wall_seconds",)
    )
    assert set(summary(tmp_path / "parallel")["seeds"]) == {"1", "2"}


def test_a_failing_seed_is_reported_and_the_others_finish(tmp_path, capfd):
    run_dir = tmp_path / "run"
    (run_dir / "seed_2" / "episodes.csv").mkdir(parents=True)  # seed 2 cannot open its episode table
    progress = RecordingProgress()

    results = run_seeds_parallel(tiny_config((1, 2)), run_dir, workers=2, progress=progress)

    assert list(results) == [1]
    assert results[1].status == "finished"
    assert summary(run_dir / "seed_1")["status"] == "finished"
    failed = summary(run_dir / "seed_2")
    assert failed["status"] == "failed"
    assert "Is a directory" in failed["error"] and "episodes.csv" in failed["error"]
    lines = [line for line in capfd.readouterr().err.splitlines() if "failed" in line]
    assert len(lines) == 1
    assert "seed 2" in lines[0] and "Is a directory" in lines[0]
    # the finished seed's events reached the parent's display, ending with its final event
    seed_1_events = [e for e in progress.events if e.seed == 1]
    assert seed_1_events[-1].final and seed_1_events[-1].episodes == results[1].episodes
    run = load_run(run_dir)
    assert run.seeds == [1]
    assert len(run.episodes) == results[1].episodes


def test_all_seeds_failing_is_a_user_error(tmp_path):
    run_dir = tmp_path / "run"
    for seed in (1, 2):
        (run_dir / f"seed_{seed}" / "episodes.csv").mkdir(parents=True)
    with pytest.raises(UserError, match="all 2 seeds failed"):
        run_seeds_parallel(tiny_config((1, 2)), run_dir, workers=2, progress=RecordingProgress())
    assert {summary(run_dir / f"seed_{s}")["status"] for s in (1, 2)} == {"failed"}


def _status(run_dir: Path, seed: int) -> str | None:
    try:
        return summary(run_dir / f"seed_{seed}")["status"]
    except (OSError, ValueError, KeyError):
        return None


def _has_episode_rows(path: Path) -> bool:
    return path.is_file() and path.read_text().count("\n") >= 2


def _worker_pids(pid: int) -> list[int]:
    """Children of ``pid`` that are multiprocessing spawn workers (not the resource tracker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def test_ctrl_c_stops_the_workers_and_keeps_finished_seeds_readable(tmp_path, cli):
    """Seeds 1 and 2 start together, seed 3 once one of them finished. SIGINT goes to the parent
    as soon as seed 3 has finished an episode, with at least 76 of its 79 updates still to do (a wide
    margin: on a loaded machine this test process can be descheduled for seconds); the
    run must stop (exit 130) with every worker reaped."""
    out = tmp_path / "run"
    settings = [item for key, value in TINY.items() for item in ("--set", f"{key}={value}")]
    args = (
        "train",
        "--preset",
        "vpg",
        "--seeds",
        "1,2,3",
        "--steps",
        "20000",
        "--workers",
        "2",
        "--out",
        str(out),
        "--quiet",
        "--no-plot",
        *settings,
    )
    proc = subprocess.Popen(
        cli.command(*args), cwd=tmp_path, env=cli.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 180
        while not (
            _has_episode_rows(out / "seed_3" / "episodes.csv") and "finished" in (_status(out, 1), _status(out, 2))
        ):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "seed 3 never started"
            time.sleep(0.02)
        workers = _worker_pids(proc.pid)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

    assert proc.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    assert workers and not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    assert not (out / "summary.json").exists()  # the run is unfinished
    assert _status(out, 3) == "interrupted"
    assert any((out / "seed_3" / "checkpoints").iterdir())  # a graceful stop: the trainer checkpointed
    run = load_run(out)
    finished = [s for s, status in run.seed_status.items() if status == "finished"]
    assert finished
    for seed in finished:
        assert (run.episodes["seed"] == seed).sum() == summary(out / f"seed_{seed}")["episodes"]
    plotted = cli.main("plot", str(out), cwd=tmp_path)
    assert plotted.returncode == 0, plotted.stderr
    assert (out / "learning_curve.png").stat().st_size > 0
