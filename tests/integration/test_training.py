"""End-to-end training on real MuJoCo: determinism, faithfulness to the tutorial, learning, the CLI's run
directory, resume after SIGKILL, TensorBoard."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.tutorial_reference import run_tutorial
from conftest import wait_for_checkpoint
from mjreinforce.config import Config, from_dict, load_preset, load_toml, read_toml, with_overrides
from mjreinforce.trained.loading import load_policy
from mjreinforce.training.run import train

EPISODE_HEADER = "seed,episode,env_steps,return,length,terminated,truncated,wall_seconds"
EVAL_HEADER = "seed,update,env_steps,wall_seconds,eval_mean_return,eval_std_return,eval_mean_length"
SEED_SUMMARY_KEYS = {
    "seed",
    "episodes",
    "env_steps",
    "wall_seconds",
    "final_window_mean_return",
    "steps_per_second",
    "status",
    "steps_to_target",
    "seconds_to_target",
    "best_eval_mean_return",
}


def preset(name: str, **overrides: object) -> Config:
    return with_overrides(load_preset(name), {"tensorboard": False, **overrides})


def returns_of(run_dir: Path, seed: int, read_csv) -> list[float]:
    return [float(row["return"]) for row in read_csv(run_dir / f"seed_{seed}" / "episodes.csv")]


# --------------------------------------------------------------------------
# determinism
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("tutorial", {"total_episodes": 50, "seeds": (3,)}),
        # envpool (auto), several envs, critic + GAE, evaluations every 2 updates
        ("vpg", {"total_steps": 4096, "seeds": (2,), "eval_every_steps": 1024}),
    ],
)
def test_same_config_and_seed_give_identical_runs(name: str, overrides: dict, tmp_path: Path, read_csv) -> None:
    cfg = preset(name, **overrides)
    seed = cfg.seeds[0]
    a = train(cfg, tmp_path / "a", quiet=True, plot=False)
    b = train(cfg, tmp_path / "b", quiet=True, plot=False)
    rows_a = read_csv(tmp_path / "a" / f"seed_{seed}" / "episodes.csv", drop=("wall_seconds",))
    rows_b = read_csv(tmp_path / "b" / f"seed_{seed}" / "episodes.csv", drop=("wall_seconds",))
    assert len(rows_a) >= (50 if name == "tutorial" else 100)
    assert rows_a == rows_b
    evals_a = read_csv(tmp_path / "a" / f"seed_{seed}" / "evals.csv", drop=("wall_seconds",))
    assert evals_a == read_csv(tmp_path / "b" / f"seed_{seed}" / "evals.csv", drop=("wall_seconds",))
    updates = 0 if cfg.episode_mode else a.seeds[seed].env_steps // (cfg.num_envs * cfg.rollout_steps)
    assert len(evals_a) == updates // 2 and (name == "tutorial" or len(evals_a) >= 2)
    assert a.seeds[seed].env_steps == b.seeds[seed].env_steps
    # and a different seed really gives a different run
    other = train(with_overrides(cfg, {"seeds": str(seed + 1)}), tmp_path / "c", quiet=True, plot=False)
    assert returns_of(tmp_path / "c", seed + 1, read_csv) != [float(r["return"]) for r in rows_a]
    assert other.seeds[seed + 1].status == "finished"


# --------------------------------------------------------------------------
# faithfulness to the tutorial
# --------------------------------------------------------------------------
# The reference is benchmarks/tutorial_reference.py (the tutorial's per-step loop, also timed by the
# benchmark), here with its one defect fixed as in our preset: the env is seeded once with
# reset(seed=seed) and later resets are unseeded.


def test_tutorial_preset_reproduces_the_tutorials_loop(tmp_path: Path, read_csv) -> None:
    episodes, seed = 100, 1
    reference = run_tutorial("InvertedPendulum-v4", episodes, seed, reseed_every_episode=False)
    expected = reference.returns
    train(preset("tutorial", total_episodes=episodes, seeds=(seed,)), tmp_path / "run", quiet=True, plot=False)
    # Episode returns agree exactly: the same initial weights, the same Normal draws, the same envs. Our
    # batched log-probs and sum differ from the per-step graph only in float rounding (checked below),
    # which has not changed a single sampled episode length in 300 episodes for seed 1.
    assert returns_of(tmp_path / "run", seed, read_csv) == expected
    assert len(set(expected)) > 5  # a real, varied learning curve, not a constant
    ours = load_policy(tmp_path / "run").policy
    theirs = dict(reference.agent.net.named_parameters())
    for name, param in ours.named_parameters():
        ref = theirs[
            name.replace("policy_mean_net.", "policy_mean_net.0.").replace("policy_stddev_net.", "policy_stddev_net.0.")
        ]
        torch.testing.assert_close(param.detach(), ref.detach(), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------
# learning to the target
# --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "seed", "total_steps"),
    [
        # measured with the presets as tuned: seeds 1, 2, 3 reached 1000 after
        ("vpg", 1, 150_000),  # ~22k, ~22k, ~13k steps
        ("reinforce", 1, 250_000),  # ~78k, ~100k, ~39k steps
    ],
)
def test_preset_reaches_the_maximum_return(name: str, seed: int, total_steps: int, tmp_path: Path, read_csv) -> None:
    cfg = preset(name, seeds=(seed,), total_steps=total_steps, target_return=1000.0)
    result = train(cfg, tmp_path / "run", quiet=True, plot=False)
    r = result.seeds[seed]
    assert r.steps_to_target is not None, f"best evaluation {r.best_eval_mean_return}"
    assert r.status == "finished" and r.best_eval_mean_return == 1000.0
    assert r.steps_to_target == r.env_steps < total_steps  # stopped at the target, inside the budget
    evals = read_csv(tmp_path / "run" / f"seed_{seed}" / "evals.csv")
    assert float(evals[-1]["eval_mean_return"]) == 1000.0 and float(evals[-1]["eval_mean_length"]) == 1000.0
    assert all(float(e["eval_mean_return"]) < 1000.0 for e in evals[:-1])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["seeds"][str(seed)]["steps_to_target"] == r.steps_to_target


# --------------------------------------------------------------------------
# a short real run through the CLI
# --------------------------------------------------------------------------

EPISODES, LOG_EVERY = 150, 50  # per seed; a console line every LOG_EVERY episodes
_LINE = re.compile(r"^seed (\d+) \| episode (\d+) \| env steps (\d+) \| mean return \(window\) ([\d.]+) \|")


@pytest.fixture(scope="module")
def cli_run(cli, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("cli") / "run"
    args = f"train --preset tutorial --episodes {EPISODES} --seeds 1,2 --workers 1 --quiet"
    proc = cli(*args.split(), "--set", f"log_every_episodes={LOG_EVERY}", "--out", str(out), cwd=out.parent)
    assert proc.returncode == 0, proc.stderr
    return out, proc


@pytest.mark.slow
def test_cli_run_directory(cli_run, read_csv) -> None:
    out, proc = cli_run
    assert "Traceback" not in proc.stderr
    expected_cfg = with_overrides(
        load_preset("tutorial"), {"total_episodes": EPISODES, "seeds": "1,2", "log_every_episodes": LOG_EVERY}
    )
    assert load_toml(out / "config.toml") == expected_cfg
    assert from_dict(read_toml(out / "config.toml")) == expected_cfg  # what --resume reads
    assert sorted(p.name for p in out.glob("seed_*")) == ["seed_1", "seed_2"]

    summary = json.loads((out / "summary.json").read_text())
    assert (summary["env_id"], summary["algorithm"], summary["preset"]) == (
        "InvertedPendulum-v4",
        "REINFORCE",
        "tutorial",
    )
    assert set(summary["seeds"]) == {"1", "2"}
    for seed in (1, 2):
        sdir = out / f"seed_{seed}"
        assert (sdir / "episodes.csv").read_text().splitlines()[0] == EPISODE_HEADER
        assert (sdir / "evals.csv").read_text().splitlines() == [EVAL_HEADER]  # eval_every_steps = 0
        rows = read_csv(sdir / "episodes.csv")
        assert [int(r["episode"]) for r in rows] == list(range(1, EPISODES + 1))
        assert {r["seed"] for r in rows} == {str(seed)}
        lengths = np.array([int(r["length"]) for r in rows])
        # one env: env_steps is the running sum of the lengths; v4 pays 1 per step, so return = length
        np.testing.assert_array_equal([int(r["env_steps"]) for r in rows], np.cumsum(lengths))
        np.testing.assert_array_equal([float(r["return"]) for r in rows], lengths)
        assert all(r["terminated"] in "01" and r["truncated"] in "01" for r in rows)
        assert all(int(r["terminated"]) + int(r["truncated"]) >= 1 for r in rows)
        walls = [float(r["wall_seconds"]) for r in rows]
        assert walls == sorted(walls)

        seed_summary = json.loads((sdir / "summary.json").read_text())
        assert set(seed_summary) >= SEED_SUMMARY_KEYS
        assert seed_summary["status"] == "finished" and seed_summary["seed"] == seed
        assert seed_summary["episodes"] == EPISODES and seed_summary["env_steps"] == int(lengths.sum())
        assert seed_summary["final_window_mean_return"] == pytest.approx(lengths[-50:].mean())
        assert seed_summary["steps_to_target"] is None and seed_summary["best_eval_mean_return"] is None
        assert {k: summary["seeds"][str(seed)][k] for k in SEED_SUMMARY_KEYS} == {
            k: seed_summary[k] for k in SEED_SUMMARY_KEYS
        }
        assert (sdir / "checkpoints" / "latest.json").exists()


@pytest.mark.slow
def test_cli_run_plots_and_stdout(cli_run) -> None:
    out, proc = cli_run
    plots = [Path(line.removeprefix("plot: ")) for line in proc.stdout.splitlines() if line.startswith("plot: ")]
    pngs = [p for p in plots if p.suffix == ".png"]
    assert pngs and all(p.parent == out for p in plots)
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "summary.json").read_text())
    for seed in (1, 2):
        logged = [m.groups() for line in proc.stdout.splitlines() if (m := _LINE.match(line)) and m[1] == str(seed)]
        # the first episode, every LOG_EVERY episodes, and the last (no repeat when it is on that grid)
        assert [int(g[1]) for g in logged] == [1, *range(LOG_EVERY, EPISODES + 1, LOG_EVERY)]
        final = summary["seeds"][str(seed)]
        assert int(logged[-1][2]) == final["env_steps"]
        assert logged[-1][3] == f"{final['final_window_mean_return']:.1f}"
    assert f"run directory: {out}" in proc.stdout


# --------------------------------------------------------------------------
# TensorBoard
# --------------------------------------------------------------------------


@pytest.mark.slow
def test_tensorboard_events(cli_run, read_csv) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, _ = cli_run
    tb = out / "seed_1" / "tb"
    assert any(p.name.startswith("events.out.tfevents") for p in tb.iterdir())
    acc = EventAccumulator(str(tb), size_guidance={"scalars": 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"episode/return", "episode/length", "train/policy_loss"} <= tags
    rows = read_csv(out / "seed_1" / "episodes.csv")
    events = acc.Scalars("episode/return")
    assert [e.value for e in events] == [float(r["return"]) for r in rows]
    assert [e.step for e in events] == [int(r["env_steps"]) for r in rows]
    assert len(acc.Scalars("train/policy_loss")) == EPISODES  # one update per episode


def test_episode_batch_steps_sets_the_least_env_steps_of_each_update(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def update_steps(batch: int) -> list[int]:
        cfg = preset("reinforce", total_steps=6000, num_envs=4, episode_batch_steps=batch, seeds=(1,), tensorboard=True)
        out = tmp_path / f"batch{batch}"
        train(cfg, out, quiet=True, plot=False)
        acc = EventAccumulator(str(out / "seed_1" / "tb"), size_guidance={"scalars": 0})
        acc.Reload()
        return [e.step for e in acc.Scalars("train/policy_loss")]  # env steps at each update

    small, large = update_steps(0), update_steps(1000)
    gaps = np.diff([0, *large])
    assert (gaps >= 1000).all() and (gaps < 1000 + 4 * 1000).all()  # at least B; at most B plus the slowest episode
    assert len(small) > 3 * len(large)  # without it the pendulum's short early episodes make many tiny batches


def test_tensorboard_off_writes_no_events(tmp_path: Path) -> None:
    train(preset("tutorial", total_episodes=3, seeds=(1,)), tmp_path / "run", quiet=True, plot=False)
    assert not list((tmp_path / "run").rglob("events.out.tfevents*"))
    assert not (tmp_path / "run" / "seed_1" / "tb").exists()


# --------------------------------------------------------------------------
# resume after SIGKILL
# --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "budget", "sets"),
    [
        # fixed-length rollouts: open episodes cross the checkpoints; an evaluation every 4 updates
        ("vpg", ("--steps", "6144"), ("eval_every_steps=512",)),
        ("tutorial", ("--episodes", "200"), ("eval_every_steps=250",)),  # episode mode, one env: ~20 episodes
        # ppo: shuffled minibatches (torch's RNG) and the reward scaler's open returns cross the checkpoints
        (
            "ppo",
            ("--steps", "6144"),
            ("eval_every_steps=512", "eval_episodes=2", "normalize_rewards=true", "update_epochs=2"),
        ),
    ],
)
def test_resume_after_sigkill_gives_the_uninterrupted_run(
    name: str, budget: tuple[str, str], sets: tuple[str, ...], cli, tmp_path: Path, read_csv
) -> None:
    num_envs = "1" if name == "tutorial" else "4"
    args = [
        *f"train --preset {name} --seeds 1 --backend gymnasium --num-envs {num_envs} --workers 1".split(),
        *budget,
        *["--quiet", "--no-plot", "--set", "checkpoint_every=3", "--set", "tensorboard=false"],
        *(arg for key_value in sets for arg in ("--set", key_value)),
    ]
    killed = tmp_path / "killed"
    with open(tmp_path / "killed.stderr", "w") as stderr:
        proc = subprocess.Popen(
            cli.command(*args, "--out", str(killed)),
            cwd=tmp_path,
            env=cli.env(),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            # the second checkpoint (update 6): resuming also works from a rotated, non-first checkpoint
            wait_for_checkpoint(killed / "seed_1", proc, min_updates=6)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "seed_1" / "summary.json").exists(), "the run finished before it was killed"

    resumed = cli.main("train", "--resume", str(killed), "--workers", "1", "--quiet", "--no-plot", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    # the uninterrupted run, in this process, of the config the CLI resolved and saved
    reference = tmp_path / "reference"
    train(from_dict(read_toml(killed / "config.toml")), reference, quiet=True, plot=False)

    for table in ("episodes.csv", "evals.csv"):
        want = read_csv(reference / "seed_1" / table, drop=("wall_seconds",))
        got = read_csv(killed / "seed_1" / table, drop=("wall_seconds",))
        assert len(want) >= (50 if table == "episodes.csv" else 8)
        assert got == want, table
    summary = json.loads((killed / "seed_1" / "summary.json").read_text())
    want_summary = json.loads((reference / "seed_1" / "summary.json").read_text())
    assert summary["status"] == "finished"
    for key in ("episodes", "env_steps", "final_window_mean_return", "best_eval_mean_return"):
        assert summary[key] == want_summary[key], key
