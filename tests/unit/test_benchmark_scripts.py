"""The scripts under benchmarks/: the ladder table the README prints (suite_targets), run.py's arguments, and the
suite results kept as CSV (suite_rows, suite_evals --keep, suite_figure)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.run import parse_args
from benchmarks.suite_evals import keep_other_seeds
from benchmarks.suite_figure import main as suite_figure_main
from benchmarks.suite_rows import RowsError, merge_rows
from benchmarks.suite_rows import main as suite_rows_main
from benchmarks.suite_targets import best_published_ppo, ladder
from mjreinforce.analysis.suite_report import SUITE_COLUMNS, scores_from_evals


def _row(env_id: str, preset: str, seeds: int, iqm: float) -> dict[str, object]:
    return {
        "env_id": env_id,
        "preset": preset,
        "seeds": seeds,
        "final_iqm": iqm,
        "final_ci_low": iqm - 1,
        "final_ci_high": iqm + 1,
    }


def _lines(table: pd.DataFrame) -> dict[str, list[str]]:
    """The ladder's body rows by task, each as its cells."""
    body = ladder(table, seeds=5).splitlines()[2:]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in body]
    return {c[0]: c[1:] for c in cells}


def test_best_published_ppo_is_the_highest_at_1m_with_its_source() -> None:
    assert best_published_ppo("HalfCheetah-v5") == (5819.1, "SB3 RL Zoo PPO")  # above Tianshou's 5,783.9
    assert best_published_ppo("Humanoid-v5") == (787.1, "Tianshou PPO")  # above CleanRL's
    assert best_published_ppo("NoSuchTask-v0") is None


def test_ladder_rows_rungs_and_verdicts() -> None:
    table = pd.DataFrame(
        [
            _row("HalfCheetah-v5", "vpg", 5, 2434.0),
            _row("HalfCheetah-v5", "ppo", 5, 6000.0),
            _row("Hopper-v5", "ppo", 5, 2000.0),
            _row("Humanoid-v5", "ppo", 3, 900.0),
            _row("Humanoid-v5", "reinforce", 0, float("nan")),
        ]
    )
    rows = _lines(table)
    assert list(rows) == ["HalfCheetah-v5", "Hopper-v5", "Humanoid-v5"]  # the order of the table
    reinforce, vpg, ppo, published, beats = rows["HalfCheetah-v5"]
    assert (reinforce, vpg, ppo) == ("not run", "2,434.0 [2,433.0, 2,435.0]", "6,000.0 [5,999.0, 6,001.0]")
    assert (published, beats) == ("5,819.1 (SB3 RL Zoo)", "yes")
    assert rows["Hopper-v5"][3:] == ["2,609.3 (Tianshou)", "**no**"]
    assert rows["Humanoid-v5"][0] == "not run"  # a cell with no finished seed
    assert rows["Humanoid-v5"][2] == "900.0 [899.0, 901.0] (3 of 5 seeds)"
    assert rows["Humanoid-v5"][4] == "above on 3 seeds"  # no verdict on part of the seeds


@pytest.mark.parametrize("part", ["throughput", "solve"])
def test_one_part_refuses_to_overwrite_the_full_report(part: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_args(["--only", part])
    assert exit_.value.code == 2
    assert "give --out" in capsys.readouterr().err.splitlines()[-1]
    assert parse_args(["--only", part, "--out", "/tmp/part.md"]).out == Path("/tmp/part.md")
    assert parse_args(["--only", "perturb"]).out is None  # perturb replaces only its own block


# --------------------------------------------------------------------------
# suite_rows, suite_evals --keep, suite_figure: results of cells whose run directories are gone
# --------------------------------------------------------------------------

SUITE_CSV = Path(__file__).resolve().parents[2] / "benchmarks"
SEVEN = (
    "Ant-v5",
    "HalfCheetah-v5",
    "Hopper-v5",
    "InvertedDoublePendulum-v5",
    "Reacher-v5",
    "Swimmer-v5",
    "Walker2d-v5",
)


def _evals(cell: tuple[str, str], seeds: range, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"env_id": cell[0], "preset": cell[1], "seed": s, "env_steps": 1000 * (k + 1), "eval_mean_return": x}
            for s in seeds
            for k, x in enumerate(rng.normal(100.0, 30.0, size=4))
        ]
    )


def _timing_row(cell: tuple[str, str], seeds: int, env_steps: float, eval_fraction: float, wall: float) -> dict:
    row = {c: float("nan") for c in SUITE_COLUMNS}
    row.update(env_id=cell[0], preset=cell[1], seeds=seeds, env_steps=env_steps, eval_fraction=eval_fraction)
    row.update(wall_seconds=wall, steps_per_second=env_steps / wall)
    return row


