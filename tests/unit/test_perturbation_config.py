"""The perturbation keys of a config: spelling, parsing, rules, and the pure pieces of the batch wrapper."""

from __future__ import annotations

import numpy as np
import pytest

from mjreinforce.config import Config, dumps, from_dict, load_toml, to_dict, validate, with_overrides
from mjreinforce.config_perturbations import (
    NO_DELAY,
    PERTURBATION_KEYS,
    PushSpec,
    Uniform,
    parse_perturbations,
    parse_spec,
)
from mjreinforce.envs.perturbed import DelayQueue, noise_std
from mjreinforce.errors import UserError
from mjreinforce.runs.ownership import config_sha256

PUSHES = {"push_body": "torso", "push_force": "50:150", "push_interval_steps": "100:200", "push_duration_steps": 5}


def test_a_config_without_perturbations_is_saved_and_hashed_as_before() -> None:
    keys = (*PERTURBATION_KEYS, "eval_perturbed")
    assert not set(keys) & set(to_dict(Config())) and not any(key in dumps(Config()) for key in keys)
    assert config_sha256(Config()) == config_sha256(from_dict(to_dict(Config())))


def test_the_keys_parse_into_typed_perturbations_and_round_trip_through_toml(tmp_path) -> None:
    cfg = validate(with_overrides(Config(), {"obs_noise_std": 0.05, "action_delay_steps": 3, **PUSHES}))
    assert cfg.obs_noise_std == (0.05,) and cfg.action_delay_steps == "3"
    parsed = parse_perturbations(cfg)
    assert parsed.action_delay == Uniform(3, 3, integer=True) and parsed.obs_delay == NO_DELAY
    assert parsed.push == PushSpec("torso", Uniform(50, 150), Uniform(100, 200, integer=True), 5)
    assert parsed.on_batches and parsed.any
    (tmp_path / "c.toml").write_text(dumps(cfg))
    assert load_toml(tmp_path / "c.toml") == cfg
    per_dim = with_overrides(Config(), {"obs_noise_std": "0.1,0.2", "push_force": 40})
    assert per_dim.obs_noise_std == (0.1, 0.2) and per_dim.push_force == "40"


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"action_delay_steps": "1.5"}, "takes integers"),
        ({"action_delay_steps": "3:1"}, "LOW is greater than HIGH"),
        ({"obs_delay_steps": "a:b"}, "a number or LOW:HIGH"),
        ({"obs_delay_steps": "1:2:3"}, "a number or LOW:HIGH"),
        ({"obs_delay_steps": "5000"}, "obs_delay_steps must be in [0, 1000]"),
        ({"action_delay_steps": "-1"}, "action_delay_steps must be in [0, 1000]"),
        ({"action_delay_steps": "nan"}, "finite"),
        ({"obs_noise_std": -0.1}, "obs_noise_std[0] must be in [0, 1e6]"),
        ({"obs_noise_std": "[]"}, "number of obs_noise_std"),
        ({"action_noise_std": "inf"}, "finite"),
        ({"action_noise_std": 1e9}, "action_noise_std must be in [0, 100]"),
        ({"push_force": "10:20"}, "push_force is set but has no effect without push_body"),
        ({"push_body": "torso"}, "push_body needs push_force and push_interval_steps"),
        ({**PUSHES, "push_force": "-5:5"}, "push_force must be in [0, 1e6]"),
        ({**PUSHES, "push_interval_steps": "0:5"}, "push_interval_steps must be in [1, 1e9]"),
        ({**PUSHES, "push_duration_steps": 101}, "at most the shortest push interval (100 steps)"),
        ({**PUSHES, "push_body": " "}, "push_body must name a body"),
        ({"eval_perturbed": True}, "eval_perturbed is set but the config has no perturbation"),
    ],
)
def test_bad_values_are_one_line_errors(changes: dict[str, object], fragment: str) -> None:
    with pytest.raises(UserError) as exc:
        validate(with_overrides(Config(), changes))
    assert fragment in str(exc.value) and "\n" not in str(exc.value)


def test_a_uniform_draws_in_its_range_and_uses_no_random_number_for_one_value() -> None:
    rng = np.random.default_rng(0)
    draws = parse_spec("action_delay_steps", "1:3").draw(rng, 1000)
    assert set(draws.tolist()) == {1, 2, 3}
    state = rng.bit_generator.state
    assert parse_spec("action_delay_steps", "2").draw(rng) == 2 and rng.bit_generator.state == state
    forces = parse_spec("push_force", "5:6").draw(rng, 100)
    assert forces.min() >= 5 and forces.max() <= 6 and forces.dtype == np.float64


def test_a_delay_queue_reads_what_was_pushed_k_pushes_ago_and_zeros_after_a_clear() -> None:
    q = DelayQueue(num_envs=3, dim=1, max_delay=2)
    delays = np.array([0, 1, 2])
    seen = []
    for t in range(1, 5):
        q.push(np.full((3, 1), float(t)))
        seen.append(q.read(delays)[:, 0].tolist())
    assert seen == [[1, 0, 0], [2, 1, 0], [3, 2, 1], [4, 3, 2]]
    q.clear(np.array([2]))
    q.push(np.full((3, 1), 5.0))
    assert q.read(delays)[:, 0].tolist() == [5, 4, 0]
    fixed = DelayQueue(num_envs=3, dim=2, max_delay=2, fixed=2)
    for t in range(1, 5):
        fixed.push(np.full((3, 2), float(t)))
    np.testing.assert_array_equal(fixed.read(np.full(3, 2)), 2.0)
    fixed.read(np.full(3, 2))[:] = -1.0  # a read is a copy: the queue keeps its entries
    np.testing.assert_array_equal(fixed.read(np.full(3, 2)), 2.0)


def test_obs_noise_std_is_one_for_all_or_one_per_dimension() -> None:
    np.testing.assert_array_equal(noise_std((0.5,), 3), [0.5, 0.5, 0.5])
    np.testing.assert_array_equal(noise_std((1.0, 2.0, 3.0), 3), [1, 2, 3])
    np.testing.assert_array_equal(noise_std((), 2), [0, 0])
    with pytest.raises(UserError, match="obs_noise_std has 2 numbers but the env has 3 observation dimensions"):
        noise_std((1.0, 2.0), 3)
