"""Raw config values (TOML values or ``--set`` strings) converted to a field's declared type.

The conversion is driven by the type hint alone, so it knows nothing about :class:`~mjreinforce.config.Config`:
``X | None`` accepts None/"none"/"null"/"", ``Literal`` one of its values, ``tuple[T, ...]`` a list, a TOML
array string or a comma-separated string, and ``bool``/``int``/``float``/``str`` their usual spellings (an
int may be written as an integral float, ``1e5``). A bad value is a one-line :class:`UserError`.
"""

from __future__ import annotations

import difflib
import tomllib
import types
import typing
from collections.abc import Iterable
from typing import Any, Literal

from mjreinforce.errors import UserError


def coerce_to(name: str, hint: Any, value: Any) -> Any:
    """Convert ``value`` to the type ``hint`` of the field ``name`` (named in error messages)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return coerce_to(name, inner, value)
    if origin is Literal:
        if value not in args:
            raise UserError(f"{name} must be one of {', '.join(map(str, args))}; got {value!r}")
        return value
    if origin is tuple:
        if isinstance(value, str) and value.strip().startswith("["):
            try:  # a TOML array, e.g. --set 'randomize=["gravity=-12:-7"]'
                value = tomllib.loads(f"v = {value}")["v"]
            except tomllib.TOMLDecodeError:
                raise UserError(f"{name} must be a list such as [1, 2], got {value!r}") from None
        elif isinstance(value, str):
            value = [v for v in value.replace(" ", "").split(",") if v] if value.strip() else []
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{name} must be a list, got {value!r}")
        return tuple(coerce_to(name, args[0], v) for v in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
            return False
        raise UserError(f"{name} must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool):
            raise UserError(f"{name} must be an integer, got {value!r}")
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            raise UserError(f"{name} must be an integer, got {value!r}") from None
        if not as_float.is_integer():
            raise UserError(f"{name} must be an integer, got {value!r}")
        return int(as_float)
    if hint is float:
        if isinstance(value, bool):
            raise UserError(f"{name} must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise UserError(f"{name} must be a number, got {value!r}") from None
    if hint is str:
        if not isinstance(value, str):
            raise UserError(f"{name} must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {hint} for {name}")  # a bug, not user input


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``" (did you mean a, b?)"`` with up to 3 close matches of ``name`` among ``choices``, or ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""
