"""Physics overrides, randomization and the stability guard, on real MuJoCo (InvertedPendulum-v5).

InvertedPendulum: bodies world/cart/pole, geoms rail/cart/cpole, joints slider/hinge, actuator slide;
obs = (cart x, pole angle, cart velocity, pole angular velocity).
"""

from __future__ import annotations

import functools
import pickle

import gymnasium
import mujoco
import numpy as np
import pytest

from mjreinforce.envs.physics import PhysicsUnstableError, apply_overrides, describe, make_physics_env
from mjreinforce.envs.physics_spec import parse_grid, parse_override, parse_range
from mjreinforce.errors import UserError

ENV_ID = "InvertedPendulum-v5"


def _id(model: mujoco.MjModel, obj: mujoco.mjtObj, name: str) -> int:
    return mujoco.mj_name2id(model, obj, name)


def _pole_angles(env: gymnasium.Env, steps: int) -> np.ndarray:
    """Zero-action pole angles from a fixed tilted start (qpos = [0, 0.05], at rest)."""
    env.reset(seed=0)
    env.unwrapped.set_state(np.array([0.0, 0.05]), np.zeros(2))
    return np.array([env.step(np.zeros(1))[0][1] for _ in range(steps)])


@pytest.fixture
def default_model() -> mujoco.MjModel:
    return gymnasium.make(ENV_ID).unwrapped.model


def test_gravity_override_makes_the_pole_fall_faster_or_slower() -> None:
    final_angle = {}
    for g in (-2.0, -9.81, -20.0):
        env = make_physics_env(ENV_ID, (f"gravity={g}",))
        np.testing.assert_array_equal(env.unwrapped.model.opt.gravity, [0.0, 0.0, g])
        final_angle[g] = abs(_pole_angles(env, steps=10)[-1])
    # the tilt grows like exp(sqrt(g / l) t): stronger gravity, faster fall
    assert final_angle[-2.0] < final_angle[-9.81] < final_angle[-20.0]
    assert final_angle[-2.0] > 0.05  # it still falls (started at 0.05)


def test_body_mass_override_sets_the_pole_row_and_changes_the_trajectory(default_model) -> None:
    pole = _id(default_model, mujoco.mjtObj.mjOBJ_BODY, "pole")
    cart = _id(default_model, mujoco.mjtObj.mjOBJ_BODY, "cart")
    new_mass = float(3.0 * default_model.body_mass[pole])
    env = make_physics_env(ENV_ID, (f"body_mass.pole={new_mass!r}",))
    model = env.unwrapped.model
    assert model.body_mass[pole] == new_mass
    assert model.body_mass[cart] == default_model.body_mass[cart]
    # mj_setConst ran: the cart's subtree mass is cart + the new pole mass
    assert model.body_subtreemass[cart] == pytest.approx(default_model.body_mass[cart] + new_mass)
    heavy = _pole_angles(env, steps=10)
    light = _pole_angles(make_physics_env(ENV_ID), steps=10)
    assert np.abs(heavy - light).max() > 1e-4


def test_scale_multiplies_the_compiled_value(default_model) -> None:
    pole = _id(default_model, mujoco.mjtObj.mjOBJ_BODY, "pole")
    model = make_physics_env(ENV_ID, ("body_mass.pole*=3", "geom_friction.cart*=0.5")).unwrapped.model
    assert model.body_mass[pole] == pytest.approx(3 * default_model.body_mass[pole])
    cart_geom = _id(default_model, mujoco.mjtObj.mjOBJ_GEOM, "cart")
    np.testing.assert_allclose(model.geom_friction[cart_geom], 0.5 * default_model.geom_friction[cart_geom])


