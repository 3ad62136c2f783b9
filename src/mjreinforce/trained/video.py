"""Offscreen rendering of a trained policy's episodes into an MP4 file.

MuJoCo renders through the OpenGL context named by ``MUJOCO_GL``: ``osmesa`` (software, no display or
GPU needed; the default here), ``egl`` (headless GPU) or ``glfw`` (needs a display). mujoco reads
``MUJOCO_GL`` and PyOpenGL reads ``PYOPENGL_PLATFORM`` when they are first imported, so this module sets
both to ``osmesa`` (only if unset) before importing anything GL; import it before mujoco/gymnasium for the
defaults to take effect (the ``mjreinforce`` CLI sets them at start-up).

Frames are ``env.render()`` arrays ``(height, width, 3)`` uint8, streamed to ffmpeg (imageio-ffmpeg,
libx264, yuv420p) at the env's ``render_fps``, so the video plays in real time and memory stays flat for
long episodes. The file is written to a temporary name beside the target and renamed only when complete.
"""

from __future__ import annotations

import gc
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mjreinforce.errors import UserError, error_line
from mjreinforce.files import atomic_output
from mjreinforce.trained.gl import FIX_HINT, check_gl_settings
from mjreinforce.trained.loading import TrainedPolicy


@dataclass(frozen=True)
class VideoResult:
    """A written video: ``frames`` frames of ``height x width`` at ``fps``; a return per recorded episode."""

    path: Path
    frames: int
    fps: float
    width: int
    height: int
    returns: tuple[float, ...]


@contextmanager
def _silenced_cleanup() -> Iterator[None]:
    """Swallow "Exception ignored in __del__" reports while a renderer whose construction failed is freed
    (Gymnasium's OffScreenViewer.__del__ fails on a viewer without a GL context)."""
    hook = sys.unraisablehook
    sys.unraisablehook = lambda _: None
    try:
        yield
    finally:
        gc.collect()
        sys.unraisablehook = hook


def first_frame(env: Any, width: int, height: int) -> np.ndarray:
    """``env.render()`` once; any failure means there is no usable GL context -> one-line UserError.

    The exception is turned into text inside the ``except`` and raised after it, so the failed renderer
    objects are freed (quietly) before the UserError travels up.
    """
    failure: str | None = None
    frame: Any = None
    with _silenced_cleanup(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # glfw warns (DISPLAY missing) before it fails
        try:
            frame = env.render()
        except Exception as exc:  # GL failures come as ImportError, RuntimeError, FatalError, ...
            failure = error_line(exc)
    if failure is None and not (isinstance(frame, np.ndarray) and frame.shape == (height, width, 3)):
        got = getattr(frame, "shape", type(frame).__name__)
        failure = f"render() returned {got}, not ({height}, {width}, 3)"
    if failure is not None:
        backend = os.environ.get("MUJOCO_GL")
        raise UserError(f"no working offscreen renderer (MUJOCO_GL={backend}: {failure}); {FIX_HINT}")
    return frame


@contextmanager
def atomic_mp4_writer(path: Path, fps: float) -> Iterator[Any]:
    """An imageio ffmpeg writer on a temporary file beside ``path``, renamed to ``path`` on success and
    deleted on any failure (including Ctrl-C), so ``path`` is either the old file or a complete video."""
    import imageio.v2 as imageio

    # the temp name ends in .mp4: ffmpeg picks the container from the extension
    with atomic_output(path, suffix=".mp4") as tmp:
        writer = imageio.get_writer(
            tmp,
            format="FFMPEG",
            mode="I",
            fps=fps,
            codec="libx264",
            pixelformat="yuv420p",
            macro_block_size=2,
            ffmpeg_log_level="error",
        )
        try:
            yield writer
        finally:
            writer.close()


def _check_args(path: Path, episodes: int, width: int, height: int) -> None:
    if path.suffix.lower() != ".mp4":
        raise UserError(f"video file {path} must end in .mp4")
    if episodes < 1:
        raise UserError(f"video episodes must be >= 1, got {episodes}")
    if width < 2 or height < 2 or width % 2 or height % 2:
        raise UserError(f"video width and height must be even and >= 2 (H.264 yuv420p), got {width}x{height}")
    if path.exists() and path.is_dir():
        raise UserError(f"video path {path} is a directory")


def _record_episodes(
    env: Any,
    obs: np.ndarray,
    frame: np.ndarray,
    writer: Any,
    trained: TrainedPolicy,
    episodes: int,
    seed: int,
    deterministic: bool,
) -> tuple[int, list[float]]:
    """Step ``env`` (already reset with ``seed``, showing ``frame``) through ``episodes`` episodes, appending
    every frame to ``writer``; return the frame count and each episode's return."""
    frames, returns = 0, []
    for episode in range(episodes):
        if episode:
            obs, _ = env.reset(seed=seed + episode)
            frame = np.asarray(env.render())
        writer.append_data(frame)
        frames += 1
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(trained.act(obs, deterministic))
            total += float(reward)
            writer.append_data(env.render())
            frames += 1
            done = bool(terminated or truncated)
        returns.append(total)
    return frames, returns


def record_video(
    trained: TrainedPolicy,
    path: Path | str,
    episodes: int = 1,
    seed: int = 0,
    deterministic: bool = True,
    physics: Sequence[str] = (),
    width: int = 480,
    height: int = 480,
) -> VideoResult:
    """Record ``episodes`` episodes of ``trained`` into the MP4 file ``path``.

    Episode ``i`` starts from ``env.reset(seed=seed + i)``, the initial state of evaluation episode ``i``
    of :func:`mjreinforce.training.evaluation.evaluate_policy` with the same ``seed`` and physics on the gymnasium
    backend (the training env's fixed overrides with ``physics`` merged on top, no randomization). The
    first frame is the reset state; then one frame per env step. Raises UserError for bad arguments or
    no working renderer.
    """
    # critical: imported here, after mjreinforce.trained.gl set MUJOCO_GL / PYOPENGL_PLATFORM: mujoco
    # reads them once, when it is first imported.
    import torch

    from mjreinforce.envs.custom import make_env, make_id, require_mujoco
    from mjreinforce.envs.physics import make_physics_env
    from mjreinforce.training.evaluation import eval_config

    path = Path(path)
    _check_args(path, episodes, width, height)
    check_gl_settings()
    cfg = eval_config(trained.config, physics, backend="gymnasium")
    plain = make_env(cfg)
    try:
        require_mujoco(plain, "video (through MuJoCo's offscreen renderer)")
    finally:
        plain.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    env = make_physics_env(
        make_id(cfg),
        cfg.physics,
        seed=seed,
        env_kwargs=cfg.env_kwargs,
        render_mode="rgb_array",
        width=width,
        height=height,
    )
    try:
        obs, _ = env.reset(seed=seed)
        frame = first_frame(env, width, height)
        fps = float(env.metadata.get("render_fps") or 30)
        with torch.random.fork_rng(devices=[]), atomic_mp4_writer(path, fps) as writer:
            torch.manual_seed(seed)
            frames, returns = _record_episodes(env, obs, frame, writer, trained, episodes, seed, deterministic)
    finally:
        env.close()  # critical: frees the GL context now; left to interpreter exit it raises there
    return VideoResult(path, frames, fps, width, height, tuple(returns))
