"""Config: TOML round trips, presets, ``--set`` parsing and coercion, and every validation rule."""

from __future__ import annotations

import math
import re
import tomllib
import typing
from dataclasses import fields, replace
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from mjreinforce.analysis.tables import limits_table
from mjreinforce.config import (
    FIELD_NAMES,
    Config,
    check_field,
    env_name,
    from_dict,
    load_preset,
    load_toml,
    parse_set,
    preset_names,
    read_toml,
    save_toml,
    to_dict,
    validate,
    with_overrides,
)
from mjreinforce.config_bounds import BOUNDS, CLI_BOUNDS, LENGTH_BOUNDS
from mjreinforce.errors import UserError
from mjreinforce.runs.ownership import config_sha256

# A config that differs from the defaults in every kind of field: tuples, None, floats, bools, literals.
CUSTOM = Config(
    env_id="HalfCheetah-v5",
    backend="gymnasium",
    num_envs=4,
    physics=("gravity=-4.9", "body_mass.pole=2.0"),
    seeds=(3, 1),
    total_episodes=123,
    total_steps=None,
    target_return=950.5,
    hidden_sizes=(32, 16, 8),
    activation="elu",
    state_dependent_std=True,
    init_log_std=-0.5,
    action_bound="tanh",
    rollout_steps=128,
    gamma=1.0,
    advantage="gae",
    gae_lambda=0.9,
    use_critic=True,
    learning_rate=2.5e-4,
    lr_schedule="linear",
    max_grad_norm=0.5,
    eval_every_steps=7000,
    tensorboard=False,
)


def test_save_and_load_toml_round_trip(tmp_path: Path) -> None:
    # CUSTOM differs from the defaults where intended, so the round trips here are not vacuous
    changed = {f.name for f in fields(Config) if getattr(CUSTOM, f.name) != getattr(Config(), f.name)}
    assert {"physics", "total_steps", "target_return", "max_grad_norm", "hidden_sizes", "gamma"} <= changed
    path = tmp_path / "config.toml"
    save_toml(validate(CUSTOM), path)
    assert load_toml(path) == CUSTOM
    # the file is plain TOML with the field names as keys, None fields left out
    raw = tomllib.loads(path.read_text())
    assert raw["hidden_sizes"] == [32, 16, 8] and raw["seeds"] == [3, 1]
    assert "total_steps" not in raw and set(raw) <= set(FIELD_NAMES)


def test_defaults_round_trip(tmp_path: Path) -> None:
    save_toml(Config(), tmp_path / "c.toml")
    assert load_toml(tmp_path / "c.toml") == Config()
    assert from_dict(to_dict(Config())) == Config()


def test_dict_round_trip() -> None:
    assert from_dict(to_dict(CUSTOM)) == CUSTOM
    # to_dict is TOML-able: tuples become lists, None fields vanish
    d = to_dict(CUSTOM)
    assert d["physics"] == ["gravity=-4.9", "body_mass.pole=2.0"] and "total_steps" not in d


def test_from_dict_treats_absent_nullable_fields_as_none() -> None:
    cfg = from_dict({"total_episodes": 5})
    assert cfg.total_steps is None and cfg.target_return is None and cfg.max_grad_norm is None


def test_load_toml_applies_a_subset_on_top_of_a_base(tmp_path: Path) -> None:
    path = tmp_path / "partial.toml"
    path.write_text("gamma = 0.9\nhidden_sizes = [8]\ntotal_episodes = 10\n")
    cfg = load_toml(path, base=CUSTOM)
    assert cfg == replace(CUSTOM, gamma=0.9, hidden_sizes=(8,), total_episodes=10)
    # setting one budget clears the base's other one
    cfg = load_toml(path, base=Config())
    assert cfg.total_episodes == 10 and cfg.total_steps is None


@pytest.mark.parametrize("name", ["tutorial", "reinforce", "vpg"])
def test_presets_load_validate_and_round_trip(name: str, tmp_path: Path) -> None:
    assert name in preset_names()
    cfg = validate(load_preset(name))
    raw = tomllib.loads(resources.files("mjreinforce.presets").joinpath(f"{name}.toml").read_text())
    tasks = raw.pop("env", {})
    own = tasks.get(env_name(raw["env_id"]), {})  # the preset's own env gets its task table on top
    for key, value in (raw | own).items():  # every key in the file arrived in the config
        got = getattr(cfg, key)
        if value == "none":
            value = None
        assert (list(got) if isinstance(got, tuple) else got) == value, key
    for task, table in tasks.items():  # every task table holds known keys and validates
        validate(load_preset(name, f"{task}-v5"))
        assert set(table) <= set(FIELD_NAMES), task
    save_toml(cfg, tmp_path / "c.toml")
    assert load_toml(tmp_path / "c.toml") == cfg