def test_vector_rows_dofs_indices_and_options(default_model) -> None:
    specs = (
        "geom_friction.cart=0.5,0.005,0.0001",
        "actuator_gear.slide=200,0,0,0,0,0",
        "dof_damping.hinge=0.3",
        "body_mass.#2=1.5",
        "opt.timestep=0.01",
        "opt.wind=1,2,3",
    )
    env = make_physics_env(ENV_ID, specs)
    model = env.unwrapped.model
    np.testing.assert_array_equal(model.geom_friction[1], [0.5, 0.005, 0.0001])
    np.testing.assert_array_equal(model.actuator_gear[0], [200, 0, 0, 0, 0, 0])
    hinge = _id(model, mujoco.mjtObj.mjOBJ_JOINT, "hinge")
    assert model.dof_damping[model.jnt_dofadr[hinge]] == 0.3
    assert model.dof_damping[model.jnt_dofadr[0]] == default_model.dof_damping[default_model.jnt_dofadr[0]]
    assert model.body_mass[2] == 1.5
    assert model.opt.timestep == 0.01 and env.unwrapped.dt == pytest.approx(0.01 * env.unwrapped.frame_skip)
    np.testing.assert_array_equal(model.opt.wind, [1, 2, 3])
    assert describe(model, ["gravity", "geom_friction.cart", "opt.timestep"]) == {
        "gravity": float(model.opt.gravity[2]),
        "geom_friction.cart": [0.5, 0.005, 0.0001],
        "opt.timestep": 0.01,
    }


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        ("gravity", ["malformed", "KEY=VALUE"]),
        ("gravity=", ["malformed"]),
        ("gravity=abc", ["bad number 'abc'"]),
        ("gravity=nan", ["non-finite"]),
        ("gravity=-12:-7", ["randomize"]),
        ("bodymass.pole=1", ["unknown physics key", "body, geom, jnt, dof"]),
        ("body_mass=1", ["body_mass.<name>"]),
        ("opt.timestepp=0.1", ["unknown option", "timestep", "gravity"]),
        ("opt.timestep=0", ["positive"]),
        ("body_mass.pole=-1", ["cannot be negative"]),
    ],
)
def test_malformed_overrides_raise_user_error(spec: str, fragments: list[str]) -> None:
    with pytest.raises(UserError) as caught:
        parse_override(spec)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        ("body_mas.pole=1", ["unknown model field 'body_mas'", "body_mass", "body_inertia"]),
        ("body_mass.polee=1", ["no body named 'polee'", "world, cart, pole"]),
        ("dof_damping.slidr=1", ["no joint named 'slidr'", "slider, hinge"]),
        ("geom_friction.cartt=1,1,1", ["no geom named", "rail, cart, cpole"]),
        ("geom_friction.cart=0.5", ["needs 3 numbers", "now 1,"]),
        ("geom_size.cart=1,1,1", ["unknown model field 'geom_size'", "geom_friction"]),
    ],
)
def test_bad_names_are_caught_when_the_env_is_built(spec: str, fragments: list[str]) -> None:
    with pytest.raises(UserError) as caught:
        make_physics_env(ENV_ID, (spec,))
    for fragment in fragments:
        assert fragment in str(caught.value)
    range_spec = spec.replace("=", "=0:", 1).split(",")[0]  # the same mistake in a randomize range
    with pytest.raises(UserError):
        make_physics_env(ENV_ID, (), (range_spec,))


def test_a_bad_override_changes_nothing(default_model) -> None:
    before = default_model.opt.gravity.copy()
    with pytest.raises(UserError, match="polee"):
        apply_overrides(default_model, [parse_override("gravity=-1"), parse_override("body_mass.polee=1")])
    np.testing.assert_array_equal(default_model.opt.gravity, before)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("gravity=3:1", "greater than high"),
        ("gravity=1,2:3", "low has 2 numbers but high has 1"),
        ("gravity=1", "expected KEY=LOW:HIGH"),
        ("body_mass.pole*=-1:2", "cannot be negative"),
    ],
)
def test_malformed_ranges_raise_user_error(spec: str, fragment: str) -> None:
    with pytest.raises(UserError, match=fragment):
        parse_range(spec)


def test_duplicate_keys_are_rejected() -> None:
    with pytest.raises(UserError, match="body_mass.pole more than once"):
        make_physics_env(ENV_ID, ("body_mass.pole=1", "body_mass.pole=2"))


def _episode_physics(seed: int, resets: int, reset_seed: int | None = None) -> np.ndarray:
    """(resets, 2): gravity z and pole mass at the start of each episode."""
    env = make_physics_env(ENV_ID, (), ("gravity=-12:-7", "body_mass.pole*=0.5:2"), seed=seed)
    model = env.unwrapped.model
    rows = []
    for _ in range(resets):
        env.reset(seed=reset_seed)
        rows.append((model.opt.gravity[2], model.body_mass[2]))
    return np.array(rows)


