"""``mjreinforce eval`` and ``load_policy`` on a really trained policy (vpg on InvertedPendulum-v5).

The policy is trained once per session (shared with test_video/test_robustness through the session's
base temp dir): vpg preset, one seed, <= 80k steps, stopping at the target return 1000.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import mjreinforce
from conftest import Case, copies_of, selected_cases
from mjreinforce.cli.eval import first_run_seed
from mjreinforce.runs import checkpoint_dir, checkpoint_format
from mjreinforce.trained.evaluation import evaluate_policy
from mjreinforce.training.evaluation import EVAL_SEED_OFFSET

pytestmark = pytest.mark.slow


def last_eval_row(run_dir: Path) -> dict[str, str]:
    with open(run_dir / "seed_1" / "evals.csv", newline="") as f:
        return list(csv.DictReader(f))[-1]


def test_eval_reaches_the_training_evaluation_return(run_dir: Path, cli) -> None:
    trained_eval = float(last_eval_row(run_dir)["eval_mean_return"])
    proc = cli.main("eval", str(run_dir), "--episodes", "20", cwd=run_dir)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((run_dir / "eval.json").read_text())  # default location: RUN_DIR/eval.json
    assert report["episodes"] == 20 and report["deterministic"] is True and report["training_seed"] == 1
    assert report["return_min"] <= report["return_mean"] <= report["return_max"]
    assert report["length_min"] <= report["length_mean"] <= report["length_max"] <= 1000
    # fresh episodes (other seeds than training's evaluation) reach the training evaluation return
    assert report["return_mean"] == pytest.approx(trained_eval, rel=0.05)
    assert f"{report['return_mean']:.2f}" in proc.stdout and "wrote" in proc.stdout


def test_evaluation_with_training_seeds_reproduces_the_last_training_evaluation(run_dir: Path) -> None:
    row = last_eval_row(run_dir)
    latest = json.loads((run_dir / "seed_1" / "checkpoints" / "latest.json").read_text())
    if int(row["update"]) != latest["updates"]:
        pytest.skip("training ran past its last evaluation; that policy is not the checkpointed one")
    trained = mjreinforce.load_policy(run_dir)
    result = evaluate_policy(trained, trained.config.eval_episodes, 1 + EVAL_SEED_OFFSET)
    assert result.mean_return == pytest.approx(float(row["eval_mean_return"]), rel=1e-9)
    assert float(result.lengths.mean()) == pytest.approx(float(row["eval_mean_length"]), rel=1e-9)


def numpy_mean_action(weights: dict[str, np.ndarray], obs: np.ndarray) -> np.ndarray:
    """The vpg policy's deterministic action by hand: two tanh layers, a linear mean, clipped to bounds."""
    h = np.tanh(weights["mean_net.0.weight"] @ obs + weights["mean_net.0.bias"])
    h = np.tanh(weights["mean_net.2.weight"] @ h + weights["mean_net.2.bias"])
    mean = weights["mean_net.4.weight"] @ h + weights["mean_net.4.bias"]
    return np.clip(mean, weights["act_low"], weights["act_high"])


def test_load_policy_acts_in_a_plain_gymnasium_loop(run_dir: Path) -> None:
    trained = mjreinforce.load_policy(run_dir)
    assert trained.config.normalize_obs is False  # the hand computation below assumes raw observations
    tensors, meta = checkpoint_format.load_checkpoint(checkpoint_dir.latest_checkpoint(run_dir))
    state = checkpoint_format.unflatten_state(meta["state"], tensors)
    weights = {k: v.double().numpy() for k, v in state["policy"].items()}
    env = gym.make("InvertedPendulum-v5")
    try:
        obs, _ = env.reset(seed=4242)
        total, done, steps = 0.0, False, 0
        while not done:
            action = trained.act(obs)
            assert action.shape == env.action_space.shape
            assert np.all(action >= env.action_space.low) and np.all(action <= env.action_space.high)
            np.testing.assert_allclose(action, numpy_mean_action(weights, obs), atol=1e-5)
            obs, reward, terminated, truncated, _ = env.step(action)
            total, steps, done = total + float(reward), steps + 1, terminated or truncated
    finally:
        env.close()
    # the same episode through the vectorized evaluation (env 0 is seeded 4242 too) gives the same return
    result = evaluate_policy(trained, 1, 4242)
    assert result.returns[0] == pytest.approx(total) and result.lengths[0] == steps