def test_tutorial_preset_is_the_tutorials_setup() -> None:
    cfg = load_preset("tutorial")
    assert (cfg.env_id, cfg.policy, cfg.optimizer, cfg.learning_rate, cfg.gamma) == (
        "InvertedPendulum-v4",
        "tutorial",
        "adamw",
        1e-4,
        0.99,
    )
    assert cfg.budget == ("episodes", 5000) and cfg.total_steps is None
    assert cfg.episode_mode and cfg.num_envs == 1 and cfg.seeds == (1, 2, 3, 5, 8)
    assert cfg.loss_reduction == "sum" and not cfg.use_critic and not cfg.bootstrap_truncated
    assert not cfg.normalize_advantages and not cfg.normalize_obs and cfg.entropy_coef == 0.0
    assert cfg.algorithm_name == "REINFORCE"


def test_algorithm_names() -> None:
    assert load_preset("vpg").algorithm_name == "VPG (GAE)"
    assert Config(use_critic=True).algorithm_name == "REINFORCE + baseline"


def test_unknown_preset() -> None:
    with pytest.raises(UserError, match="unknown preset 'nope'.*tutorial"):
        load_preset("nope")


# --------------------------------------------------------------------------
# --set parsing and coercion
# --------------------------------------------------------------------------


def test_parse_set() -> None:
    assert parse_set(["gamma=0.9", " num_envs = 4 ", "physics=a=b"]) == {
        "gamma": "0.9",
        "num_envs": "4",
        "physics": "a=b",
    }
    assert parse_set([]) == {}


@pytest.mark.parametrize("item", ["foo", "=3", "  =x", ""])
def test_parse_set_rejects_malformed_items(item: str) -> None:
    with pytest.raises(UserError, match="key=value"):
        parse_set([item])


def test_set_strings_are_coerced_to_the_field_types() -> None:
    cfg = with_overrides(
        Config(),
        parse_set(
            [
                "gamma=0.9",
                "num_envs=8",
                "hidden_sizes=32, 16",
                "seeds=4,5",
                "tensorboard=false",
                "normalize_obs=yes",
                "target_return=none",
                "max_grad_norm=0.5",
                "total_steps=1e4",
                "backend=envpool",
                "physics=gravity=-4.9",
            ]
        ),
    )
    assert cfg.gamma == 0.9 and cfg.num_envs == 8 and cfg.hidden_sizes == (32, 16) and cfg.seeds == (4, 5)
    assert cfg.tensorboard is False and cfg.normalize_obs is True and cfg.target_return is None
    assert cfg.max_grad_norm == 0.5 and cfg.total_steps == 10_000 and isinstance(cfg.total_steps, int)
    assert cfg.backend == "envpool" and cfg.physics == ("gravity=-4.9",)


def test_one_budget_overrides_the_other() -> None:
    cfg = with_overrides(Config(), {"total_episodes": "50"})
    assert cfg.budget == ("episodes", 50) and cfg.total_steps is None
    cfg = with_overrides(load_preset("tutorial"), {"total_steps": "1000"})
    assert cfg.budget == ("steps", 1000) and cfg.total_episodes is None


def test_unknown_key_suggests_the_closest_field() -> None:
    with pytest.raises(UserError, match=r"unknown config key 'lerning_rate'.*learning_rate") as exc:
        with_overrides(Config(), {"lerning_rate": "1"})
    assert "\n" not in str(exc.value)
    with pytest.raises(UserError, match="unknown config key 'zzzzzz'$"):
        with_overrides(Config(), {"zzzzzz": "1"})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("num_envs", "abc", "num_envs must be an integer"),
        ("num_envs", "1.5", "num_envs must be an integer"),
        ("num_envs", True, "num_envs must be an integer"),
        ("gamma", "high", "gamma must be a number"),
        ("gamma", False, "gamma must be a number"),
        ("tensorboard", "maybe", "tensorboard must be true or false"),
        ("backend", "cuda", "backend must be one of auto, gymnasium, envpool"),
        ("hidden_sizes", 64, "hidden_sizes must be a list"),
        ("hidden_sizes", "64,x", "hidden_sizes must be an integer"),
        ("env_id", 5, "env_id must be a string"),
    ],
)
def test_wrong_types_are_user_errors(key: str, value: object, message: str) -> None:
    with pytest.raises(UserError, match=message):
        with_overrides(Config(), {key: value})


