"""The bad-input corpus: every way a hostile or careless user can feed mjreinforce a bad value, a corrupted run
file or an unusable place to write, through the real CLI (the harness in conftest: :class:`conftest.Case`).

Each case asserts exit code 2, exactly one line on stderr (``mjreinforce <command>: error: ...``) naming what
is wrong, no traceback, and a byte-identical working directory afterwards (every path, its bytes and symlink
targets; the case's copy of a trained run lives inside it), so nothing was created, lost or half-written.
The cases run in this process through ``main()``; one case of each class runs as a real ``mjreinforce``
process (:data:`IN_A_PROCESS`), the others would only pay for another interpreter importing torch.

Classes: ``config`` non-finite and absurd config values (every float field family, huge counts), ``flag``
command-line numbers that bypass the config, ``sweep`` sweep files, ``corrupt`` damaged files in a run
directory (plot, eval, robustness, train --resume), ``os`` places that cannot be written (a file where a
directory must go, a directory where a file must go, a read-only mount), ``outputs`` output flags (``eval --out``,
``--video``, ``robustness --out``, ``plot --out``) aimed at a run's, sweep's or benchmark's own files, at another
run's directory, or at a file mjreinforce did not write, ``env`` env arguments, user env modules, custom model
files (missing, unparsable, changed since training) and MuJoCo-only features on other envs, ``export`` what
``mjreinforce export`` is given to load and where it is told to write.
Beyond the corpus: a diverging run, a full disk and read-only output directories.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import gymnasium.envs.mujoco
import pytest

from conftest import WD, Case, copies_of, selected_cases, snapshot
from mjreinforce.cli.plot import comparison_names
from mjreinforce.cli.robustness import OUTPUT_NAMES as ROBUSTNESS_FILES
from mjreinforce.config import load_preset, with_overrides
from mjreinforce.runs.checkpoint_dir import latest_checkpoint
from mjreinforce.runs.lock import LOCK_NAME
from mjreinforce.runs.outputs import written_by_mjreinforce
from mjreinforce.runs.ownership import MARKER_NAME, OUTPUTS_MANIFEST
from mjreinforce.training.run import train

RUN = "run"  # the case's copy of a small trained run, inside its working directory
FILE = "file.txt"  # a regular file in every working directory, where a directory must go
RO = "{ro}"  # a read-only directory (in args and fragments)


def train_args(*args: str) -> tuple[str, ...]:
    """``train ARGS`` plus a tiny budget, one seed, one worker and ``--out new`` where ARGS do not say, so a case
    wrongly let through stays short."""
    defaults = {"--out": "new", "--episodes": "2", "--seeds": "1", "--workers": "1"}
    given = {a.split("=")[0] for a in args}
    extra = [item for flag, value in defaults.items() if flag not in given for item in (flag, value)]
    return ("train", *args, *extra, "--quiet")


def settings(*items: str) -> tuple[str, ...]:
    return tuple(arg for item in items for arg in ("--set", item))


def sweep_case(text: str, *fragments: str) -> Case:
    return Case(("sweep", "s.toml", "--out", "sw"), fragments, (("s.toml", textwrap.dedent(text).encode()),))


HEADER = b"seed,episode,env_steps,return,length,terminated,truncated,wall_seconds\n"
GRID_KEYS = ("num_envs", "eval_episodes", "stats_window", "log_every_episodes", "checkpoint_every", "eval_every_steps")
GRID_1E6 = "[space]\n" + "".join(f"{key} = {list(range(1, 11))}\n" for key in GRID_KEYS)  # 10^6 valid points

CONFIG = {  # non-finite floats, every float field family; huge counts and sizes
    "lr_nan": Case(train_args(*settings("learning_rate=nan")), ("learning_rate", "finite")),
    "lr_inf": Case(train_args(*settings("learning_rate=inf")), ("learning_rate", "finite")),
    "lr_overflow": Case(train_args(*settings("learning_rate=1e400")), ("learning_rate", "finite")),
    "lr_1e300": Case(train_args(*settings("learning_rate=1e300")), ("learning_rate", "(0, 1]")),
    "value_lr_nan": Case(train_args("--preset", "vpg", *settings("value_learning_rate=NaN")), ("value_learning_rate",)),
    "entropy_nan": Case(train_args(*settings("entropy_coef=nan")), ("entropy_coef", "finite")),
    "entropy_huge": Case(train_args(*settings("entropy_coef=1e300")), ("entropy_coef", "[0, 1e6]")),
    "grad_norm_nan": Case(train_args(*settings("max_grad_norm=nan")), ("max_grad_norm", "finite")),
    "grad_norm_inf": Case(train_args(*settings("max_grad_norm=inf")), ("max_grad_norm", "finite")),
    "log_std_nan": Case(train_args(*settings("init_log_std=nan")), ("init_log_std", "finite")),
    "gamma_nan": Case(train_args(*settings("gamma=nan")), ("gamma", "finite")),
    "lambda_inf": Case(train_args(*settings("gae_lambda=-inf")), ("gae_lambda", "finite")),
    "target_nan": Case(train_args("--target-return", "nan"), ("target_return", "finite")),
    "target_inf": Case(train_args("--target-return", "inf"), ("target_return", "finite")),
    "target_minus_inf": Case(train_args("--target-return=-inf"), ("target_return", "finite")),
    "toml_nan": Case(
        train_args("--config", "c.toml"), ("learning_rate", "finite"), (("c.toml", b"learning_rate = nan\n"),)
    ),
    "toml_inf": Case(
        train_args("--config", "c.toml"), ("max_grad_norm", "finite"), (("c.toml", b"max_grad_norm = inf\n"),)
    ),
    "num_envs_1e18": Case(train_args("--num-envs", str(10**18)), ("num_envs", "[1, 4096]")),
    "env_workers_1e18": Case(train_args("--env-workers", str(10**18)), ("env_workers",)),
    "eval_episodes_1e18": Case(train_args(*settings("eval_episodes=1e18")), ("eval_episodes", "10000")),
    "value_iterations_1e18": Case(
        train_args("--preset", "vpg", *settings("value_iterations=1e18")), ("value_iterations", "10000")
    ),
    "rollout_steps_1e18": Case(train_args(*settings("rollout_steps=1e18")), ("rollout_steps",)),
    "batch_too_big": Case(
        train_args("--preset", "vpg", *settings("num_envs=4096", "rollout_steps=100000")),
        ("rollout_steps * num_envs",),
    ),
    "steps_1e18": Case(("train", "--steps", str(10**18), "--out", "new"), ("total_steps", "1e12")),
    "episodes_1e18": Case(("train", "--episodes", str(10**18), "--out", "new"), ("total_episodes",)),
    "hidden_width_1e9": Case(train_args(*settings("hidden_sizes=[64,1e9]")), ("hidden_sizes[1]", "4096")),
    "hidden_layers_100": Case(
        train_args(*settings("hidden_sizes=" + ",".join(["8"] * 100))), ("number of hidden_sizes",)
    ),
    "seed_2_32": Case(("train", "--seeds", "1,4294967296", "--out", "new"), ("seeds[1]",)),
    "stats_window_1e18": Case(train_args(*settings("stats_window=1e18")), ("stats_window",)),
    "log_every_1e18": Case(train_args(*settings("log_every_episodes=1e18")), ("log_every_episodes",)),
    "checkpoint_every_1e18": Case(train_args(*settings("checkpoint_every=1e18")), ("checkpoint_every",)),
    "eval_every_steps_1e18": Case(train_args(*settings("eval_every_steps=1e18")), ("eval_every_steps", "[0, 1e12]")),
    "torch_threads_1e18": Case(train_args(*settings("torch_threads=1e18")), ("torch_threads",)),
    "int_of_5000_digits": Case(train_args(*settings("num_envs=" + "9" * 5000)), ("num_envs",)),
    # sim-to-real perturbations
    "obs_noise_nan": Case(train_args(*settings("obs_noise_std=nan")), ("obs_noise_std", "finite")),
    "obs_noise_negative": Case(train_args(*settings("obs_noise_std=0.1,-1")), ("obs_noise_std[1]", "[0, 1e6]")),
    "obs_noise_wrong_length": Case(
        train_args("--env", "InvertedPendulum-v5", *settings("obs_noise_std=0.1,0.1")),
        ("obs_noise_std has 2 numbers", "4 observation dimensions"),
    ),
    "action_noise_inf": Case(train_args(*settings("action_noise_std=inf")), ("action_noise_std", "finite")),
    "action_noise_huge": Case(train_args(*settings("action_noise_std=1e300")), ("action_noise_std", "[0, 100]")),
    "action_delay_fraction": Case(train_args(*settings("action_delay_steps=1.5")), ("action_delay_steps", "integers")),
    "action_delay_reversed": Case(train_args(*settings("action_delay_steps=3:1")), ("LOW is greater than HIGH",)),
    "obs_delay_1e18": Case(train_args(*settings("obs_delay_steps=0:1e18")), ("obs_delay_steps", "[0, 1000]")),
    "obs_delay_junk": Case(train_args(*settings("obs_delay_steps=soon")), ("obs_delay_steps", "LOW:HIGH")),
    "push_force_without_body": Case(train_args(*settings("push_force=10:20")), ("push_force", "push_body")),
    "push_body_alone": Case(train_args(*settings("push_body=pole")), ("push_body needs push_force",)),
    "push_body_unknown": Case(
        train_args(*settings("push_body=nosuch", "push_force=1:2", "push_interval_steps=5:9")),
        ("no body named 'nosuch'", "pole"),
    ),
    "push_force_negative": Case(
        train_args(*settings("push_body=pole", "push_force=-5:5", "push_interval_steps=5")), ("push_force", "[0, 1e6]")
    ),
    "push_overlapping": Case(
        train_args(*settings("push_body=pole", "push_force=1", "push_interval_steps=5:9", "push_duration_steps=6")),
        ("push_duration_steps (6)", "shortest push interval"),
    ),
    "push_on_envpool": Case(
        train_args("--backend", "envpool", *settings("push_body=pole", "push_force=1", "push_interval_steps=5")),
        ("pushes", "gymnasium"),
    ),
    "eval_perturbed_alone": Case(train_args(*settings("eval_perturbed=true")), ("eval_perturbed",)),
}
FLAG = {  # command-line numbers outside the config
    "train_workers_1e18": Case(train_args("--workers", str(10**18)), ("--workers", "1024")),
    "eval_episodes_flag": Case(("eval", RUN, "--episodes", str(10**18)), ("--episodes", "10000")),
    "eval_negative_seed": Case(("eval", RUN, "--seed", "-1"), ("--seed",)),
    "eval_seed_2_40": Case(("eval", RUN, "--seed", str(2**40)), ("--seed",)),
    "eval_run_seed_huge": Case(("eval", RUN, "--run-seed", str(10**30)), ("--run-seed",)),
    "eval_video_size": Case(("eval", RUN, "--video-size", "100000x100000"), ("--video-size", "4096")),
    "eval_video_episodes": Case(("eval", RUN, "--video-episodes", str(10**9)), ("--video-episodes",)),
    "robustness_count_1e8": Case(("robustness", RUN, "--vary", "gravity=-15:-5:100000000"), ("COUNT", "[2, 1000]")),
    "robustness_episodes": Case(
        ("robustness", RUN, "--vary", "gravity=-15:-5:3", "--episodes", str(10**9)), ("--episodes",)
    ),
    "eval_perturb_unknown_key": Case(("eval", RUN, "--perturb", "gravity=-5"), ("unknown perturbation key", "gravity")),
    "eval_perturb_no_value": Case(("eval", RUN, "--perturb", "obs_noise_std"), ("--perturb expects KEY=VALUE",)),
    "eval_perturb_delay_junk": Case(("eval", RUN, "--perturb", "action_delay_steps=x"), ("action_delay_steps",)),
    "eval_perturb_noise_nan": Case(("eval", RUN, "--perturb", "obs_noise_std=nan"), ("obs_noise_std", "finite")),
    "eval_perturb_unknown_body": Case(
        (
            "eval",
            RUN,
            "--perturb",
            "push_body=nosuch",
            "--perturb",
            "push_force=1",
            "--perturb",
            "push_interval_steps=9",
        ),
        ("no body named 'nosuch'", "pole"),
    ),
    "eval_perturb_with_video": Case(
        ("eval", RUN, "--perturb", "obs_noise_std=0.1", "--video", "v.mp4"), ("--video records unperturbed",)
    ),
    "eval_perturb_push_on_envpool": Case(
        ("eval", RUN, "--backend", "envpool")
        + ("--perturb", "push_body=pole", "--perturb", "push_force=1", "--perturb", "push_interval_steps=9"),
        ("pushes", "gymnasium"),
    ),
    "robustness_three_axes": Case(
        (
            "robustness",
            RUN,
            "--vary",
            "gravity=-15:-5:3",
            "--vary",
            "push_force=0:9:2",
            "--vary",
            "obs_noise_std=0:1:2",
        ),
        ("--vary is given 3 times",),
    ),
    "robustness_same_axis_twice": Case(
        ("robustness", RUN, "--vary", "gravity=-15:-5:3", "--vary", "gravity*=1:2:2"), ("same key", "gravity")
    ),
    "robustness_delay_not_whole": Case(
        ("robustness", RUN, "--vary", "action_delay_steps=0:4:4"), ("not whole numbers", "COUNT")
    ),
    "robustness_delay_huge": Case(
        ("robustness", RUN, "--vary", "action_delay_steps=0:1e9:2"), ("action_delay_steps", "[0, 1000]")
    ),
    "robustness_vary_push_body": Case(("robustness", RUN, "--vary", "push_body=0:1:2"), ("push_body names a body",)),
    "robustness_push_force_without_body": Case(
        ("robustness", RUN, "--vary", "push_force=0:100:3", "--vary", "gravity=-15:-5:3"), ("push_body",)
    ),
    "robustness_map_too_big": Case(
        ("robustness", RUN, "--vary", "gravity=-15:-5:1000", "--vary", "obs_noise_std=0:1:1000"),
        ("map cells", "[4, 10000]"),
    ),
    "robustness_perturb_count_junk": Case(
        ("robustness", RUN, "--vary", "obs_noise_std=0:1:many"), ("COUNT must be an integer",)
    ),
    "plot_window_huge": Case(("plot", RUN, "--window", str(10**12)), ("--window",)),
    "plot_target_nan": Case(("plot", RUN, "--target", "nan", "--out", "cmp"), ("--target", "finite")),
    "sweep_workers_1e18": Case(
        ("sweep", "s.toml", "--workers", str(10**18)),
        ("--workers",),
        (("s.toml", b"[space]\nlearning_rate = [1e-3]\n"),),
    ),
}
SWEEP = {  # spaces checked before Ray starts
    "sweep_grid_nan": sweep_case("[space]\nlearning_rate = [1e-3, nan]\n", "[space] learning_rate", "finite"),
    "sweep_grid_inf": sweep_case("[space]\nentropy_coef = [0.0, inf]\n", "[space] entropy_coef", "finite"),
    "sweep_range_inf": sweep_case(
        'search = "random"\nnum_samples = 2\n[space]\nlearning_rate = {low = 1e-4, high = inf}\n',
        "[space] learning_rate",
        "finite",
    ),
    "sweep_range_nan": sweep_case(
        'search = "random"\nnum_samples = 2\n[space]\ngamma = {low = nan, high = 0.99}\n', "[space] gamma", "finite"
    ),
    "sweep_range_huge": sweep_case(
        'search = "random"\nnum_samples = 2\n[space]\nnum_envs = {low = 1, high = 1000000000000000000}\n',
        "[space] num_envs",
        "[1, 4096]",
    ),
    "sweep_grid_1e6_points": sweep_case(GRID_1E6, "1000000 grid points", "--allow-large"),
    "sweep_num_samples_1e8": sweep_case(
        'search = "random"\nnum_samples = 100000000\n[space]\nlearning_rate = {low = 1e-4, high = 1e-2}\n',
        "num_samples",
        "--allow-large",
    ),
    "sweep_grid_count_1e18": sweep_case("[space]\neval_episodes = [10, 1e18]\n", "[space] eval_episodes", "10000"),
}
CORRUPT = {  # damaged files in a run directory
    "plot_summary_junk": Case(("plot", RUN), ("summary.json", "corrupted"), ((f"{RUN}/summary.json", b"{x"),)),
    "plot_seed_summary_junk": Case(
        ("plot", RUN), ("seed_1/summary.json", "corrupted"), ((f"{RUN}/seed_1/summary.json", b"\xff\xfe"),)
    ),
    "plot_seed_summary_list": Case(
        ("plot", RUN), ("seed_1/summary.json", "list"), ((f"{RUN}/seed_1/summary.json", b"[1, 2]\n"),)
    ),
    "plot_episodes_bad_bytes": Case(
        ("plot", RUN),
        ("episodes.csv", "corrupted", "utf-8"),
        ((f"{RUN}/seed_1/episodes.csv", HEADER + b"1,1,8,8.0,8,1,0,0.1\n1,2,\xff\xfe,8.0,8,1,0,0.1\n"),),
    ),
    "plot_episodes_junk_row": Case(
        ("plot", RUN),
        ("episodes.csv", "row 2"),
        ((f"{RUN}/seed_1/episodes.csv", HEADER + b"1,1,8,8.0,8,1,0,0.1\nhello,1,2,3,4,5,6,7\n"),),
    ),
    "plot_episodes_merged_rows": Case(
        ("plot", RUN),
        ("episodes.csv", "fields"),
        ((f"{RUN}/seed_1/episodes.csv", HEADER + b"1,1,8,8.0,81,2,16,8.0,8,1,0,0.2\n"),),
    ),
    "plot_episodes_bad_header": Case(
        ("plot", RUN), ("episodes.csv", "header"), ((f"{RUN}/seed_1/episodes.csv", b"a,b,c\n1,2,3\n"),)
    ),
    "plot_evals_junk": Case(
        ("plot", RUN),
        ("evals.csv", "corrupted"),
        ((f"{RUN}/seed_1/evals.csv", b"seed,update,env_steps,wall_seconds,eval_mean_return\n\x00\x01\x02\n"),),
    ),
    "plot_config_junk": Case(("plot", RUN), ("config.toml", "corrupted"), ((f"{RUN}/config.toml", b"a = = 1"),)),
    "plot_config_bad_bytes": Case(
        ("plot", RUN), ("config.toml", "corrupted"), ((f"{RUN}/config.toml", b"env_id = '\xff'\n"),)
    ),
    "eval_latest_junk": Case(
        ("eval", RUN), ("latest.json",), ((f"{RUN}/seed_1/checkpoints/latest.json", b"\x00junk"),)
    ),
    "eval_latest_escapes": Case(
        ("eval", RUN),
        ("latest.json",),
        ((f"{RUN}/seed_1/checkpoints/latest.json", b'{"file": "../../../etc/passwd"}'),),
    ),
    "eval_checkpoint_junk": Case(
        ("eval", f"{RUN}/seed_1/checkpoints/junk.safetensors"),
        ("junk.safetensors",),
        ((f"{RUN}/seed_1/checkpoints/junk.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}"),),
    ),
    "robustness_latest_junk": Case(
        ("robustness", RUN, "--vary", "gravity=-15:-5:3"),
        ("latest.json",),
        ((f"{RUN}/seed_1/checkpoints/latest.json", b"[]"),),
    ),
    "resume_config_junk": Case(
        ("train", "--resume", RUN), ("config.toml", "TOML"), ((f"{RUN}/config.toml", b"[[[\n"),)
    ),
    "resume_config_bad_bytes": Case(
        ("train", "--resume", RUN), ("config.toml", "TOML"), ((f"{RUN}/config.toml", b"\xff\xfe = 1\n"),)
    ),
    "resume_config_nan": Case(
        ("train", "--resume", RUN),
        ("config.toml", "learning_rate", "finite"),
        ((f"{RUN}/config.toml", b'env_id = "InvertedPendulum-v5"\ntotal_episodes = 3\nlearning_rate = nan\n'),),
    ),
    "resume_seed_summary_junk": Case(
        ("train", "--resume", RUN),
        ("seed_1/summary.json", "corrupted"),
        ((f"{RUN}/seed_1/summary.json", b'{"status": "finished", '),),
    ),
    "resume_latest_junk": Case(
        ("train", "--resume", RUN, "--quiet", "--no-plot"),
        ("latest.json",),
        (
            (f"{RUN}/seed_1/summary.json", b'{"seed": 1, "status": "interrupted"}\n'),
            (f"{RUN}/seed_1/checkpoints/latest.json", b"{}"),
        ),
    ),
}
OS = {  # places that cannot be written
    "train_out_under_a_file": Case(train_args("--out", f"{FILE}/run"), (FILE, "Not a directory")),
    "train_out_is_a_file": Case(train_args("--out", FILE), (FILE, "not a directory")),
    "train_config_is_a_dir": Case(train_args("--config", RUN), (RUN, "Is a directory")),
    "eval_out_is_a_dir": Case(("eval", RUN, "--episodes", "1", "--out", RUN), (RUN, "is a directory", "--out")),
    "eval_out_under_a_file": Case(
        ("eval", RUN, "--episodes", "1", "--out", f"{FILE}/e.json"), (FILE, "Not a directory")
    ),
    "eval_video_under_a_file": Case(
        ("eval", RUN, "--episodes", "1", "--video", f"{FILE}/v.mp4", "--out", "e.json"), (FILE, "Not a directory")
    ),
    "robustness_out_is_a_file": Case(
        ("robustness", RUN, "--vary", "gravity=-15:-5:3", "--out", FILE), (FILE, "is a file")
    ),
    "robustness_out_under_a_file": Case(
        ("robustness", RUN, "--vary", "gravity=-15:-5:3", "--out", f"{FILE}/r"), (FILE, "Not a directory")
    ),
    "plot_out_under_a_file": Case(("plot", RUN, "--out", f"{FILE}/cmp"), (FILE, "Not a directory")),
    "train_out_read_only": Case(train_args("--out", f"{RO}/run"), (f"{RO}/run", "Read-only")),
    "eval_out_read_only": Case(
        ("eval", RUN, "--episodes", "1", "--out", f"{RO}/e.json"), (f"{RO}/e.json", "Read-only")
    ),
    "robustness_out_read_only": Case(
        ("robustness", RUN, "--vary", "gravity=-15:-5:3", "--out", f"{RO}/r"), (f"{RO}/r", "Read-only")
    ),
}

OTHER, SWEEP_DIR, BENCH = "other", "sweep", "bench"  # another run, a sweep and a benchmark beside the run
CELL = f"{BENCH}/vpg-InvertedPendulum-v5"


def _other(wd: Path) -> None:
    shutil.copytree(wd / RUN, wd / OTHER, symlinks=True)


def _sweep(wd: Path) -> None:
    """A sweep directory as ``mjreinforce sweep`` leaves it, its one trial's seed the run's seed."""
    shutil.copytree(wd / RUN / "seed_1", wd / SWEEP_DIR / "trial_0" / "seed_1")
    for name, data in (("sweep_results.csv", b"point,metric\n0,7.0\n"), ("summary.json", b"{}\n"), (LOCK_NAME, b"")):
        (wd / SWEEP_DIR / name).write_bytes(data)
    shutil.copy(wd / RUN / "config.toml", wd / SWEEP_DIR / "best_config.toml")


def _benchmark(wd: Path) -> None:
    """A benchmark directory as ``mjreinforce benchmark`` leaves it, with the run as its one cell."""
    shutil.copytree(wd / RUN, wd / CELL, symlinks=True)
    for name in ("benchmark.csv", "benchmark.md", "summary.json", LOCK_NAME):
        (wd / BENCH / name).write_bytes(b"")


def _edited_after_writing(wd: Path) -> None:
    """``e.json`` listed in the manifest with the sha256 of what was written, then edited."""
    (wd / "e.json").write_bytes(b'{"a": 2}\n')
    files = {"e.json": hashlib.sha256(b'{"a": 1}\n').hexdigest()}
    (wd / OUTPUTS_MANIFEST).write_text(json.dumps({"format": 1, "files": files}))


def eval_out(out: str, *fragments: str, **case: object) -> Case:
    return Case(("eval", RUN, "--episodes", "1", "--out", out), fragments, **case)  # type: ignore[arg-type]


def eval_video(video: str, *fragments: str, **case: object) -> Case:
    args = ("eval", RUN, "--episodes", "1", "--out", "e.json", "--video", video)
    return Case(args, ("--video", *fragments), **case)  # type: ignore[arg-type]


ROB = ("robustness", RUN, "--vary", "gravity=-15:-5:3", "--episodes", "1", "--out")
NOT_READ = "does not read; choose another --out"
NOT_OURS = ("exists and mjreinforce did not write it", "--overwrite")
OUTPUTS = {  # output flags never land on a run's, sweep's or benchmark's own files, another run or a foreign file
    "eval_out_is_a_seeds_table": eval_out(f"{RUN}/seed_1/episodes.csv", "refusing to write", "inside its own seed_1/"),
    "eval_out_is_a_checkpoint_pointer": eval_out(f"{RUN}/seed_1/checkpoints/latest.json", "inside its own seed_1/"),
    "eval_out_is_the_config": eval_out(f"{RUN}/config.toml", f"{RUN}/config.toml", "one of its own files"),
    "eval_out_is_the_summary": eval_out(f"{RUN}/summary.json", "one of its own files"),
    "eval_out_is_the_marker": eval_out(f"{RUN}/{MARKER_NAME}", "one of its own files"),
    "eval_out_is_the_lock": eval_out(f"{RUN}/{LOCK_NAME}", "one of its own files"),
    "eval_out_is_the_config_with_overwrite": Case(
        ("eval", RUN, "--episodes", "1", "--out", f"{RUN}/config.toml", "--overwrite"), ("one of its own files",)
    ),
    "eval_out_is_a_new_seed_dir": eval_out(f"{RUN}/seed_9/e.json", "inside its own seed_9/"),
    "eval_out_is_the_manifest": eval_out(OUTPUTS_MANIFEST, "list of written files"),
    "eval_out_in_another_run": eval_out(f"{OTHER}/eval.json", f"{WD}/{OTHER}", NOT_READ, setup=_other),
    "eval_out_in_another_runs_seed_dir": eval_out(f"{OTHER}/seed_1/e.json", "inside its own seed_1/", setup=_other),
    "eval_out_is_a_sweeps_results": eval_out(f"{SWEEP_DIR}/sweep_results.csv", "one of its own files", setup=_sweep),
    "eval_out_in_a_sweeps_trial": eval_out(
        f"{SWEEP_DIR}/trial_0/seed_1/episodes.csv", "inside its own trial_0/", setup=_sweep
    ),
    "eval_out_is_a_benchmarks_table": eval_out(f"{BENCH}/benchmark.csv", "one of its own files", setup=_benchmark),
    "eval_out_in_a_benchmark_cell": eval_out(f"{CELL}/eval.json", f"{WD}/{CELL}", NOT_READ, setup=_benchmark),
    "eval_out_not_written_by_mjreinforce": eval_out("e.json", "e.json", *NOT_OURS, files=(("e.json", b"{}\n"),)),
    "eval_out_edited_since_written": eval_out("e.json", "e.json", *NOT_OURS, setup=_edited_after_writing),
    "eval_out_is_a_symlink": eval_out(
        "e.json", *NOT_OURS, setup=lambda wd: (wd / "e.json").symlink_to(wd / RUN / "seed_1" / "episodes.csv")
    ),
    "eval_video_not_written_by_mjreinforce": eval_video("v.mp4", "v.mp4", *NOT_OURS, files=(("v.mp4", b"mine"),)),
    "eval_video_in_a_seed_dir": eval_video(f"{RUN}/seed_1/v.mp4", "inside its own seed_1/"),
    "eval_video_in_another_run": eval_video(f"{OTHER}/v.mp4", "does not read", setup=_other),
    "eval_video_is_out": Case(
        ("eval", RUN, "--episodes", "1", "--out", "v.mp4", "--video", "v.mp4"), ("--out and --video", "v.mp4")
    ),
    "robustness_out_is_a_seed_dir": Case((*ROB, f"{RUN}/seed_1"), ("robustness.csv", "inside its own seed_1/")),
    "robustness_out_is_another_run": Case((*ROB, OTHER), (f"{WD}/{OTHER}", NOT_READ), setup=_other),
    "robustness_out_not_written_by_mjreinforce": Case(
        (*ROB, "r"), ("r/robustness.md", *NOT_OURS), (("r/robustness.md", b"# my notes\n"),)
    ),
    "plot_out_is_another_run": Case(("plot", RUN, "--out", OTHER), ("comparison_episodes.png", NOT_READ), setup=_other),
    "plot_out_is_a_seed_dir": Case(("plot", RUN, "--out", f"{RUN}/seed_1"), ("inside its own seed_1/",)),
    "plot_out_not_written_by_mjreinforce": Case(
        ("plot", RUN, "--out", "cmp"), ("cmp/summary.md", *NOT_OURS), (("cmp/summary.md", b"# mine\n"),)
    ),
}


HOPPER_XML = Path(gymnasium.envs.mujoco.__file__).parent / "assets" / "hopper.xml"
BROKEN_MODULE = b"import gymnasium\n1 / 0\n"  # fails while it registers
EMPTY_MODULE = b"x = 1\n"  # registers nothing
LOST_ENTRY_POINT = b'import gymnasium\ngymnasium.register(id="Lost-v0", entry_point="nowhere.mod:Env")\n'


def _tiny_run(wd: Path, name: str, env_id: str, **settings_: object) -> None:
    """A finished one-seed tutorial-network run of 2 episodes of ``env_id`` in ``wd/name``."""
    base = {"env_id": env_id, "backend": "gymnasium", "total_episodes": 2, "seeds": (1,), "tensorboard": False}
    train(with_overrides(load_preset("tutorial"), {**base, **settings_}), wd / name, quiet=True, plot=False)


def _changed_model_run(wd: Path, delete: bool = False) -> None:
    """``xrun``: Hopper-v5 trained on its own model file ``wd/my_hopper.xml``, which is then edited (or deleted)."""
    model = wd / "my_hopper.xml"
    model.write_bytes(HOPPER_XML.read_bytes())
    _tiny_run(wd, "xrun", "Hopper-v5", env_kwargs={"xml_file": str(model)})
    if delete:
        model.unlink()
    else:
        model.write_bytes(model.read_bytes() + b"<!-- edited after training -->\n")


def _pendulum_run(wd: Path) -> None:
    _tiny_run(wd, "pend", "Pendulum-v1", total_episodes=1)


CHANGED = ("my_hopper.xml", "changed since training", "--allow-changed-model")
ENV = {  # env arguments, module:EnvId, custom model files, features that need MuJoCo
    "kwarg_unknown": Case(
        train_args("--env", "Hopper-v5", "--env-kwarg", "ctrl_cost_weigth=1e-3"),
        ("Hopper-v5 takes no argument 'ctrl_cost_weigth'", "did you mean ctrl_cost_weight"),
    ),
    "kwarg_unknown_in_toml": Case(
        train_args("--env", "Pendulum-v1", "--config", "c.toml"),
        ("Pendulum-v1 takes no argument 'gravity'",),
        (("c.toml", b"[env_kwargs]\ngravity = 9.8\n"),),
    ),
    "kwarg_bad_value": Case(
        train_args("--env", "Hopper-v5", "--env-kwarg", "healthy_z_range=3"), ("healthy_z_range=3", "TypeError")
    ),
    "kwarg_bad_value_at_construction": Case(
        train_args("--env", "Hopper-v5", "--env-kwarg", "frame_skip=0"), ("frame_skip=0", "ZeroDivisionError")
    ),
    "kwarg_nan": Case(train_args("--env", "Pendulum-v1", "--env-kwarg", "g=nan"), ("env_kwargs.g", "finite")),
    "kwarg_date": Case(
        train_args("--env", "Pendulum-v1", "--env-kwarg", "g=1979-05-27"), ("env_kwargs.g", "string, number")
    ),
    "kwarg_malformed": Case(train_args("--env-kwarg", "ctrl_cost_weight"), ("--env-kwarg", "KEY=VALUE")),
    "kwarg_twice": Case(train_args("--env-kwarg", "g=1", "--env-kwarg", "g=2"), ("--env-kwarg g", "twice")),
    "kwarg_reserved": Case(train_args("--env", "Hopper-v5", "--env-kwarg", "render_mode=human"), ("render_mode",)),
    "kwarg_set_not_a_table": Case(train_args(*settings("env_kwargs=[1, 2]")), ("env_kwargs", "table")),
    "xml_missing": Case(
        train_args("--env", "Hopper-v5", "--env-kwarg", "xml_file=models/none.xml"),
        (f"{WD}/models/none.xml", "no such file"),
    ),
    "xml_unparsable": Case(
        train_args("--env", "Hopper-v5", "--env-kwarg", "xml_file=bad.xml"),
        (f"{WD}/bad.xml", "MuJoCo cannot load it", "XML"),
        (("bad.xml", b"<mujoco><worldbody><body>\n"),),
    ),
    "xml_not_a_model": Case(
        train_args("--env", "Hopper-v5", "--env-kwarg", "xml_file=notes.xml"),
        ("notes.xml", "MuJoCo cannot load it"),
        (("notes.xml", b"<mujoco><nonsense/></mujoco>\n"),),
    ),
    "xml_is_a_directory": Case(
        train_args("--env", "Hopper-v5", "--env-kwarg", f"xml_file={RUN}"), (f"{WD}/{RUN}", "is a directory")
    ),
    "module_missing": Case(
        train_args("--env", "nosuchpkg.envs:Robot-v0"), ("env module 'nosuchpkg.envs'", "no such module")
    ),
    "module_broken": Case(
        train_args("--env", "mjr_broken_envs:Robot-v0"),
        ("env module 'mjr_broken_envs'", "ZeroDivisionError"),
        (("mjr_broken_envs.py", BROKEN_MODULE),),
    ),
    "module_registers_nothing": Case(
        train_args("--env", "mjr_empty_envs:Robot-v0"),
        ("unknown env id 'Robot-v0'", "module mjr_empty_envs registers no such env"),
        (("mjr_empty_envs.py", EMPTY_MODULE),),
    ),
    "module_entry_point_missing": Case(
        train_args("--env", "mjr_lost_envs:Lost-v0"),
        ("cannot create Lost-v0", "No module named 'nowhere'"),
        (("mjr_lost_envs.py", LOST_ENTRY_POINT),),
    ),
    "module_malformed": Case(train_args("--env", ":Hopper-v5"), ("module:EnvId",)),
    "envpool_with_kwargs": Case(
        train_args("--env", "Hopper-v5", "--backend", "envpool", "--env-kwarg", "ctrl_cost_weight=0.01"),
        ("backend 'envpool' cannot run this config", "env_kwargs (ctrl_cost_weight)"),
    ),
    "physics_on_a_non_mujoco_env": Case(
        train_args("--env", "Pendulum-v1", "--backend", "gymnasium", "--physics", "gravity=-3"),
        ("physics variation", "needs a MuJoCo model", "Pendulum-v1"),
    ),
    "video_of_a_non_mujoco_env": Case(
        ("eval", "pend", "--episodes", "1", "--video", "v.mp4", "--out", "e.json"),
        ("video", "needs a MuJoCo model", "Pendulum-v1"),
        setup=_pendulum_run,
    ),
    "robustness_of_a_non_mujoco_env": Case(
        ("robustness", "pend", "--vary", "gravity=-15:-5:3", "--out", "r"),
        ("needs a MuJoCo model", "Pendulum-v1"),
        setup=_pendulum_run,
    ),
    "eval_changed_model": Case(("eval", "xrun", "--episodes", "1"), CHANGED, setup=_changed_model_run),
    "robustness_changed_model": Case(
        ("robustness", "xrun", "--vary", "body_mass.torso*=0.5:2:3"), CHANGED, setup=_changed_model_run
    ),
    "export_changed_model": Case(("export", "xrun", "--out", "p.onnx"), CHANGED, setup=_changed_model_run),
    "resume_changed_model": Case(("train", "--resume", "xrun"), CHANGED, setup=_changed_model_run),
    "eval_missing_model": Case(
        ("eval", "xrun", "--episodes", "1"),
        ("my_hopper.xml", "missing"),
        setup=lambda wd: _changed_model_run(wd, delete=True),
    ),
    "allow_changed_model_without_resume": Case(train_args("--allow-changed-model"), ("--allow-changed-model",)),
}


def _export_files(wd: Path) -> None:
    """Beside the run: a checkpoint with one flipped byte, a foreign file, a pickle's opening bytes, an .onnx."""
    data = bytearray(latest_checkpoint(wd / RUN).read_bytes())
    data[-8] ^= 0xFF  # in the tensor data, after the header
    (wd / "damaged.safetensors").write_bytes(bytes(data))
    (wd / "notes.txt").write_text("my notes\n")
    (wd / "model.pt").write_bytes(b"\x80\x04" + b"\x00" * 64)
    (wd / "existing.onnx").write_bytes(b"mine")


