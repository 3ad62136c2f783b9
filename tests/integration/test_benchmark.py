"""``mjreinforce benchmark`` on a tiny grid, trained once for this module (:func:`bench`): worker processes, a
second call that skips finished cells, the bad-input corpus of the benchmark directory (ownership, locks, the
grid), cells that disagree with their checkpoint, ``--overwrite``, Ray. The signal and kill cases, which
need processes of their own, are in ``test_run_dir_guard.py``.

The corpus (:data:`CASES`, through the harness in conftest) asserts for each case: exit 2, one stderr line
naming what is wrong, no traceback, and the case's whole working directory (a copy of the tiny benchmark, a
tiny train run, planted files) byte-identical afterwards.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Case, copies_of, holding_lock, selected_cases, snapshot
from mjreinforce.analysis.suite_report import SuiteRun, suite_table
from mjreinforce.config import load_preset, with_overrides
from mjreinforce.runs.lock import LOCK_NAME
from mjreinforce.runs.ownership import BENCHMARK_MARKER_NAME
from mjreinforce.runs.reading import load_run
from mjreinforce.suite.cells import plan_cell
from mjreinforce.suite.directory import open_benchmark_dir
from mjreinforce.suite.references import load_references
from mjreinforce.suite.run import cell_config
from mjreinforce.training.run import train

pytestmark = pytest.mark.slow

ENVS, SEEDS, STEPS = ("Reacher-v5", "InvertedPendulum-v5"), (1, 2), 2048
GRID = ("--envs", ",".join(ENVS), "--presets", "vpg", "--seeds", "1,2", "--steps", str(STEPS))
CELLS = [f"vpg-{env}/seed_{s}" for env in ENVS for s in SEEDS]
TABLES = ("episodes.csv", "evals.csv")


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _duplicate_last_row(path: Path) -> None:
    """What two writers of one seed directory left: a row written twice."""
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([*lines, lines[-1]]))


def _swap_rows(path: Path) -> None:
    """Rows interleaved by two writers: rows 3 and 4 swapped."""
    lines = path.read_bytes().splitlines(keepends=True)
    lines[3], lines[4] = lines[4], lines[3]
    path.write_bytes(b"".join(lines))


@pytest.fixture(scope="module")
def first_call(cli, tmp_path_factory: pytest.TempPathFactory):
    """The tiny grid trained by a real ``mjreinforce benchmark`` process (two workers): its process result."""
    wd = tmp_path_factory.mktemp("bench")
    return cli("benchmark", *GRID, "--workers", "2", "--out", "bench", cwd=wd, timeout=900), wd / "bench"


@pytest.fixture(scope="module")
def bench(first_call) -> Path:
    """The finished tiny benchmark directory (copy it before changing it)."""
    proc, out = first_call
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def train_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny finished ``train`` run directory (vpg on InvertedPendulum, 512 steps, one seed)."""
    settings = {"backend": "gymnasium", "seeds": (1,), "total_steps": 512, "tensorboard": False}
    run = tmp_path_factory.mktemp("train-run") / "run"
    train(with_overrides(load_preset("vpg"), settings), run, quiet=True, plot=False, preset="vpg")
    return run


def _tables(root: Path, read_csv: Callable) -> dict[str, list]:
    """Every cell's episodes.csv and evals.csv, the wall-clock column left out."""
    return {f"{c}/{t}": read_csv(root / c / t, drop=("wall_seconds",)) for c in CELLS for t in TABLES}


def _scores(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k not in ("wall_seconds", "steps_per_second")} for r in rows]


