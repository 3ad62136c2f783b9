"""PPO side by side with Stable-Baselines3: the same env steps on the same task, one pinned core.

Usage (from the repository root)::

    python -m benchmarks.sb3_speed                                   # HalfCheetah-v5, 40,960 steps -> RESULTS.md
    python -m benchmarks.sb3_speed --steps 20480 --out /tmp/sb3.md   # a smoke check

Stable-Baselines3 is never a dependency of the project: the script installs it into a throwaway venv
(``--venv``, default under /tmp; reused when it already holds the pinned version), with torch, gymnasium, mujoco
and numpy at the project's own pins from ``constraints.txt``. It then trains, one after another, each in its own
process under ``taskset -c CORE`` with one torch thread:

- SB3 PPO with its MuJoCo defaults as RL Zoo runs them: ``MlpPolicy``, 1 env, ``n_steps`` 2048, ``batch_size``
  64, 10 epochs, ``VecNormalize`` (observations and rewards); the time of ``model.learn`` only;
- ``mjreinforce train --preset ppo`` as a user runs it (the preset's table for the task, backend ``auto``), and
  with SB3's hyperparameters (:data:`SB3_DEFAULTS` over the table) once on each backend: the same work per env
  step. No evaluation, no TensorBoard; the ``wall_seconds`` of the seed's loop.

The ratio of env steps per second is written between the markers in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import pandas as pd

from benchmarks.results_file import SB3_SPEED
from mjreinforce.analysis.tables import to_markdown

ROOT = Path(__file__).resolve().parent.parent
SB3_VERSION = "2.9.2"
PINNED = ("torch", "gymnasium", "mujoco", "numpy")
"""Packages installed into the SB3 venv at the versions ``constraints.txt`` pins for the project."""

SB3_DEFAULTS = {
    "num_envs": 1,
    "rollout_steps": 2048,
    "num_minibatches": 32,
    "update_epochs": 10,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "learning_rate": 3e-4,
    "value_learning_rate": 3e-4,
    "lr_schedule": "constant",
    "clip_range": 0.2,
    "entropy_coef": 0.0,
    "vf_coef": 0.5,
    "max_grad_norm": 0.5,
    "hidden_sizes": "[64, 64]",
    "activation": "tanh",
    "orthogonal_init": "true",
    "init_log_std": 0.0,
    "normalize_obs": "true",
    "normalize_rewards": "true",
    "normalize_advantages": "true",
    "adam_eps": 1e-5,
}
"""mjreinforce keys set to SB3 PPO's defaults (``n_steps * n_envs / batch_size`` = 32 minibatches)."""
OFF = {"eval_every_steps": 0, "tensorboard": "false"}
"""No evaluation and no TensorBoard on the mjreinforce side (SB3 runs neither)."""

SB3_SCRIPT = """
import json, sys, time
import torch
torch.set_num_threads(1)
import stable_baselines3
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize
env_id, steps, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
env = VecNormalize(make_vec_env(env_id, n_envs=1, seed=seed))
model = PPO("MlpPolicy", env, seed=seed, device="cpu")
start = time.perf_counter()
model.learn(total_timesteps=steps)
seconds = time.perf_counter() - start
print(json.dumps({"env_steps": int(model.num_timesteps), "seconds": seconds,
                  "version": stable_baselines3.__version__, "torch": torch.__version__}))
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--steps", type=int, default=40_960, help="env steps of each run (a multiple of 2048)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--core", type=int, default=0, help="the CPU core every run is pinned to")
    p.add_argument("--venv", type=Path, default=Path(tempfile.gettempdir()) / f"mjreinforce-sb3-{SB3_VERSION}")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = p.parse_args(argv)
    if shutil.which("taskset") is None:
        print("sb3_speed: error: taskset (util-linux) is needed to pin the runs to one core", file=sys.stderr)
        return 2
    python = ensure_venv(args.venv)
    load_before = os.getloadavg()
    start = time.time()
    rows = [run_sb3(python, args)]
    rows.append(run_mjreinforce(args, "auto", OFF, f"mjreinforce `ppo`, its {args.env.split('-v')[0]} settings"))
    for backend in ("envpool", "gymnasium"):
        rows.append(run_mjreinforce(args, backend, {**SB3_DEFAULTS, **OFF}, "mjreinforce `ppo`, SB3's settings"))
    for row in rows:
        print(
            f"{row['trainer']} ({row['backend']}): {row['env_steps'] / row['seconds']:,.0f} env steps/s",
            file=sys.stderr,
        )
    block = render(args, rows, load_before, os.getloadavg(), time.time() - start)
    replace_block(args.out, block)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def pins() -> dict[str, str]:
    """``{package: version}`` of :data:`PINNED` from the project's ``constraints.txt``."""
    found = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        name, sep, version = line.split("#", 1)[0].strip().partition("==")
        if sep and name.lower() in PINNED:
            found[name.lower()] = version.strip()
    return found


