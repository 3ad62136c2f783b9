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
directory must go, a directory where a file must go, a read-only mount), ``env`` env arguments, user env modules,
custom model files (missing, unparsable, changed since training) and MuJoCo-only features on other envs,
``export`` what ``mjreinforce export`` is given to load and where it is told to write.
Beyond the corpus: a diverging run, a full disk and read-only output directories.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import textwrap
from pathlib import Path

import gymnasium.envs.mujoco
import pytest

from conftest import WD, Case, copies_of, selected_cases
from mjreinforce.config import load_preset, with_overrides
from mjreinforce.runs.checkpoint_dir import latest_checkpoint
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
    "eval_out_is_a_dir": Case(("eval", RUN, "--episodes", "1", "--out", RUN), (RUN, "Is a directory")),
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
    "no_out": export_case((RUN,), "--out"),
}


KINDS = {"config": CONFIG, "flag": FLAG, "sweep": SWEEP, "corrupt": CORRUPT, "os": OS, "env": ENV, "export": EXPORT}
IN_A_PROCESS = (
    "config-toml_nan",
    "flag-eval_seed_2_40",
    "sweep-sweep_grid_nan",
    "corrupt-eval_latest_junk",
    "os-eval_out_under_a_file",
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
def outcomes(bad_inputs, request, tmp_path_factory: pytest.TempPathFactory, read_only_dir: Path | None) -> dict:
    template = tmp_path_factory.mktemp("template") / RUN
    _make_template(template)
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
