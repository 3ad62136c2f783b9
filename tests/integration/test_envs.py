"""Real MuJoCo envs on both backends: same-step autoreset, flags, env checks, backend choice and
missing packages."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from mjreinforce.config import Config
from mjreinforce.envs.vector import StepResult, inspect_env, make_vec_env, resolve_backend
from mjreinforce.errors import UserError

ENV = "InvertedPendulum-v5"
CFG = Config(env_id=ENV)


def _run(
    backend: str, actions: np.ndarray, seed: int = 0, **make_kwargs: object
) -> tuple[np.ndarray, list[StepResult]]:
    env = make_vec_env(CFG, actions.shape[1], seed, backend=backend, **make_kwargs)
    try:
        first = env.reset()
        return first, [env.step(a) for a in actions]
    finally:
        env.close()


def _assert_same_steps(a: list[StepResult], b: list[StepResult]) -> None:
    for t, (x, y) in enumerate(zip(a, b, strict=True)):
        np.testing.assert_allclose(x.obs, y.obs, rtol=0, atol=1e-7, err_msg=f"obs at step {t}")
        np.testing.assert_allclose(x.final_obs, y.final_obs, rtol=0, atol=1e-7, err_msg=f"final_obs at step {t}")
        np.testing.assert_array_equal(x.rewards, y.rewards, err_msg=f"rewards at step {t}")
        np.testing.assert_array_equal(x.terminated, y.terminated, err_msg=f"terminated at step {t}")
        np.testing.assert_array_equal(x.truncated, y.truncated, err_msg=f"truncated at step {t}")


def test_backends_agree_without_reset_noise_including_episode_ends() -> None:
    # Random pushes make the pole fall within a few steps, so every env ends several episodes.
    actions = np.random.default_rng(0).uniform(-3, 3, size=(80, 3, 1))
    first_g, gym_steps = _run("gymnasium", actions, reset_noise_scale=0.0)
    first_e, pool_steps = _run("envpool", actions, reset_noise_scale=0.0)
    np.testing.assert_array_equal(first_g, np.zeros((3, 4)))
    np.testing.assert_array_equal(first_e, np.zeros((3, 4)))
    _assert_same_steps(gym_steps, pool_steps)

    ends = np.array([s.terminated | s.truncated for s in gym_steps])
    assert ends.sum() >= 6 and ends.any(axis=0).all(), "the action sequence must end episodes in every env"
    for t, i in zip(*np.nonzero(ends), strict=True):
        for steps in (gym_steps, pool_steps):
            s = steps[t]
            # same-step autoreset: obs is the new episode's first observation (the zero state here),
            # final_obs the fallen pole the episode ended in
            np.testing.assert_array_equal(s.obs[i], np.zeros(4))
            assert abs(s.final_obs[i, 1]) > 0.2  # pole angle beyond InvertedPendulum's 0.2 rad limit
            assert s.rewards[i] == 0.0  # v5 gives no reward for the step that drops the pole
    # where nothing ended, final_obs is obs
    for s in gym_steps:
        open_ = ~(s.terminated | s.truncated)
        np.testing.assert_array_equal(s.final_obs[open_], s.obs[open_])


def test_backends_agree_on_time_limit_truncations() -> None:
    # zero force on the exactly balanced pole keeps it up: only the time limit (5 steps) ends episodes
    actions = np.zeros((12, 2, 1))
    _, gym_steps = _run("gymnasium", actions, reset_noise_scale=0.0, max_episode_steps=5)
    _, pool_steps = _run("envpool", actions, reset_noise_scale=0.0, max_episode_steps=5)
    _assert_same_steps(gym_steps, pool_steps)
    truncated = np.array([s.truncated for s in gym_steps])
    assert not np.array([s.terminated for s in gym_steps]).any()
    assert np.flatnonzero(truncated[:, 0]).tolist() == [4, 9] == np.flatnonzero(truncated[:, 1]).tolist()


def test_a_termination_on_the_time_limit_step_is_reported_differently_by_the_backends() -> None:
    # Pinned-down backend difference: when the pole falls on the very step the time limit is reached,
    # gymnasium reports terminated AND truncated, envpool only truncated (its terminated = done & ~trunc).
    # With bootstrap_truncated the learner then bootstraps V(final obs) on envpool but not on gymnasium.
    push = np.full((50, 1, 1), 3.0)
    _, free = _run("gymnasium", push, reset_noise_scale=0.0)
    fall = next(t for t, s in enumerate(free) if s.terminated[0])  # 0-based step at which the pole falls
    limit = fall + 1
    _, g = _run("gymnasium", push[:limit], reset_noise_scale=0.0, max_episode_steps=limit)
    _, e = _run("envpool", push[:limit], reset_noise_scale=0.0, max_episode_steps=limit)
    assert g[-1].terminated[0] and g[-1].truncated[0]
    assert e[-1].truncated[0] and not e[-1].terminated[0]
    np.testing.assert_allclose(g[-1].final_obs, e[-1].final_obs, atol=1e-9)


def test_reset_noise_gives_different_start_states_per_backend_but_each_is_reproducible() -> None:
    noise = 0.01  # InvertedPendulum's default reset_noise_scale: qpos, qvel ~ U(-0.01, 0.01)
    still = np.zeros((1, 4, 1))
    first_g, _ = _run("gymnasium", still, seed=7)
    first_g2, _ = _run("gymnasium", still, seed=7)
    first_e, _ = _run("envpool", still, seed=7)
    first_e2, _ = _run("envpool", still, seed=7)
    for first in (first_g, first_e):
        assert np.all(np.abs(first) <= noise) and np.all(first != 0)
        assert len({tuple(row) for row in first}) == 4  # each env its own start state
    np.testing.assert_array_equal(first_g, first_g2)
    np.testing.assert_array_equal(first_e, first_e2)
    # the backends draw from different RNGs, so the same seed gives different start states:
    # trajectories of the two backends agree only statistically, not step by step
    assert not np.allclose(first_g, first_e)
    # gymnasium: env i is seeded seed + i, exactly as a plain gym.make env reset(seed=seed + i)
    for i in range(4):
        single = gym.make(ENV)
        obs, _ = single.reset(seed=7 + i)
        single.close()
        np.testing.assert_array_equal(first_g[i], obs)


@pytest.mark.parametrize("backend", ["gymnasium", "envpool"])
def test_later_resets_continue_the_rng_instead_of_reseeding(backend: str) -> None:
    # The tutorial's defect was reset(seed=seed) before every episode: every episode started the same.
    actions = np.full((200, 1, 1), 3.0)
    first, steps = _run(backend, actions, seed=3)
    starts = [first[0]] + [s.obs[0] for s in steps if s.terminated[0] or s.truncated[0]]
    assert len(starts) >= 5
    assert len({tuple(x) for x in starts}) == len(starts)


# --------------------------------------------------------------------------
# env checks and backend choice
# --------------------------------------------------------------------------


def test_inspect_env_reports_dims_and_bounds() -> None:
    spec = inspect_env(ENV)
    assert (spec.obs_dim, spec.act_dim) == (4, 1)
    np.testing.assert_array_equal(spec.act_low, [-3.0])
    np.testing.assert_array_equal(spec.act_high, [3.0])


def test_unknown_env_id_suggests_the_closest() -> None:
    with pytest.raises(UserError, match=r"unknown env id 'InvertedPendulm-v5'.*did you mean.*InvertedPendulum-v5"):
        inspect_env("InvertedPendulm-v5")
    with pytest.raises(UserError, match=r"unknown env id 'Qwertyuiop-v0'$"):
        inspect_env("Qwertyuiop-v0")


def test_discrete_action_space_is_rejected() -> None:
    with pytest.raises(UserError, match="CartPole-v1 has a Discrete action space") as exc:
        inspect_env("CartPole-v1")
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, "envpool"),  # auto: envpool is installed and knows InvertedPendulum-v5
        ({"backend": "gymnasium"}, "gymnasium"),
        ({"backend": "envpool"}, "envpool"),
        ({"physics": ("gravity=-4.9",)}, "gymnasium"),  # physics overrides are gymnasium-only
        ({"randomize": ("gravity=-12:-7",)}, "gymnasium"),
        ({"backend": "gymnasium", "physics": ("gravity=-4.9",)}, "gymnasium"),
        ({"env_id": "HalfCheetah-v2"}, "gymnasium"),  # auto with an id envpool does not know
    ],
)
def test_resolve_backend(changes: dict[str, object], expected: str) -> None:
    assert resolve_backend(Config(**changes)) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"backend": "envpool", "env_id": "HalfCheetah-v2"}, "envpool cannot run HalfCheetah-v2"),
        ({"backend": "envpool", "physics": ("gravity=-4.9",)}, "gymnasium backend"),
    ],
)
def test_resolve_backend_errors(changes: dict[str, object], message: str) -> None:
    with pytest.raises(UserError, match=message):
        resolve_backend(Config(**changes))  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# missing or broken packages, in a fresh interpreter
# --------------------------------------------------------------------------

_NOT_INSTALLED = "sys.modules[{name!r}] = None  # import fails with ModuleNotFoundError, find_spec gives None"


_PROBE = textwrap.dedent("""
    from mjreinforce.config import Config
    from mjreinforce.envs.vector import resolve_backend
    from mjreinforce.errors import UserError
    print(resolve_backend(Config()))
    try:
        resolve_backend(Config(backend="envpool"))
    except UserError as exc:
        print("UserError:", exc)
