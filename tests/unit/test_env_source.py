"""Config keys of a user's env (env_module, env_kwargs, xml_file_sha256) and the checks of envs/custom.py."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import gymnasium
import gymnasium.envs.mujoco as gym_mujoco
import pytest
from gymnasium.envs.registration import load_env_creator

from mjreinforce import config
from mjreinforce.config import Config, from_dict, load_toml, to_dict, validate, with_overrides
from mjreinforce.envs.custom import accepted_names, check_env_kwargs, pin_model_file
from mjreinforce.envs.vector import backend_reason, inspect_env, resolve_backend
from mjreinforce.errors import UserError
from mjreinforce.runs.ownership import config_sha256


def test_configs_without_env_arguments_keep_their_dict_and_so_their_hash() -> None:
    """config_sha256 hashes to_dict: the new keys are left out when unset, so older runs still resume."""
    values = to_dict(Config())
    assert not {"env_module", "env_kwargs", "xml_file_sha256"} & set(values)
    assert config_sha256(from_dict(json.loads(json.dumps(values)))) == config_sha256(Config())


def test_module_env_id_is_split_and_round_trips(tmp_path) -> None:
    cfg = with_overrides(Config(), {"env_id": "mypkg.envs:MyRobot-v0", "env_kwargs": "{a = 1e-3, b = [0.5, 2.0]}"})
    assert (cfg.env_module, cfg.env_id, cfg.env_kwargs) == ("mypkg.envs", "MyRobot-v0", {"a": 1e-3, "b": [0.5, 2.0]})
    config.save_toml(cfg, tmp_path / "c.toml")
    assert "[env_kwargs]" in (tmp_path / "c.toml").read_text()
    assert load_toml(tmp_path / "c.toml") == cfg
    assert config.env_name("mypkg.envs:MyRobot-v0") == "MyRobot" == config.env_name("MyRobot-v0")


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"env_id": ":Hopper-v5"}, "module:EnvId"),
        ({"env_id": "pkg:"}, "module:EnvId"),
        ({"env_module": "my-pkg"}, "env_module must be a module name"),
        ({"env_kwargs": "{a = nan}"}, "env_kwargs.a must be a finite number"),
        ({"env_kwargs": "{a = [1, inf]}"}, "env_kwargs.a[1] must be a finite number"),
        ({"env_kwargs": "not a table"}, "env_kwargs must be a table"),
        ({"xml_file_sha256": "0" * 64}, "env_kwargs has no xml_file"),
        ({"env_kwargs": {"xml_file": "m.xml"}, "xml_file_sha256": "abc"}, "64 hex digits"),
    ],
)
def test_bad_env_keys_are_one_line_errors(values: dict, fragment: str) -> None:
    with pytest.raises(UserError, match="^[^\n]*$") as exc:
        validate(with_overrides(Config(), values))
    assert fragment in str(exc.value)


def test_gymnasium_mujoco_envs_take_the_names_of_their_base_class_too() -> None:
    names = accepted_names(load_env_creator(gymnasium.spec("Hopper-v5").entry_point))
    assert names is not None and {"xml_file", "ctrl_cost_weight", "healthy_z_range", "camera_name"} <= names
    assert accepted_names(lambda **kwargs: None) is None  # anything goes: not checked by name


def test_env_kwargs_are_checked_by_name_with_close_names() -> None:
    with pytest.raises(UserError, match=r"Pendulum-v1 takes no argument 'gg' \(did you mean g\?\)"):
        check_env_kwargs(Config(env_id="Pendulum-v1", env_kwargs={"gg": 9.8}))
    with pytest.raises(UserError, match=r"takes no argument 'zzz' \(it takes g, max_episode_steps\)"):
        check_env_kwargs(Config(env_id="Pendulum-v1", env_kwargs={"zzz": 1}))
    check_env_kwargs(Config(env_id="Pendulum-v1", env_kwargs={"g": 9.8, "max_episode_steps": 50}))


def test_env_kwargs_reach_the_env() -> None:
    spec = inspect_env(Config(env_id="Pendulum-v1", env_kwargs={"max_episode_steps": 50}))
    assert (spec.obs_dim, spec.mujoco) == (3, False)
    assert inspect_env("Hopper-v5").mujoco


def test_pinning_makes_xml_file_absolute_and_records_its_sha256(tmp_path, monkeypatch) -> None:
    model = tmp_path / "hopper.xml"
    model.write_bytes((Path(gym_mujoco.__file__).parent / "assets" / "hopper.xml").read_bytes())
    monkeypatch.chdir(tmp_path)
    pinned = pin_model_file(Config(env_id="Hopper-v5", env_kwargs={"xml_file": "hopper.xml"}))
    assert pinned.env_kwargs == {"xml_file": str(model)}
    assert pinned.xml_file_sha256 == hashlib.sha256(model.read_bytes()).hexdigest()
    assert pin_model_file(Config()) == Config()


@pytest.mark.parametrize(
    ("values", "backend"),
    [({"env_kwargs": {"ctrl_cost_weight": 0.1}}, "gymnasium"), ({}, "envpool"), ({"env_module": "os"}, "gymnasium")],
)
def test_auto_keeps_envpool_only_without_env_arguments(values: dict, backend: str) -> None:
    cfg = with_overrides(Config(env_id="Hopper-v5"), values)
    assert resolve_backend(cfg) == backend
    reason = backend_reason(cfg)
    assert (reason is not None) == bool(values)
    if values.get("env_kwargs"):
        assert reason == (
            "backend gymnasium: envpool is not known to take env_kwargs (ctrl_cost_weight) with gymnasium's meaning"
        )
