"""Sim-to-real perturbations on real MuJoCo: each one does what it says, nothing else, reproducibly, and a
resumed run continues them exactly."""

from __future__ import annotations

import json
import os
import signal
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np
import pytest

from mjreinforce.config import Config, load_preset, validate, with_overrides
from mjreinforce.config_perturbations import PushSpec, Uniform
from mjreinforce.envs.perturbed import PerturbedVecEnv
from mjreinforce.envs.pushes import PushWrapper
from mjreinforce.envs.vector import envpool_available, make_vec_env, resolve_backend
from mjreinforce.errors import UserError
from mjreinforce.training.evaluation import eval_config
from mjreinforce.training.loop import train_seed
from mjreinforce.training.progress import ProgressEvent, SilentProgress

PENDULUM = Config(env_id="InvertedPendulum-v5", backend="gymnasium")
needs_envpool = pytest.mark.skipif(not envpool_available(), reason="envpool is not installed")


def perturbed(base: Config = PENDULUM, **keys: object) -> Config:
    return validate(with_overrides(base, {"total_steps": 1000, **keys}))


def mujoco_states(env: PerturbedVecEnv) -> list[np.ndarray]:
    state = env.get_state()
    assert state is not None
    return [s["mujoco"] for s in state["envs"]]


def random_actions(steps: int, num_envs: int, act_dim: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-3, 3, (steps, num_envs, act_dim))


class Shifted:
    """The actions a plain env gets to match a delay of ``k``: the action of ``k`` steps earlier in the same
    env's episode, zeros for the first ``k`` steps of each episode."""

    def __init__(self, actions: np.ndarray, k: int) -> None:
        self.actions, self.k = actions, k  # (T, N, act_dim)
        self.since = np.zeros(actions.shape[1], dtype=np.int64)  # steps of each env's episode so far

    def at(self, t: int) -> np.ndarray:
        out = np.zeros_like(self.actions[t])
        late = self.since >= self.k
        out[late] = self.actions[t - self.k, late]
        return out

    def stepped(self, ended: np.ndarray) -> None:
        self.since += 1
        self.since[ended] = 0


# --------------------------------------------------------------------------
# delays
# --------------------------------------------------------------------------
def test_an_action_delay_of_3_is_the_plain_env_stepped_with_the_actions_shifted_by_3() -> None:
    env, plain = make_vec_env(perturbed(action_delay_steps=3), 3, 7), make_vec_env(PENDULUM, 3, 7)
    actions = random_actions(400, 3, 1)
    env.reset()
    plain.reset()
    ended = np.zeros((400, 3), dtype=bool)
    shifted = Shifted(actions, 3)
    for t in range(400):  # the plain env needs to know where episodes end: step both in lockstep
        step, reference = env.step(actions[t]), plain.step(shifted.at(t))
        ended[t] = step.terminated | step.truncated
        shifted.stepped(ended[t])
        for got, want in zip(mujoco_states(env), [s["mujoco"] for s in plain.get_state()], strict=True):
            np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(step.rewards, reference.rewards)
        np.testing.assert_array_equal(step.terminated, reference.terminated)
    assert ended.sum() > 20  # random actions: many episodes, so the queue restarts with zeros many times
    env.close()
    plain.close()


@needs_envpool
def test_delays_work_on_envpool() -> None:
    cfg = perturbed(replace(PENDULUM, backend="envpool"), action_delay_steps=2, obs_delay_steps=1)
    env, plain = (
        make_vec_env(cfg, 2, 3),
        make_vec_env(replace(cfg, action_delay_steps=None, obs_delay_steps=None), 2, 3),
    )
    assert isinstance(env, PerturbedVecEnv) and resolve_backend(cfg) == "envpool"
    actions = random_actions(60, 2, 1)
    first = env.reset()
    np.testing.assert_array_equal(first, 0.0)  # delayed by 1: the queue's zeros
    previous = plain.reset()
    ended_at = np.zeros((60, 2), dtype=bool)
    shifted = Shifted(actions, 2)
    for t in range(60):
        step, reference = env.step(actions[t]), plain.step(shifted.at(t))
        ended_at[t] = step.terminated | step.truncated
        shifted.stepped(ended_at[t])
        kept = ~ended_at[t]  # where an episode ended at t, the policy sees the new one's zeros
        np.testing.assert_array_equal(step.obs[kept], previous[kept])  # one step late
        np.testing.assert_array_equal(step.obs[~kept], 0.0)
        np.testing.assert_array_equal(step.rewards, reference.rewards)
        previous = reference.obs
    assert ended_at.any()