def test_loaded_policy_is_the_same_on_every_load(run_dir: Path) -> None:
    first, second = mjreinforce.load_policy(run_dir), mjreinforce.load_policy(run_dir / "seed_1")
    obs = np.random.default_rng(0).normal(scale=0.3, size=(32, 4))
    np.testing.assert_array_equal(first.act(obs), second.act(obs))
    np.testing.assert_allclose(first.act(obs[3]), first.act(obs)[3], atol=1e-6)  # one obs == a batch row
    # stochastic actions are really sampled (the learned std is not zero) ...
    torch.manual_seed(0)
    sampled = first.act(obs, deterministic=False)
    assert not np.allclose(sampled, first.act(obs))


def test_stochastic_evaluation_is_reproducible_and_leaves_the_torch_rng_alone(run_dir: Path) -> None:
    trained = mjreinforce.load_policy(run_dir)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = evaluate_policy(trained, 2, 77, deterministic=False)
    b = evaluate_policy(trained, 2, 77, deterministic=False)
    assert torch.equal(torch.get_rng_state(), before)
    np.testing.assert_array_equal(a.returns, b.returns)
    np.testing.assert_array_equal(a.lengths, b.lengths)


def test_first_run_seed_follows_the_config_order(tmp_path: Path) -> None:
    for s in (2, 5, 9):
        (tmp_path / f"seed_{s}").mkdir()
    (tmp_path / "config.toml").write_text("seeds = [5, 2, 9]\n")
    assert first_run_seed(tmp_path) == 5
    (tmp_path / "config.toml").write_text("seeds = [7, 9]\n")  # 7 has no directory
    assert first_run_seed(tmp_path) == 9
    (tmp_path / "config.toml").unlink()
    assert first_run_seed(tmp_path) == 2
    assert first_run_seed(tmp_path / "seed_2") is None


def test_run_seed_picks_that_seeds_checkpoint(run_dir: Path, tmp_path: Path, cli) -> None:
    multi = tmp_path / "run"
    shutil.copytree(run_dir / "seed_1", multi / "seed_1")
    shutil.copytree(run_dir / "seed_1", multi / "seed_3")
    out = tmp_path / "e.json"
    proc = cli.main("eval", str(multi), "--run-seed", "3", "--episodes", "1", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert Path(report["checkpoint"]).parts[-3] == "seed_3"  # (its meta still says seed 1: a copy)
    proc = cli.main("eval", str(multi), "--episodes", "1", "--out", str(out), cwd=tmp_path)  # default: the first seed
    assert proc.returncode == 0, proc.stderr
    assert Path(json.loads(out.read_text())["checkpoint"]).parts[-3] == "seed_1"
    proc = cli.main("eval", str(multi), "--run-seed", "4", "--episodes", "1", cwd=tmp_path)
    assert proc.returncode == 2 and "no seed 4" in proc.stderr


# ------------------------------------------------------------------------------------------- bad input
def _corrupt_latest_checkpoint(wd: Path) -> None:
    """A copy of the run's latest checkpoint with one flipped byte in the tensor data."""
    data = bytearray(checkpoint_dir.latest_checkpoint(wd / "run").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (wd / "corrupted").mkdir()
    (wd / "corrupted" / "ckpt_65.safetensors").write_bytes(bytes(data))


def _physics_case(spec: str, fragments: tuple[str, ...], process: bool = False) -> Case:
    return Case(("eval", "run", "--episodes", "2", "--physics", spec, "--out", "eval.json"), fragments, process=process)


BAD_INPUTS = {  # each on a copy of the trained run at ``run`` in its working directory
    "no_checkpoint": Case(
        ("eval", "empty"), ("no checkpoint",), setup=lambda wd: (wd / "empty" / "seed_1").mkdir(parents=True)
    ),
    "corrupted_checkpoint": Case(
        ("eval", "corrupted/ckpt_65.safetensors"), ("corrupted", "checksum"), setup=_corrupt_latest_checkpoint
    ),
    "unknown_body": _physics_case("body_mass.nosuch=2", ("no body named 'nosuch'", "cart", "pole")),
    "unknown_field": _physics_case("body_nosuch.pole=2", ("unknown model field 'body_nosuch'", "body_mass")),
    # a real process: what MuJoCo prints about the blown-up simulation would reach its stderr
    "unstable_physics": _physics_case("gravity=-1e9", ("unstable", "gravity=-1000000000"), process=True),
}


@pytest.fixture(scope="module")
def bad_input_runs(bad_inputs, run_dir: Path, tmp_path_factory: pytest.TempPathFactory, request) -> dict:
    return bad_inputs.run(selected_cases(request, BAD_INPUTS, "case"), copies_of(run_dir, tmp_path_factory))


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_line_and_writes_nothing(bad_input_runs: dict, bad_inputs, case: str) -> None:
    bad_inputs.check(BAD_INPUTS[case], bad_input_runs[case])
