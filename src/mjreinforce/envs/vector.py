"""Vectorized envs behind one small interface, for the gymnasium and envpool backends.

Both backends are normalized to *same-step* autoreset: when env ``i`` ends an episode at a step,
that step returns the *reset* observation for ``i`` in ``obs`` and the episode's true last
observation in ``final_obs``. Terminated and truncated stay separate flags.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import gymnasium as gym
import mujoco
import numpy as np

from mjreinforce.config import Config, with_overrides
from mjreinforce.config_perturbations import parse_perturbations
from mjreinforce.envs.custom import check_env_kwargs, env_kwargs_text, is_mujoco_env, make_env, make_id
from mjreinforce.envs.perturb_config import PUSH_BACKEND_NOTE, batch_perturbed, needs_gymnasium
from mjreinforce.envs.perturbed import PerturbedVecEnv
from mjreinforce.envs.physics import make_physics_env, restore_wrapper_state, wrapper_state
from mjreinforce.envs.pushes import push_state, restore_push_state, with_pushes
from mjreinforce.errors import UserError, error_line

# The tutorial preset deliberately uses InvertedPendulum-v4; gymnasium warns on every make() of it.
# (Set after importing gymnasium, whose logger installs its own filters on import.)
warnings.filterwarnings("ignore", message=".*is out of date", category=DeprecationWarning)


class StepResult(NamedTuple):
    """One vector step. Shapes: ``obs``/``final_obs`` ``(N, obs_dim)``, flags and rewards ``(N,)``.

    ``final_obs[i]`` is the last observation of the episode that ended at this step when
    ``terminated[i] or truncated[i]``; otherwise it equals ``obs[i]``.
    """

    obs: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    final_obs: np.ndarray


@dataclass(frozen=True)
class EnvSpec:
    """What the trainer needs to know about a task. ``mujoco``: it simulates a MuJoCo model (physics variation,
    video and exact resume of its episodes need one)."""

    env_id: str
    obs_dim: int
    act_dim: int
    act_low: np.ndarray
    act_high: np.ndarray
    mujoco: bool = True


def inspect_env(env: Config | str) -> EnvSpec:
    """Check that the env of ``env`` (a config, or an id such as ``Hopper-v5`` or ``mypkg.envs:MyRobot-v0``) exists,
    takes its ``env_kwargs``, is made, and has a Box action space; return its dims."""
    cfg = env if isinstance(env, Config) else with_overrides(Config(), {"env_id": env})
    check_env_kwargs(cfg)
    try:
        made = make_env(cfg)
    except gym.error.DependencyNotInstalled as exc:
        raise UserError(f"cannot create {cfg.env_id}: {str(exc).splitlines()[0]}") from None
    except gym.error.Error as exc:
        raise UserError(f"cannot create {cfg.env_id}: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # the env's own check of a bad value, or a bug in a user's env: one line
        given = f" with env_kwargs {env_kwargs_text(cfg.env_kwargs)}" if cfg.env_kwargs else ""
        raise UserError(f"cannot create {cfg.env_id}{given}: {error_line(exc)}") from None
    try:
        act, obs = made.action_space, made.observation_space
        if not isinstance(act, gym.spaces.Box):
            raise UserError(
                f"{cfg.env_id} has a {type(act).__name__} action space; mjreinforce needs a continuous Box action space"
            )
        if not isinstance(obs, gym.spaces.Box) or len(obs.shape) != 1:
            raise UserError(f"{cfg.env_id} needs a flat Box observation space, got {obs}")
        low, high = act.low.copy(), act.high.copy()
        if cfg.env_kwargs or cfg.env_module:
            try_one_step(made, cfg)
        return EnvSpec(cfg.env_id, int(obs.shape[0]), int(act.shape[0]), low, high, is_mujoco_env(made))
    finally:
        made.close()


def try_one_step(env: gym.Env, cfg: Config) -> None:
    """Reset ``env`` and step it once with the centre of its action box, so that a bad argument value that only
    shows in the simulation (a string where a weight goes) or a bug in a user's env fails now, in one line."""
    box: Any = env.action_space
    finite = np.isfinite(box.low) & np.isfinite(box.high)
    centre = np.where(finite, (np.where(finite, box.low, 0) + np.where(finite, box.high, 0)) / 2, 0)
    try:
        env.reset(seed=0)
        env.step(centre.astype(box.dtype))
    except Exception as exc:
        given = f" with env_kwargs {env_kwargs_text(cfg.env_kwargs)}" if cfg.env_kwargs else ""
        raise UserError(f"cannot run {cfg.env_id}{given}: {error_line(exc)}") from None


def envpool_available() -> bool:
    """True when envpool is installed *and* imports (a broken install counts as absent)."""
    try:
        import envpool  # noqa: F401
    except ImportError:
        return False
    return True


