"""Bad input through the real ``mjreinforce train`` (the harness in conftest): exit code 2, one stderr line, no
traceback, and the working directory byte-identical afterwards (nothing left behind that looks like a run).

The cases run in this process through ``main()``; an env check (``non_box_env``) and a user-registered env
(``envpool_unsupported_env``, which needs a prelude) run as real ``mjreinforce`` processes (the run-directory
guards do in test_run_dir_guard.py, the config errors in test_bad_input_corpus.py).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conftest import Case, copies_of, selected_cases
from mjreinforce.config import load_preset, with_overrides
from mjreinforce.training.run import train

# A user-registered Box env that gymnasium can run and envpool does not know.
_REGISTER = textwrap.dedent("""
    import gymnasium
    gymnasium.register(
        "MyPendulum-v0",
        entry_point="gymnasium.envs.mujoco.inverted_pendulum_v5:InvertedPendulumEnv",
        max_episode_steps=1000,
    )
""")


def _make_existing_run(path: Path) -> None:
    cfg = with_overrides(load_preset("tutorial"), {"total_episodes": 2, "seeds": "1", "tensorboard": "false"})
    train(cfg, path, quiet=True, plot=False)


def _train_case(
    args: tuple[str, ...], fragments: tuple[str, ...], out: str = "out", files: tuple[tuple[str, str], ...] = (), **kw
) -> Case:
    """``mjreinforce train ARGS --out OUT`` (unless ARGS name --out or --resume) with a small budget, one seed and
    one worker where ARGS do not say, so a case wrongly let through stays short."""
    if not {"--out", "--resume"} & set(args):
        args = (*args, "--out", out)
    if not {"--episodes", "--steps", "--resume"} & set(args):
        args = (*args, "--episodes", "2")
    for flag in ("--seeds", "--workers"):
        args = args if flag in args else (*args, flag, "1")
    return Case(("train", *args, "--quiet", "--no-plot"), fragments, tuple((p, t.encode()) for p, t in files), **kw)


CASES: dict[str, Case] = {  # in this process, but for one kind of error each: a real process
    "non_box_env": _train_case(("--env", "CartPole-v1"), ("CartPole-v1", "Discrete", "Box"), process=True),
    "unknown_env": _train_case(
        ("--env", "InvertedPendulm-v5"), ("InvertedPendulm-v5", "did you mean", "InvertedPendulum-v5")
    ),
    "zero_episodes": _train_case(("--episodes", "0"), ("total_episodes", "[1, 1e10]")),
    "negative_steps": _train_case(("--steps", "-5"), ("total_steps", "[1, 1e12]", "-5")),
    "both_budgets": _train_case(("--episodes", "3", "--steps", "5"), ("--steps", "--episodes")),
    "gamma_zero": _train_case(("--set", "gamma=0"), ("gamma", "(0, 1]")),
    "gamma_above_one": _train_case(("--set", "gamma=1.5"), ("gamma", "(0, 1]", "1.5")),
    "zero_learning_rate": _train_case(("--set", "learning_rate=0"), ("learning_rate", "(0, 1]")),
    "malformed_set": _train_case(("--set", "foo"), ("--set", "key=value", "'foo'")),
    "unknown_set_key": _train_case(
        ("--set", "lerning_rate=0.001"), ("unknown config key 'lerning_rate'", "learning_rate")
    ),
    "unknown_key_in_config_file": _train_case(
        ("--config", "c.toml"), ("'gama'", "gamma"), files=(("c.toml", "gama = 0.9\n"),)
    ),
    "malformed_config_file": _train_case(
        ("--config", "c.toml"), ("c.toml", "TOML"), files=(("c.toml", "gamma = = 0.9\n"),)
    ),
    "zero_num_envs": _train_case(("--num-envs", "0"), ("num_envs", "[1, 4096]")),
    "negative_rollout_steps": _train_case(("--set", "rollout_steps=-1"), ("rollout_steps",)),
    "init_log_std_beyond_the_clamp": _train_case(("--set", "init_log_std=3"), ("init_log_std", "[-20, 2]", "clamped")),
    "segments_without_a_critic": _train_case(
        ("--preset", "reinforce", "--set", "rollout_steps=32"), ("without a critic", "accept_zero_bootstrap")
    ),
    "value_settings_without_a_critic": _train_case(
        ("--preset", "reinforce", "--set", "value_iterations=5"), ("value_iterations", "without a critic")
    ),
    "envpool_unsupported_env": _train_case(
        ("--env", "MyPendulum-v0", "--backend", "envpool"),
        ("envpool cannot run MyPendulum-v0", "gymnasium"),
        prelude=_REGISTER,
    ),
    "zero_workers": _train_case(("--workers", "0"), ("--workers", "[1, 1024]")),
    "unknown_preset": _train_case(("--preset", "nope"), ("unknown preset 'nope'", "tutorial", "vpg")),
    "existing_run": _train_case(("--out", "existing"), ("already holds a run", "--overwrite")),
    "existing_run_tutorial_preset": _train_case(
        ("--preset", "tutorial", "--out", "existing"), ("already holds a run",)
    ),
    "non_run_directory": _train_case(
        ("--out", "mine"),
        ("not empty", "not a mjreinforce run"),
        files=(("mine/notes.txt", "my notes\n"),),
    ),
    "resume_non_run": _train_case(
        ("--resume", "mine"), ("cannot resume", "mine"), files=(("mine/notes.txt", "my notes\n"),)
    ),
}


@pytest.fixture(scope="module")
def outcomes(bad_inputs, request, tmp_path_factory: pytest.TempPathFactory) -> dict:
    existing = tmp_path_factory.mktemp("template") / "existing"
    _make_existing_run(existing)

    return bad_inputs.run(
        selected_cases(request, CASES), copies_of(existing, tmp_path_factory, "existing"), timeout=180
    )


@pytest.mark.parametrize("name", CASES)
def test_bad_input_is_one_line_exit_2(name: str, outcomes: dict, bad_inputs) -> None:
    bad_inputs.check(CASES[name], outcomes[name])


def test_overwrite_replaces_an_existing_run(cli, tmp_path: Path) -> None:
    out = tmp_path / "existing"
    _make_existing_run(out)
    (out / "seed_1" / "stale.txt").write_text("from the old run\n")
    args = "train --preset tutorial --episodes 3 --seeds 5 --workers 1 --quiet --no-plot --set tensorboard=false"
    args = (*args.split(), "--out", str(out))
    refused = cli.main(*args, cwd=tmp_path)
    assert refused.returncode == 2 and (out / "seed_1" / "stale.txt").exists()
    proc = cli(*args, "--overwrite", cwd=tmp_path)  # a real process
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.glob("seed_*")) == ["seed_5"]  # the old seed_1 is gone
    assert "total_episodes = 3" in (out / "config.toml").read_text()
    assert (out / "summary.json").exists()
