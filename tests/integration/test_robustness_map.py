"""Two-dimensional robustness maps through the real CLI on tiny trained runs: a CSV row for every cell and
policy, a heatmap per policy and a difference map, each run's training range; one --vary of a perturbation
key gives the one-dimensional files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mjreinforce.config import load_preset, with_overrides
from mjreinforce.envs.physics_spec import parse_grid
from mjreinforce.trained.evaluation import evaluate_policy
from mjreinforce.trained.loading import load_policy
from mjreinforce.trained.robustness_axes import axis_of_grid, parse_axis, training_range
from mjreinforce.trained.robustness_map import output_names
from mjreinforce.training.evaluation import DEFAULT_EVAL_SEED
from mjreinforce.training.run import train

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PERTURBED = {
    "action_delay_steps": "0:2",
    "push_body": "pole",
    "push_force": "5:20",
    "push_interval_steps": "10:20",
    "randomize": ("gravity=-12:-7",),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``plain`` and ``perturbed``: two-episode tutorial runs on InvertedPendulum-v5 (seconds each)."""
    root = tmp_path_factory.mktemp("maps")
    base = {"env_id": "InvertedPendulum-v5", "total_episodes": 2, "seeds": (1,), "tensorboard": False}
    train(with_overrides(load_preset("tutorial"), base), root / "plain", quiet=True, plot=False)
    train(with_overrides(load_preset("tutorial"), {**base, **PERTURBED}), root / "perturbed", quiet=True, plot=False)
    return root


def test_a_two_dimensional_map_writes_every_cell_and_the_heatmaps(runs: Path, cli) -> None:
    args = ["robustness", "plain", "perturbed", "--vary", "action_delay_steps=0:4:3", "--vary", "push_force=0:30:2"]
    args += ["--perturb", "push_body=pole", "--perturb", "push_interval_steps=3:6", "--episodes", "2", "--out", "map"]
    proc = cli.main(*args, cwd=runs)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(runs / "map" / "robustness_map.csv")
    columns = ["label", "action_delay_steps", "push_force", "episodes", "mean_return", "std_return", "min_return"]
    assert list(table.columns) == columns
    assert len(table) == 2 * 3 * 2 and (table["episodes"] == 2).all()
    for label in ("plain", "perturbed"):
        cells = table[table["label"] == label]
        assert sorted(zip(cells["action_delay_steps"], cells["push_force"], strict=True)) == [
            (d, f) for d in (0.0, 2.0, 4.0) for f in (0.0, 30.0)
        ]
    assert (table["min_return"] <= table["mean_return"]).all() and (table["std_return"] >= 0).all()
    # a cell is exactly the evaluation with its settings
    cell = table[(table["label"] == "perturbed") & (table["action_delay_steps"] == 2) & (table["push_force"] == 30)]
    items = ["push_body=pole", "push_interval_steps=3:6", "action_delay_steps=2", "push_force=30"]
    result = evaluate_policy(load_policy(runs / "perturbed"), 2, DEFAULT_EVAL_SEED, backend="gymnasium", perturb=items)
    assert cell["mean_return"].item() == result.mean_return and cell["min_return"].item() == result.returns.min()
    for stem in ("robustness_map_plain", "robustness_map_perturbed", "robustness_map_difference"):
        assert (runs / "map" / f"{stem}.png").read_bytes()[:8] == PNG_MAGIC
        svg = (runs / "map" / f"{stem}.svg").read_text()
        assert 'id="axes_2"' in svg, "no colour bar"  # the colour bar is the figure's second axes
        assert 'id="legend_1"' in svg, "no training range drawn"
    assert "| perturbed |" in proc.stdout and "wrote map/robustness_map_difference.svg" in proc.stdout
    written = sorted(p.name for p in (runs / "map").iterdir() if p.name != ".mjreinforce-outputs.json")
    assert written == sorted(output_names(["plain", "perturbed"]))  # exactly what the guard checked beforehand
    again = cli.main(*args, cwd=runs)  # its own files are replaced without --overwrite
    assert again.returncode == 0, again.stderr


def test_each_run_s_training_range_on_physics_and_perturbation_axes(runs: Path) -> None:
    plain, perturbed = load_policy(runs / "plain").config, load_policy(runs / "perturbed").config
    delay, force = parse_axis("action_delay_steps=0:4:5"), parse_axis("push_force=0:200:5")
    interval = parse_axis("push_interval_steps=1:5:5")
    assert training_range(perturbed, delay) == (0.0, 2.0) and training_range(plain, delay) == (0.0, 0.0)
    assert training_range(perturbed, force) == (5.0, 20.0) and training_range(plain, force) == (0.0, 0.0)
    assert training_range(plain, interval) is None  # trained without pushes: no interval to draw
    gravity, scaled = parse_axis("gravity=-15:-5:3"), axis_of_grid(parse_grid("gravity*=0.5:2:3"))
    assert training_range(perturbed, gravity) == (-12.0, -7.0)
    assert training_range(plain, gravity) == pytest.approx((-9.81, -9.81))  # the model's own value
    assert training_range(plain, scaled) == (1.0, 1.0)
    assert training_range(perturbed, scaled) == pytest.approx((12 / 9.81, 7 / 9.81))


def test_one_perturbation_axis_gives_the_one_dimensional_files(runs: Path, cli) -> None:
    args = ("robustness", "plain", "--vary", "obs_noise_std=0:0.2:3", "--episodes", "2", "--out", "line")
    proc = cli.main(*args, cwd=runs)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(runs / "line" / "robustness.csv")
    assert list(table.columns) == ["label", "value", "episode", "return", "length"]
    np.testing.assert_allclose(sorted(set(table["value"])), [0.0, 0.1, 0.2])
    assert sorted(p.name for p in (runs / "line").iterdir()) == [
        ".mjreinforce-outputs.json",
        "robustness.csv",
        "robustness.md",
        "robustness.png",
        "robustness.svg",
    ]