def export_case(args: tuple[str, ...], *fragments: str) -> Case:
    return Case(("export", *args), fragments, setup=_export_files)


EXPORT = {  # mjreinforce export: what it loads and where it writes
    "damaged_checkpoint": export_case(("damaged.safetensors", "--out", "p.onnx"), "corrupted", "checksum"),
    "foreign_file": export_case(("notes.txt", "--out", "p.onnx"), "notes.txt", "not a mjreinforce checkpoint"),
    "pickle_file": export_case(("model.pt", "--out", "p.onnx"), "torch.save/pickle", "not loaded"),
    "missing_checkpoint_name": export_case((RUN, "--checkpoint", "ckpt_9.safetensors", "--out", "p.onnx"), "ckpt_9"),
    "checkpoint_twice": export_case(("damaged.safetensors", "--checkpoint", "x", "--out", "p.onnx"), "already"),
    "unknown_seed": export_case((RUN, "--seed", "4", "--out", "p.onnx"), "no seed 4"),
    "negative_seed": export_case((RUN, "--seed", "-1", "--out", "p.onnx"), "--seed", "a training seed"),
    "out_under_a_file": export_case((RUN, "--out", f"{FILE}/p.onnx"), FILE, "Not a directory"),
    "out_read_only": export_case((RUN, "--out", f"{RO}/p.onnx"), f"{RO}/p.onnx", "Read-only"),
    "out_exists": export_case((RUN, "--out", "existing.onnx"), "existing.onnx exists", "--overwrite"),
    "out_is_a_directory": export_case((RUN, "--out", RUN), "is a directory"),
    "out_is_the_runs_config": export_case((RUN, "--out", f"{RUN}/config.toml", "--overwrite"), "one of its own files"),
    "out_in_a_seed_dir": export_case((RUN, "--out", f"{RUN}/seed_1/p.onnx"), "inside its own seed_1/"),
    "out_in_another_run": Case(
        ("export", RUN, "--out", "other/p.onnx"),
        ("other", "that this command does not read"),
        setup=lambda wd: shutil.copytree(wd / RUN, wd / "other"),
    ),
    "no_out": export_case((RUN,), "--out"),
}


