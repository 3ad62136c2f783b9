"""``mjreinforce benchmark`` on a tiny grid: worker processes, a second call that skips finished cells, a changed
setting refused, Ray."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from conftest import snapshot
from mjreinforce.suite.references import load_references

GRID = ("--envs", "Reacher-v5,InvertedPendulum-v5", "--presets", "vpg", "--seeds", "1,2", "--steps", "2048")


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_tiny_grid_in_workers_then_a_second_call_skips_the_finished_cells(cli, one_error_line, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    first = cli("benchmark", *GRID, "--workers", "2", "--out", str(out), cwd=tmp_path, timeout=600)
    assert first.returncode == 0, first.stderr
    assert "4 cells, 0 already finished, 4 to run" in first.stdout
    assert first.stdout.count("final eval") == 4
    rows = _rows(out / "benchmark.csv")
    assert [(r["env_id"], r["preset"], r["seeds"]) for r in rows] == [
        ("Reacher-v5", "vpg", "2"),
        ("InvertedPendulum-v5", "vpg", "2"),
    ]
    for r in rows:
        assert float(r["final_min"]) <= float(r["final_iqm"]) and float(r["env_steps"]) >= 2048
        assert float(r["eval_fraction"]) > 0 and float(r["steps_per_second"]) > 0
    tianshou = next(
        ref for ref in load_references() if ref.source == "Tianshou REINFORCE" and ref.budget_steps == 10**7
    )
    assert float(rows[0][tianshou.label]) == tianshou.returns["Reacher-v5"]  # references beside our numbers
    assert rows[1][tianshou.label] == ""  # no published number for the pendulum
    md = (out / "benchmark.md").read_text()
    assert "Reacher-v5" in md and "InvertedPendulum-v5" in md
    for suffix in (".png", ".svg"):
        assert (out / f"learning_curves{suffix}").stat().st_size > 1000
    for run in ("vpg-Reacher-v5", "vpg-InvertedPendulum-v5"):  # ordinary run directories, one seed per cell
        assert sorted(p.name for p in (out / run).iterdir() if p.is_dir()) == ["seed_1", "seed_2"]
    before = {p: p.stat().st_mtime_ns for p in out.rglob("episodes.csv")}

    # the later calls in this process: what they check is the benchmark's, not the console script's
    second = cli.main("benchmark", *GRID, "--workers", "2", "--out", str(out), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "4 cells, 4 already finished, 0 to run" in second.stdout and "final eval" not in second.stdout
    assert {p: p.stat().st_mtime_ns for p in out.rglob("episodes.csv")} == before  # nothing retrained
    assert _rows(out / "benchmark.csv") == rows
    (out / "benchmark.csv").unlink()
    report = cli.main("benchmark", *GRID, "--report-only", "--out", str(out), cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert _rows(out / "benchmark.csv") == rows and "cells" not in report.stdout  # nothing trained
    # a cell's row, its bootstrap CI included, does not depend on the other cells in the table
    alone = cli.main(
        "benchmark", *GRID[:1], "InvertedPendulum-v5", *GRID[2:], "--report-only", "--out", str(out), cwd=tmp_path
    )
    assert alone.returncode == 0, alone.stderr
    assert _rows(out / "benchmark.csv") == rows[1:]
    # a changed setting on the same --out is refused, and nothing there changes
    files = snapshot(out)
    changed = cli.main("benchmark", *GRID[:-1], "1024", "--workers", "2", "--out", str(out), cwd=tmp_path)
    assert "total_steps" in one_error_line(changed, "benchmark", ("--out",))
    assert snapshot(out) == files


@pytest.mark.slow
@pytest.mark.ray
def test_cells_as_tasks_on_a_real_local_ray_instance(cli, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    args = ("--envs", "Reacher-v5", "--presets", "vpg", "--seeds", "1,2", "--steps", "1024", "--quiet")
    proc = cli("benchmark", *args, "--address", "local", "--workers", "2", "--out", str(out), cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = _rows(out / "benchmark.csv")
    assert len(rows) == 1 and rows[0]["seeds"] == "2"
    assert all((out / "vpg-Reacher-v5" / f"seed_{s}" / "summary.json").is_file() for s in (1, 2))
