"""Typed, frozen training configuration; TOML load/save; ``key=value`` overrides.

One flat dataclass (CleanRL's ``Args`` style): every field has a comment that
is its documentation, derived values are properties, and :func:`validate`
rejects bad values with a one-line :class:`~mjreinforce.errors.UserError`.
Presets are TOML files in ``mjreinforce/presets/`` holding a subset of fields.
"""

from __future__ import annotations

import tomllib
import typing
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import tomli_w

from mjreinforce.config_bounds import BATCH_BOUND, BOUNDS, LENGTH_BOUNDS, LOG_STD_MAX, LOG_STD_MIN, check_number
from mjreinforce.config_coercion import check_toml_value, check_type, coerce_to, did_you_mean
from mjreinforce.config_perturbations import check_perturbations, raw_value
from mjreinforce.errors import UserError, one_line
from mjreinforce.files import atomic_write

Backend = Literal["auto", "gymnasium", "envpool"]
Advantage = Literal["returns", "gae"]
ActionBound = Literal["clip", "tanh"]
Activation = Literal["tanh", "relu", "elu"]
PolicyKind = Literal["tutorial", "mlp"]
LrSchedule = Literal["constant", "linear"]
Optimizer = Literal["adam", "adamw"]
Algorithm = Literal["policy_gradient", "ppo"]

DEFAULT_PRESET = "ppo"
"""The preset of a run that names none: the best on the MuJoCo suite (benchmarks/SUITE.md), and on InvertedPendulum
the fastest to solve in env steps (benchmarks/RESULTS.md)."""