# --------------------------------------------------------------------------
# noise
# --------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["gymnasium", pytest.param("envpool", marks=needs_envpool)])
def test_obs_noise_has_the_asked_std_per_dimension_and_never_reaches_the_rewards(backend: str) -> None:
    stds = (0.5, 0.0, 0.1, 2.0)
    base = replace(PENDULUM, backend=backend)
    env, plain = make_vec_env(perturbed(base, obs_noise_std=list(stds)), 8, 5), make_vec_env(base, 8, 5)
    noise = [env.reset() - plain.reset()]
    for actions in random_actions(500, 8, 1, seed=1) / 10:  # small actions: longer episodes
        step, reference = env.step(actions), plain.step(actions)
        np.testing.assert_array_equal(step.rewards, reference.rewards)
        np.testing.assert_array_equal(step.terminated | step.truncated, reference.terminated | reference.truncated)
        ended = step.terminated | step.truncated
        noise += [step.obs - reference.obs, (step.final_obs - reference.final_obs)[ended]]
    samples = np.concatenate(noise)  # (~8000, 4)
    n = samples.shape[0]
    np.testing.assert_allclose(samples.std(0), stds, rtol=0.05)
    assert np.all(np.abs(samples.mean(0)) <= 4 * np.asarray(stds) / np.sqrt(n))
    assert np.all(samples[:, 1] == 0.0)


def test_action_noise_is_in_half_widths_before_the_clip() -> None:
    env = make_vec_env(perturbed(env_id="HalfCheetah-v5", action_noise_std=0.25), 4, 2)
    env.reset()
    half_width = 1.0  # HalfCheetah's actions are in [-1, 1]
    actions = np.full((4, 6), 0.5)
    applied = []
    for _ in range(800):
        env.step(actions)
        applied.append([e.unwrapped.data.ctrl.copy() for e in env.env.env.envs])  # type: ignore[union-attr]
    ctrl = np.asarray(applied).reshape(-1)
    assert ctrl.max() == 1.0 and ctrl.min() > -1.0  # clipped into the box after the noise
    # the same law drawn here: clip(0.5 + 0.25 * half_width * N(0, 1), -1, 1)
    reference = np.clip(0.5 + 0.25 * half_width * np.random.default_rng(0).standard_normal(10**6), -1, 1)
    assert abs(ctrl.mean() - reference.mean()) < 4 * reference.std() / np.sqrt(ctrl.size)
    np.testing.assert_allclose(ctrl.std(), reference.std(), rtol=0.03)
    np.testing.assert_allclose(np.mean(ctrl == 1.0), np.mean(reference == 1.0), atol=0.005)


# --------------------------------------------------------------------------
# pushes
# --------------------------------------------------------------------------
def _velocity(env: gym.Env, body: int) -> np.ndarray:
    data = env.unwrapped.data  # type: ignore[attr-defined]
    return data.cvel[body].copy()


