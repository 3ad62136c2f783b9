"""Reading run directories, summary tables and figures, on run dirs built by hand in the documented format."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from mjreinforce.analysis import plotting, tables
from mjreinforce.errors import UserError
from mjreinforce.runs.reading import EPISODE_COLUMNS, load_run, load_runs

HEADER = ",".join(EPISODE_COLUMNS)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def episode_lines(seed: int, returns: list[float], length: int) -> list[str]:
    """CSV lines of episodes of constant ``length``; every 4th is a truncation; 0.1 s per episode."""
    return [
        f"{seed},{i},{i * length},{r},{length},{int(i % 4 != 0)},{int(i % 4 == 0)},{0.1 * i:.3f}"
        for i, r in enumerate(returns, start=1)
    ]


def write_seed(
    run_dir: Path, seed: int, returns: list[float], length: int = 10, status: str | None = "finished"
) -> Path:
    seed_dir = run_dir / f"seed_{seed}"
    seed_dir.mkdir(parents=True)
    (seed_dir / "episodes.csv").write_text("\n".join([HEADER, *episode_lines(seed, returns, length)]) + "\n")
    if status is not None:
        (seed_dir / "summary.json").write_text(json.dumps({"seed": seed, "status": status}))
    return seed_dir


def write_run(path: Path, finals: dict[int, float], episodes: int = 20, env_id: str = "Hopper-v5") -> Path:
    """A finished run whose seed ``s`` earns ``finals[s]`` every episode; episode length 10 * (index + 1)."""
    path.mkdir(parents=True)
    (path / "summary.json").write_text(json.dumps({"env_id": env_id, "algorithm": "REINFORCE", "seeds": {}}))
    for index, (seed, value) in enumerate(finals.items()):
        write_seed(path, seed, [value] * episodes, length=10 * (index + 1))
    return path


def assert_real_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert np.unique(image.reshape(-1, image.shape[2]), axis=0).shape[0] > 10  # not a blank canvas


def assert_real_svg(path: Path) -> None:
    text = path.read_text()
    assert "<svg" in text and len(text) > 1000


# --- results.load_run -------------------------------------------------------
def test_load_run_reads_finished_interrupted_and_empty_seeds(tmp_path: Path) -> None:
    run = tmp_path / "my_run"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({"env_id": "Walker2d-v5", "algorithm": "VPG (GAE)"}))
    write_seed(run, 1, [1.0, 2.0, 3.0], status="finished")
    interrupted = write_seed(run, 2, [5.0, 6.0, 7.0, 8.0], length=25, status=None)
    with open(interrupted / "episodes.csv", "a") as f:
        f.write("2,5,125,12.")  # killed mid-line: no newline at the end
    seed_3 = run / "seed_3"
    seed_3.mkdir()
    (seed_3 / "episodes.csv").write_text(HEADER + "\n")  # crashed before the first episode
    (seed_3 / "summary.json").write_text(json.dumps({"seed": 3, "status": "failed"}))

    data = load_run(run)

    assert data.label == "my_run" and data.env_id == "Walker2d-v5" and data.algorithm == "VPG (GAE)"
    assert data.seeds == [1, 2]
    assert data.seed_status == {1: "finished", 2: "incomplete", 3: "failed"}
    assert list(data.episodes.columns) == list(EPISODE_COLUMNS)
    seed_2 = data.episodes[data.episodes["seed"] == 2]
    assert seed_2["episode"].tolist() == [1, 2, 3, 4]  # the cut-off 5th line is dropped
    assert seed_2["return"].tolist() == [5.0, 6.0, 7.0, 8.0]
    assert seed_2["env_steps"].tolist() == [25, 50, 75, 100]
    assert data.episodes["env_steps"].dtype == np.int64 and data.episodes["return"].dtype == np.float64
    assert data.evals.empty


def test_load_run_takes_env_and_algorithm_from_config_without_summary(tmp_path: Path) -> None:
    run = tmp_path / "cfg_run"
    run.mkdir()
    (run / "config.toml").write_text('env_id = "Swimmer-v5"\nuse_critic = true\nadvantage = "gae"\nstats_window = 7\n')
    write_seed(run, 4, [1.0, 2.0], status=None)
    data = load_run(run)
    assert data.env_id == "Swimmer-v5" and data.algorithm == "VPG (GAE)"
    assert data.config["stats_window"] == 7


def test_load_run_reads_evals(tmp_path: Path) -> None:
    run = write_run(tmp_path / "r", {1: 1.0})
    (run / "seed_1" / "evals.csv").write_text(
        "seed,update,env_steps,wall_seconds,eval_mean_return,eval_std_return,eval_mean_length\n"
        "1,10,100,1.5,42.0,3.0,100.0\n"
    )
    evals = load_run(run).evals
    assert evals["eval_mean_return"].tolist() == [42.0] and evals["update"].tolist() == [10]


def test_load_run_rejects_a_directory_that_is_not_a_run(tmp_path: Path) -> None:
    (tmp_path / "seed_1").mkdir()  # a seed dir without episodes.csv does not make a run
    with pytest.raises(UserError, match="is not a mjreinforce run directory"):
        load_run(tmp_path)
    with pytest.raises(UserError, match="not found"):
        load_run(tmp_path / "missing")


def test_load_runs_makes_duplicate_labels_unique(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a" / "run", {1: 1.0})
    b = write_run(tmp_path / "b" / "run", {1: 2.0})
    assert [r.label for r in load_runs([a, b])] == ["a/run", "b/run"]


# --- tables -----------------------------------------------------------------
def test_summary_table_by_hand(tmp_path: Path) -> None:
    # Seeds earn a constant return, so each seed's final return is that constant.
    # lengths 10, 20, 30, 40, 50 for seeds 1..5
    run = load_run(write_run(tmp_path / "good", {1: 1.0, 2: 2.0, 3: 3.0, 4: 4.0, 5: 100.0}, episodes=8))
    row = tables.summary_table([run], target=3.0, window=5).iloc[0]
    assert row["seeds"] == 5 and row["status"] == "5 finished" and row["episodes"] == 8
    assert row["final_return"] == pytest.approx(22.0)  # (1 + 2 + 3 + 4 + 100) / 5
    assert row["iqm_final_return"] == pytest.approx(3.0)  # mean(2, 3, 4)
    assert row["iqm_ci_low"] <= 3.0 <= row["iqm_ci_high"]
    # seeds 3, 4, 5 reach 3.0 when their first full 5-episode window ends: 5 * (30, 40, 50) steps
    assert row["seeds_reached"] == "3/5"
    assert row["steps_to_target"] == pytest.approx(200.0)
    assert row["seconds_to_target"] == pytest.approx(0.5)


def test_improvement_table_by_hand(tmp_path: Path) -> None:
    good = load_run(write_run(tmp_path / "good", {1: 5.0, 2: 6.0}))
    bad = load_run(write_run(tmp_path / "bad", {1: 1.0, 2: 5.0, 3: 0.0}))
    table = tables.improvement_table([good, bad], window=5).set_index(["x", "y"])
    # good over bad: pairs (5,1) win (5,5) tie (5,0) win (6,*) three wins -> 5.5 / 6
    assert table.loc[("good", "bad"), "p_improvement"] == pytest.approx(5.5 / 6)
    assert table.loc[("bad", "good"), "p_improvement"] == pytest.approx(0.5 / 6)
    assert table.loc[("good", "bad"), "seeds_y"] == 3
    assert len(tables.improvement_table([good])) == 0


def test_write_tables_markdown_and_csv(tmp_path: Path) -> None:
    df = pd.DataFrame({"label": ["a|b", "c"], "value": [1234.56, float("nan")]})
    other = pd.DataFrame({"x": ["a"], "p": [0.75]})
    paths = tables.write_tables(df, other, out_stem=tmp_path / "out" / "t", titles=("Main", "Second table"))
    md = (tmp_path / "out" / "t.md").read_text().splitlines()
    assert "## Main" in md and "## Second table" in md
    assert "| a\\|b | 1235 |" in md and "| c | - |" in md and "| a | 0.75 |" in md
    assert pd.read_csv(tmp_path / "out" / "t.csv")["label"].tolist() == ["a|b", "c"]
    assert pd.read_csv(tmp_path / "out" / "t_second_table.csv")["p"].tolist() == [0.75]
    assert {p.name for p in paths} == {"t.md", "t.csv", "t_second_table.csv"}


# --- figures ----------------------------------------------------------------
def test_plot_run_writes_both_learning_curves(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    rng = np.random.default_rng(0)
    for seed, length in [(1, 10), (2, 13), (3, 7)]:
        write_seed(run, seed, list(np.cumsum(rng.normal(1.0, 3.0, size=120))), length=length)
    paths = plotting.plot_run(run)
    assert sorted(p.name for p in paths) == sorted(
        ["learning_curve.png", "learning_curve.svg", "learning_curve_steps.png", "learning_curve_steps.svg"]
    )
    for path in paths:
        assert path.parent == run
        (assert_real_png if path.suffix == ".png" else assert_real_svg)(path)


def test_plot_run_works_on_a_single_interrupted_seed(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    write_seed(run, 1, [1.0, 3.0, 2.0], status=None)
    assert_real_png(plotting.plot_run(run)[0])


def test_plot_comparison_writes_figure_and_tables(tmp_path: Path) -> None:
    a = write_run(tmp_path / "runs" / "alpha", {1: 1.0, 2: 2.0})
    b = write_run(tmp_path / "runs" / "beta", {1: 3.0, 2: 4.0, 3: 5.0})
    for x in ("env_steps", "wall_seconds"):
        paths = plotting.plot_comparison([a, b], tmp_path / "cmp", x=x, window=5)
        assert_real_png(tmp_path / "cmp" / f"comparison_{x}.png")
        assert_real_svg(tmp_path / "cmp" / f"comparison_{x}.svg")
    assert {p.name for p in paths} >= {"summary.md", "summary.csv", "summary_probability_of_improvement.csv"}
    summary = pd.read_csv(tmp_path / "cmp" / "summary.csv")
    assert summary["label"].tolist() == ["alpha", "beta"] and summary["seeds"].tolist() == [2, 3]
    assert len(pd.read_csv(tmp_path / "cmp" / "summary_probability_of_improvement.csv")) == 2
    md = (tmp_path / "cmp" / "summary.md").read_text().splitlines()
    for label in ("alpha", "beta"):  # one summary row + one improvement row (as x) each
        assert sum(line.startswith(f"| {label} |") for line in md) == 2


def test_learning_curve_uses_at_most_300_episode_points(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path / "long", {1: 1.0, 2: 2.0}, episodes=1000))
    data = plotting._episode_curves([run], smooth_window=50)
    xs = np.unique(data["x"])
    assert len(xs) <= 300 and xs[0] == 1 and xs[-1] == 1000


def test_plot_learning_curves_rejects_unknown_axis(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path / "r", {1: 1.0}))
    with pytest.raises(UserError, match="x must be one of"):
        plotting.plot_learning_curves([run], tmp_path / "f", x="updates")  # type: ignore[arg-type]


def test_plot_robustness(tmp_path: Path) -> None:
    rows = [
        {"label": label, "value": g, "episode": e, "return": base * abs(g) + e}
        for label, base in [("tutorial", 10.0), ("vpg", 20.0)]
        for g in (-12.0, -9.81, -7.0)
        for e in range(5)
    ]
    paths = plotting.plot_robustness(pd.DataFrame(rows), tmp_path / "robust", "gravity")
    assert [p.name for p in paths] == ["robust.png", "robust.svg"]
    assert_real_png(paths[0])
    assert_real_svg(paths[1])


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"1,1,10,1.0,10,1,0,0.1\n1,2,\xff,1.0,10,1,0,0.2\n", "utf-8"),
        (b"1,1,10,1.0,10,1,0,0.1\njunk\n", "data row 2 has 1 fields"),
        (b"1,1,10,1.0,10,1,0,0.11,2,20,1.0,10,1,0,0.2\n", "data row 1 has 15 fields"),
        (b"1,1,10,x,10,1,0,0.1\n", "data row 1 is not a row of numbers"),
    ],
)
def test_a_corrupted_table_is_a_user_error_naming_it(tmp_path: Path, body: bytes, fragment: str) -> None:
    seed_dir = write_seed(tmp_path / "run", 1, [1.0])
    (seed_dir / "episodes.csv").write_bytes(HEADER.encode() + b"\n" + body)
    with pytest.raises(UserError, match="episodes.csv is corrupted") as exc:
        load_run(tmp_path / "run")
    assert fragment in str(exc.value)


@pytest.mark.parametrize("name", ["summary.json", "seed_1/summary.json", "config.toml"])
def test_a_corrupted_json_or_toml_file_is_a_user_error_naming_it(tmp_path: Path, name: str) -> None:
    run = write_run(tmp_path / "run", {1: 5.0})
    (run / name).write_bytes(b"\xff{ not json = toml")
    with pytest.raises(UserError, match=f"{name} is corrupted"):
        load_run(run)


def test_the_legend_counts_diverged_seeds(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", {1: 5.0, 2: 6.0})
    (run / "seed_2" / "summary.json").write_text(json.dumps({"seed": 2, "status": "diverged"}))
    assert plotting.legend_name(load_run(run)) == "run (2 seeds, 1 diverged)"
    assert "1 diverged" in tables.summary_table([load_run(run)])["status"][0]