""")
_NO_ENVPOOL = (
    "UserError: backend 'envpool' asked for but envpool is not installed or fails to import (pip install envpool)"
)


def _python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (this one's), with ``env`` added to the environment."""
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True
    )


def test_backend_choice_without_envpool(tmp_path: Path) -> None:
    proc = _python("import sys\n" + _NOT_INSTALLED.format(name="envpool") + _PROBE, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["gymnasium", _NO_ENVPOOL]


def test_backend_choice_with_a_broken_envpool_install(tmp_path: Path) -> None:
    # envpool present but failing to import (a binary mismatch, a missing shared library): `auto` must
    # fall back to gymnasium, which can run the task, and `envpool` must be a one-line UserError.
    # (Through the CLI the current code ends `mjreinforce train` with an ImportError traceback.)
    fake = tmp_path / "site" / "envpool"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('raise ImportError("libenvpool.so: cannot open shared object file")\n')
    proc = _python(_PROBE, tmp_path, PYTHONPATH=str(tmp_path / "site"))
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 0
    assert proc.stdout.splitlines()[0] == "gymnasium"
    assert proc.stdout.splitlines()[1].startswith("UserError: ")


def test_cli_without_envpool(cli, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "--episodes", "3", "--seeds", "1", "--quiet", "--workers", "1", "--backend", "envpool"]
    proc = cli(*args, "--out", str(out), cwd=tmp_path, prelude=_NOT_INSTALLED.format(name="envpool"))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["mjreinforce train: error: " + _NO_ENVPOOL.removeprefix("UserError: ")]
    assert not out.exists()


def test_cli_without_mujoco_is_a_one_line_error(cli, one_error_line, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "--episodes", "3", "--seeds", "1", "--quiet", "--workers", "1"]
    proc = cli(*args, "--out", str(out), cwd=tmp_path, prelude=_NOT_INSTALLED.format(name="mujoco"))
    assert "mujoco" in one_error_line(proc, "train").lower()
    assert not out.exists()