# --------------------------------------------------------------------------
# a Config made in Python: the same one-line errors, lists and ints normalized
# --------------------------------------------------------------------------
HAND_MADE_WRONG = [
    ({"seeds": "1"}, "seeds must be a tuple (or list) of integers, got '1' of type str"),
    ({"seeds": [1, "2"]}, "seeds[1] must be an integer, got '2' of type str"),
    ({"hidden_sizes": "64"}, "hidden_sizes must be a tuple (or list) of integers, got '64' of type str"),
    ({"hidden_sizes": 64}, "hidden_sizes must be a tuple (or list) of integers, got 64 of type int"),
    ({"learning_rate": "0.01"}, "learning_rate must be a number, got '0.01' of type str"),
    ({"gamma": None}, "gamma must be a number, got None"),
    ({"max_grad_norm": "none"}, "max_grad_norm must be a number"),
    ({"num_envs": 2.0}, "num_envs must be an integer, got 2.0 of type float"),
    ({"num_envs": True}, "num_envs must be an integer, got True of type bool"),
    ({"total_steps": "1000"}, "total_steps must be an integer"),
    ({"tensorboard": 1}, "tensorboard must be true or false, got 1 of type int"),
    ({"backend": "cuda"}, "backend must be one of auto, gymnasium, envpool; got 'cuda'"),
    ({"env_id": None}, "env_id must be a string, got None"),
    ({"physics": ["gravity=-1", 3]}, "physics[1] must be a string, got 3 of type int"),
]


@pytest.mark.parametrize(("changes", "message"), HAND_MADE_WRONG, ids=[f"{c}" for c, _ in HAND_MADE_WRONG])
def test_a_hand_made_config_of_a_wrong_type_is_a_one_line_user_error(changes: dict, message: str) -> None:
    for make in (lambda: Config(**changes), lambda: replace(load_preset("vpg"), **changes)):
        with pytest.raises(UserError) as exc:
            make()
        assert message in str(exc.value) and "\n" not in str(exc.value), str(exc.value)


def test_a_hand_made_config_takes_lists_and_numpy_numbers_and_hashes_as_its_toml(tmp_path: Path) -> None:
    cfg = replace(load_preset("vpg"), seeds=[3, np.int64(1)], hidden_sizes=[32], learning_rate=1, gamma=np.float64(0.9))
    assert cfg.seeds == (3, 1) and cfg.hidden_sizes == (32,) and isinstance(cfg.seeds, tuple)
    assert type(cfg.learning_rate) is float and type(cfg.gamma) is float and type(cfg.seeds[1]) is int
    hash(cfg)  # still a frozen, hashable config
    save_toml(cfg, tmp_path / "c.toml")
    assert load_toml(tmp_path / "c.toml") == cfg and config_sha256(load_toml(tmp_path / "c.toml")) == config_sha256(cfg)
    assert validate(cfg) is cfg


def test_every_field_checks_its_type() -> None:
    hints = typing.get_type_hints(Config)
    for name in FIELD_NAMES:
        if hints[name] is typing.Any:
            continue
        with pytest.raises(UserError, match=re.escape(name)):  # a field of a type check_type lacks is a TypeError
            Config(**{name: object()})  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# validation: one rule per case, each a one-line UserError naming the field
# --------------------------------------------------------------------------

# The rules between fields, and the lengths and budgets that a single bound does not see; every single
# field's range is test_each_bound_is_enforced_at_both_ends's.
INVALID = [
    ({"total_steps": None, "total_episodes": 0}, "total_episodes"),
    ({"total_steps": None, "total_episodes": -1}, "total_episodes"),
    ({"total_episodes": 10}, "exactly one"),  # both budgets (total_steps has a default)
    ({"total_steps": None}, "exactly one"),  # neither
    ({"seeds": ()}, "seeds"),
    ({"seeds": (1, 1)}, "distinct"),
    ({"advantage": "gae"}, "use_critic"),
    ({"policy": "tutorial", "action_bound": "tanh"}, "tutorial"),
    ({"hidden_sizes": ()}, "hidden_sizes"),
    ({"hidden_sizes": (64, 0)}, "hidden_sizes"),
    ({"target_return": 100.0}, "target_return"),  # without eval_every_steps
    ({"rollout_steps": 32}, "accept_zero_bootstrap"),  # no critic, fixed-length segments
    ({"value_iterations": 10}, "value_iterations.*without a critic"),
    ({"value_learning_rate": 3e-3}, "value_learning_rate.*without a critic"),
    ({"use_critic": True, "accept_zero_bootstrap": True}, "accept_zero_bootstrap"),
    ({"rollout_steps": 32, "use_critic": True, "episode_batch_steps": 4000}, "episode_batch_steps.*episode mode"),
]