@dataclass(frozen=True)
class Config:
    """Everything that defines a training run. Saved resolved with every run."""

    # --- environment -------------------------------------------------------
    env_id: str = "InvertedPendulum-v5"
    """Gymnasium id of a MuJoCo task with a Box action space."""
    backend: Backend = "auto"
    """``gymnasium``, ``envpool`` or ``auto`` (envpool when it can run the env, else gymnasium)."""
    num_envs: int = 1
    """Environments stepped in lockstep; a rollout is ``(rollout_steps, num_envs)``."""
    env_workers: int = 0
    """0 steps the envs in the training process; k > 0: gymnasium uses AsyncVectorEnv
    (one process per env), envpool uses k C++ threads."""
    physics: tuple[str, ...] = ()
    """Fixed MuJoCo model overrides such as ``gravity=-4.9`` or ``body_mass.pole=2.0``."""
    randomize: tuple[str, ...] = ()
    """Per-episode uniform randomization such as ``gravity=-12:-7`` (gymnasium backend)."""
    env_module: str | None = None
    """The module that registers ``env_id`` (gymnasium's ``module:EnvId``: ``env_id = "mypkg.envs:MyRobot-v0"`` or
    ``--env mypkg.envs:MyRobot-v0`` sets both); imported before the env is made. None: an env registered already."""
    env_kwargs: dict[str, Any] = field(default_factory=dict, hash=False)  # a dict: left out of hash(cfg), kept in ==
    """Arguments of the env's constructor, e.g. ``{ctrl_cost_weight = 1e-3, xml_file = "my_hopper.xml"}`` (a TOML
    table; ``--env-kwarg KEY=VALUE``); checked against its signature. ``train`` stores ``xml_file`` absolute."""
    xml_file_sha256: str | None = None
    """Set by ``train``: the sha256 of ``env_kwargs.xml_file`` when the run started. Resume, ``eval``, robustness,
    video, ``load_policy`` and export refuse a model file that changed since, unless told to allow it."""

    # --- budget and seeds --------------------------------------------------
    seeds: tuple[int, ...] = (1, 2, 3, 5, 8)
    """One independent run per seed, each in its own ``seed_<s>/`` directory."""
    total_episodes: int | None = None
    """Stop a seed after this many finished episodes (exclusive with ``total_steps``)."""
    total_steps: int | None = 200_000
    """Stop a seed after this many env steps (exclusive with ``total_episodes``)."""
    target_return: float | None = None
    """Stop a seed once its deterministic evaluation mean reaches this return."""

    # --- policy ------------------------------------------------------------
    policy: PolicyKind = "mlp"
    """``tutorial``: the tutorial's network (shared trunk, softplus std head, +1e-6);
    ``mlp``: configurable Gaussian MLP below."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the ``mlp`` policy and of the value network."""
    activation: Activation = "tanh"
    """Non-linearity between hidden layers."""
    state_dependent_std: bool = False
    """``mlp`` policy: log-std from a head on the trunk (True) or a free parameter (False)."""
    orthogonal_init: bool = False
    """``mlp`` policy and critic: orthogonal weights with gain sqrt(2) on hidden layers, 0.01 on the policy's
    mean output and 1 on the critic's output, zero biases (CleanRL's PPO, SB3's ``ortho_init``, Tianshou's
    MuJoCo scripts): the initial policy acts near the centre of the action box. False: torch's default init."""
    init_log_std: float = 0.0
    """Initial log standard deviation of the ``mlp`` policy, in [-20, 2] (the range its log-std is
    clamped to in the forward pass)."""
    action_bound: ActionBound = "clip"
    """``clip``: sample a raw Gaussian action, clip what is sent to the env; ``tanh``: squash it with
    tanh and rescale to the action bounds. With ``tanh``, log-probabilities are those of the raw
    (pre-squash) Gaussian: the log-det-Jacobian term does not depend on the parameters, so it is
    left out (the policy gradient is the same), and the entropy bonus is the pre-squash Gaussian's."""

    # --- algorithm ---------------------------------------------------------
    algorithm: Algorithm = "policy_gradient"
    """The update. ``policy_gradient``: one gradient step on ``-mean_t log pi(u_t|s_t) A_t`` per rollout (the
    ``reinforce`` and ``vpg`` presets; with ``value_iterations`` separate critic steps). ``ppo``: the clipped
    surrogate of PPO, ``update_epochs`` passes over the rollout in ``num_minibatches`` shuffled minibatches,
    policy and critic trained together on ``policy loss + vf_coef * value loss`` (Stable-Baselines3's PPO)."""
    rollout_steps: int = 0
    """Steps per env between updates; 0: episode mode, whole episodes only (see ``episode_batch_steps``)."""
    episode_batch_steps: int = 0
    """Episode mode: keep collecting whole episodes until the rollout holds at least this many env steps
    (``T * num_envs``) and every env finished one; 0: stop as soon as every env finished one. Like Spinning
    Up's steps per epoch, it keeps short early episodes from making tiny, noisy batches."""
    gamma: float = 0.99
    """Discount factor, in (0, 1]."""
    advantage: Advantage = "returns"
    """``returns``: Monte-Carlo reward-to-go (minus V if ``use_critic``); ``gae``: GAE(lambda)."""
    gae_lambda: float = 0.95
    """lambda of GAE, in [0, 1]."""
    use_critic: bool = False
    """Learn a value baseline V(s), used for advantages and to bootstrap truncations."""
    bootstrap_truncated: bool = True
    """At a time-limit truncation bootstrap from V(final obs); False treats it as a
    termination (the tutorial's behaviour). Without a critic there is no V, and truncations
    are cut from 0 either way."""
    accept_zero_bootstrap: bool = False
    """Without a critic, fixed-length segments (``rollout_steps > 0``) cut episodes open and
    bootstrap each cut from 0, a biased return. Refused unless this is true."""
    normalize_obs: bool = False
    """Running mean/std observation normalization (frozen at evaluation, checkpointed)."""
    normalize_rewards: bool | None = None
    """True: scale the rewards the returns stage sees by a running std of the discounted return (with
    ``gamma``), clipped to [-10, 10], as Stable-Baselines3's ``VecNormalize`` and CleanRL's PPO do; checkpointed.
    Training only: episodes.csv, evaluations and exported policies keep the task's rewards. Unset or false: the
    task's rewards (unset keeps the config, its hash and its tables those of runs made before the key existed)."""
    normalize_advantages: bool = False
    """Standardize advantages over each batch: the update's (``policy_gradient``) or each minibatch (``ppo``,
    as Stable-Baselines3 and CleanRL do)."""
    learning_rate: float = 1e-4
    """Policy learning rate (> 0)."""
    lr_schedule: LrSchedule = "constant"
    """``linear`` anneals both learning rates (policy and critic) linearly towards 0 over the step or
    episode budget, by the progress before each rollout (so no update runs at learning rate 0)."""
    optimizer: Optimizer = "adamw"
    """Policy optimizer (the tutorial uses AdamW)."""
    value_learning_rate: float = 1e-3
    """Learning rate of the separate value optimizer (Adam); needs ``use_critic``."""
    value_iterations: int = 1
    """Value-function gradient steps per update; needs ``use_critic``."""
    entropy_coef: float = 0.0
    """Weight of the entropy bonus in the policy loss."""
    max_grad_norm: float | None = None
    """Clip the global gradient norm of each network to this value; None: no clipping."""
    loss_reduction: Literal["sum", "mean"] = "mean"
    """Policy loss over the batch: ``sum`` (the tutorial) or ``mean`` (the only one ``ppo`` has)."""
    adam_eps: float = 1e-8
    """The ``eps`` of both Adam optimizers (torch's default 1e-8; Stable-Baselines3's and CleanRL's PPO use 1e-5)."""

    # --- ppo (algorithm = "ppo") -------------------------------------------
    clip_range: float = 0.2
    """epsilon of the clipped surrogate ``min(r A, clip(r, 1 - epsilon, 1 + epsilon) A)``."""
    update_epochs: int = 10
    """Passes over the rollout per update."""
    num_minibatches: int = 32
    """Minibatches per pass: the valid steps, shuffled, in this many near-equal parts (fewer when the rollout
    has fewer valid steps). One optimizer step each."""
    clip_range_vf: float | None = None
    """Value clipping (Stable-Baselines3's): the critic's prediction is kept within this distance of its value
    at collection, ``V_old + clip(V - V_old, -c, c)``, before the squared error; None: no clipping. In return
    units, so it depends on the reward scale."""
    target_kl: float | None = None
    """Stop the update's epochs early once a minibatch's approximate KL divergence from the collecting policy
    exceeds ``1.5 * target_kl`` (that minibatch is not stepped; Stable-Baselines3's rule); None: never."""
    vf_coef: float = 0.5
    """Weight of the value loss in the joint loss; it matters through the joint gradient-norm clip."""

    # --- sim-to-real perturbations (unset: none; docs/perturbations.md) -----
    obs_noise_std: tuple[float, ...] | None = None
    """Gaussian noise added to the observation the policy (and the normalizer) sees, not to rewards: one std
    for every dimension or one per dimension, in raw observation units; both backends."""
    action_noise_std: float | None = None
    """Gaussian noise added to the action before it is clipped to the action box, its std in units of the
    box's half-width; both backends."""
    action_delay_steps: str | None = None
    """The env applies the action chosen k steps earlier: ``"k"`` or ``"lo:hi"`` (drawn per episode and env);
    the queue starts each episode filled with zero actions; both backends."""
    obs_delay_steps: str | None = None
    """The policy sees the observation of k steps earlier: ``"k"`` or ``"lo:hi"`` (drawn per episode and env);
    the queue starts each episode filled with zeros; both backends."""
    push_body: str | None = None
    """Random pushes: a horizontal force of random direction on this body (its MJCF name) through MuJoCo's
    ``xfrc_applied``; needs ``push_force`` and ``push_interval_steps``, and the gymnasium backend."""
    push_force: str | None = None
    """Magnitude of each push in newtons, ``"lo:hi"`` (drawn per push) or one number."""
    push_interval_steps: str | None = None
    """Env steps from the start of one push to the start of the next (the first: from the episode's start),
    ``"lo:hi"`` (drawn per push) or one number."""
    push_duration_steps: int | None = None
    """Env steps each push lasts (unset: 1); at most the shortest interval."""
    eval_perturbed: bool | None = None
    """True: the evaluations during training see the perturbations too (drawn from the evaluation envs' seeds);
    unset or false: they run unperturbed, as they run without physics randomization."""

    # --- evaluation, logging, checkpoints ----------------------------------
    eval_every_steps: int = 0
    """Deterministic evaluation every this many env steps (at the first update at or past each multiple,
    so the last update of a run that ends on a multiple is evaluated too); 0 disables it."""
    eval_episodes: int = 10
    """Episodes per evaluation, run in parallel on one vector env built once per seed (the evaluation
    config: fixed physics, no randomization, no env worker pool), mean action."""
    stats_window: int = 50
    """Episodes in the moving window of the progress display and summary."""
    log_every_episodes: int = 1000
    """Print a plain progress line every this many episodes (non-terminal or --quiet)."""
    checkpoint_every: int = 0
    """Write a checkpoint every this many updates; 0: only at the end and on Ctrl-C."""
    tensorboard: bool = True
    """Write TensorBoard event files per seed."""
    torch_threads: int = 1
    """torch intra-op threads per process; parallelism comes from processes."""

    def __post_init__(self) -> None:
        """Every field of the declared type (a hand-made ``Config(...)`` or ``dataclasses.replace`` too): a list
        becomes a tuple and an int a float; a wrong type is a one-line UserError naming the field. Ranges and
        the rules between fields are :func:`validate`'s."""
        for f in fields(self):
            value = getattr(self, f.name)
            checked = check_type(f.name, _HINTS[f.name], value)
            if checked is not value:
                object.__setattr__(self, f.name, checked)  # critical: frozen; only normalizes, never changes a value

    # --- derived ------------------------------------------------------------
    @property
    def episode_mode(self) -> bool:
        """True when each update uses exactly one whole episode (the tutorial's loop)."""
        return self.rollout_steps == 0

    @property
    def evaluates(self) -> bool:
        """True when a schedule of deterministic evaluations is set."""
        return self.eval_every_steps > 0

    @property
    def budget(self) -> tuple[str, int]:
        """``("steps", n)`` or ``("episodes", n)``."""
        if self.total_episodes is not None:
            return ("episodes", self.total_episodes)
        assert self.total_steps is not None
        return ("steps", self.total_steps)

    @property
    def algorithm_name(self) -> str:
        """Short human name used in plot titles."""
        if self.algorithm == "ppo":
            return "PPO"
        if self.use_critic and self.advantage == "gae":
            return "VPG (GAE)"
        if self.use_critic:
            return "REINFORCE + baseline"
        return "REINFORCE"


