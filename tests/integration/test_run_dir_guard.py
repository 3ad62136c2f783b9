"""A run directory is guarded: ownership (--overwrite), one writer (the lock), no symlink followed, resume
verifies what it continues, and SIGTERM / dead workers end a run cleanly. Real CLI processes, real files.

The bad-input corpus (:data:`CASES`, through the harness in conftest) asserts for each case: exit 2, one
stderr line naming what is wrong, no traceback, and the case's whole working directory (the run, the targets
of planted symlinks, anything beside it) byte-identical afterwards (paths, bytes, symlink targets). The cases
run in this process through ``main()``; one of each kind (ownership, the lock, the tables, symlinks,
checkpoints) and the one that needs its own HOME run as real ``mjreinforce`` processes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import matplotlib
import pytest
import torch

from conftest import WD, Case, communicate_or_kill, copies_of, hold_lock, holding_lock, selected_cases, snapshot
from mjreinforce.config import load_preset, with_overrides
from mjreinforce.runs.checkpoint_dir import latest_checkpoint
from mjreinforce.runs.checkpoint_format import load_checkpoint, save_checkpoint
from mjreinforce.runs.lock import LOCK_NAME, RunLock
from mjreinforce.runs.ownership import MARKER_NAME
from mjreinforce.training.run import train

os.environ.setdefault("MUJOCO_GL", "osmesa")  # spawned workers inherit it (as from the CLI)
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

pytestmark = pytest.mark.slow

TINY = {"backend": "gymnasium", "num_envs": 4, "rollout_steps": 64, "tensorboard": False, "checkpoint_every": 1}
"""The vpg preset made tiny: 256 env steps per update, a checkpoint after every update."""
TINY_ARGS = tuple(item for key, value in TINY.items() for item in ("--set", f"{key}={str(value).lower()}"))


def tiny_config(seeds: tuple[int, ...] = (1,), steps: int = 1024):
    settings = TINY | {"seeds": list(seeds), "total_steps": steps, "eval_every_steps": 512, "eval_episodes": 1}
    return with_overrides(load_preset("vpg"), settings)


def unfinish(run: Path) -> None:
    """Make a finished run look killed after its last checkpoint (no summary.json anywhere): resumable."""
    (run / "summary.json").unlink()
    for summary in run.glob("seed_*/summary.json"):
        summary.unlink()


def forge_checkpoint(run: Path, change: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Rewrite seed 1's latest checkpoint with one policy weight changed, under a valid checksum."""
    file = latest_checkpoint(run / "seed_1")
    tensors, meta = load_checkpoint(file)
    key = "state/policy/mean_net.0.weight"
    tensors[key] = change(tensors[key])
    save_checkpoint(file, tensors, meta)


def strip_digests(run: Path) -> None:
    """Rewrite seed 1's latest checkpoint without the config hash and table digests, under a valid checksum."""
    file = latest_checkpoint(run / "seed_1")
    tensors, meta = load_checkpoint(file)
    save_checkpoint(file, tensors, {k: v for k, v in meta.items() if k not in ("config_sha256", "tables")})


def _wider(t: torch.Tensor) -> torch.Tensor:
    return torch.zeros(t.shape[0] + 1, t.shape[1])


def _with_nan(t: torch.Tensor) -> torch.Tensor:
    t = t.clone()
    t[0, 0] = float("nan")
    return t


def _edit(path: Path, edit: Callable[[bytes], bytes]) -> None:
    path.write_bytes(edit(path.read_bytes()))


def _lines(edit: Callable[[list[bytes]], list[bytes]]) -> Callable[[bytes], bytes]:
    return lambda data: b"".join(edit(data.splitlines(keepends=True)))