def test_tiny_grid_in_workers_then_a_second_call_skips_the_finished_cells_and_resumes_or_redoes_the_others(
    cli, first_call, bench: Path, tmp_path: Path, read_csv
) -> None:
    first = first_call[0]
    assert "4 cells, 0 already finished, 4 to run" in first.stdout
    assert first.stdout.count("final eval") == 4
    rows = _rows(bench / "benchmark.csv")
    assert [(r["env_id"], r["preset"], r["seeds"]) for r in rows] == [
        ("Reacher-v5", "vpg", "2"),
        ("InvertedPendulum-v5", "vpg", "2"),
    ]
    for r in rows:
        assert float(r["final_min"]) <= float(r["final_iqm"]) and float(r["env_steps"]) >= STEPS
        assert float(r["eval_fraction"]) > 0 and float(r["steps_per_second"]) > 0
    tianshou = next(
        ref for ref in load_references() if ref.source == "Tianshou REINFORCE" and ref.budget_steps == 10**7
    )
    assert float(rows[0][tianshou.label]) == tianshou.returns["Reacher-v5"]  # references beside our numbers
    assert rows[1][tianshou.label] == ""  # no published number for the pendulum
    md = (bench / "benchmark.md").read_text()
    assert "Reacher-v5" in md and "InvertedPendulum-v5" in md
    for suffix in (".png", ".svg"):
        assert (bench / f"learning_curves{suffix}").stat().st_size > 1000
    for run in ("vpg-Reacher-v5", "vpg-InvertedPendulum-v5"):  # ordinary run directories, one seed per cell
        assert sorted(p.name for p in (bench / run).iterdir() if p.is_dir()) == ["seed_1", "seed_2"]
        assert json.loads((bench / run / ".mjreinforce-run.json").read_text())["preset"] == "vpg"
    assert json.loads((bench / BENCHMARK_MARKER_NAME).read_text())["entries"] == [
        "vpg-InvertedPendulum-v5",
        "vpg-Reacher-v5",
    ]

    # the later calls in this process: what they check is the benchmark's, not the console script's. Two cells
    # are left as two writers of one seed directory leave them (issue 15): a row written twice (the rows its
    # checkpoint covers still match: resumed) and rows interleaved (redone); the other two are skipped.
    out = tmp_path / "bench"
    shutil.copytree(bench, out, symlinks=True)
    want = _tables(bench, read_csv)
    skipped = {c: (out / c / "episodes.csv").read_bytes() for c in (CELLS[1], CELLS[3])}
    _duplicate_last_row(out / CELLS[0] / "episodes.csv")
    _swap_rows(out / CELLS[2] / "episodes.csv")
    second = cli.main("benchmark", *GRID, "--workers", "2", "--out", str(out), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    lines = second.stdout.splitlines()
    resumed = "benchmark: Reacher-v5 vpg seed 1 is resumed: its summary.json says finished, but episodes.csv holds"
    assert any(line.startswith(resumed) for line in lines)
    assert any("InvertedPendulum-v5 vpg seed 1 is redone from the start" in line and "differ" in line for line in lines)
    assert "4 cells, 2 already finished, 2 to run" in second.stdout
    assert {c: (out / c / "episodes.csv").read_bytes() for c in skipped} == skipped  # not retrained
    assert _tables(out, read_csv) == want  # resumed: cut back to its checkpoint; redone: the same seed again
    cfg = cell_config("vpg", "InvertedPendulum-v5", STEPS, SEEDS)
    assert plan_cell(out / CELLS[2], cfg).action == "done"
    assert _scores(_rows(out / "benchmark.csv")) == _scores(rows)  # the same scores
    rows = _rows(out / "benchmark.csv")
    (out / "benchmark.csv").unlink()
    report = cli.main("benchmark", *GRID, "--report-only", "--out", str(out), cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert _rows(out / "benchmark.csv") == rows and "cells" not in report.stdout  # nothing trained
    # a cell's row, its bootstrap CI included, does not depend on the other cells in the table
    pendulum = out / "vpg-InvertedPendulum-v5"
    summaries = {s: json.loads((pendulum / f"seed_{s}" / "summary.json").read_text()) for s in SEEDS}
    alone = suite_table([SuiteRun("InvertedPendulum-v5", "vpg", load_run(pendulum, label="vpg"), summaries)], {})
    assert alone.iloc[0]["final_iqm"] == pytest.approx(float(rows[1]["final_iqm"]))
    assert alone.iloc[0]["final_ci_low"] == pytest.approx(float(rows[1]["final_ci_low"]))


# --------------------------------------------------------------------------
# the bad-input corpus: exit 2, one line, nothing changed
# --------------------------------------------------------------------------
def bench_case(
    *args: str,
    fragments: tuple[str, ...],
    grid: tuple[str, ...] = GRID,
    setup: Callable[[Path], object] | None = None,
    files: tuple[tuple[str, bytes], ...] = (),
    during: Callable | None = None,
    process: bool = False,
) -> Case:
    """``mjreinforce benchmark GRID --workers 2 ARGS`` (``--out bench`` unless ARGS say) in a working directory
    holding a copy of the tiny benchmark at ``bench`` and of a tiny train run at ``run``."""
    out = () if "--out" in args else ("--out", "bench")
    return Case(
        ("benchmark", *grid, "--workers", "2", *out, *args), fragments, files, setup, during=during, process=process
    )


def _with_grid(flag: str, value: str) -> tuple[str, ...]:
    items = list(GRID)
    items[items.index(flag) + 1] = value
    return tuple(items)


def _move_and_link(wd: Path, relative: str) -> None:
    """Move ``wd/relative`` to ``wd/elsewhere`` and leave a symlink to it in its place."""
    target = wd / "elsewhere"
    shutil.move(wd / relative, target)
    (wd / relative).symlink_to(target)


def _fake_sweep(wd: Path) -> None:
    (wd / "sw" / "trial_0").mkdir(parents=True)
    (wd / "sw" / "sweep_results.csv").write_text("trial\n")


SWEEP_FILE = b'preset = "vpg"\n[config]\ntotal_steps = 512\n[space]\nlearning_rate = [1e-3]\n'
TRAIN_TINY = ("--preset", "vpg", "--steps", "512", "--seeds", "1", "--workers", "1", "--quiet", "--no-plot")
CASES: dict[str, Case] = {
    # the grid: no entry twice (each would be a second writer of one seed directory)
    "duplicate_env": bench_case(
        fragments=("envs must be distinct", "Reacher-v5 is given twice"),
        grid=_with_grid("--envs", "Reacher-v5,InvertedPendulum-v5,Reacher-v5"),
        process=True,
    ),
    "duplicate_preset": bench_case(
        fragments=("presets must be distinct", "vpg is given twice"), grid=_with_grid("--presets", "vpg,vpg")
    ),
    "duplicate_seed": bench_case(fragments=("seeds must be distinct",), grid=_with_grid("--seeds", "1,2,1")),
    "empty_grid": bench_case(fragments=("the grid is empty",), grid=_with_grid("--envs", ",")),
    "workers_100000": bench_case("--workers", "100000", fragments=("--workers", "[1, 1024]", "100000")),
    "changed_steps": bench_case(
        fragments=("total_steps = 2048, not 1024", "--out", "--overwrite"), grid=_with_grid("--steps", "1024")
    ),
    # --out: what the directory is
    "out_is_a_file": bench_case(
        "--out", "bench/benchmark.csv", fragments=("bench/benchmark.csv is a file, not a directory",)
    ),
    "out_is_a_train_run": bench_case(
        "--out", "run", fragments=("run holds a mjreinforce run, not a benchmark", "choose another --out"), process=True
    ),
    "out_is_a_sweep": bench_case(
        "--out", "sw", fragments=("sw holds a mjreinforce sweep, not a benchmark",), setup=_fake_sweep
    ),
    "out_holds_foreign_files": bench_case(
        "--out", "mine", fragments=("mine is not a mjreinforce benchmark",), files=(("mine/notes.txt", b"mine\n"),)
    ),
    "a_foreign_file_in_the_benchmark": bench_case(
        fragments=("holds 'notes.txt', which mjreinforce benchmark did not write", "1 such entry"),
        files=(("bench/notes.txt", b"mine\n"),),
    ),
    "a_train_run_in_the_benchmark": bench_case(
        fragments=("holds 'my-run'",), setup=lambda wd: shutil.copytree(wd / "run", wd / "bench" / "my-run")
    ),
    "a_symlink_where_a_run_dir_goes": bench_case(
        fragments=("holds 'vpg-Reacher-v5'",), setup=lambda wd: _move_and_link(wd, "bench/vpg-Reacher-v5")
    ),
    "overwrite_with_a_foreign_file_in_a_run_dir": bench_case(
        "--overwrite",
        fragments=("--overwrite refused", "vpg-InvertedPendulum-v5 holds 'notes.txt'"),
        files=(("bench/vpg-InvertedPendulum-v5/notes.txt", b"mine\n"),),
    ),
    "a_symlinked_seed_dir": bench_case(
        fragments=("seed_2", "symbolic link"), setup=lambda wd: _move_and_link(wd, "bench/vpg-Reacher-v5/seed_2")
    ),
    "benchmark_marker_corrupted": bench_case(
        fragments=("benchmark marker", "malformed"), files=((f"bench/{BENCHMARK_MARKER_NAME}", b"{not json"),)
    ),
    "report_only_on_a_train_run": bench_case(
        "--report-only", "--out", "run", fragments=("run is not a mjreinforce benchmark directory",)
    ),
    # one writer: of the benchmark, of each run directory, of each cell
    "a_second_benchmark_on_the_same_out": bench_case(
        fragments=("bench is in use by another mjreinforce process",), during=holding_lock("bench")
    ),
    "a_cell_still_written_by_a_killed_benchmarks_worker": bench_case(
        fragments=("bench/vpg-Reacher-v5/seed_1 is in use by another mjreinforce process",),
        during=holding_lock("bench/vpg-Reacher-v5/seed_1"),
    ),
    "train_resume_of_a_run_dir_the_benchmark_holds": Case(
        ("train", "--resume", "bench/vpg-Reacher-v5", "--workers", "1", "--quiet", "--no-plot"),
        ("bench/vpg-Reacher-v5 is in use by another mjreinforce process",),
        during=holding_lock("bench/vpg-Reacher-v5"),
    ),
    "train_overwrite_of_a_run_dir_the_benchmark_holds": Case(
        ("train", "--out", "bench/vpg-Reacher-v5", "--overwrite", *TRAIN_TINY),
        ("bench/vpg-Reacher-v5 is in use by another mjreinforce process",),
        during=holding_lock("bench/vpg-Reacher-v5"),
    ),
    # the other commands on a benchmark directory
    "train_out_is_a_benchmark": Case(
        ("train", "--out", "bench", "--overwrite", *TRAIN_TINY), ("bench holds a mjreinforce benchmark, not a run",)
    ),
    "sweep_out_is_a_benchmark": Case(
        ("sweep", "s.toml", "--out", "bench"),
        ("holds a mjreinforce benchmark, not a sweep",),
        (("s.toml", SWEEP_FILE),),
    ),
}


@pytest.fixture(scope="module")
def outcomes(bad_inputs, bench: Path, train_run: Path, tmp_path_factory: pytest.TempPathFactory, request) -> dict:
    workdir = copies_of(bench, tmp_path_factory, "bench", beside=lambda wd: shutil.copytree(train_run, wd / "run"))
    return bad_inputs.run(selected_cases(request, CASES), workdir, timeout=300)


@pytest.mark.parametrize("name", CASES)
def test_bad_input_is_one_line_exit_2_and_nothing_changes(name: str, outcomes: dict, bad_inputs) -> None:
    bad_inputs.check(CASES[name], outcomes[name])


# --------------------------------------------------------------------------
# cells that disagree with their checkpoint; --overwrite
# --------------------------------------------------------------------------
def _edit_summary(path: Path, **values: object) -> None:
    path.write_text(json.dumps(json.loads(path.read_text()) | values))


EDITS: dict[str, tuple[Callable[[Path], object], str, str]] = {
    # edit of a finished cell's seed directory -> (plan, what the reason says)
    "a_row_written_twice": (lambda d: _duplicate_last_row(d / "episodes.csv"), "resume", "rows and its final"),
    "an_eval_written_twice": (lambda d: _duplicate_last_row(d / "evals.csv"), "resume", "evals.csv holds"),
    "rows_interleaved": (lambda d: _swap_rows(d / "episodes.csv"), "redo", "differ from what its checkpoint"),
    "a_torn_last_row": (
        lambda d: (d / "episodes.csv").write_bytes((d / "episodes.csv").read_bytes() + b"1,99"),
        "resume",
        "differs from what its final checkpoint recorded",
    ),
    "summary_counts_more_episodes": (
        lambda d: _edit_summary(d / "summary.json", episodes=10**6),
        "resume",
        "counts 1000000 episodes",
    ),
    "summary_counts_more_steps": (
        lambda d: _edit_summary(d / "summary.json", env_steps=10**6),
        "resume",
        "counts 1000000 env steps",
    ),
    "no_summary": (lambda d: (d / "summary.json").unlink(), "resume", "it has no summary.json"),
    "interrupted": (lambda d: _edit_summary(d / "summary.json", status="interrupted"), "resume", "says interrupted"),
    "no_checkpoint": (lambda d: shutil.rmtree(d / "checkpoints"), "redo", "no checkpoint"),
    "episodes_missing": (lambda d: (d / "episodes.csv").unlink(), "redo", "episodes.csv is missing"),
}


@pytest.mark.parametrize("name", EDITS)
def test_a_finished_cell_counts_only_when_summary_tables_and_checkpoint_agree(
    name: str, bench: Path, tmp_path: Path
) -> None:
    cell = tmp_path / "seed_1"
    shutil.copytree(bench / "vpg-InvertedPendulum-v5" / "seed_1", cell, symlinks=True)
    cfg = cell_config("vpg", "InvertedPendulum-v5", STEPS, SEEDS)
    assert plan_cell(cell, cfg).action == "done"
    other = plan_cell(cell, cell_config("vpg", "InvertedPendulum-v5", 2 * STEPS, SEEDS))
    assert other.action == "redo" and "another config" in other.why  # never counted for another config
    edit, action, why = EDITS[name]
    edit(cell)
    plan = plan_cell(cell, cfg)
    assert (plan.action, why in plan.why) == (action, True), plan
    # the run directory's seeds do not matter: a later call may add seeds to it
    assert plan_cell(cell, cell_config("vpg", "InvertedPendulum-v5", STEPS, (1, 2, 3))) == plan


def test_overwrite_deletes_only_the_benchmarks_own_entries_and_never_follows_a_link(
    cli, bench: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bench"
    shutil.copytree(bench, out, symlinks=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "figure.png").write_bytes(b"precious")
    (out / "learning_curves.png").unlink()
    (out / "learning_curves.png").symlink_to(outside / "figure.png")  # one of its names: the link is its own
    before = snapshot(outside)
    args = ("--envs", "InvertedPendulum-v5", "--presets", "vpg", "--seeds", "3", "--steps", "512", "--workers", "1")
    proc = cli.main("benchmark", *args, "--overwrite", "--quiet", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert snapshot(outside) == before
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            LOCK_NAME,
            BENCHMARK_MARKER_NAME,
            "benchmark.csv",
            "benchmark.md",
            "learning_curves.png",
            "learning_curves.svg",
            "summary.json",
            "vpg-InvertedPendulum-v5",
        ]
    )
    assert sorted(p.name for p in (out / "vpg-InvertedPendulum-v5").iterdir()) == sorted(
        [LOCK_NAME, ".mjreinforce-run.json", "config.toml", "seed_3"]
    )
    assert not (out / "learning_curves.png").is_symlink()
    # the deletion alone: a run directory that leaves the grid goes, one that stays is emptied but for its lock
    open_benchmark_dir(out, ["vpg-Hopper-v5"], overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == sorted([LOCK_NAME, BENCHMARK_MARKER_NAME])


@pytest.mark.ray
def test_cells_as_tasks_on_a_real_local_ray_instance(cli, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    args = ("--envs", "Reacher-v5", "--presets", "vpg", "--seeds", "1,2", "--steps", "1024", "--quiet")
    proc = cli("benchmark", *args, "--address", "local", "--workers", "2", "--out", str(out), cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = _rows(out / "benchmark.csv")
    assert len(rows) == 1 and rows[0]["seeds"] == "2"
    for s in (1, 2):  # each task held its cell's lock while it wrote, and let it go
        assert (out / "vpg-Reacher-v5" / f"seed_{s}" / LOCK_NAME).read_bytes() == b""
        assert json.loads((out / "vpg-Reacher-v5" / f"seed_{s}" / "summary.json").read_text())["status"] == "finished"