@pytest.mark.parametrize(("changes", "name"), INVALID, ids=[f"{c}" for c, _ in INVALID])
def test_validation_rejects(changes: dict[str, object], name: str) -> None:
    cfg = replace(Config(), **changes)  # type: ignore[arg-type]
    with pytest.raises(UserError, match=name) as exc:
        validate(cfg)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(
    "changes",
    [
        {"gamma": 1.0},
        {"gamma": 1e-6},
        {"gae_lambda": 0.0},
        {"gae_lambda": 1.0},
        {"rollout_steps": 0},
        {"total_steps": 1},
        {"target_return": 100.0, "eval_every_steps": 1},
        {"advantage": "gae", "use_critic": True},
        {"init_log_std": 2.0},
        {"init_log_std": -20.0},
        {"rollout_steps": 32, "accept_zero_bootstrap": True},
        {"rollout_steps": 32, "use_critic": True, "value_iterations": 10},
        {"episode_batch_steps": 10_000_000},
    ],
)
def test_validation_accepts_the_edges(changes: dict[str, object]) -> None:
    cfg = replace(Config(), **changes)  # type: ignore[arg-type]
    assert validate(cfg) is cfg


def test_read_toml_missing_and_malformed(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        read_toml(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("gamma = = 0.9\n")
    with pytest.raises(UserError, match="not valid TOML") as exc:
        read_toml(bad)
    assert "\n" not in str(exc.value)


def test_unknown_key_in_a_config_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("gama = 0.9\n")
    with pytest.raises(UserError, match="'gama'.*gamma"):
        load_toml(path)


def test_set_accepts_a_toml_array_for_list_keys() -> None:
    cfg = with_overrides(Config(), {"randomize": '["gravity=-12:-7", "body_mass.pole=0.5:2"]'})
    assert cfg.randomize == ("gravity=-12:-7", "body_mass.pole=0.5:2")
    with pytest.raises(UserError, match="randomize must be a list"):
        with_overrides(Config(), {"randomize": "[unclosed"})


# --------------------------------------------------------------------------
# bounds: every number finite and inside the one table in config_bounds
# --------------------------------------------------------------------------


def _numeric(hint: object) -> bool:
    return hint in (int, float) or any(_numeric(arg) for arg in typing.get_args(hint))


def test_every_numeric_field_has_a_bound() -> None:
    hints = typing.get_type_hints(Config)
    numeric = {f.name for f in fields(Config) if _numeric(hints[f.name])}
    assert numeric == set(BOUNDS), sorted(numeric ^ set(BOUNDS))  # a new number field needs a bound
    assert {"seeds", "hidden_sizes"} <= set(LENGTH_BOUNDS)


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_each_bound_is_enforced_at_both_ends(name: str) -> None:
    bound = BOUNDS[name]
    base = replace(Config(), use_critic=True) if name in ("value_learning_rate", "value_iterations") else Config()
    for outside in (bound.low - (0 if bound.low_open else 1), bound.high + (0 if bound.high_open else 1)):
        value = float(outside) if isinstance(bound.low, float) else int(outside)
        changes = {name: (value,) if isinstance(getattr(Config(), name), tuple) else value}
        with pytest.raises(UserError, match=re.escape(name)) as exc:
            validate(replace(base, **changes))  # type: ignore[arg-type]
        assert "\n" not in str(exc.value)


FLOAT_FIELDS = [
    "gamma",
    "gae_lambda",
    "learning_rate",
    "value_learning_rate",
    "entropy_coef",
    "max_grad_norm",
    "init_log_std",
    "target_return",
]


@pytest.mark.parametrize("name", FLOAT_FIELDS)
@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e400", "NaN"])
def test_non_finite_floats_are_refused_when_coerced(name: str, text: str) -> None:
    with pytest.raises(UserError, match=f"{name} must be a finite number"):
        with_overrides(Config(), {name: text})


@pytest.mark.parametrize("name", FLOAT_FIELDS)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_refused_by_validate(name: str, value: float) -> None:
    with pytest.raises(UserError, match=name):
        validate(replace(Config(eval_every_steps=1), **{name: value}))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"learning_rate": "1e300"}, "learning_rate must be in (0, 1]"),
        ({"num_envs": "1e18"}, "num_envs must be in [1, 4096]"),
        ({"num_envs": 10**400}, "~1e400"),
        ({"eval_episodes": "1e18"}, "eval_episodes must be in [1, 10000]"),
        ({"use_critic": "true", "value_iterations": "1e18"}, "value_iterations must be in [1, 10000]"),
        ({"hidden_sizes": "[64, 100000]"}, "hidden_sizes[1] must be in [1, 4096]"),
        ({"hidden_sizes": ",".join(["8"] * 65)}, "number of hidden_sizes must be in [1, 64]"),
        ({"seeds": "1,2147483648"}, "seeds[1] must be in [0, 2147483648)"),
        ({"total_steps": "1e13"}, "total_steps must be in [1, 1e12]"),
        ({"rollout_steps": 10_000, "num_envs": 4096, "use_critic": "true"}, "rollout_steps * num_envs"),
        ({"num_envs": "1" * 5000}, "num_envs must be a finite number"),
    ],
)
def test_absurd_values_are_one_line_errors(changes: dict[str, object], fragment: str) -> None:
    with pytest.raises(UserError) as exc:
        validate(with_overrides(Config(), changes))
    assert fragment in str(exc.value) and "\n" not in str(exc.value) and len(str(exc.value)) < 200


