"""Your own robot: the module that registers an env (gymnasium's ``module:EnvId``), the constructor's arguments
(``env_kwargs``), and a custom MJCF model file (``xml_file``) pinned by its sha256.

Every command that builds the env goes through here, in this order, so a bad input is one line before anything is
written: the module is imported (:func:`import_env_module`), the id looked up in gymnasium's registry
(:func:`registered_spec`), the argument names checked against the constructor's signature and the model file loaded
by MuJoCo (:func:`check_env_kwargs`). ``train`` then stores ``xml_file`` as an absolute path with its sha256
(:func:`pin_model_file`); resume, ``eval``, robustness, video, ``load_policy`` and export refuse a model file that
changed since (:func:`check_model_file`).
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import inspect
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import mujoco
from gymnasium.envs.registration import load_env_creator

from mjreinforce.config import Config
from mjreinforce.config_coercion import did_you_mean
from mjreinforce.errors import UserError, error_line, one_line

RESERVED = ("render_mode", "width", "height")
"""Constructor arguments mjreinforce sets itself (video: ``--video-size``); refused in ``env_kwargs``."""
MAKE_ARGUMENTS = ("max_episode_steps",)
"""``gymnasium.make`` arguments accepted in ``env_kwargs`` besides the constructor's."""


def make_id(cfg: Config) -> str:
    """What ``gymnasium.make`` gets: ``module:EnvId`` (gymnasium imports the module) or the bare id."""
    return f"{cfg.env_module}:{cfg.env_id}" if cfg.env_module else cfg.env_id


def make_env(cfg: Config, **extra: Any) -> gym.Env:
    """``gymnasium.make`` of ``cfg``'s env with its ``env_kwargs`` (``extra`` wins for a name in both)."""
    return gym.make(make_id(cfg), **{**cfg.env_kwargs, **extra})


def import_env_module(module: str) -> None:
    """Import the module that registers a user's env, as ``python -m`` would: installed packages and PYTHONPATH
    first, then the working directory. Any failure is one UserError line naming the module."""
    try:
        _import_from_cwd_too(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module == exc.name or module.startswith(exc.name + ".")):
            raise UserError(
                f"cannot import env module {module!r}: no such module (install it, put it on PYTHONPATH, or run "
                "from the directory that holds it)"
            ) from None
        raise UserError(f"cannot import env module {module!r}: {error_line(exc)}") from None
    except (Exception, SystemExit) as exc:  # the user's code: any error in it is one line
        raise UserError(f"cannot import env module {module!r}: {error_line(exc)}") from None


def _import_from_cwd_too(module: str) -> None:
    """``importlib.import_module(module)``; when the module itself is missing, again with the working directory
    appended to ``sys.path`` (kept there on success, so worker processes find it as well)."""
    try:
        importlib.import_module(module)
        return
    except ModuleNotFoundError as exc:
        top = module.partition(".")[0]
        cwd = os.getcwd()
        if exc.name not in (top, module) or cwd in sys.path:
            raise
    sys.path.append(cwd)
    importlib.invalidate_caches()
    try:
        importlib.import_module(module)
    except BaseException:
        sys.path.remove(cwd)
        raise


def registered_spec(cfg: Config) -> gym.envs.registration.EnvSpec:
    """``cfg.env_id``'s registration (after importing ``cfg.env_module``); an unknown id is a UserError with the
    closest registered ids."""
    if cfg.env_module:
        import_env_module(cfg.env_module)
    if cfg.env_id not in gym.registry:
        close = difflib.get_close_matches(cfg.env_id, list(gym.registry), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        where = f" (module {cfg.env_module} registers no such env)" if cfg.env_module else ""
        raise UserError(f"unknown env id {cfg.env_id!r}{where}{hint}")
    return gym.registry[cfg.env_id]


def accepted_names(creator: Callable[..., Any]) -> set[str] | None:
    """The keyword arguments ``creator`` (an env class or function) takes; None when it takes any (``**kwargs``
    that cannot be followed). For a class, ``**kwargs`` of an ``__init__`` is followed up its base classes, as
    gymnasium's MuJoCo envs pass theirs on to ``MujocoEnv.__init__``."""
    classes = creator.__mro__ if inspect.isclass(creator) else ()
    inits = [k.__dict__["__init__"] for k in classes if "__init__" in k.__dict__] or [creator]
    names: set[str] = set()
    for init in inits:
        try:
            parameters = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):  # a builtin without a signature
            return None
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        names |= {p.name for p in parameters if p.kind in kinds and p.name != "self"}
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            return names
    return None