def test_a_push_changes_the_bodys_velocity_at_its_scheduled_steps_only() -> None:
    push = PushSpec("torso", Uniform(30.0, 40.0), Uniform(20, 40, integer=True), 3)
    env = PushWrapper(gym.make("Hopper-v5"), push, seed=11)
    plain = gym.make("Hopper-v5")
    model, data = env.unwrapped.model, env.unwrapped.data  # type: ignore[attr-defined]
    state = np.empty(mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_INTEGRATION))
    env.reset(seed=1)
    plain.reset(seed=1)
    pushed_steps, starts = [], []
    for t in range(1, 201):
        mujoco.mj_getState(model, data, state, mujoco.mjtState.mjSTATE_INTEGRATION)  # the counterfactual: the
        p_model, p_data = plain.unwrapped.model, plain.unwrapped.data  # type: ignore[attr-defined]
        mujoco.mj_setState(p_model, p_data, state, mujoco.mjtState.mjSTATE_INTEGRATION)  # same state, no push
        p_data.xfrc_applied[:] = 0.0
        action = np.zeros(3)
        if env.next_push == t:
            starts.append(t)
        env.step(action)
        plain.step(action)
        differs = not np.allclose(_velocity(env, env.body), _velocity(plain, env.body), atol=1e-9)
        assert differs == bool(env.last_force.any()), t
        if differs:
            pushed_steps.append(t)
            assert 30.0 <= np.linalg.norm(env.last_force) <= 40.0 and env.last_force[2] == 0.0
    assert starts and [t for s in starts for t in range(s, s + 3) if t <= 200] == pushed_steps
    assert starts[0] in range(20, 41) and all(20 <= gap <= 40 for gap in np.diff(starts))
    assert not data.xfrc_applied.any() or env.remaining  # nothing left applied between pushes


def test_an_unknown_push_body_lists_the_bodies() -> None:
    with pytest.raises(UserError, match="no body named 'nosuch' in .*torso"):
        make_vec_env(perturbed(env_id="Hopper-v5", push_body="nosuch", push_force="1:2", push_interval_steps="5"), 1, 0)


def test_pushes_need_gymnasium_auto_picks_it_and_envpool_is_refused() -> None:
    cfg = perturbed(replace(PENDULUM, backend="auto"), push_body="pole", push_force="1", push_interval_steps="9")
    assert resolve_backend(cfg) == "gymnasium"
    with pytest.raises(UserError, match="pushes .* need MuJoCo's simulator data"):
        resolve_backend(replace(cfg, backend="envpool"))
    if envpool_available():  # noise and delays alone stay on envpool
        assert resolve_backend(replace(cfg, push_body=None, push_force=None, push_interval_steps=None,
                                       obs_noise_std=(0.1,))) == "envpool"  # fmt: skip


# --------------------------------------------------------------------------
# seeds, evaluation, checkpoints, resume
# --------------------------------------------------------------------------
ALL = {
    "obs_noise_std": 0.05,
    "action_noise_std": 0.2,
    "action_delay_steps": "0:2",
    "obs_delay_steps": "0:1",
    "push_body": "pole",
    "push_force": "5:20",
    "push_interval_steps": "4:9",
    "push_duration_steps": 2,
}


def _trajectory(cfg: Config, seed: int, steps: int = 150) -> list[np.ndarray]:
    env = make_vec_env(cfg, 2, seed)
    out = [env.reset()]
    for actions in random_actions(steps, 2, 1, seed=3) / 5:
        step = env.step(actions)
        out += [step.obs, step.final_obs, step.rewards]
    env.close()
    return out


def test_the_same_seed_gives_the_same_noise_delays_and_pushes_and_another_seed_others() -> None:
    cfg = perturbed(**ALL)
    first, again, other = _trajectory(cfg, 4), _trajectory(cfg, 4), _trajectory(cfg, 5)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_a_restored_env_state_continues_the_perturbations_exactly() -> None:
    cfg = perturbed(**ALL)
    env, copy = make_vec_env(cfg, 2, 8), make_vec_env(cfg, 2, 99)
    actions = random_actions(200, 2, 1, seed=4) / 5
    env.reset()
    copy.reset()
    for a in actions[:77]:
        env.step(a)
    copy.set_state(env.get_state())
    for a in actions[77:]:
        got, want = copy.step(a), env.step(a)
        for x, y in zip(got, want, strict=True):
            np.testing.assert_array_equal(x, y)