KINDS = {
    "config": CONFIG,
    "flag": FLAG,
    "sweep": SWEEP,
    "corrupt": CORRUPT,
    "os": OS,
    "outputs": OUTPUTS,
    "env": ENV,
    "export": EXPORT,
}
IN_A_PROCESS = (
    "config-toml_nan",
    "flag-eval_seed_2_40",
    "sweep-sweep_grid_nan",
    "corrupt-eval_latest_junk",
    "os-eval_out_under_a_file",
    "outputs-eval_out_is_a_seeds_table",
    "env-module_missing",
    "export-damaged_checkpoint",
)
"""One case of each class as a real ``mjreinforce`` process: the console script, and what reaches the file
descriptors (a C library's warning, a second line) that ``main()`` in this process would not show."""
CASES = {
    f"{kind}-{name}": dataclasses.replace(case, process=f"{kind}-{name}" in IN_A_PROCESS)
    for kind, cases in KINDS.items()
    for name, case in cases.items()
}
NEEDS_RO = "needs root and a tmpfs mount (chmod 555 does not stop root, and a non-root user cannot mount)"


def _make_template(path: Path) -> None:
    """A finished one-seed tutorial run with a checkpoint after each update (no TensorBoard, no plot)."""
    settings_ = {"total_episodes": 2, "seeds": "1", "tensorboard": "false", "checkpoint_every": 1}
    train(with_overrides(load_preset("tutorial"), settings_), path, quiet=True, plot=False)