def ensure_venv(venv: Path) -> Path:
    """The venv's python, with ``stable-baselines3`` at :data:`SB3_VERSION` and the project's pins installed
    (created, or reused when it already imports that version)."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import stable_baselines3 as s; print(s.__version__)"]
    if python.exists() and subprocess.run(check, capture_output=True, text=True).stdout.strip() == SB3_VERSION:
        return python
    print(f"installing stable-baselines3 {SB3_VERSION} into {venv} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    versions = pins()
    wanted = [f"stable-baselines3=={SB3_VERSION}"] + [
        f"{name}[mujoco]=={versions[name]}" if name == "gymnasium" else f"{name}=={versions[name]}"
        for name in PINNED
        if name in versions
    ]
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *wanted], check=True)
    return python


def _pinned(command: list[str], core: int) -> list[str]:
    return ["taskset", "-c", str(core), *command]


def _one_thread_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def run_sb3(python: Path, args: argparse.Namespace) -> dict:
    """SB3 PPO's defaults for ``args.steps`` env steps, timed around ``model.learn``."""
    command = [str(python), "-c", SB3_SCRIPT, args.env, str(args.steps), str(args.seed)]
    proc = subprocess.run(_pinned(command, args.core), capture_output=True, text=True, env=_one_thread_env())
    if proc.returncode != 0:
        sys.exit(f"sb3_speed: the SB3 run failed:\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "trainer": f"SB3 {result['version']} PPO (MlpPolicy, VecNormalize)",
        "backend": "gymnasium",
        "env_steps": result["env_steps"],
        "seconds": result["seconds"],
        "torch": result["torch"],
    }


def run_mjreinforce(args: argparse.Namespace, backend: str, values: dict, label: str) -> dict:
    """``mjreinforce train --preset ppo`` with ``values`` set on ``backend``; the seed's loop time."""
    with tempfile.TemporaryDirectory(prefix="sb3-speed-") as tmp:
        out = Path(tmp) / "run"
        settings = [item for key, value in values.items() for item in ("--set", f"{key}={value}")]
        command = [
            *(sys.executable, "-m", "mjreinforce", "train", "--preset", "ppo", "--env", args.env),
            *("--steps", str(args.steps), "--seeds", str(args.seed), "--backend", backend, "--workers", "1"),
            *("--quiet", "--no-plot", "--out", str(out), *settings),
        ]
        proc = subprocess.run(_pinned(command, args.core), capture_output=True, text=True, env=_one_thread_env())
        if proc.returncode != 0:
            sys.exit(f"sb3_speed: the mjreinforce run failed:\n{proc.stderr[-2000:]}")
        summary = json.loads((out / f"seed_{args.seed}" / "summary.json").read_text())
    return {
        "trainer": label,
        "backend": summary["backend"],
        "env_steps": summary["env_steps"],
        "seconds": summary["wall_seconds"],
        "torch": metadata.version("torch"),
    }


def _commit() -> str:
    proc = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True)
    return proc.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def render(args: argparse.Namespace, rows: list[dict], load_before: tuple, load_after: tuple, seconds: float) -> str:
    sb3 = rows[0]
    sb3_rate = sb3["env_steps"] / sb3["seconds"]
    lines = [
        SB3_SPEED.begin,
        f"## PPO side by side with Stable-Baselines3 ({args.env}, {args.steps:,} env steps, one core)",
        "",
        f"Command: `python -m benchmarks.sb3_speed --env {args.env} --steps {args.steps}`; "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {_commit()}, {seconds:.0f} s in all. Every run in its own "
        f"process under `taskset -c {args.core}` with one torch thread, one after another. Load average (1 min) "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after, on {os.cpu_count()} cores.",
        "",
        "SB3 runs PPO's MuJoCo defaults: 1 env, 2048 steps per rollout, minibatches of 64, 10 epochs, lr 3e-4, "
        "clip 0.2, 64x64 tanh networks, `VecNormalize`. mjreinforce runs the `ppo` preset as a user gets it "
        "(its per-task table, backend `auto`), then with SB3's settings on each backend (the same work per env "
        "step; both normalize observations and scale rewards). SB3 is timed around "
        "`model.learn`, mjreinforce by the seed's `wall_seconds`; evaluation and TensorBoard off.",
        "",
    ]
    header = ["trainer", "env backend", "torch", "env steps", "seconds", "env steps/s", "vs SB3"]
    body = []
    for row in rows:
        rate = row["env_steps"] / row["seconds"]
        body.append(
            [
                row["trainer"],
                row["backend"],
                row["torch"],
                f"{row['env_steps']:,}",
                f"{row['seconds']:.1f}",
                f"{rate:,.0f}",
                f"{rate / sb3_rate:.2f}×",
            ]
        )
    lines.append(to_markdown(pd.DataFrame(body, columns=header)).rstrip("\n"))
    lines.append(SB3_SPEED.end)
    return "\n".join(lines) + "\n"


def replace_block(path: Path, block: str) -> None:
    """Put ``block`` between the markers in ``path`` (appended when the markers are not there yet)."""
    path.write_text(SB3_SPEED.replaced(path.read_text() if path.exists() else "", block))


if __name__ == "__main__":
    sys.exit(main())
