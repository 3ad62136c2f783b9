"""The OpenGL settings MuJoCo renders with, checked from the environment alone.

mujoco reads ``MUJOCO_GL`` and PyOpenGL reads ``PYOPENGL_PLATFORM`` when they are first imported, so this
module (which imports neither) sets both to ``osmesa`` if unset; import it before mujoco for the defaults
to take effect (the ``mjreinforce`` CLI also sets them at start-up).
"""

from __future__ import annotations

import os

from mjreinforce.errors import UserError

os.environ.setdefault("MUJOCO_GL", "osmesa")  # critical: before mujoco / OpenGL are first imported
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

RENDERERS = ("osmesa", "egl", "glfw")
"""``MUJOCO_GL`` values Gymnasium's MuJoCo renderer accepts."""

FIX_HINT = "install libosmesa6 (apt-get install libosmesa6) and set MUJOCO_GL=osmesa PYOPENGL_PLATFORM=osmesa"


def check_gl_settings() -> None:
    """Raise UserError unless ``MUJOCO_GL`` names a renderer Gymnasium can use and ``PYOPENGL_PLATFORM``
    agrees with it. Reads only the environment, so it can run before mujoco is imported (an invalid
    ``MUJOCO_GL`` makes ``import mujoco`` itself fail)."""
    backend = os.environ.get("MUJOCO_GL", "")
    platform = os.environ.get("PYOPENGL_PLATFORM", "")
    if backend not in RENDERERS:
        raise UserError(
            f"no working offscreen renderer: MUJOCO_GL={backend!r} is not one of {', '.join(RENDERERS)}; {FIX_HINT}"
        )
    if backend in ("osmesa", "egl") and platform and platform.lower() != backend:
        raise UserError(
            f"no working offscreen renderer: MUJOCO_GL={backend} needs "
            f"PYOPENGL_PLATFORM={backend} (or unset), but it is {platform!r}; {FIX_HINT}"
        )
