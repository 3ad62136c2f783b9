"""The one exception type for bad user input.

Anything the user can get wrong (a config value, an env id, a path) raises
:class:`UserError` with a single-line message. The CLI prints that line to
stderr and exits with code 2; library callers can catch it.
"""

import math


class UserError(Exception):
    """Bad input from the user: the message is one line meant for a human."""


def one_line(text: object) -> str:
    """``text`` with every run of white space (newlines too) folded to one space."""
    return " ".join(str(text).split())


def error_line(exc: BaseException) -> str:
    """One line naming the error: ``"ValueError: first line of the message"``."""
    text = (str(exc).strip().splitlines() or [""])[0]
    return text if isinstance(exc, UserError) else f"{type(exc).__name__}: {text}".rstrip(": ")


def shown(value: object, limit: int = 40) -> str:
    """``repr(value)`` for an error message, cut to about ``limit`` characters; a huge integer as ``~1e18``."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**15:
        return f"{'-' if value < 0 else ''}~1e{math.floor(math.log10(abs(value)))}"
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 10]}... ({len(text)} characters)"
