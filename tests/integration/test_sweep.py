"""Sweeps: sweep-file validation (no Ray), the ``mjreinforce sweep`` CLI on bad input, and a CI-sized
grid sweep on a real local Ray instance (started once for this module)."""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path
from statistics import mean

import pytest

from conftest import Case, communicate_or_kill, selected_cases, snapshot
from mjreinforce.config import load_toml
from mjreinforce.errors import UserError
from mjreinforce.runs.reading import load_run
from mjreinforce.sweep.spec import load_sweep, parse_sweep
from mjreinforce.sweep.tune import run_sweep
from mjreinforce.training.loop import train_seed

os.environ.setdefault("MUJOCO_GL", "osmesa")  # Ray workers inherit the driver's environment
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

GRID = """
preset = "vpg"
seeds = [1, 2]
metric = "final_window_mean_return"
search = "grid"
[config]
total_steps = 2000
backend = "gymnasium"
num_envs = 8
rollout_steps = 32
eval_every_steps = 0
tensorboard = false
[space]
learning_rate = [1e-3, 3e-3]
[asha]
grace_period = 1000   # beyond this run's 8 updates: the scheduler is wired in but stops nothing
"""


def write(tmp_path: Path, text: str, name: str = "sweep.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# --------------------------------------------------------------------------
# Sweep files (no Ray)
# --------------------------------------------------------------------------
BAD_SWEEPS = {
    "unknown top-level key": ("foo = 1\n[space]\nlearning_rate = [1e-3]\n", ("unknown key 'foo'",)),
    "unknown space key": ("[space]\nlerning_rate = [1e-3]\n", ("'lerning_rate'", "[space]", "learning_rate")),
    "unknown config key": ("[config]\ngama = 0.9\n[space]\nlearning_rate = [1e-3]\n", ("[config]", "'gama'", "gamma")),
    "no space": ('preset = "vpg"\n', ("[space] is empty",)),
    "empty space": ("[space]\n", ("[space] is empty",)),
    "empty list": ("[space]\nlearning_rate = []\n", ("learning_rate", "empty list")),
    "range in a grid": ("[space]\nlearning_rate = {low = 1e-4, high = 1e-2}\n", ("grid", "list", "random")),
    "random without num_samples": ('search = "random"\n[space]\nlearning_rate = [1e-3]\n', ("num_samples",)),
    "num_samples with grid": ("num_samples = 3\n[space]\nlearning_rate = [1e-3]\n", ("num_samples", "random")),
    "low above high": (
        'search = "random"\nnum_samples = 2\n[space]\nlearning_rate = {low = 1e-2, high = 1e-4}\n',
        ("learning_rate", "low < high"),
    ),
    "log with low 0": (
        'search = "random"\nnum_samples = 2\n[space]\nentropy_coef = {low = 0.0, high = 0.1, log = true}\n',
        ("entropy_coef", "low > 0"),
    ),
    "searching seeds": ("[space]\nseeds = [[1], [2]]\n", ("seeds cannot be searched",)),
    "invalid value": (
        "[space]\nlearning_rate = [1e-3, -1.0]\n",
        ("[space] learning_rate", "learning_rate must be in (0, 1]", "-1.0"),
    ),
    "wrong value type": ('[space]\nnum_envs = [2, "many"]\n', ("[space] num_envs", "integer", "'many'")),
    "unknown metric": ('metric = "return"\n[space]\nlearning_rate = [1e-3]\n', ("metric", "final_window_mean_return")),
    "eval metric without eval": (
        'metric = "best_eval_mean_return"\n[config]\neval_every_steps = 0\n[space]\nlearning_rate = [1e-3]\n',
        ("best_eval_mean_return", "eval_every"),
    ),
    "final eval metric without eval": (
        'metric = "final_eval_mean_return"\n[config]\neval_every_steps = 0\n[space]\nlearning_rate = [1e-3]\n',
        ("final_eval_mean_return", "eval_every"),
    ),
    "unknown asha key": ("[space]\nlearning_rate = [1e-3]\n[asha]\ngrace = 2\n", ("[asha]", "grace_period")),
    "malformed toml": ("[space\n", ("not valid TOML",)),
}


@pytest.mark.parametrize("case", BAD_SWEEPS, ids=list(BAD_SWEEPS))
def test_bad_sweep_files_are_one_line_user_errors(tmp_path, case):
    text, fragments = BAD_SWEEPS[case]
    with pytest.raises(UserError) as error:
        load_sweep(write(tmp_path, text))
    message = str(error.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_missing_sweep_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="sweep file not found"):
        load_sweep(tmp_path / "nope.toml")


def test_grid_points_are_the_product_in_file_order():
    spec = parse_sweep(
        {"space": {"learning_rate": [1e-3, 3e-3], "hidden_sizes": [[32], [64, 64], [8]]}, "config": {"gamma": 0.9}}
    )
    assert spec.points == tuple(
        {"learning_rate": lr, "hidden_sizes": h} for lr in (1e-3, 3e-3) for h in ([32], [64, 64], [8])
    )
    assert spec.config(4).learning_rate == 3e-3 and spec.config(4).hidden_sizes == (64, 64)
    assert spec.config(0).gamma == 0.9  # [config] applies to every point


def test_random_points_are_reproducible_and_inside_their_ranges():
    raw = {
        "preset": "vpg",  # value_iterations is a vpg key (ppo steps its critic with each minibatch)
        "search": "random",
        "num_samples": 40,
        "sample_seed": 7,
        "space": {
            "learning_rate": {"low": 1e-5, "high": 1e-2, "log": True},
            "value_iterations": {"low": 1, "high": 4},
            "gamma": {"low": 0.9, "high": 0.999},
            "activation": ["tanh", "relu"],
        },
    }
    points = parse_sweep(raw).points
    assert len(points) == 40
    assert points == parse_sweep(raw).points
    assert points != parse_sweep(raw | {"sample_seed": 8}).points
    assert all(1e-5 <= p["learning_rate"] <= 1e-2 and 0.9 <= p["gamma"] <= 0.999 for p in points)
    assert {p["value_iterations"] for p in points} == {1, 2, 3, 4}  # integers, both ends included
    assert {p["activation"] for p in points} == {"tanh", "relu"}
    # log-uniform: about as many draws per decade; uniform would put ~90% in the top decade
    assert sum(p["learning_rate"] < 1e-3 for p in points) >= 15


# --------------------------------------------------------------------------
# The CLI on bad input: exit code 2, one stderr line, nothing written
# --------------------------------------------------------------------------
def _sweep_case(args: tuple[str, ...], text: str, fragments: tuple[str, ...], **kw: bool) -> Case:
    files = (("sweep.toml", textwrap.dedent(text).encode()),)
    return Case(("sweep", "sweep.toml", "--out", "out", "--quiet", *args), fragments, files, **kw)


CLI_CASES = {
    "unknown key": _sweep_case(
        (), 'preset = "vpg"\ncolour = "red"\n[space]\nlearning_rate = [1e-3]\n', ("unknown key 'colour'",)
    ),
    "empty space": _sweep_case((), 'preset = "vpg"\n[space]\n', ("[space] is empty",)),
    "zero workers": _sweep_case(("--workers", "0"), GRID, ("--workers", "[1, 1024]")),
    # a real process: Ray's failed connection stays out of this one
    "address that does not answer": _sweep_case(
        ("--address", "127.0.0.1:1"), GRID, ("127.0.0.1:1", "no Ray cluster answers"), process=True
    ),
}


@pytest.fixture(scope="module")
def cli_outcomes(bad_inputs, request, tmp_path_factory: pytest.TempPathFactory) -> dict:
    cases = selected_cases(request, CLI_CASES, "case")
    return bad_inputs.run(cases, lambda name: tmp_path_factory.mktemp("sweep-cli"), timeout=60)


@pytest.mark.parametrize("case", CLI_CASES, ids=list(CLI_CASES))
def test_sweep_cli_bad_input(cli_outcomes, bad_inputs, case):
    bad_inputs.check(CLI_CASES[case], cli_outcomes[case])


# --------------------------------------------------------------------------
# A real sweep on a local Ray instance
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    yield ray
    ray.shutdown()


def _final_window_mean(episodes_csv: Path, window: int) -> float:
    """The mean return of the last ``window`` episodes, read from the table."""
    with open(episodes_csv, newline="") as f:
        returns = [float(row["return"]) for row in csv.DictReader(f)]
    return mean(returns[-window:])


@pytest.fixture(scope="module")
def interrupted(cli, tmp_path_factory: pytest.TempPathFactory):
    """The CI grid swept by a real ``mjreinforce sweep`` process started in the background (SIGINT ignored, as
    ``cmd &`` in a script starts it), one trial at a time, and given a Ctrl-C while its first trial trains.
    Returns its working directory (``sweep.toml``, ``sweep/``) and the process result."""
    wd = tmp_path_factory.mktemp("interrupted")
    write(wd, GRID)
    proc = cli.popen("sweep", "sweep.toml", "--out", "sweep", "--workers", "1", "--quiet", cwd=wd, background=True)
    deadline = time.monotonic() + 300
    while not list((wd / "sweep").glob("trial_*/seed_*/episodes.csv")):
        assert proc.poll() is None, proc.communicate()
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no trial ever started: {proc.communicate()}")
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = communicate_or_kill(proc, timeout=120)
    return wd, subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.mark.ray
@pytest.mark.slow
def test_a_sweep_interrupted_mid_way_exits_130_and_is_refused_without_overwrite(
    cli, interrupted, one_error_line
) -> None:
    wd, proc = interrupted
    assert proc.returncode == 130, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.splitlines()[-1] == "mjreinforce sweep: interrupted"
    assert not (wd / "sweep" / "sweep_results.csv").exists()
    before = snapshot(wd)
    again = cli.main("sweep", "sweep.toml", "--out", "sweep", "--quiet", cwd=wd)
    one_error_line(again, "sweep", ("already holds an unfinished sweep (no sweep_results.csv)", "--overwrite"))
    assert snapshot(wd) == before


@pytest.mark.ray
@pytest.mark.slow
def test_grid_sweep_on_local_ray(interrupted, tmp_path, local_ray, read_csv):
    """The interrupted sweep swept again with --overwrite (the Python API's ``overwrite=True``)."""
    wd, _ = interrupted
    spec = load_sweep(wd / "sweep.toml")
    out = wd / "sweep"
    result = run_sweep(spec, out, address=None, workers=2, overwrite=True, quiet=True)

    with open(out / "sweep_results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["learning_rate"]) for r in rows] == [1e-3, 3e-3]
    assert [r["finished_seeds"] for r in rows] == ["2", "2"]
    for k, row in enumerate(rows):
        trial = out / f"trial_{k}"
        # the metric is the mean over seeds of the last-50-episode mean return, recomputed from the tables
        expected = mean(_final_window_mean(trial / f"seed_{s}" / "episodes.csv", 50) for s in (1, 2))
        assert float(row["final_window_mean_return"]) == pytest.approx(expected, abs=0.01)
        assert result.points[k].metric == pytest.approx(expected, abs=0.01)
        run = load_run(trial)  # each point is an ordinary run directory
        assert run.seed_status == {1: "finished", 2: "finished"}
        assert set(json.loads((trial / "summary.json").read_text())["seeds"]) == {"1", "2"}
        assert load_toml(trial / "config.toml").learning_rate == float(row["learning_rate"])

    metrics = [float(r["final_window_mean_return"]) for r in rows]
    assert metrics[0] != metrics[1]
    winner = max(range(2), key=lambda k: metrics[k])
    assert result.best.trial == winner
    best = load_toml(out / "best_config.toml")
    assert best.learning_rate == float(rows[winner]["learning_rate"])
    assert best.total_steps == 2000 and best.seeds == (1, 2) and best.num_envs == 8

    # a trial trains a seed exactly as the in-process loop does
    class Silent:
        def update(self, event):
            pass

        def close(self):
            pass

    train_seed(spec.config(0), 1, tmp_path / "in_process", Silent())
    drop = ("wall_seconds",)
    assert read_csv(out / "trial_0" / "seed_1" / "episodes.csv", drop=drop) == read_csv(
        tmp_path / "in_process" / "episodes.csv", drop=drop
    )
    assert math.isfinite(result.best.metric)


def test_the_shipped_example_sweep_file_is_valid() -> None:
    spec = load_sweep(Path(__file__).parents[2] / "examples" / "sweeps" / "vpg_pendulum_lr_envs.toml")
    assert spec.base.seeds == (1, 2, 3) and len(spec.points) == 6
    assert {p["learning_rate"] for p in spec.points} == {1e-3, 3e-3, 1e-2} and spec.asha is not None


EXAMPLE_SWEEPS = Path(__file__).parents[2] / "examples" / "sweeps"


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLE_SWEEPS.glob("*.toml")))
def test_every_example_sweep_loads_with_the_presets_task_table(name: str) -> None:
    from mjreinforce.config import load_preset

    path = EXAMPLE_SWEEPS / name
    spec = load_sweep(path)
    base = load_preset(spec.preset, spec.base.env_id)  # the preset with its table for the sweep's env
    text = "\n".join(line for line in path.read_text().splitlines() if not line.startswith("#"))
    for field in ("learning_rate", "gamma", "normalize_obs", "init_log_std", "eval_every_steps", "lr_schedule"):
        if field not in text:  # neither searched nor set in [config]: as the preset (and task table) say
            assert getattr(spec.base, field) == getattr(base, field), (name, field)
    assert all(spec.config(k).env_id == base.env_id for k in range(len(spec.points)))


def test_overwrite_of_a_sweep_directory_deletes_only_what_a_sweep_wrote(tmp_path: Path) -> None:
    from mjreinforce.sweep.tune import _check_sweep_dir, _prepare_sweep_dir

    out = tmp_path / "sweep"
    (out / "trial_0" / "seed_1").mkdir(parents=True)
    (out / "sweep_results.csv").write_text("trial\n")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="notes.txt"):
        _prepare_sweep_dir(out, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine" and (out / "trial_0" / "seed_1").is_dir()
    (out / "notes.txt").unlink()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "data").write_text("keep")
    (out / "trial_1").symlink_to(victim)  # a link planted where a trial directory goes is foreign
    with pytest.raises(UserError, match="trial_1"):
        _check_sweep_dir(out, overwrite=True)
    (out / "trial_1").unlink()
    _prepare_sweep_dir(out, overwrite=True)
    assert list(out.iterdir()) == [] and (victim / "data").read_text() == "keep"
    with pytest.raises(UserError, match="current directory"):
        _check_sweep_dir(Path.cwd(), overwrite=True)
