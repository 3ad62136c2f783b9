"""Robustness grids: policies evaluated across physics values, the table, the Markdown and the plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import mjreinforce
from conftest import Case, copies_of, selected_cases
from mjreinforce.algo.normalization import RunningNormalizer
from mjreinforce.algo.policy import make_policy
from mjreinforce.config import load_preset, with_overrides
from mjreinforce.envs.physics_spec import parse_grid
from mjreinforce.envs.vector import inspect_env
from mjreinforce.trained.evaluation import evaluate_policy
from mjreinforce.trained.loading import TrainedPolicy
from mjreinforce.trained.robustness import evaluate_grid, grid_axis, write_robustness

pytestmark = pytest.mark.slow

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def passive() -> TrainedPolicy:
    """A policy whose mean action is exactly 0 (last layer zeroed): the cart is never pushed, so the pole
    simply falls, faster under stronger gravity."""
    cfg = with_overrides(load_preset("vpg"), {"backend": "gymnasium"})
    spec = inspect_env(cfg.env_id)
    torch.manual_seed(0)
    policy = make_policy(cfg, spec.obs_dim, spec.act_dim, spec.act_low, spec.act_high).eval()
    with torch.no_grad():
        policy.mean_net[-1].weight.zero_()
        policy.mean_net[-1].bias.zero_()
    return TrainedPolicy(cfg, policy, RunningNormalizer(spec.obs_dim, enabled=False), 0, Path("passive"))


def test_gravity_override_changes_the_dynamics(passive: TrainedPolicy) -> None:
    table = evaluate_grid({"passive": passive}, parse_grid("gravity=-30:-2:3"), episodes=4, seed=21)
    lengths = table.pivot(index="episode", columns="value", values="length")
    assert list(lengths.columns) == [-30.0, -16.0, -2.0]
    # same initial state in every column, no control: each episode lasts longer the weaker gravity is
    assert (lengths[-2.0] > lengths[-16.0]).all() and (lengths[-16.0] > lengths[-30.0]).all()
    # and MuJoCo's default gravity (-9.81 in the model) reproduces the env without any override exactly
    default = evaluate_policy(passive, 4, 21)
    at_default = evaluate_grid({"passive": passive}, parse_grid("gravity=-9.81:-9.81:2"), episodes=4, seed=21)
    np.testing.assert_array_equal(at_default["length"].to_numpy()[:4], default.lengths)
    np.testing.assert_array_equal(at_default["return"].to_numpy()[:4], default.returns)


def test_grid_table_markdown_and_plot(run_dir: Path, passive: TrainedPolicy, tmp_path: Path) -> None:
    policies = {"trained": mjreinforce.load_policy(run_dir), "passive": passive}
    table = evaluate_grid(policies, parse_grid("gravity=-12:-6:3"), episodes=2)
    assert list(table.columns) == ["label", "value", "episode", "return", "length"]
    assert len(table) == 2 * 3 * 2
    for label in policies:
        rows = table[table["label"] == label]
        assert len(rows) == 3 * 2
        assert sorted(set(rows["value"])) == [-12.0, -9.0, -6.0]
        assert sorted(rows["episode"]) == [1, 1, 1, 2, 2, 2]
    assert (table["length"] >= 1).all() and (table["length"] <= 1000).all()
    passive_mean = table[table["label"] == "passive"]["return"].mean()
    assert table[table["label"] == "trained"]["return"].mean() > passive_mean  # training mattered
    paths = write_robustness(table, tmp_path / "out", "gravity")
    names = sorted(p.name for p in paths)
    assert names == ["robustness.csv", "robustness.md", "robustness.png", "robustness.svg"]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "out" / "robustness.csv"), table, check_dtype=False)
    md = (tmp_path / "out" / "robustness.md").read_text()
    assert sum(line.startswith(("| trained |", "| passive |")) for line in md.splitlines()) == 2 * 3
    assert (tmp_path / "out" / "robustness.png").read_bytes()[:8] == PNG_MAGIC


def test_grid_axis_needs_exactly_one_varied_number() -> None:
    np.testing.assert_array_equal(grid_axis(parse_grid("opt.gravity=0,0,-15:0,0,-5:3")), [-15.0, -10.0, -5.0])
    with pytest.raises(mjreinforce.UserError, match="varies 2 numbers"):
        grid_axis(parse_grid("opt.gravity=0,0,-15:1,0,-5:3"))


def test_robustness_cli(run_dir: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "rob"
    args = ("robustness", str(run_dir), "--vary", "gravity=-11:-7:3", "--episodes", "2", "--out", str(out))
    proc = cli.main(*args, "--labels", "vpg", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out / "robustness.csv")
    assert len(table) == 3 * 2 and set(table["label"]) == {"vpg"}
    assert (out / "robustness.png").read_bytes()[:8] == PNG_MAGIC
    assert "| vpg |" in proc.stdout


BAD_INPUTS = {  # each on a copy of the trained run at ``run`` in its working directory
    "labels_that_do_not_match_the_runs": Case(
        ("robustness", "run", "--vary", "gravity=-11:-7:3", "--labels", "a,b", "--out", "rob"), ("--labels needs 1",)
    ),
    "unknown_body": Case(
        ("robustness", "run", "--vary", "body_mass.nosuch=1:2:3", "--out", "rob"), ("no body named 'nosuch'", "pole")
    ),
}


@pytest.fixture(scope="module")
def bad_input_runs(bad_inputs, run_dir: Path, tmp_path_factory: pytest.TempPathFactory, request) -> dict:
    return bad_inputs.run(selected_cases(request, BAD_INPUTS), copies_of(run_dir, tmp_path_factory))


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_robustness_cli_bad_input(bad_input_runs: dict, bad_inputs, name: str) -> None:
    bad_inputs.check(BAD_INPUTS[name], bad_input_runs[name])
