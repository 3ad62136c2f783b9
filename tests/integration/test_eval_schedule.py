"""Evaluation by env steps on one reused vector env, the learning-rate schedule, episode mode's batches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import mjreinforce.training.evaluation as evaluation_module
from mjreinforce.algo.normalization import RunningNormalizer
from mjreinforce.algo.policy import make_policy
from mjreinforce.algo.rollout import Collector
from mjreinforce.config import Config, load_preset, with_overrides
from mjreinforce.envs.vector import inspect_env, make_vec_env
from mjreinforce.training.loop import eval_due
from mjreinforce.training.run import train


def _reacher(**overrides: object) -> Config:
    base = {"env_id": "Reacher-v5", "seeds": (1,), "tensorboard": False, "backend": "gymnasium"}
    return with_overrides(load_preset("vpg"), {**base, **overrides})


def test_eval_due_crosses_each_multiple_once() -> None:
    cfg = Config(eval_every_steps=1000)
    steps = np.arange(0, 5101, 300)  # 0, 300, ..., 5100
    due = [eval_due(cfg, a, b) for a, b in zip(steps[:-1], steps[1:], strict=True)]
    assert sum(due) == 5  # 1000, 2000, 3000, 4000, 5000: each crossed once
    assert not eval_due(Config(), 0, 10**6)  # no schedule


def test_evaluations_follow_env_steps_stay_in_budget_and_reuse_one_env(tmp_path: Path, monkeypatch) -> None:
    built: list[Config] = []
    real = evaluation_module.make_vec_env

    def counting(cfg, num_envs, seed, backend=None, **kw):  # a spy: the real env is built
        built.append(cfg)
        return real(cfg, num_envs, seed, backend=backend, **kw)

    monkeypatch.setattr(evaluation_module, "make_vec_env", counting)
    # Reacher episodes are 50 steps: 5 episodes cost 250 steps; every 2500 env steps -> 10% of training.
    cfg = _reacher(
        total_steps=10_000, eval_every_steps=2500, eval_episodes=5, randomize=("gravity=-12:-8",), env_workers=2
    )
    result = train(cfg, tmp_path / "run", quiet=True, plot=False)
    seed = result.seeds[1]
    evals = (tmp_path / "run" / "seed_1" / "evals.csv").read_text().splitlines()[1:]
    eval_steps = [int(row.split(",")[2]) for row in evals]
    assert len(eval_steps) == 4  # 2.5k, 5k, 7.5k and 10k: the last one is the final policy's
    assert [s // 2500 for s in eval_steps] == [1, 2, 3, 4] and eval_steps[-1] == seed.env_steps
    assert seed.eval_env_steps == 4 * 5 * 50 and seed.eval_env_steps / seed.env_steps <= 0.10
    assert seed.final_eval_mean_return == pytest.approx(float(evals[-1].split(",")[4]))
    assert len(built) == 1  # one evaluation env, built once and reused
    assert built[0].randomize == () and built[0].env_workers == 0  # fixed physics, no worker pool


def test_the_final_policy_is_evaluated_when_the_budget_is_off_schedule(tmp_path: Path) -> None:
    cfg = _reacher(total_steps=6000, eval_every_steps=5000, eval_episodes=2)
    seed = train(cfg, tmp_path / "run", quiet=True, plot=False).seeds[1]
    rows = (tmp_path / "run" / "seed_1" / "evals.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[2]) for r in rows] == [5120, seed.env_steps]


def test_no_update_runs_at_learning_rate_zero_and_both_optimizers_anneal(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = _reacher(total_steps=4096, lr_schedule="linear", tensorboard=True, eval_every_steps=0)
    train(cfg, tmp_path / "run", quiet=True, plot=False)
    acc = EventAccumulator(str(tmp_path / "run" / "seed_1" / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    policy = [e.value for e in acc.Scalars("train/learning_rate")]
    value = [e.value for e in acc.Scalars("train/value_learning_rate")]
    updates = 4096 // (16 * 32)
    assert len(policy) == len(value) == updates
    expected = [cfg.learning_rate * (1 - k / updates) for k in range(updates)]  # progress before each rollout
    np.testing.assert_allclose(policy, expected, rtol=1e-5)
    np.testing.assert_allclose(value, np.array(expected) * cfg.value_learning_rate / cfg.learning_rate, rtol=1e-5)
    assert min(policy) > 0 and min(value) > 0


def test_episode_mode_trains_on_every_finished_episode() -> None:
    cfg = with_overrides(load_preset("reinforce"), {"backend": "gymnasium", "num_envs": 4})
    spec = inspect_env(cfg.env_id)
    policy = make_policy(cfg, spec.obs_dim, spec.act_dim, spec.act_low, spec.act_high)
    collector = Collector(make_vec_env(cfg, 4, seed=3), spec.obs_dim, spec.act_dim)
    finished = []
    rollout = collector.collect(policy, RunningNormalizer(spec.obs_dim, enabled=False), 0, finished.append)
    collector.env.close()
    ends = rollout.terminated | rollout.truncated
    assert len(finished) > 4  # the fast envs finished several episodes while the slowest ran its first
    assert int(ends[rollout.valid].sum()) == len(finished)  # every one of them is in the loss ...
    assert int(rollout.valid.sum()) == sum(ep.length for ep in finished)  # ... with all of its steps
    last_end = rollout.valid.shape[0] - 1 - np.argmax(ends[::-1], axis=0)
    for i in range(4):  # only the steps after each env's last finished episode are left out
        assert rollout.valid[: last_end[i] + 1, i].all() and not rollout.valid[last_end[i] + 1 :, i].any()


def test_summary_records_the_evaluation_cost(tmp_path: Path) -> None:
    cfg = _reacher(total_steps=2048, eval_every_steps=1024, eval_episodes=3)
    train(cfg, tmp_path / "run", quiet=True, plot=False)
    summary = json.loads((tmp_path / "run" / "seed_1" / "summary.json").read_text())
    assert summary["eval_env_steps"] == 2 * 3 * 50 and summary["final_eval_mean_return"] is not None


def test_the_console_and_config_toml_name_the_task_overrides(cli, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = (
        "train",
        "--preset",
        "vpg",
        "--env",
        "Ant-v5",
        "--steps",
        "512",
        "--seeds",
        "1",
        "--workers",
        "1",
        "--quiet",
        "--no-plot",
    )
    proc = cli.main(*args, "--set", "init_log_std=-0.7", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "preset vpg, tuned for Ant: init_log_std=-1.0" in proc.stdout  # applied, then --set won
    header = (out / "config.toml").read_text().splitlines()[0]
    assert header == "# resolved config: preset vpg, with its per-task overrides init_log_std = -1.0"
    assert "init_log_std = -0.7" in (out / "config.toml").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["preset"] == "vpg" and summary["preset_overrides"] == {"init_log_std": -1.0}