def is_root() -> bool:
    return os.geteuid() == 0


def _with_read_only_dir(case: Case, ro: Path) -> Case:
    fill = lambda texts: tuple(t.replace(RO, str(ro)) for t in texts)  # noqa: E731
    return dataclasses.replace(case, args=fill(case.args), fragments=fill(case.fragments))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / RUN
    _make_template(path)
    return path


@pytest.fixture(scope="module")
def outcomes(
    bad_inputs, request, template: Path, tmp_path_factory: pytest.TempPathFactory, read_only_dir: Path | None
) -> dict:
    cases = {
        name: _with_read_only_dir(case, read_only_dir) if read_only_dir else case
        for name, case in selected_cases(request, CASES).items()
        if read_only_dir or RO not in " ".join(case.args)
    }

    def beside(path: Path) -> None:
        (path / FILE).write_text("a file where a directory must go\n")

    return {"cases": cases, "outcomes": bad_inputs.run(cases, copies_of(template, tmp_path_factory, RUN, beside))}


@pytest.mark.parametrize("name", CASES)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(name: str, outcomes: dict, bad_inputs) -> None:
    if name not in outcomes["cases"]:
        pytest.skip(NEEDS_RO)
    bad_inputs.check(outcomes["cases"][name], outcomes["outcomes"][name])