_HINTS = typing.get_type_hints(Config)
"""The fields' resolved type hints (``from __future__ import annotations`` leaves the annotations strings)."""
FIELD_NAMES = tuple(f.name for f in fields(Config))
_DEFAULTS = {f.name: f.default for f in fields(Config)}


def validate(cfg: Config) -> Config:
    """Return ``cfg`` unchanged or raise :class:`UserError` naming the first bad field.

    Every number must be finite and inside its bound in :data:`mjreinforce.config_bounds.BOUNDS` (list fields:
    each element, and their length in ``LENGTH_BOUNDS``); then the rules that tie fields together.
    """
    if (cfg.total_episodes is None) == (cfg.total_steps is None):
        raise UserError("set exactly one of total_episodes (--episodes) and total_steps (--steps)")
    _check_bounds(cfg)
    check_number("rollout_steps * num_envs", cfg.rollout_steps * cfg.num_envs, BATCH_BOUND)
    if len(set(cfg.seeds)) != len(cfg.seeds):
        raise UserError(f"seeds must be distinct, got {list(cfg.seeds)}")
    if cfg.advantage == "gae" and not cfg.use_critic:
        raise UserError("advantage = 'gae' needs use_critic = true")
    if cfg.policy == "tutorial" and cfg.action_bound != "clip":
        raise UserError("the tutorial policy supports only action_bound = 'clip'")
    if cfg.episode_batch_steps and not cfg.episode_mode:
        raise UserError("episode_batch_steps applies only in episode mode (rollout_steps = 0)")
    if not cfg.use_critic:
        if not cfg.episode_mode and not cfg.accept_zero_bootstrap:
            raise UserError(
                "rollout_steps > 0 without a critic cuts episodes and bootstraps each cut from 0 (a biased "
                "return); set use_critic = true, rollout_steps = 0, or accept_zero_bootstrap = true"
            )
        changed = [
            name for name in ("value_learning_rate", "value_iterations") if getattr(cfg, name) != _DEFAULTS[name]
        ]
        if changed:
            raise UserError(f"{changed[0]} is set but has no effect without a critic; set use_critic = true")
    elif cfg.accept_zero_bootstrap:
        raise UserError("accept_zero_bootstrap applies only without a critic (use_critic = false)")
    _check_algorithm(cfg)
    _check_env_source(cfg)
    check_perturbations(cfg)
    if cfg.target_return is not None and not cfg.evaluates:
        raise UserError("target_return needs eval_every_steps > 0 (evaluation decides when the target is reached)")
    return cfg


