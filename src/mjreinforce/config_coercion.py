"""Raw config values (TOML values or ``--set`` strings) converted to a field's declared type.

The conversion is driven by the type hint alone, so it knows nothing about :class:`~mjreinforce.config.Config`:
``X | None`` accepts None/"none"/"null"/"", ``Literal`` one of its values, ``tuple[T, ...]`` a list, a TOML
array string or a comma-separated string, ``dict[str, Any]`` a table of TOML values (or an inline-table
string), and ``bool``/``int``/``float``/``str`` their usual spellings (an int may be written as an integral
float, ``1e5``). Floats must be finite: NaN, ``inf`` and overflows such as ``1e400`` are refused here; ranges
are checked by :func:`mjreinforce.config.validate`. A bad value is a one-line :class:`UserError`.
"""

from __future__ import annotations

import difflib
import math
import tomllib
import types
import typing
from collections.abc import Iterable
from typing import Any, Literal

from mjreinforce.errors import UserError, shown


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
            raise UserError(f"{name} must be one of {', '.join(map(str, args))}; got {shown(value)}")
        return value
    if origin is dict:
        return _to_table(name, value)
    if origin is tuple:
        if isinstance(value, str) and value.strip().startswith("["):
            try:  # a TOML array, e.g. --set 'randomize=["gravity=-12:-7"]'
                value = tomllib.loads(f"v = {value}")["v"]
            except tomllib.TOMLDecodeError:
                raise UserError(f"{name} must be a list such as [1, 2], got {shown(value)}") from None
        elif isinstance(value, str):
            value = [v for v in value.replace(" ", "").split(",") if v] if value.strip() else []
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{name} must be a list, got {shown(value)}")
        return tuple(coerce_to(name, args[0], v) for v in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
            return False
        raise UserError(f"{name} must be true or false, got {shown(value)}")
    if hint is int:
        return _to_int(name, value)
    if hint is float:
        return _to_float(name, value)
    if hint is str:
        if not isinstance(value, str):
            raise UserError(f"{name} must be a string, got {shown(value)}")
        return value
    raise TypeError(f"unsupported config type {hint} for {name}")  # a bug, not user input


def _to_table(name: str, value: Any) -> dict[str, Any]:
    """A mapping (or a TOML inline-table string, ``{a = 1, b = "x"}``) of names to TOML values: strings, booleans,
    finite numbers, and arrays and tables of them."""
    if isinstance(value, str):
        try:
            value = tomllib.loads(f"v = {value}")["v"] if value.strip() else {}
        except tomllib.TOMLDecodeError:
            raise UserError(f"{name} must be a table such as {{a = 1}}, got {shown(value)}") from None
    if not isinstance(value, dict):
        raise UserError(f"{name} must be a table of name = value, got {shown(value)}")
    for key, item in value.items():
        check_toml_value(f"{name}.{key}", item)
    return dict(value)


def check_toml_value(name: str, value: Any) -> None:
    """``value`` is a string, a boolean, a finite number, or an array or table of those; else a UserError."""
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{name} must be a finite number, got {shown(value)}")
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_toml_value(f"{name}[{i}]", item)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_toml_value(f"{name}.{key}", item)
    elif not isinstance(value, (str, bool, int, float)):
        raise UserError(f"{name} must be a string, number, boolean, array or table, got {shown(value)}")


def _to_int(name: str, value: Any) -> int:
    """An int, a decimal string or an integral finite float (``1e5``) -> int; anything else is a UserError."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass  # maybe "1e5"
    as_float = _to_float(name, value, "an integer")
    if not as_float.is_integer():
        raise UserError(f"{name} must be an integer, got {shown(value)}")
    return int(as_float)


def _to_float(name: str, value: Any, what: str = "a number") -> float:
    """A finite float from a number or a string; NaN and infinities (also ``1e400``) are a UserError."""
    if isinstance(value, bool):
        raise UserError(f"{name} must be {what}, got {shown(value)}")
    try:
        as_float = float(value)
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"{name} must be {what}, got {shown(value)}") from None
    if not math.isfinite(as_float):
        raise UserError(f"{name} must be a finite number, got {shown(value)}")
    return as_float


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``" (did you mean a, b?)"`` with up to 3 close matches of ``name`` among ``choices``, or ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""