def check_env_kwargs(cfg: Config) -> None:
    """``cfg.env_kwargs`` against the env: every name one the constructor (or ``gymnasium.make``) takes, none that
    mjreinforce sets itself, and an ``xml_file`` that exists and that MuJoCo loads. One UserError line each."""
    spec = registered_spec(cfg)
    if not cfg.env_kwargs:
        return
    reserved = [name for name in RESERVED if name in cfg.env_kwargs]
    if reserved:
        raise UserError(f"env_kwargs.{reserved[0]} is set by mjreinforce itself (video: --video-size); leave it out")
    try:
        creator = load_env_creator(spec.entry_point) if isinstance(spec.entry_point, str) else spec.entry_point
    except Exception as exc:  # a registration whose entry point does not import
        raise UserError(f"cannot load {cfg.env_id}'s entry point {spec.entry_point!r}: {error_line(exc)}") from None
    names = accepted_names(creator) if callable(creator) else None
    if names is not None:
        names |= set(spec.kwargs) | set(MAKE_ARGUMENTS)
        unknown = [name for name in cfg.env_kwargs if name not in names]
        if unknown:
            hint = did_you_mean(unknown[0], names) or f" (it takes {', '.join(sorted(names - set(RESERVED)))})"
            raise UserError(f"{cfg.env_id} takes no argument {unknown[0]!r}{hint}")
    if "xml_file" in cfg.env_kwargs:
        check_xml_file(model_path(cfg.env_kwargs["xml_file"]))


def model_path(value: Any) -> Path:
    """``env_kwargs.xml_file`` as an absolute path (a relative one is relative to the working directory)."""
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"env_kwargs.xml_file must be the path of an MJCF file, got {value!r}")
    return Path(os.path.abspath(os.path.expanduser(value)))


def check_xml_file(path: Path) -> None:
    """``path`` is a file that MuJoCo compiles; else one UserError line naming it (and MuJoCo's error)."""
    if not path.exists():
        raise UserError(f"env_kwargs.xml_file {path}: no such file")
    if path.is_dir():
        raise UserError(f"env_kwargs.xml_file {path} is a directory, not an MJCF file")
    try:
        mujoco.MjModel.from_xml_path(str(path))
    except ValueError as exc:  # MuJoCo's parse and compile errors
        raise UserError(f"env_kwargs.xml_file {path}: MuJoCo cannot load it: {one_line(exc)}") from None


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pin_model_file(cfg: Config) -> Config:
    """``cfg`` checked (:func:`check_env_kwargs`), with ``xml_file`` made absolute and its sha256 recorded in
    ``xml_file_sha256`` (None without an ``xml_file``): what a new run stores in config.toml and its checkpoints."""
    check_env_kwargs(cfg)
    if "xml_file" not in cfg.env_kwargs:
        return replace(cfg, xml_file_sha256=None) if cfg.xml_file_sha256 is not None else cfg
    path = model_path(cfg.env_kwargs["xml_file"])
    return replace(cfg, env_kwargs={**cfg.env_kwargs, "xml_file": str(path)}, xml_file_sha256=file_sha256(path))


def check_model_file(cfg: Config, allow_changed: bool = False) -> None:
    """The model file a run was trained on is still the same bytes (its sha256 as recorded); a missing or changed
    file is one UserError line naming it, unless ``allow_changed``."""
    if cfg.xml_file_sha256 is None or allow_changed:
        return
    path = model_path(cfg.env_kwargs.get("xml_file"))
    allow = "pass --allow-changed-model (allow_changed_model=True) to use it as it is now"
    if not path.is_file():
        raise UserError(f"model file {path} (env_kwargs.xml_file) is missing; the policy was trained on it")
    now = file_sha256(path)
    if now != cfg.xml_file_sha256:
        raise UserError(
            f"model file {path} changed since training (sha256 {cfg.xml_file_sha256[:12]}... now {now[:12]}...); "
            f"restore it, or {allow}"
        )


def is_mujoco_env(env: gym.Env) -> bool:
    """True when ``env`` simulates a MuJoCo model (``env.unwrapped.model`` and ``.data``)."""
    unwrapped = env.unwrapped
    return isinstance(getattr(unwrapped, "model", None), mujoco.MjModel) and isinstance(
        getattr(unwrapped, "data", None), mujoco.MjData
    )


def require_mujoco(env: gym.Env, feature: str) -> None:
    """Refuse ``feature`` (e.g. "physics variation") with one UserError line when ``env`` is not a MuJoCo env."""
    if not is_mujoco_env(env):
        name = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
        raise UserError(f"{feature} needs a MuJoCo model; {name} is not a MuJoCo env")


def env_kwargs_text(kwargs: Mapping[str, Any]) -> str:
    """``a=1, b='x'`` for messages."""
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