def test_randomization_is_in_range_varies_and_is_reproducible(default_model) -> None:
    physics = _episode_physics(seed=7, resets=30)
    gravity, pole_mass = physics[:, 0], physics[:, 1]
    base = default_model.body_mass[2]
    assert ((gravity >= -12) & (gravity <= -7)).all()
    # a scale range multiplies the compiled mass, never the previous draw (else 30 draws would drift out)
    assert ((0.5 * base <= pole_mass) & (pole_mass <= 2 * base)).all()
    assert len(np.unique(gravity)) == 30 and len(np.unique(pole_mass)) == 30
    np.testing.assert_array_equal(physics, _episode_physics(seed=7, resets=30))
    np.testing.assert_array_equal(physics, _episode_physics(seed=7, resets=30, reset_seed=0))
    assert not np.array_equal(physics, _episode_physics(seed=8, resets=30))


def test_randomized_keys_win_over_and_compose_with_fixed_ones(default_model) -> None:
    env = make_physics_env(
        ENV_ID,
        ("gravity=-5", "body_mass.pole=2", "opt.gravity=1,0,-3"),
        ("gravity=-12:-7", "body_mass.pole*=2:3"),
    )
    model = env.unwrapped.model
    for _ in range(10):
        env.reset()
        assert model.opt.gravity[0] == 1 and -12 <= model.opt.gravity[2] <= -7
        assert 4 <= model.body_mass[2] <= 6
    in_force = [str(o) for o in env.physics_in_force()]
    assert in_force[:3] == ["gravity=-5", "body_mass.pole=2", "opt.gravity=1,0,-3"]
    assert env.describe()["body_mass.pole"] == model.body_mass[2]


@pytest.mark.parametrize("spec", ["opt.timestep=10", "gravity=-1e9"])
def test_unstable_physics_raises_within_a_few_steps(spec: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # MuJoCo appends its warnings to ./MUJOCO_LOG.TXT
    env = make_physics_env(ENV_ID, (spec,))
    env.reset(seed=0)
    with pytest.raises(PhysicsUnstableError) as caught:
        for _ in range(50):
            env.step(np.full(1, 3.0))
    message = str(caught.value)
    assert isinstance(caught.value, UserError) and "\n" not in message
    assert spec.split("=")[0] in message and "unstable" in message


def test_default_physics_never_trips_the_guard() -> None:
    env = make_physics_env(ENV_ID, (), ("gravity=-12:-7", "body_mass.pole*=0.5:2"), seed=0)
    env.action_space.seed(0)
    env.reset(seed=0)
    for _ in range(300):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()


def test_parse_grid_gives_linspace_and_round_trips_as_specs() -> None:
    grid = parse_grid("gravity=-15:-5:11")
    np.testing.assert_array_equal(grid.values[:, 0], np.linspace(-15, -5, 11))
    assert [parse_override(s).value[0] for s in grid.specs()] == list(np.linspace(-15, -5, 11))
    vector = parse_grid("opt.gravity=0,0,-15:0,0,-5:3")
    np.testing.assert_array_equal(vector.values, [[0, 0, -15], [0, 0, -10], [0, 0, -5]])
    assert parse_grid("body_mass.pole*=0.5:2:4").specs()[-1] == "body_mass.pole*=2"
    for bad in ("gravity=-15:-5:1", "gravity=-15:-5:x", "gravity=-15:-5", "gravity=-15:-5:1001", "gravity=0:1:1e3"):
        with pytest.raises(UserError):
            parse_grid(bad)


def test_env_factory_pickles_into_vector_env_workers() -> None:
    factories = [
        functools.partial(make_physics_env, ENV_ID, ("gravity=-5",), ("body_mass.pole*=0.5:2",), seed=i)
        for i in range(2)
    ]
    factories = pickle.loads(pickle.dumps(factories))
    envs = gymnasium.vector.AsyncVectorEnv(factories, context="spawn")
    try:
        envs.reset(seed=0)
        gravity = envs.call("describe")
        assert [d["gravity"] for d in gravity] == [-5.0, -5.0]
        assert gravity[0]["body_mass.pole"] != gravity[1]["body_mass.pole"]
        obs, *_ = envs.step(np.zeros((2, 1)))
        assert obs.shape == (2, 4)
    finally:
        envs.close()