# --------------------------------------------------------------------------
# Outputs that get through: beside a run's records, replacing what mjreinforce wrote, --overwrite
# --------------------------------------------------------------------------
def _records(run: Path) -> dict[str, tuple]:
    """What ``train`` keeps in ``run``: everything but the output commands' files."""
    products = {"eval.json", OUTPUTS_MANIFEST, *ROBUSTNESS_FILES}
    return {k: v for k, v in snapshot(run).items() if k not in products}


def test_outputs_land_beside_the_runs_records_and_replace_only_what_mjreinforce_wrote(
    cli, template: Path, tmp_path: Path
) -> None:
    run = tmp_path / RUN
    shutil.copytree(template, run, symlinks=True)
    records = _records(run)
    ok = lambda *args: cli.main(*args, cwd=tmp_path)  # noqa: E731
    checkpoint = str(latest_checkpoint(run / "seed_1"))
    for source in (RUN, RUN, f"{RUN}/seed_1", checkpoint):  # each default: eval.json in the run directory
        proc = ok("eval", source, "--episodes", "1")
        assert proc.returncode == 0 and f"wrote {run / 'eval.json'}" in proc.stdout, proc.stderr
    assert json.loads((run / "eval.json").read_text())["checkpoint"] == checkpoint
    # a file of the user's needs --overwrite; once mjreinforce wrote it, it is replaced without
    (tmp_path / "mine.json").write_text("{}\n")
    assert ok("eval", RUN, "--episodes", "1", "--out", "mine.json").returncode == 2
    assert (tmp_path / "mine.json").read_text() == "{}\n"
    for extra in (("--overwrite",), ()):
        assert ok("eval", RUN, "--episodes", "1", "--out", "mine.json", *extra).returncode == 0
    assert written_by_mjreinforce(tmp_path / "mine.json")
    # robustness and plot write exactly the files their guards checked, and may write them again
    for _ in range(2):
        assert ok("robustness", f"{RUN}/seed_1", "--vary", "gravity=-12:-8:2", "--episodes", "1").returncode == 0
        assert ok("plot", RUN, "--out", "cmp").returncode == 0
    assert sorted(p.name for p in (tmp_path / "cmp").iterdir()) == sorted(
        [OUTPUTS_MANIFEST, *comparison_names("episodes")]
    )
    assert set(ROBUSTNESS_FILES) <= {p.name for p in run.iterdir()}
    assert _records(run) == records  # the tables, checkpoints, config, summaries and marker: byte-identical
    # what the output commands wrote into the run is the run's own: --overwrite still replaces the run
    settings_ = {"total_episodes": 1, "seeds": "1", "tensorboard": "false"}
    train(with_overrides(load_preset("tutorial"), settings_), run, overwrite=True, quiet=True, plot=False)
    assert not (run / "eval.json").exists() and not (run / OUTPUTS_MANIFEST).exists()


