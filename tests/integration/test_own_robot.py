"""Your own robot: a user's env package (``module:EnvId``), env arguments, a custom MJCF file pinned by its sha256,
and a non-MuJoCo Box env, each trained, resumed, evaluated and exported through the real CLI.

The worked example is ``examples/two_link_arm`` (docs/own-robot.md). A copy of it under another package name sits in
the test's working directory only, so the commands find it the way they find a user's module there.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import gymnasium.envs.mujoco as gym_mujoco
import numpy as np
import onnxruntime as ort
import pytest

import mjreinforce
from conftest import train_killed_after
from mjreinforce.config import from_dict, read_toml
from mjreinforce.envs.custom import make_env
from mjreinforce.envs.physics import make_physics_env
from mjreinforce.errors import UserError
from mjreinforce.runs import checkpoint_dir, checkpoint_format

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "two_link_arm"
ARM = "examples.two_link_arm:TwoLinkArm-v0"
QUIET = ("--seeds", "1", "--workers", "1", "--no-tensorboard", "--quiet", "--no-plot")


def tables(run: Path) -> dict[str, list[str]]:
    """``episodes.csv`` and ``evals.csv`` of seed 1 without their wall-clock column."""
    out = {}
    for name in ("episodes.csv", "evals.csv"):
        rows = [line.split(",") for line in (run / "seed_1" / name).read_text().splitlines()]
        column = rows[0].index("wall_seconds")
        out[name] = [",".join(r[:column] + r[column + 1 :]) for r in rows]
    return out


def user_package(wd: Path) -> str:
    """The example copied into ``wd`` as the package ``my_arm`` registering ``MyArm-v0``; its ``module:EnvId``."""
    shutil.copytree(EXAMPLE, wd / "my_arm", ignore=shutil.ignore_patterns("__pycache__"))
    init = wd / "my_arm" / "__init__.py"
    init.write_text(init.read_text().replace('id="TwoLinkArm-v0"', 'id="MyArm-v0"'))
    return "my_arm:MyArm-v0"


def test_a_module_env_from_the_working_directory_resumes_exactly_and_every_command_finds_it(
    cli, tmp_path: Path
) -> None:
    env = user_package(tmp_path)
    args = (
        "--preset",
        "vpg",
        "--env",
        env,
        "--steps",
        "3072",
        "--set",
        "eval_every_steps=1024",
        "--set",
        "checkpoint_every=1",
        *QUIET,
    )
    train_killed_after(cli, args, tmp_path / "run", tmp_path, min_updates=3)
    resumed = cli.main("train", "--resume", "run", "--workers", "1", "--quiet", "--no-plot", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    saved = read_toml(tmp_path / "run" / "config.toml")
    assert (saved["env_module"], saved["env_id"]) == ("my_arm", "MyArm-v0")
    reference = cli.main("train", *args, "--out", "reference", cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr
    assert "backend gymnasium: envpool cannot import the env module my_arm" in reference.stdout
    # the target is a mocap body, part of MuJoCo's state: the resumed run is the uninterrupted one
    assert tables(tmp_path / "run") == tables(tmp_path / "reference")

    assert cli.main("eval", "run", "--episodes", "2", cwd=tmp_path).returncode == 0
    assert json.loads((tmp_path / "run" / "eval.json").read_text())["env_id"] == "MyArm-v0"
    vary = ("--vary", "body_mass.hand*=0.5:4:3", "--episodes", "2", "--out", "robust")
    assert cli.main("robustness", "run", *vary, cwd=tmp_path).returncode == 0
    returns = [float(line.split(",")[3]) for line in (tmp_path / "robust" / "robustness.csv").read_text().split()[1:]]
    assert len(returns) == 6 and len(set(returns)) == 6  # the payload's mass changed each point's episodes
    exported = cli.main("export", "run", "--out", "arm.onnx", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    meta = ort.InferenceSession(str(tmp_path / "arm.onnx")).get_modelmeta().custom_metadata_map
    assert (meta["env_module"], meta["env_id"], meta["env_kwargs"], meta["obs_dim"]) == (
        "my_arm",
        "MyArm-v0",
        "{}",
        "10",
    )


def test_physics_overrides_and_randomization_use_the_names_in_a_custom_mjcf() -> None:
    env = make_physics_env(ARM, ["body_mass.hand=1.5", "dof_damping.elbow=0.2"], ["actuator_gear.elbow*=0.5:2"], 3)
    model = env.unwrapped.model  # type: ignore[attr-defined]
    gears = set()
    for episode in range(4):
        env.reset(seed=episode)
        gears.add(float(model.actuator("elbow").gear[0]))
    assert model.body("hand").mass[0] == 1.5 and model.dof_damping[1] == 0.2
    assert len(gears) == 4 and all(2.0 <= g <= 8.0 for g in gears)  # 4 * U(0.5, 2), a draw per episode
    env.close()
    with pytest.raises(UserError, match="no body named 'hnd' in two_link_arm; bodies: world, upper_arm, forearm, hand"):
        make_physics_env(ARM, ["body_mass.hnd=1"])
    long_arm = make_physics_env(ARM, ["gravity=-5"], env_kwargs={"xml_file": str(EXAMPLE / "long_arm.xml")})
    assert long_arm.unwrapped.model.body("hand").pos[2] == pytest.approx(-0.45)  # type: ignore[attr-defined]
    long_arm.close()


def heavy_hopper(path: Path) -> Path:
    """Gymnasium's hopper.xml with a thicker (heavier) torso."""
    text = (Path(gym_mujoco.__file__).parent / "assets" / "hopper.xml").read_text()
    path.write_text(text.replace('name="torso_geom" size="0.05 ', 'name="torso_geom" size="0.08 '))
    return path