PPO_FIELDS = ("clip_range", "update_epochs", "num_minibatches", "clip_range_vf", "target_kl", "vf_coef")
"""The fields that only ``algorithm = "ppo"`` reads."""


def _check_algorithm(cfg: Config) -> None:
    """The keys of one algorithm are refused under the other, as the critic's keys are without a critic."""
    if cfg.algorithm != "ppo":
        changed = [name for name in PPO_FIELDS if getattr(cfg, name) != _DEFAULTS[name]]
        if changed:
            raise UserError(f"{changed[0]} is set but applies only with algorithm = 'ppo'")
        return
    if cfg.value_iterations != _DEFAULTS["value_iterations"]:
        raise UserError("value_iterations has no effect with algorithm = 'ppo' (the critic steps with each minibatch)")
    if cfg.loss_reduction != "mean":
        raise UserError("loss_reduction = 'sum' applies only with algorithm = 'policy_gradient'")
    if not cfg.use_critic:
        changed = [name for name in ("vf_coef", "clip_range_vf") if getattr(cfg, name) != _DEFAULTS[name]]
        if changed:
            raise UserError(f"{changed[0]} is set but has no effect without a critic; set use_critic = true")
    if not cfg.episode_mode and cfg.num_minibatches > cfg.rollout_steps * cfg.num_envs:
        raise UserError(
            f"num_minibatches ({cfg.num_minibatches}) is more than the steps of one rollout "
            f"(rollout_steps * num_envs = {cfg.rollout_steps * cfg.num_envs})"
        )