# --------------------------------------------------------------------------
# Beyond one-line errors: divergence, a full disk, read-only places
# --------------------------------------------------------------------------
DIVERGING = (
    "--preset reinforce --env InvertedPendulum-v5 --backend gymnasium --num-envs 2 --episodes 30 --no-tensorboard "
    "--quiet --set activation=relu --set learning_rate=1 --set checkpoint_every=1 --set hidden_sizes="
    + ",".join(["256"] * 8)
).split()
"""An in-bounds config that diverges at update 2 (8 relu layers of 256 and learning rate 1: the gradient norm
overflows to inf); a checkpoint after every update keeps update 1 as the last good one."""


@pytest.mark.slow
def test_a_diverging_run_ends_diverged_with_exit_3_and_keeps_the_last_good_checkpoint(cli, tmp_path: Path) -> None:
    proc = cli("train", *DIVERGING, "--seeds", "1,2", "--workers", "2", "--out", "div", cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "diverged" in line]
    assert len(lines) == 2 and all(line.startswith("mjreinforce train: seed ") for line in lines), proc.stderr
    assert "diverged at update 2 (gradient norm is inf); the last good checkpoint is kept" in lines[0]
    for seed in (1, 2):
        seed_dir = tmp_path / "div" / f"seed_{seed}"
        summary = json.loads((seed_dir / "summary.json").read_text())
        assert (summary["status"], summary["diverged_at_update"]) == ("diverged", 2)
        assert json.loads((seed_dir / "checkpoints" / "latest.json").read_text())["updates"] == 1
        assert [p.name for p in (seed_dir / "checkpoints").glob("ckpt_*")] == ["ckpt_1.safetensors"]
    # the last good checkpoint is usable, and the comparison table shows the seeds as diverged (in this process)
    assert cli.main("eval", "div", "--run-seed", "1", "--episodes", "1", cwd=tmp_path).returncode == 0
    plotted = cli.main("plot", "div", "--out", "cmp", cwd=tmp_path)
    assert plotted.returncode == 0, plotted.stderr
    assert "2 diverged" in (tmp_path / "cmp" / "summary.md").read_text()
    # a resume keeps the diverged seeds as they are (they would diverge again) and says so again
    resumed = cli.main("train", "--resume", "div", "--quiet", "--no-plot", cwd=tmp_path)
    assert resumed.returncode == 3 and resumed.stderr.count("diverged at update 2") == 2, resumed.stderr