def test_check_field_checks_one_value_alone() -> None:
    assert check_field("learning_rate", "0.5") == 0.5
    assert check_field("hidden_sizes", [8, 8]) == (8, 8)
    for name, value in (("learning_rate", 2.0), ("hidden_sizes", [8, 0]), ("gamma", math.nan), ("lr", 1)):
        with pytest.raises(UserError):
            check_field(name, value)


def test_limits_table_lists_every_bound() -> None:
    table = limits_table()
    assert all(f"`{name}`" in table for name in (*BOUNDS, *CLI_BOUNDS))
    doc = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
    assert table in doc.read_text(), "docs/configuration.md's Limits table is out of date: paste limits_table()"


# --------------------------------------------------------------------------
# per-task preset overrides and the resolution order
# --------------------------------------------------------------------------


def test_env_name_strips_the_version() -> None:
    from mjreinforce.config import env_name

    assert env_name("Hopper-v5") == "Hopper" and env_name("InvertedDoublePendulum-v4") == "InvertedDoublePendulum"
    assert env_name("MyEnv") == "MyEnv" and env_name("My-vX") == "My-vX"


def test_a_preset_applies_its_task_table_for_any_version() -> None:
    from mjreinforce.config import preset_env_overrides

    assert load_preset("vpg", "Ant-v5").init_log_std == preset_env_overrides("vpg", "Ant-v4")["init_log_std"]
    assert load_preset("vpg", "Ant-v5").init_log_std != load_preset("vpg", "HalfCheetah-v5").init_log_std
    assert preset_env_overrides("vpg", "Humanoid-v5") == {}
    assert load_preset("vpg").env_id == "InvertedPendulum-v5"  # the preset's own env, with its table


def test_resolution_order_preset_task_file_flags_set() -> None:
    from mjreinforce.config import resolve

    # the env comes from the last layer that names one; its task table applies under every layer
    cfg, applied = resolve("vpg", {"env_id": "Hopper-v5"}, {"env_id": "Ant-v5"}, {})
    assert cfg.env_id == "Ant-v5" and applied == {"init_log_std": -1.0} and cfg.init_log_std == -1.0
    cfg, _ = resolve("vpg", {"init_log_std": -0.3}, {"env_id": "Ant-v5"}, {})
    assert cfg.init_log_std == -0.3  # --config beats the task table
    cfg, _ = resolve("vpg", {"init_log_std": -0.3}, {"env_id": "Ant-v5"}, {"init_log_std": "-0.7"})
    assert cfg.init_log_std == -0.7  # --set beats everything
    cfg, _ = resolve("vpg", {"num_envs": 4}, {"num_envs": 8}, {})
    assert cfg.num_envs == 8  # a flag beats the file
    cfg, applied = resolve("vpg", {}, {}, {"env_id": "Walker2d-v5"})
    assert applied == {"init_log_std": -0.5} and cfg.init_log_std == -0.5


def test_overrides_line_names_what_was_applied() -> None:
    from mjreinforce.cli.train import overrides_line

    assert overrides_line("vpg", "Ant-v5", {"init_log_std": -1.0}) == "preset vpg, tuned for Ant: init_log_std=-1.0"
    assert overrides_line("vpg", "Hopper-v5", {}) == "preset vpg: no per-task overrides for Hopper"