def envpool_supports(env_id: str) -> bool:
    import envpool

    return env_id in envpool.list_all_envs()


def gymnasium_only(cfg: Config) -> str | None:
    """Why ``cfg`` needs the gymnasium backend (physics variation, pushes, env arguments, a user's env module), or
    None.

    envpool 1.2.5 has options of the same names for some MuJoCo tasks (``xml_file``, ``ctrl_cost_weight``, ...),
    but nobody has checked that they mean the same as gymnasium's, so ``env_kwargs`` never go to envpool.
    """
    if needs_gymnasium(cfg):
        return "pushes (push_body) need MuJoCo's simulator data: use --backend gymnasium or auto"
    if cfg.physics or cfg.randomize:
        return "physics overrides and randomization need the gymnasium backend"
    if cfg.env_kwargs:
        return f"envpool is not known to take env_kwargs ({', '.join(cfg.env_kwargs)}) with gymnasium's meaning"
    if cfg.env_module:
        return f"envpool cannot import the env module {cfg.env_module}"
    return None


def resolve_backend(cfg: Config) -> str:
    """The backend to use: ``auto`` picks envpool when installed, it knows the env id, and nothing asks for the
    gymnasium backend (:func:`gymnasium_only`); an explicit ``envpool`` that cannot honour the config is refused."""
    needs_gym = gymnasium_only(cfg)
    if cfg.backend == "gymnasium":
        return "gymnasium"
    if cfg.backend == "envpool":
        if not envpool_available():
            raise UserError(
                "backend 'envpool' asked for but envpool is not installed or fails to import (pip install envpool)"
            )
        if not envpool_supports(cfg.env_id):
            raise UserError(f"envpool cannot run {cfg.env_id}; use --backend gymnasium")
        if needs_gym and (cfg.env_kwargs or cfg.env_module):
            raise UserError(f"backend 'envpool' cannot run this config: {needs_gym}; use --backend gymnasium")
        if needs_gym:
            raise UserError(needs_gym)
        return "envpool"
    if not needs_gym and envpool_available() and envpool_supports(cfg.env_id):
        return "envpool"
    return "gymnasium"


def backend_reason(cfg: Config) -> str | None:
    """For ``backend = "auto"``, the console line saying why it picks gymnasium: pushes
    (:data:`~mjreinforce.envs.perturb_config.PUSH_BACKEND_NOTE`), or env arguments (``backend gymnasium: <why
    not envpool>``); None when nothing asks for it."""
    if cfg.backend != "auto":
        return None
    if needs_gymnasium(cfg):
        return PUSH_BACKEND_NOTE
    if not (cfg.env_kwargs or cfg.env_module):
        return None
    return f"backend {resolve_backend(cfg)}: {gymnasium_only(cfg)}"


class GymnasiumVecEnv:
    """gymnasium.vector Sync/Async env with explicit same-step autoreset."""

    def __init__(self, cfg: Config, num_envs: int, seed: int, **make_kwargs: Any) -> None:
        env_id, kwargs = make_id(cfg), {**cfg.env_kwargs, **make_kwargs}
        if cfg.physics or cfg.randomize:
            fns = [
                partial(make_physics_env, env_id, cfg.physics, cfg.randomize, seed + i, env_kwargs=kwargs)
                for i in range(num_envs)
            ]
        else:
            fns = [partial(gym.make, env_id, **kwargs) for _ in range(num_envs)]
        fns = with_pushes(fns, parse_perturbations(cfg).push, seed)
        mode = gym.vector.AutoresetMode.SAME_STEP
        # copy=False skips gymnasium's deepcopy of every observation; step() copies once instead.
        if cfg.env_workers > 0:
            self.env: gym.vector.VectorEnv = gym.vector.AsyncVectorEnv(fns, autoreset_mode=mode, copy=False)
        else:
            self.env = gym.vector.SyncVectorEnv(fns, autoreset_mode=mode, copy=False)
        self.num_envs = num_envs
        self._seed: int | None = seed

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Reset every env. The first reset is seeded (env ``i`` gets ``seed + i``), and so is any reset
        given a ``seed``; other resets continue each env's RNG, so episodes do not all start alike."""
        obs, _ = self.env.reset(seed=seed if seed is not None else self._seed)
        self._seed = None
        return obs.copy()

    def step(self, actions: np.ndarray) -> StepResult:
        obs, rewards, terminated, truncated, info = self.env.step(actions)
        obs = obs.copy()
        final_obs = obs
        if "_final_obs" in info:
            final_obs = obs.copy()
            ended = info["_final_obs"]
            final_obs[ended] = np.stack(info["final_obs"][ended])
        return StepResult(obs, rewards, terminated, truncated, final_obs)

    def get_state(self) -> list[dict[str, Any]] | None:
        """Everything that decides each env's future (MuJoCo integration state, env RNG, time-limit
        counter, physics randomization), so a resumed run continues exactly; None for async envs and for
        envs without a MuJoCo model (a resumed run then starts fresh episodes, as on envpool)."""
        if not isinstance(self.env, gym.vector.SyncVectorEnv) or not all(map(is_mujoco_env, self.env.envs)):
            return None
        return [_single_env_state(e) for e in self.env.envs]

    def set_state(self, states: list[dict[str, Any]]) -> None:
        assert isinstance(self.env, gym.vector.SyncVectorEnv)
        for e, state in zip(self.env.envs, states, strict=True):
            _restore_single_env(e, state)

    def close(self) -> None:
        self.env.close()