@pytest.fixture
def small_tmpfs(tmp_path: Path):
    """A 64 KiB tmpfs (root only), unmounted afterwards."""
    if not is_root():
        pytest.skip("a full disk needs a small tmpfs, and mounting one needs root")
    path = tmp_path / "small"
    path.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(path)], capture_output=True).returncode:
        pytest.skip("mount -t tmpfs failed (no CAP_SYS_ADMIN in this container?)")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], capture_output=True)


@pytest.mark.slow
@pytest.mark.parametrize("tensorboard", [True, False], ids=["tensorboard", "no-tensorboard"])
def test_a_full_disk_is_one_line_exit_2(cli, small_tmpfs: Path, tensorboard: bool) -> None:
    args = ["train", "--preset", "tutorial", "--episodes", "400", "--seeds", "1", "--workers", "1", "--quiet"]
    args += ["--out", str(small_tmpfs / "run")] + ([] if tensorboard else ["--no-tensorboard"])
    proc = cli(*args, cwd=small_tmpfs.parent)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("mjreinforce train: error: ") and "No space left on device" in line
    assert str(small_tmpfs / "run") in line  # the line names the file that could not be written
    # what was written is whole: every table row complete, no temporary file left
    assert not [p for p in small_tmpfs.rglob(".*.tmp*")]
    for table in small_tmpfs.rglob("*.csv"):
        assert table.read_bytes().endswith(b"\n") or table.stat().st_size == 0
