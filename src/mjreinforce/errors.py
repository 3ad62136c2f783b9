"""The one exception type for bad user input.

Anything the user can get wrong (a config value, an env id, a path) raises
:class:`UserError` with a single-line message. The CLI prints that line to
stderr and exits with code 2; library callers can catch it.
"""


class UserError(Exception):
    """Bad input from the user: the message is one line meant for a human."""


def one_line(text: object) -> str:
    """``text`` with every run of white space (newlines too) folded to one space."""
    return " ".join(str(text).split())


def error_line(exc: BaseException) -> str:
    """One line naming the error: ``"ValueError: first line of the message"``."""
    text = (str(exc).strip().splitlines() or [""])[0]
    return text if isinstance(exc, UserError) else f"{type(exc).__name__}: {text}".rstrip(": ")