def _merge_rows(data: bytes) -> bytes:
    """Row 10 cut mid-line and merged with row 11 (a torn write)."""
    lines = data.splitlines(keepends=True)
    lines[10] = lines[10][: len(lines[10]) // 2]
    return b"".join(lines)


def _move_and_link(path: Path) -> None:
    """Move ``path`` to ``<path>_real`` beside the run and leave a symlink to it at ``path``."""
    target = path.parent.parent / f"{path.parent.name}_{path.name}_real"
    shutil.move(path, target)
    path.symlink_to(target)


def guard_case(
    args: tuple[str, ...],
    fragments: tuple[str, ...],
    setup: Callable[[Path], object] | None = None,
    cwd: str = ".",
    command: str = "train",
    lock: str = "",
    env: dict[str, str] | None = None,
    process: bool = False,
) -> Case:
    """A case on a copy of the template run at ``run`` in its working directory (``setup`` changes it first);
    ``train`` gets one worker, no plot and, unless it resumes, the tiny vpg config; ``lock``: a helper process
    holds the lock of that directory (relative to the working directory) during the call, and the line must name
    its PID."""
    if command == "train":
        if "--resume" not in args:
            args = (*args, "--preset", "vpg", "--steps", "512", "--seeds", "1", *TINY_ARGS)
        args = (*args, "--quiet", "--no-plot", "--workers", "1")
    during = holding_lock(lock) if lock else None
    return Case((command, *args), fragments, setup=setup, cwd=cwd, during=during, env=env or {}, process=process)


def _add_foreign(run: Path) -> None:
    (run / "notes.txt").write_text("my notes\n")
    (run / "src").mkdir()
    (run / "src" / "main.py").write_text("print('mine')\n")


def _pre_marker(run: Path) -> None:
    (run / MARKER_NAME).unlink()
    (run / LOCK_NAME).unlink()


RESUME = ("--resume", "run")
OVERWRITE = ("--out", "run", "--overwrite")
CASES: dict[str, Case] = {
    # ownership: --overwrite deletes only the run's own files
    "overwrite_with_a_foreign_file_and_dir": guard_case(
        OVERWRITE, ("--overwrite refused", "'notes.txt'", "2 such"), lambda wd: _add_foreign(wd / "run"), process=True
    ),
    "overwrite_with_a_foreign_subdir": guard_case(
        OVERWRITE, ("--overwrite refused", "'src'"), lambda wd: (wd / "run" / "src").mkdir()
    ),
    "overwrite_pre_marker_run_with_a_foreign_file": guard_case(
        OVERWRITE,
        ("--overwrite refused", "'notes.txt'"),
        lambda wd: (_pre_marker(wd / "run"), (wd / "run" / "notes.txt").write_text("x\n")),
    ),
    "overwrite_pre_marker_run_with_a_symlinked_seed_dir": guard_case(
        OVERWRITE,
        ("--overwrite refused", "'seed_1'"),
        lambda wd: (_pre_marker(wd / "run"), _move_and_link(wd / "run" / "seed_1")),
    ),
    "overwrite_a_directory_named_like_an_output": guard_case(
        OVERWRITE,
        ("--overwrite refused", "'summary.md'"),
        lambda wd: (
            _pre_marker(wd / "run"),
            (wd / "run" / "summary.md").mkdir(),
            (wd / "run" / "summary.md" / "a").write_text("a"),
        ),
    ),
    "overwrite_without_the_flag": guard_case(("--out", "run"), ("already holds a run", "--overwrite")),
    "out_is_a_file": guard_case(("--out", "run/config.toml", "--overwrite"), ("exists and is not a directory",)),
    # paths --overwrite never acts on
    "out_empty": guard_case(("--out", "", "--overwrite"), ("path is empty",), cwd="run"),
    "out_dot": guard_case(("--out", ".", "--overwrite"), ("'.'", "the current directory"), cwd="run"),
    "out_root": guard_case(("--out", "/", "--overwrite"), ("'/'", "filesystem root")),
    "out_home": guard_case(
        ("--out", "home", "--overwrite"),
        ("home directory",),
        lambda wd: shutil.copytree(wd / "run", wd / "home"),
        env={"HOME": f"{WD}/home", "MPLCONFIGDIR": matplotlib.get_cachedir()},  # matplotlib must not write there
    ),
    "out_parent_of_cwd": guard_case(
        ("--out", "..", "--overwrite"), ("'..'", "a parent of the current directory"), cwd="run/seed_1"
    ),
    "out_grandparent_of_cwd_absolute": guard_case(
        ("--out", WD, "--overwrite"), ("a parent of the current directory",), cwd="run/seed_1/checkpoints"
    ),
    "resume_empty_path": guard_case(("--resume", ""), ("path is empty",), cwd="run"),
    # one writer
    "resume_while_another_holds_the_lock": guard_case(
        RESUME, ("in use by another mjreinforce process", "PID"), lock="run", process=True
    ),
    "resume_while_an_orphaned_worker_writes_a_seed": guard_case(
        RESUME, ("seed_1 is in use by another mjreinforce process",), lock="run/seed_1"
    ),
    "overwrite_while_an_orphaned_worker_writes_a_seed": guard_case(
        OVERWRITE, ("seed_1 is in use by another mjreinforce process",), lock="run/seed_1"
    ),
    "overwrite_while_another_holds_the_lock": guard_case(
        OVERWRITE, ("in use by another mjreinforce process", "PID"), lock="run"
    ),
    # resume verifies the tables
    "episodes_cut_short": guard_case(
        RESUME,
        ("episodes.csv", "cut short"),
        lambda wd: _edit(wd / "run/seed_1/episodes.csv", _lines(lambda ls: ls[:20])),
        process=True,
    ),
    "episodes_junk_line": guard_case(
        RESUME,
        ("episodes.csv", "differ", "junk"),
        lambda wd: _edit(wd / "run/seed_1/episodes.csv", _lines(lambda ls: [*ls[:5], b"junk\r\n", *ls[5:]])),
    ),
    "episodes_row_cut_and_merged": guard_case(
        RESUME, ("episodes.csv", "merged"), lambda wd: _edit(wd / "run/seed_1/episodes.csv", _merge_rows)
    ),
    "episodes_value_edited": guard_case(
        RESUME,
        ("episodes.csv", "differ"),
        lambda wd: _edit(wd / "run/seed_1/episodes.csv", lambda d: d.replace(b",1,", b",7,", 1)),
    ),
    "episodes_header_edited": guard_case(
        RESUME,
        ("episodes.csv", "differ"),
        lambda wd: _edit(wd / "run/seed_1/episodes.csv", lambda d: d.replace(b"return", b"Return", 1)),
    ),
    "episodes_missing": guard_case(
        RESUME, ("episodes.csv", "is missing"), lambda wd: (wd / "run/seed_1/episodes.csv").unlink()
    ),
    "evals_cut_short": guard_case(
        RESUME, ("evals.csv", "cut short"), lambda wd: _edit(wd / "run/seed_1/evals.csv", _lines(lambda ls: ls[:2]))
    ),
    "evals_junk_line": guard_case(
        RESUME,
        ("evals.csv", "differ"),
        lambda wd: _edit(wd / "run/seed_1/evals.csv", _lines(lambda ls: [ls[0], b"1,2,3\r\n", *ls[1:]])),
    ),
    # resume verifies the config
    "config_learning_rate_edited": guard_case(
        RESUME,
        ("config.toml differs", "learning_rate"),
        lambda wd: _edit(
            wd / "run/config.toml", lambda d: d.replace(b"\nlearning_rate = ", b"\nlearning_rate = 0.5 #", 1)
        ),
    ),
    "config_gamma_edited": guard_case(
        RESUME,
        ("config.toml differs", "gamma"),
        lambda wd: _edit(wd / "run/config.toml", lambda d: d.replace(b"\ngamma = ", b"\ngamma = 0.5 #", 1)),
    ),
    "run_marker_corrupted": guard_case(
        RESUME, ("run marker", "malformed"), lambda wd: (wd / "run" / MARKER_NAME).write_text("{not json")
    ),
    # no symlink followed
    "episodes_csv_is_a_symlink": guard_case(
        RESUME, ("episodes.csv", "symbolic link"), lambda wd: _move_and_link(wd / "run/seed_1/episodes.csv")
    ),
    "seed_dir_is_a_symlink": guard_case(
        RESUME, ("seed_1", "symbolic link"), lambda wd: _move_and_link(wd / "run/seed_1"), process=True
    ),
    "checkpoints_dir_is_a_symlink": guard_case(
        RESUME, ("checkpoints", "symbolic link"), lambda wd: _move_and_link(wd / "run/seed_1/checkpoints")
    ),
    "tb_dir_is_a_symlink": guard_case(
        RESUME,
        ("tb", "symbolic link"),
        lambda wd: ((wd / "elsewhere").mkdir(), (wd / "run/seed_1/tb").symlink_to(wd / "elsewhere")),
    ),
    "lock_file_is_a_symlink": guard_case(
        RESUME, ("lock file", "symbolic link"), lambda wd: _move_and_link(wd / "run" / LOCK_NAME)
    ),
    # checkpoints that do not fit the model, under a valid checksum
    "resume_checkpoint_wrong_shape": guard_case(
        RESUME,
        ("does not fit the model", "mean_net.0.weight", "(65, 4)"),
        lambda wd: forge_checkpoint(wd / "run", _wider),
    ),
    "resume_checkpoint_nan": guard_case(
        RESUME, ("non-finite", "mean_net.0.weight"), lambda wd: forge_checkpoint(wd / "run", _with_nan), process=True
    ),
    "resume_checkpoint_without_digests": guard_case(
        RESUME, ("checkpoint", "lacks the config hash or the table digests"), lambda wd: strip_digests(wd / "run")
    ),
    "eval_checkpoint_wrong_shape": guard_case(
        ("run", "--episodes", "1"),
        ("does not fit the model", "(65, 4)"),
        lambda wd: forge_checkpoint(wd / "run", _wider),
        command="eval",
    ),
    "eval_checkpoint_nan": guard_case(
        ("run", "--episodes", "1"), ("non-finite",), lambda wd: forge_checkpoint(wd / "run", _with_nan), command="eval"
    ),
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny finished one-seed run with evaluations, then made to look killed after its last checkpoint."""
    run = tmp_path_factory.mktemp("template") / "run"
    train(tiny_config(), run, quiet=True, plot=False, preset="vpg")
    unfinish(run)
    return run


@pytest.fixture(scope="module")
def outcomes(bad_inputs, template: Path, tmp_path_factory: pytest.TempPathFactory, request) -> dict:
    return bad_inputs.run(selected_cases(request, CASES), copies_of(template, tmp_path_factory), timeout=180)


@pytest.mark.parametrize("name", CASES)
def test_bad_input_is_one_line_exit_2_and_nothing_changes(name: str, outcomes: dict, bad_inputs) -> None:
    bad_inputs.check(CASES[name], outcomes[name])


# --------------------------------------------------------------------------
# ownership, the lock, resume, processes: runs that get through
# --------------------------------------------------------------------------


def test_overwrite_removes_only_the_runs_own_files_and_never_follows_a_link(template: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(template, run, symlinks=True)
    (run / "eval.json").write_text("{}\n")  # what `mjreinforce eval RUN` writes: ours
    outside = tmp_path / "outside"
    (outside / "keep").mkdir(parents=True)
    (outside / "keep" / "data.txt").write_text("precious\n")
    shutil.rmtree(run / "seed_1")
    (run / "seed_1").symlink_to(outside / "keep")  # the marker lists seed_1: the link is ours, its target is not
    before = snapshot(outside)

    train(tiny_config(seeds=(2,), steps=256), run, overwrite=True, quiet=True, plot=False)

    assert snapshot(outside) == before
    assert sorted(p.name for p in run.iterdir()) == sorted(
        [LOCK_NAME, MARKER_NAME, "config.toml", "seed_2", "summary.json"]
    )


def test_a_second_writer_is_refused_and_a_kill_9_frees_the_lock(cli, template: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(template, run, symlinks=True)
    args = ("train", "--resume", str(run), "--quiet", "--no-plot", "--workers", "1")
    holder = hold_lock(run)
    try:
        refused = cli.main(*args, cwd=tmp_path)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert refused.returncode == 2 and f"(PID {holder.pid})" in refused.stderr, refused.stderr
    with RunLock(run):  # the kernel released it when the holder died
        pass
    resumed = cli.main(*args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert (run / LOCK_NAME).read_bytes() == b""  # emptied on release


def test_overwrite_while_a_real_run_trains_is_refused(cli, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ("train", "--preset", "vpg", "--seeds", "1", "--workers", "1", "--quiet", "--no-plot", *TINY_ARGS)
    first = subprocess.Popen(
        cli.command(*args, "--steps", "200000", "--out", str(out)),
        cwd=tmp_path,
        env=cli.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not (out / "seed_1" / "episodes.csv").exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert (out / LOCK_NAME).read_text().strip() == str(first.pid)
        second = cli.main(*args, "--steps", "256", "--out", str(out), "--overwrite", cwd=tmp_path)
        assert first.poll() is None, "the first run ended: the test proves nothing"
    finally:
        first.kill()
        first.communicate()
    assert second.returncode == 2, second.stderr
    assert f"in use by another mjreinforce process (PID {first.pid})" in second.stderr
    assert (out / "seed_1" / "episodes.csv").exists() and (out / "config.toml").exists()


def test_resume_cuts_rows_after_the_checkpoint_removes_stale_temp_files_and_keeps_the_preset(
    cli, template: Path, tmp_path: Path, read_csv
) -> None:
    run = tmp_path / "run"
    shutil.copytree(template, run, symlinks=True)
    episodes = run / "seed_1" / "episodes.csv"
    want = read_csv(episodes)
    with open(episodes, "ab") as f:  # a killed run: rows after its last checkpoint, the last one torn
        f.write(b"1,9999,99999,1.0,1,0,0,1.0\r\n1,10000,99")
    stale = [
        run / ".summary.json.0123456789abcdef.tmp",
        run / "seed_1" / ".summary.json.0123456789abcdef.tmp",
        run / "seed_1" / "checkpoints" / ".latest.json.0123456789abcdef.tmp",
    ]
    for path in stale:
        path.write_text("half-written")

    resumed = cli.main("train", "--resume", str(run), "--quiet", "--no-plot", "--workers", "1", cwd=tmp_path)

    assert resumed.returncode == 0, resumed.stderr
    assert read_csv(episodes) == want  # the checkpoint had reached the budget: nothing new, nothing kept after it
    assert not [p for p in stale if p.exists()]
    assert json.loads((run / "summary.json").read_text())["preset"] == "vpg"


def _worker_pids(pid: int) -> list[int]:
    """Children of ``pid`` that are multiprocessing spawn workers (not the resource tracker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def _start_two_workers(cli, out: Path, steps: int) -> tuple[subprocess.Popen[str], list[int]]:
    """A ``--workers 2`` run of seeds 1 and 2, returned once both seeds have written episode rows."""
    args = ("train", "--preset", "vpg", "--seeds", "1,2", "--workers", "2", "--steps", str(steps), *TINY_ARGS)
    proc = subprocess.Popen(
        cli.command(*args, "--quiet", "--no-plot", "--out", str(out)),
        cwd=out.parent,
        env=cli.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    tables = [out / f"seed_{s}" / "episodes.csv" for s in (1, 2)]
    while not all(t.exists() and t.read_bytes().count(b"\n") >= 3 for t in tables):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the workers never started"
        time.sleep(0.05)
    return proc, _worker_pids(proc.pid)


def test_sigterm_to_a_workers_2_parent_stops_everything_at_the_next_update(cli, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc, workers = _start_two_workers(cli, out, steps=2_000_000)
    try:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)  # a hang guard only: 2M steps would take far longer
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 143, err  # 128 + SIGTERM
    assert "Traceback" not in err and "interrupted" in err
    assert len(workers) == 2 and not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    assert not (out / "summary.json").exists()
    for seed in (1, 2):
        summary = json.loads((out / f"seed_{seed}" / "summary.json").read_text())
        assert summary["status"] == "interrupted" and summary["env_steps"] < 2_000_000


def test_a_killed_worker_ends_the_run_non_zero_without_a_summary(cli, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc, workers = _start_two_workers(cli, out, steps=4096)
    try:
        os.kill(workers[0], signal.SIGKILL)  # one seed's worker dies; the other seed runs to its end
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    assert "did not finish" in err and "no summary.json" in err
    assert not (out / "summary.json").exists()
    statuses = {json.loads((out / f"seed_{s}" / "summary.json").read_text())["status"] for s in (1, 2)}
    assert statuses == {"finished", "failed"}


# --------------------------------------------------------------------------
# benchmark: its cells' workers under signals and kills (real processes)
# --------------------------------------------------------------------------
BENCH = ("--envs", "InvertedPendulum-v5", "--presets", "vpg", "--workers", "2", "--quiet")
BENCH_RUN = "vpg-InvertedPendulum-v5"


def _start_benchmark(
    cli, out: Path, steps: int, seeds: tuple[int, ...] = (1, 2), background: bool = False
) -> subprocess.Popen[str]:
    """A real ``mjreinforce benchmark`` of one cell per seed with ``steps`` env steps each; ``background``: as
    ``setsid mjreinforce benchmark ... &`` from a script starts it (its own session, SIGINT ignored)."""
    grid = ("--seeds", ",".join(map(str, seeds)), "--steps", str(steps))
    return cli.popen("benchmark", *BENCH, *grid, "--out", str(out), cwd=out.parent, background=background)


def _wait_for(proc: subprocess.Popen[str], condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 240
    while not condition():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def _cells_training(out: Path, seeds: tuple[int, ...] = (1, 2)) -> bool:
    tables = [out / BENCH_RUN / f"seed_{s}" / "episodes.csv" for s in seeds]
    return all(t.exists() and t.read_bytes().count(b"\n") >= 3 for t in tables)


def _status(out: Path, seed: int) -> dict:
    """The cell's summary.json ({} while there is none)."""
    path = out / BENCH_RUN / f"seed_{seed}" / "summary.json"
    return json.loads(path.read_text()) if path.exists() else {}


def test_sigterm_while_a_background_benchmarks_workers_start_stops_its_cells(cli, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    proc = _start_benchmark(cli, out, steps=80_000, seeds=(1,), background=True)
    _wait_for(proc, lambda: len(_worker_pids(proc.pid)) == 1, "the cell's worker")  # it imports torch now
    workers = _worker_pids(proc.pid)
    proc.send_signal(signal.SIGTERM)
    stdout, err = communicate_or_kill(proc)
    assert proc.returncode == 143, err  # 128 + SIGTERM
    assert "Traceback" not in err and err.splitlines()[-1] == "mjreinforce benchmark: interrupted"
    assert "final eval" not in stdout and not (out / "benchmark.csv").exists()
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    summary = _status(out, 1)  # stopped before training, or at its next update: never the whole budget
    assert not summary or (summary["status"] == "interrupted" and summary["env_steps"] < 80_000), summary


def test_a_running_benchmark_refuses_other_writers_and_reports_a_killed_worker_and_its_stopped_sibling(
    cli, tmp_path: Path, one_error_line
) -> None:
    out = tmp_path / "bench"
    proc = _start_benchmark(cli, out, steps=2_000_000)
    try:
        _wait_for(proc, lambda: _cells_training(out), "both cells training")
        others = {
            "benchmark": cli.main(
                "benchmark", *BENCH, "--seeds", "1,2", "--steps", "2000000", "--out", str(out), cwd=tmp_path
            ),
            "train": cli.main("train", "--resume", str(out / BENCH_RUN), "--quiet", "--no-plot", cwd=tmp_path),
        }
        overwrite = ("train", "--out", str(out / BENCH_RUN), "--overwrite", "--preset", "vpg", "--steps", "256")
        others["overwrite"] = cli.main(*overwrite, "--seeds", "1", "--workers", "1", "--quiet", cwd=tmp_path)
        assert proc.poll() is None, "the benchmark ended: the test proves nothing"
        victim = _worker_pids(proc.pid)[0]
        seeds = {s: (out / BENCH_RUN / f"seed_{s}" / LOCK_NAME).read_text().strip() for s in (1, 2)}
        killed = next(s for s, pid in seeds.items() if pid == str(victim))  # each worker holds its cell's lock
        os.kill(victim, signal.SIGKILL)
        _wait_for(proc, lambda: _status(out, killed).get("status") == "failed", "the killed cell marked failed")
        proc.send_signal(signal.SIGINT)
        _, err = communicate_or_kill(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    for command, other in others.items():
        one_error_line(
            other, "train" if command == "overwrite" else command, ("in use by another mjreinforce process",)
        )
    assert proc.returncode == 130, err
    sibling = 3 - killed
    assert f"vpg seed {killed} failed: RuntimeError: its worker process was killed by SIGKILL" in err
    assert f"vpg seed {sibling} was interrupted" in err
    assert "Traceback" not in err and "BrokenProcessPool" not in err
    assert _status(out, killed)["status"] == "failed" and _status(out, sibling)["status"] == "interrupted"


def test_kill_9_of_a_benchmark_stops_its_workers_at_a_checkpoint_that_the_next_call_resumes(
    cli, tmp_path: Path
) -> None:
    from mjreinforce.suite.cells import plan_cell
    from mjreinforce.suite.run import cell_config

    out, steps = tmp_path / "bench", 200_000
    proc = _start_benchmark(cli, out, steps=steps, seeds=(1,))
    _wait_for(proc, lambda: _cells_training(out, seeds=(1,)), "the cell training")
    workers = _worker_pids(proc.pid)
    proc.kill()  # SIGKILL: no chance to stop its workers
    communicate_or_kill(proc)
    deadline = time.monotonic() + 120
    while [pid for pid in workers if Path(f"/proc/{pid}").exists()]:
        assert time.monotonic() < deadline, "an orphaned worker keeps training"
        time.sleep(0.05)
    summary = _status(out, 1)  # the worker noticed at its next update, wrote a checkpoint, let its lock go
    assert summary["status"] == "interrupted" and summary["env_steps"] < steps, summary
    plan = plan_cell(out / BENCH_RUN / "seed_1", cell_config("vpg", "InvertedPendulum-v5", steps, (1,)))
    assert plan.action == "resume" and "checkpoint at" in plan.why, plan  # what the next call does with it
    with RunLock(out / BENCH_RUN / "seed_1"):
        pass


def _catches_stop_signals(pid: int) -> bool:
    """Whether process ``pid`` has handlers of its own for SIGINT and SIGTERM (its ``SigCgt`` mask)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:  # it just ended: the caller's poll() says how
        return False
    caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
    return all(caught >> (signum - 1) & 1 for signum in (signal.SIGINT, signal.SIGTERM))


START_UP = {
    "train": ("train", "--preset", "vpg", "--seeds", "1", "--workers", "1", "--steps", "256", *TINY_ARGS),
    "benchmark": ("benchmark", *BENCH, "--seeds", "1", "--steps", "256"),
}


@pytest.mark.parametrize(
    ("command", "signum"), [("train", signal.SIGINT), ("train", signal.SIGTERM), ("benchmark", signal.SIGINT)]
)
def test_a_stop_signal_while_a_background_command_starts_ends_it_with_one_line(
    cli, tmp_path: Path, command: str, signum: int
) -> None:
    """Sent once the entry point's first handlers are in (MuJoCo and torch are still to be imported) to a process
    started with SIGINT ignored: exit 128 + the signal's number, one line, nothing written."""
    proc = cli.popen(*START_UP[command], "--out", "out", cwd=tmp_path, background=True)
    _wait_for(proc, lambda: _catches_stop_signals(proc.pid), "its stop handlers")
    proc.send_signal(signum)
    _, err = communicate_or_kill(proc)
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("mjreinforce") and "interrupted" in err, err
    assert not list(tmp_path.iterdir())