def _check_env_source(cfg: Config) -> None:
    """``env_module`` a dotted module name, ``env_kwargs`` keys identifiers, ``xml_file_sha256`` only with an
    ``xml_file`` (its values are checked against the env by :mod:`mjreinforce.envs.custom`)."""
    if cfg.env_module is not None and not all(part.isidentifier() for part in cfg.env_module.split(".")):
        raise UserError(f"env_module must be a module name such as mypkg.envs, got {cfg.env_module!r}")
    bad = [key for key in cfg.env_kwargs if not (isinstance(key, str) and key.isidentifier())]
    if bad:
        raise UserError(f"env_kwargs keys must be argument names, got {bad[0]!r}")
    for key, value in cfg.env_kwargs.items():  # also when given in Python, not through TOML
        check_toml_value(f"env_kwargs.{key}", value)
    if cfg.xml_file_sha256 is not None and "xml_file" not in cfg.env_kwargs:
        raise UserError("xml_file_sha256 is set but env_kwargs has no xml_file")
    sha = cfg.xml_file_sha256
    if sha is not None and not (len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
        raise UserError(f"xml_file_sha256 must be 64 hex digits (a sha256), got {sha!r}")


def _check_bounds(cfg: Config) -> None:
    """Every numeric field (every element of a list field) finite and inside its bound; list lengths too."""
    for name, bound in BOUNDS.items():
        value = getattr(cfg, name)
        if isinstance(value, tuple):
            check_number(f"number of {name}", len(value), LENGTH_BOUNDS[name])
            for i, item in enumerate(value):
                check_number(f"{name}[{i}]", item, bound)
        elif value is not None:
            check_number(name, value, bound)
    for name in ("physics", "randomize", "env_kwargs"):
        check_number(f"number of {name}", len(getattr(cfg, name)), LENGTH_BOUNDS[name])


# --------------------------------------------------------------------------
# Raw values (TOML or --set strings): coerced to the field types by config_coercion
# --------------------------------------------------------------------------
def _coerce(name: str, value: Any) -> Any:
    """Convert a TOML value or a ``--set`` string to the declared type of ``name``."""
    return coerce_to(name, _HINTS[name], raw_value(name, value))


def check_field(name: str, value: Any) -> Any:
    """One raw value of field ``name`` coerced to its type and checked against its bound (each element of a
    list); the rules between fields are :func:`validate`'s. Returns the coerced value or raises UserError."""
    if name not in FIELD_NAMES:
        raise UserError(f"unknown config key {name!r}{did_you_mean(name, FIELD_NAMES)}")
    coerced = _coerce(name, value)
    bound = BOUNDS.get(name)
    if bound is not None and isinstance(coerced, tuple):
        for i, item in enumerate(coerced):
            check_number(f"{name}[{i}]", item, bound)
    elif bound is not None and coerced is not None:
        check_number(name, coerced, bound)
    return coerced


def with_overrides(cfg: Config, values: dict[str, Any]) -> Config:
    """Return ``cfg`` with ``values`` (raw TOML or string values) applied; unknown keys are errors."""
    unknown = sorted(set(values) - set(FIELD_NAMES))
    if unknown:
        raise UserError(f"unknown config key {unknown[0]!r}{did_you_mean(unknown[0], FIELD_NAMES)}")
    coerced = {k: _coerce(k, v) for k, v in values.items()}
    module, sep, env_id = str(coerced.get("env_id") or "").partition(":")
    if sep:  # gymnasium's "module:EnvId": the module that registers the env, then the id
        if not module or not env_id:
            raise UserError(f"env_id must be an id or module:EnvId, got {coerced['env_id']!r}")
        coerced.update(env_module=module, env_id=env_id)
    # Setting one budget clears the other, so `--episodes` overrides a preset's steps.
    if coerced.get("total_episodes") is not None and "total_steps" not in coerced:
        coerced["total_steps"] = None
    if coerced.get("total_steps") is not None and "total_episodes" not in coerced:
        coerced["total_episodes"] = None
    return replace(cfg, **coerced)


def parse_set(items: list[str]) -> dict[str, str]:
    """Parse ``["key=value", ...]`` from ``--set``; a malformed item is a :class:`UserError`."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


# --------------------------------------------------------------------------
# TOML
# --------------------------------------------------------------------------
def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file into a dict; a missing or malformed file (bad syntax, bad UTF-8) is a :class:`UserError`;
    other OS errors (a directory, no permission) propagate."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise UserError(f"config file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"config file {path} is not valid TOML: {one_line(exc)}") from None


def load_toml(path: Path, base: Config | None = None) -> Config:
    """Load a config file (a subset of fields) on top of ``base`` (default: defaults)."""
    return with_overrides(base or Config(), read_toml(path))


def to_dict(cfg: Config) -> dict[str, Any]:
    """Config as plain TOML-able values; ``None`` fields are omitted (TOML has no null), and so is an empty
    ``env_kwargs`` (so configs without env arguments keep the hashes they had before the key existed)."""
    out: dict[str, Any] = {}
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if value is None or value == {}:
            continue
        out[f.name] = list(value) if isinstance(value, tuple) else dict(value) if isinstance(value, dict) else value
    return out


def from_dict(values: dict[str, Any]) -> Config:
    """Inverse of :func:`to_dict`: fields absent from ``values`` are None when nullable."""
    nullable = {f.name for f in fields(Config) if type(None) in typing.get_args(_HINTS[f.name])}
    full = {name: None for name in nullable if name not in values}
    full.update(values)
    return with_overrides(Config(), full)


def save_toml(cfg: Config, path: Path) -> None:
    """Write the resolved config; ``load_toml`` of the file gives ``cfg`` back."""
    atomic_write(path, dumps(cfg))


def dumps(cfg: Config) -> str:
    """Resolved config as TOML text."""
    return tomli_w.dumps(to_dict(cfg))


# --------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------
def preset_names() -> list[str]:
    """Names of the TOML presets shipped in ``mjreinforce/presets``."""
    files = resources.files("mjreinforce.presets").iterdir()
    return sorted(p.name.removesuffix(".toml") for p in files if p.name.endswith(".toml"))


ENV_TABLE = "env"
"""A preset's per-task table: ``[env.Hopper]`` holds overrides for every version of Hopper (``Hopper-v5``, ...)."""


def env_name(env_id: str) -> str:
    """``"Hopper-v5"`` -> ``"Hopper"``: the key of a preset's per-task table."""
    bare = env_id.rpartition(":")[2]  # without gymnasium's "module:" prefix
    name, sep, version = bare.rpartition("-v")
    return name if sep and version.isdigit() else bare


def _preset_tables(name: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``(base keys, {task name: override keys})`` of the named preset."""
    if name not in preset_names():
        raise UserError(f"unknown preset {name!r}; available: {', '.join(preset_names())}")
    values = tomllib.loads(resources.files("mjreinforce.presets").joinpath(f"{name}.toml").read_text())
    per_env = values.pop(ENV_TABLE, {})
    return values, per_env


def preset_env_overrides(name: str, env_id: str) -> dict[str, Any]:
    """The named preset's tuned overrides for ``env_id`` (its ``[env.<name>]`` table), or {}."""
    return dict(_preset_tables(name)[1].get(env_name(env_id), {}))


def load_preset(name: str, env_id: str | None = None) -> Config:
    """The named preset on top of the defaults, with its overrides for ``env_id`` (default: the
    preset's own env) applied on top: preset, then per-task overrides."""
    base, per_env = _preset_tables(name)
    cfg = with_overrides(Config(), base)
    target = env_id or cfg.env_id
    cfg = with_overrides(cfg, {"env_id": target})
    return with_overrides(cfg, per_env.get(env_name(target), {}))


def resolve(
    preset: str, file_values: dict[str, Any], flag_values: dict[str, Any], set_values: dict[str, Any]
) -> tuple[Config, dict[str, Any]]:
    """The config a command line asks for, and the per-task overrides that were applied.

    Order (later wins): the preset, its per-task overrides for the env finally chosen, the ``--config``
    file, the dedicated flags, ``--set``. The env is the last of those layers that names one.
    """
    env_id = next(
        (layer["env_id"] for layer in (set_values, flag_values, file_values) if layer.get("env_id") is not None),
        None,
    )
    base = load_preset(preset)
    env_id = str(env_id) if env_id is not None else base.env_id
    applied = preset_env_overrides(preset, env_id)
    cfg = load_preset(preset, env_id)
    for layer in (file_values, flag_values, set_values):
        cfg = with_overrides(cfg, layer)
    return cfg, applied


__all__ = [
    "LOG_STD_MAX",
    "LOG_STD_MIN",
    "Config",
    "DEFAULT_PRESET",
    "FIELD_NAMES",
    "check_field",
    "dumps",
    "from_dict",
    "env_name",
    "load_preset",
    "preset_env_overrides",
    "resolve",
    "load_toml",
    "parse_set",
    "preset_names",
    "read_toml",
    "save_toml",
    "to_dict",
    "validate",
    "with_overrides",
]