def test_a_custom_model_file_is_pinned_by_its_hash_and_every_command_rebuilds_it(cli, tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    model = heavy_hopper(tmp_path / "models" / "heavy_hopper.xml")
    kwargs = ("--env-kwarg", "xml_file=models/heavy_hopper.xml", "--env-kwarg", "ctrl_cost_weight=0.01")
    train = cli.main("train", "--env", "Hopper-v5", *kwargs, "--steps", "1024", "--out", "run", *QUIET, cwd=tmp_path)
    assert train.returncode == 0, train.stderr
    assert "backend gymnasium: envpool is not known to take env_kwargs (xml_file, ctrl_cost_weight)" in train.stdout
    sha256 = hashlib.sha256(model.read_bytes()).hexdigest()
    saved = from_dict(read_toml(tmp_path / "run" / "config.toml"))
    assert saved.env_kwargs == {"xml_file": str(model), "ctrl_cost_weight": 0.01}
    assert saved.xml_file_sha256 == sha256
    _, meta = checkpoint_format.load_checkpoint(checkpoint_dir.latest_checkpoint(tmp_path / "run"))
    assert from_dict(meta["config"]) == saved  # in every checkpoint too

    trained = mjreinforce.load_policy(tmp_path / "run")
    rebuilt, stock = (make_env(c).unwrapped.model for c in (trained.config, from_dict({"env_id": "Hopper-v5"})))
    assert rebuilt.body("torso").mass[0] > 2 * stock.body("torso").mass[0]
    assert cli.main("eval", "run", "--episodes", "2", "--out", "before.json", cwd=tmp_path).returncode == 0
    assert cli.main("export", "run", "--out", "hopper.onnx", cwd=tmp_path).returncode == 0
    meta_onnx = ort.InferenceSession(str(tmp_path / "hopper.onnx")).get_modelmeta().custom_metadata_map
    assert json.loads(meta_onnx["env_kwargs"]) == saved.env_kwargs and meta_onnx["xml_file_sha256"] == sha256

    model.write_text(model.read_text().replace('name="torso_geom" size="0.08 ', 'name="torso_geom" size="0.03 '))
    with pytest.raises(UserError, match=f"model file {model} changed since training"):
        mjreinforce.load_policy(tmp_path / "run")
    allowed = cli.main("eval", "run", "--episodes", "2", "--out", "after.json", "--allow-changed-model", cwd=tmp_path)
    assert allowed.returncode == 0, allowed.stderr
    before, after = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("before", "after"))
    assert before["return_mean"] != after["return_mean"]  # the changed model is really the one simulated


def test_a_non_mujoco_env_trains_checkpoints_and_resumes_with_fresh_episodes(cli, tmp_path: Path) -> None:
    args = (
        "--preset",
        "vpg",
        "--env",
        "Pendulum-v1",
        "--backend",
        "gymnasium",
        "--steps",
        "8192",
        "--set",
        "checkpoint_every=1",
        *QUIET,
    )
    train_killed_after(cli, args, tmp_path / "run", tmp_path, min_updates=8)
    file = checkpoint_dir.latest_checkpoint(tmp_path / "run")
    tensors, meta = checkpoint_format.load_checkpoint(file)
    assert checkpoint_format.unflatten_state(meta["state"], tensors)["collector"]["env"] is None  # no MuJoCo state
    resumed = cli.main("train", "--resume", "run", "--workers", "1", "--quiet", "--no-plot", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((tmp_path / "run" / "seed_1" / "summary.json").read_text())
    episodes = tables(tmp_path / "run")["episodes.csv"][1:]
    assert summary["status"] == "finished" and summary["env_steps"] >= 8192 and summary["episodes"] == 32
    assert [int(row.split(",")[1]) for row in episodes] == list(range(1, summary["episodes"] + 1))
    assert {row.split(",")[4] for row in episodes} == {"200"}  # whole 200-step episodes, before and after resume
    assert cli.main("eval", "run", "--episodes", "2", cwd=tmp_path).returncode == 0
    assert np.isfinite(json.loads((tmp_path / "run" / "eval.json").read_text())["return_mean"])
