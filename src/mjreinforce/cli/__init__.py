"""Command-line interface: ``mjreinforce <command> ...``; each command is a module here with
``add_parser(subparsers)`` and ``run(args) -> int``. Nothing in the library imports this package.

Exit codes: 0 success; 2 bad input (a :class:`UserError`, or an operating-system error such as a read-only or
full disk: one line ``mjreinforce <command>: error: ...`` on stderr, no traceback); 3 ``train`` ran but a seed
diverged (:data:`mjreinforce.cli.train.EXIT_DIVERGED`); 130 interrupted by Ctrl-C, 143 by SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from mjreinforce.errors import UserError, one_line
from mjreinforce.training.interrupt import stop_signals_raise


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``mjreinforce train: error: ...``), exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _commands() -> list[ModuleType]:
    from mjreinforce.cli import benchmark, export, plot, robustness, sweep, train
    from mjreinforce.cli import eval as eval_command

    return [train, eval_command, export, plot, robustness, sweep, benchmark]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mjreinforce", description="Policy-gradient training for Gymnasium MuJoCo tasks.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    for module in _commands():
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mjreinforce`` console script. From its first line a Ctrl-C or SIGTERM ends it (130,
    143; one line, no traceback), also in a process started with SIGINT ignored (``cmd &`` from a script), until
    the command's own handlers take over (the trainer's and the workers' stop at their next update)."""
    with stop_signals_raise():  # critical: before the slow imports (MuJoCo, torch, Ray), so a stop is not lost
        try:
            args = _start(argv)
        except KeyboardInterrupt as exc:
            return _interrupted("mjreinforce", exc, "interrupted before start")
        return args if isinstance(args, int) else _run(args)


def _start(argv: list[str] | None) -> argparse.Namespace | int:
    """Parse ``argv`` and load MuJoCo: the parsed arguments, or exit code 2 (with its line) if MuJoCo fails."""
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
    args = build_parser().parse_args(argv)
    threading.excepthook = _thread_excepthook
    try:
        with _unwrapped_stops():
            import mujoco  # noqa: F401  -- fails at import on a bad MUJOCO_GL value
    except (ImportError, RuntimeError) as exc:
        print(f"mjreinforce {args.command}: error: {_mujoco_import_error(exc)}", file=sys.stderr)
        return 2
    return args


def _run(args: argparse.Namespace) -> int:
    """Run the parsed command: its exit code, or 2 for bad input, 130 or 143 when stopped (one stderr line)."""
    try:
        with _unwrapped_stops():
            return int(args.run(args))
    except UserError as exc:
        print(f"mjreinforce {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # read-only, no space, not a directory, exists, permission: the user's to fix
        from mjreinforce.files import os_error_text

        print(f"mjreinforce {args.command}: error: {one_line(os_error_text(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C: 130; SIGTERM (training.interrupt.Terminated): 143
        return _interrupted(f"mjreinforce {args.command}", exc, "interrupted")


@contextmanager
def _unwrapped_stops() -> Iterator[None]:
    """A Ctrl-C or SIGTERM that arrives while a C extension initializes (the MuJoCo and torch bindings) surfaces
    as the extension's error (pybind11: ImportError "initialization failed", raised from the KeyboardInterrupt):
    raise the KeyboardInterrupt (or Terminated) itself instead."""
    try:
        yield
    except Exception as exc:
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, KeyboardInterrupt):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        raise cause from None


def _interrupted(who: str, exc: KeyboardInterrupt, what: str) -> int:
    """Say ``<who>: <what>`` on stderr; the exit code of a stop by ``exc``'s signal (128 + its number)."""
    print(f"{who}: {what}", file=sys.stderr)
    return 128 + int(getattr(exc, "signum", signal.SIGINT))


def _thread_excepthook(hook_args: threading.ExceptHookArgs) -> None:
    """No traceback for an OSError in a helper thread (TensorBoard's writer on a full disk): the thread's
    owner raises it again in the main thread, where :func:`main` turns it into one line."""
    if not issubclass(hook_args.exc_type, OSError):
        threading.__excepthook__(hook_args)


def _mujoco_import_error(exc: BaseException) -> str:
    """One line for a failed ``import mujoco``; a bad MUJOCO_GL gets the renderer fix hint."""
    if "MUJOCO_GL" in str(exc):
        from mjreinforce.trained.gl import check_gl_settings

        try:
            check_gl_settings()
        except UserError as gl_error:
            return str(gl_error)
    return f"cannot load MuJoCo: {str(exc).splitlines()[0]}"


if __name__ == "__main__":
    sys.exit(main())
