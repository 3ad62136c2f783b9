"""The scripts under benchmarks/: the ladder table the README prints (suite_targets), run.py's arguments."""

from pathlib import Path

import pandas as pd
import pytest

from benchmarks.run import parse_args
from benchmarks.suite_targets import best_published_ppo, ladder


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