_INTEGRATION = mujoco.mjtState.mjSTATE_INTEGRATION


def _time_limit(env: gym.Env) -> gym.wrappers.TimeLimit | None:
    while isinstance(env, gym.Wrapper):
        if isinstance(env, gym.wrappers.TimeLimit):
            return env
        env = env.env
    return None


def _single_env_state(env: gym.Env) -> dict[str, Any]:
    u: Any = env.unwrapped  # a MujocoEnv: model, data, np_random
    physics = np.empty(mujoco.mj_stateSize(u.model, _INTEGRATION))
    mujoco.mj_getState(u.model, u.data, physics, _INTEGRATION)
    limit = _time_limit(env)
    return {
        "mujoco": physics,
        "rng": u.np_random.bit_generator.state,
        "elapsed_steps": limit._elapsed_steps if limit is not None else None,
        "physics_wrapper": wrapper_state(env),
        "pushes": push_state(env),
    }


def _restore_single_env(env: gym.Env, state: dict[str, Any]) -> None:
    u: Any = env.unwrapped  # a MujocoEnv: model, data, np_random
    restore_wrapper_state(env, state["physics_wrapper"])
    restore_push_state(env, state.get("pushes"))
    mujoco.mj_setState(u.model, u.data, np.asarray(state["mujoco"], dtype=np.float64), _INTEGRATION)
    mujoco.mj_forward(u.model, u.data)
    u.np_random.bit_generator.state = state["rng"]
    limit = _time_limit(env)
    if limit is not None:
        limit._elapsed_steps = state["elapsed_steps"]


class EnvpoolVecEnv:
    """envpool's C++ vectorized env. envpool resets an ended env on the *next* step; resetting
    the ended envs at once (``reset(env_ids)``) gives same-step semantics and the same states."""

    def __init__(self, cfg: Config, num_envs: int, seed: int, **make_kwargs: Any) -> None:
        import envpool

        self.env = envpool.make_gymnasium(
            cfg.env_id, num_envs=num_envs, seed=seed, num_threads=cfg.env_workers, **make_kwargs
        )
        self.num_envs = num_envs

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Reset every env. envpool seeds only at construction: a ``seed`` here is ignored, and each
        reset continues the envs' RNG (reproducible from the construction seed)."""
        obs, _ = self.env.reset()
        return obs

    def step(self, actions: np.ndarray) -> StepResult:
        obs, rewards, terminated, truncated, _ = self.env.step(actions)
        ended = np.flatnonzero(terminated | truncated)
        final_obs = obs
        if ended.size:
            final_obs = obs.copy()
            obs = obs.copy()
            reset_obs, info = self.env.reset(ended.astype(np.int32))
            obs[info["env_id"]] = reset_obs
        return StepResult(obs, rewards, terminated, truncated, final_obs)

    def get_state(self) -> None:
        """envpool does not expose its simulator states: a resumed run starts fresh episodes."""
        return None

    def set_state(self, states: list[dict[str, Any]]) -> None:
        raise NotImplementedError("envpool env states cannot be restored")

    def close(self) -> None:
        self.env.close()


VecEnv = GymnasiumVecEnv | EnvpoolVecEnv | PerturbedVecEnv


def make_vec_env(cfg: Config, num_envs: int, seed: int, backend: str | None = None, **make_kwargs: Any) -> VecEnv:
    """Build ``num_envs`` copies of ``cfg.env_id`` on ``backend`` (default: :func:`resolve_backend`), with the
    config's observation and action noise and delays around them (:mod:`mjreinforce.envs.perturbed`)."""
    backend = backend or resolve_backend(cfg)
    if backend == "envpool":
        return batch_perturbed(EnvpoolVecEnv(cfg, num_envs, seed, **make_kwargs), cfg, seed)
    return batch_perturbed(GymnasiumVecEnv(cfg, num_envs, seed, **make_kwargs), cfg, seed)
