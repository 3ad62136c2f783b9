"""Bad input through the real ``mjreinforce train`` in a subprocess: exit code 2, one stderr line, no
traceback, and nothing left behind that looks like a run.

The error cases run concurrently (a few at a time) in one module fixture, since every subprocess pays
for importing torch; each case is still its own test.
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from mjreinforce.config import load_preset, with_overrides
from mjreinforce.training.run import train


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    fragments: tuple[str, ...]  # what the one stderr line must mention
    prelude: str = ""
    out: str = "out"  # --out directory (relative to the case's working directory); must not appear
    files: tuple[tuple[str, str], ...] = ()  # files to create first: (name, text)


# A user-registered Box env that gymnasium can run and envpool does not know.
_REGISTER = textwrap.dedent("""
    import gymnasium
    gymnasium.register(
        "MyPendulum-v0",
        entry_point="gymnasium.envs.mujoco.inverted_pendulum_v5:InvertedPendulumEnv",
        max_episode_steps=1000,
    )
""")

CASES: dict[str, Case] = {
    "non_box_env": Case(("--env", "CartPole-v1"), ("CartPole-v1", "Discrete", "Box")),
    "unknown_env": Case(("--env", "InvertedPendulm-v5"), ("InvertedPendulm-v5", "did you mean", "InvertedPendulum-v5")),
    "zero_episodes": Case(("--episodes", "0"), ("total_episodes", "[1, 1e10]")),
    "negative_steps": Case(("--steps", "-5"), ("total_steps", "[1, 1e12]", "-5")),
    "both_budgets": Case(("--episodes", "3", "--steps", "5"), ("--steps", "--episodes")),
    "gamma_zero": Case(("--set", "gamma=0"), ("gamma", "(0, 1]")),
    "gamma_above_one": Case(("--set", "gamma=1.5"), ("gamma", "(0, 1]", "1.5")),
    "zero_learning_rate": Case(("--set", "learning_rate=0"), ("learning_rate", "(0, 1]")),
    "malformed_set": Case(("--set", "foo"), ("--set", "key=value", "'foo'")),
    "unknown_set_key": Case(("--set", "lerning_rate=0.001"), ("unknown config key 'lerning_rate'", "learning_rate")),
    "unknown_key_in_config_file": Case(
        ("--config", "c.toml"), ("'gama'", "gamma"), files=(("c.toml", "gama = 0.9\n"),)
    ),
    "malformed_config_file": Case(("--config", "c.toml"), ("c.toml", "TOML"), files=(("c.toml", "gamma = = 0.9\n"),)),
    "zero_num_envs": Case(("--num-envs", "0"), ("num_envs", "[1, 4096]")),
    "negative_rollout_steps": Case(("--set", "rollout_steps=-1"), ("rollout_steps",)),
    "init_log_std_beyond_the_clamp": Case(("--set", "init_log_std=3"), ("init_log_std", "[-20, 2]", "clamped")),
    "segments_without_a_critic": Case(
        ("--preset", "reinforce", "--set", "rollout_steps=32"), ("without a critic", "accept_zero_bootstrap")
    ),
    "value_settings_without_a_critic": Case(
        ("--preset", "reinforce", "--set", "value_iterations=5"), ("value_iterations", "without a critic")
    ),
    "envpool_unsupported_env": Case(
        ("--env", "MyPendulum-v0", "--backend", "envpool"),
        ("envpool cannot run MyPendulum-v0", "gymnasium"),
        prelude=_REGISTER,
    ),
    "zero_workers": Case(("--workers", "0"), ("--workers", "[1, 1024]")),
    "unknown_preset": Case(("--preset", "nope"), ("unknown preset 'nope'", "tutorial", "vpg")),
    "existing_run": Case(("--out", "existing"), ("already holds a run", "--overwrite"), out="existing"),
    "existing_run_tutorial_preset": Case(
        ("--preset", "tutorial", "--out", "existing"), ("already holds a run",), out="existing"
    ),
    "non_run_directory": Case(
        ("--out", "mine"),
        ("not empty", "not a mjreinforce run"),
        out="mine",
        files=(("mine/notes.txt", "my notes\n"),),
    ),
    "resume_non_run": Case(
        ("--resume", "mine"), ("cannot resume", "mine"), out="mine", files=(("mine/notes.txt", "my notes\n"),)
    ),
}


def _make_existing_run(path: Path) -> None:
    cfg = with_overrides(load_preset("tutorial"), {"total_episodes": 2, "seeds": "1", "tensorboard": "false"})
    train(cfg, path, quiet=True, plot=False)


def _snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@dataclass(frozen=True)
class Outcome:
    proc: subprocess.CompletedProcess[str]
    workdir: Path
    before: dict[str, bytes] | None  # the --out directory's files before the call, when it existed


@pytest.fixture(scope="module")
def outcomes(cli, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    existing = tmp_path_factory.mktemp("template") / "existing"
    _make_existing_run(existing)

    def run(name: str) -> Outcome:
        case = CASES[name]
        workdir = tmp_path_factory.mktemp(name)
        for rel, text in case.files:
            (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
            (workdir / rel).write_text(text)
        if case.out == "existing":
            shutil.copytree(existing, workdir / "existing")
        out = workdir / case.out
        before = _snapshot(out) if out.exists() else None
        args = case.args if {"--out", "--resume"} & set(case.args) else (*case.args, "--out", case.out)
        # a small budget, one seed and one worker keep any case that wrongly gets through short
        if not {"--episodes", "--steps", "--resume"} & set(args):
            args = (*args, "--episodes", "2")
        for flag in ("--seeds", "--workers"):
            args = args if flag in args else (*args, flag, "1")
        proc = cli("train", *args, "--quiet", "--no-plot", cwd=workdir, prelude=case.prelude, timeout=180)
        return Outcome(proc, workdir, before)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(CASES, pool.map(run, CASES), strict=True))


@pytest.mark.parametrize("name", CASES)
def test_bad_input_is_one_line_exit_2(name: str, outcomes: dict[str, Outcome], one_error_line) -> None:
    case, outcome = CASES[name], outcomes[name]
    one_error_line(outcome.proc, "train", case.fragments)
    out = outcome.workdir / case.out
    if outcome.before is None:
        assert not out.exists(), f"{out} was created"
    else:
        assert _snapshot(out) == outcome.before, f"{out} was changed"


def test_overwrite_replaces_an_existing_run(cli, tmp_path: Path) -> None:
    out = tmp_path / "existing"
    _make_existing_run(out)
    (out / "seed_1" / "stale.txt").write_text("from the old run\n")
    args = "train --preset tutorial --episodes 3 --seeds 5 --workers 1 --quiet --no-plot --set tensorboard=false"
    args = (*args.split(), "--out", str(out))
    refused = cli(*args, cwd=tmp_path)
    assert refused.returncode == 2 and (out / "seed_1" / "stale.txt").exists()
    proc = cli(*args, "--overwrite", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.glob("seed_*")) == ["seed_5"]  # the old seed_1 is gone
    assert "total_episodes = 3" in (out / "config.toml").read_text()
    assert (out / "summary.json").exists()