def test_the_published_ppo_rows_follow_from_the_published_evaluations() -> None:
    """suite_benchmark.csv's ppo rows were computed from the seeds' summaries (suite_row); suite_evals.csv
    alone gives the same numbers, so a row merged from it is the row one call would have written."""
    rows = pd.read_csv(SUITE_CSV / "suite_benchmark.csv")
    evals = pd.read_csv(SUITE_CSV / "suite_evals.csv")
    for env_id in SEVEN:
        row = rows[(rows["env_id"] == env_id) & (rows["preset"] == "ppo")].iloc[0]
        cell = evals[(evals["env_id"] == env_id) & (evals["preset"] == "ppo")]
        assert cell["seed"].nunique() == row["seeds"] == 5
        scores = scores_from_evals(cell, np.random.default_rng(0))
        assert scores == {k: row[k] for k in scores}, env_id


def test_merge_rows_recomputes_a_split_cell_and_keeps_the_others() -> None:
    rng = np.random.default_rng(3)
    split, whole = ("Humanoid-v5", "ppo"), ("Pusher-v5", "vpg")
    evals = pd.concat([_evals(split, range(1, 6), rng), _evals(whole, range(1, 3), rng)], ignore_index=True)
    rows = pd.DataFrame(
        [
            _timing_row(split, 2, 1000.0, 0.02, 100.0),
            _timing_row(whole, 2, 4000.0, 0.05, 50.0),
            _timing_row(split, 3, 1000.0, 0.04, 200.0),
        ]
    )
    merged = merge_rows(rows, evals)
    assert list(merged["env_id"]) == ["Humanoid-v5", "Pusher-v5"]  # first appearance
    one = merged.iloc[0]
    expected = scores_from_evals(evals[evals["env_id"] == "Humanoid-v5"], np.random.default_rng(0))
    assert {k: one[k] for k in expected} == expected
    assert one["seeds"] == 5
    assert one["wall_seconds"] == pytest.approx((2 * 100 + 3 * 200) / 5)
    assert one["eval_fraction"] == pytest.approx((2 * 0.02 + 3 * 0.04) / 5)
    assert merged.iloc[1]["wall_seconds"] == 50.0 and np.isnan(merged.iloc[1]["final_iqm"])  # kept as it was
    assert merged.iloc[0]["Tianshou PPO (1M)"] == pytest.approx(787.1)  # references rebuilt
    with pytest.raises(RowsError, match="add up to 5 seeds, the evaluations hold 4"):
        merge_rows(rows, evals[~((evals["env_id"] == "Humanoid-v5") & (evals["seed"] == 5))])


def test_suite_rows_refuses_a_missing_file_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert suite_rows_main([str(tmp_path / "none.csv"), "--evals", str(SUITE_CSV / "suite_evals.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none.csv: no such file" in err


def test_keep_other_seeds_replaces_a_seed_trained_again() -> None:
    rng = np.random.default_rng(4)
    earlier = _evals(("Humanoid-v5", "ppo"), range(1, 3), rng).assign(commit="aaa", eval_std_return=0.0)
    new = _evals(("Humanoid-v5", "ppo"), range(2, 4), rng).assign(commit="bbb", eval_std_return=0.0)
    table = keep_other_seeds(earlier.assign(eval_mean_length=1.0), new.assign(eval_mean_length=1.0))
    assert sorted(table.groupby("seed")["commit"].unique().map(tuple).items()) == [
        (1, ("aaa",)),
        (2, ("bbb",)),
        (3, ("bbb",)),
    ]
    assert len(table) == 3 * 4


def test_suite_figure_draws_the_csv_and_refuses_a_bad_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evals = _evals(("Humanoid-v5", "ppo"), range(1, 4), np.random.default_rng(5))
    evals.to_csv(tmp_path / "evals.csv", index=False)
    assert suite_figure_main([str(tmp_path / "evals.csv"), str(tmp_path / "fig")]) == 0
    assert (tmp_path / "fig.png").stat().st_size > 0 and (tmp_path / "fig.svg").stat().st_size > 0
    assert "ppo (eval IQM, 3 seeds)" in (tmp_path / "fig.svg").read_text()
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    assert suite_figure_main([str(tmp_path / "bad.csv"), str(tmp_path / "bad")]) == 2
    assert "columns missing: env_id" in capsys.readouterr().err
    assert not (tmp_path / "bad.png").exists()