def test_evaluation_is_unperturbed_unless_the_config_says_so() -> None:
    cfg = perturbed(**ALL)
    plain = eval_config(cfg)
    assert all(getattr(plain, key) is None for key in ALL) and plain.eval_perturbed is None
    assert eval_config(replace(cfg, eval_perturbed=True)).action_delay_steps == "0:2"
    asked = eval_config(cfg, perturb=["obs_delay_steps=3", "obs_delay_steps=4"])
    assert asked.obs_delay_steps == "4" and asked.push_body is None
    with pytest.raises(UserError, match="unknown perturbation key 'gravity'"):
        eval_config(cfg, perturb=["gravity=3"])


class _StopAfter(SilentProgress):
    """Sends this process SIGINT after ``updates`` updates: the loop checkpoints and stops, as on Ctrl-C."""

    def __init__(self, updates: int) -> None:
        self.updates, self.seen = updates, 0

    def update(self, event: ProgressEvent) -> None:
        self.seen += not event.final
        if self.seen == self.updates and not event.final:
            os.kill(os.getpid(), signal.SIGINT)


def test_a_resumed_run_continues_noise_delays_and_pushes_exactly(tmp_path: Path, read_csv) -> None:
    settings = {
        **ALL,
        "backend": "gymnasium",
        "num_envs": 2,
        "rollout_steps": 32,
        "total_steps": 1280,
        "eval_every_steps": 256,
        "eval_episodes": 2,
        "eval_perturbed": True,
        "checkpoint_every": 4,
        "tensorboard": False,
    }
    cfg = validate(with_overrides(load_preset("vpg"), settings))
    train_seed(cfg, 1, tmp_path / "whole", SilentProgress())
    with pytest.raises(KeyboardInterrupt):
        train_seed(cfg, 1, tmp_path / "resumed", _StopAfter(7))
    assert len(read_csv(tmp_path / "resumed" / "evals.csv")) < len(read_csv(tmp_path / "whole" / "evals.csv"))
    train_seed(cfg, 1, tmp_path / "resumed", SilentProgress(), resume=True)
    for table in ("episodes.csv", "evals.csv"):
        want = read_csv(tmp_path / "whole" / table, drop=("wall_seconds",))
        assert read_csv(tmp_path / "resumed" / table, drop=("wall_seconds",)) == want and len(want) > 4, table


def test_the_cli_says_why_auto_picks_gymnasium_and_eval_applies_only_what_it_is_asked(cli, tmp_path: Path) -> None:
    pushes = ("push_body=pole", "push_force=1:5", "push_interval_steps=20:30")
    args = ["train", "--episodes", "4", "--seeds", "1", "--workers", "1", "--quiet", "--no-plot", "--out", "run"]
    proc = cli.main(*args, "--no-tensorboard", *(x for item in pushes for x in ("--set", item)), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "backend: gymnasium (pushes need MuJoCo's simulator data" in proc.stdout
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["backend"] == "gymnasium"
    plain = cli.main("eval", "run", "--episodes", "2", "--out", "plain.json", cwd=tmp_path)
    noisy = cli.main(
        "eval", "run", "--episodes", "2", "--perturb", "obs_noise_std=0.1", "--out", "noisy.json", cwd=tmp_path
    )
    assert plain.returncode == 0 and noisy.returncode == 0, (plain.stderr, noisy.stderr)
    assert json.loads((tmp_path / "plain.json").read_text())["perturbations"] == []  # training's pushes stripped
    assert json.loads((tmp_path / "noisy.json").read_text())["perturbations"] == ["obs_noise_std=0.1"]
    assert "perturbations: obs_noise_std=0.1" in noisy.stdout and "backend: gymnasium" not in noisy.stdout
    pushed = cli.main(
        "eval", "run", "--episodes", "1", *(x for item in pushes for x in ("--perturb", item)), cwd=tmp_path
    )
    assert pushed.returncode == 0 and "backend: gymnasium (pushes need" in pushed.stdout, pushed.stderr
