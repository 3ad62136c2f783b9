"""Videos of trained policies through MuJoCo's offscreen renderer (OSMesa), encoded to real MP4 files."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "osmesa")  # before mujoco / OpenGL are imported by anything below
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import gymnasium as gym  # noqa: E402
import imageio.v3 as iio  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import mjreinforce  # noqa: E402
from conftest import Case, copies_of, selected_cases  # noqa: E402
from mjreinforce.algo.normalization import RunningNormalizer  # noqa: E402
from mjreinforce.algo.policy import make_policy  # noqa: E402
from mjreinforce.config import load_preset, with_overrides  # noqa: E402
from mjreinforce.envs.physics import PhysicsUnstableError  # noqa: E402
from mjreinforce.envs.vector import inspect_env  # noqa: E402
from mjreinforce.runs.outputs import written_by_mjreinforce  # noqa: E402
from mjreinforce.trained.evaluation import evaluate_policy  # noqa: E402
from mjreinforce.trained.loading import TrainedPolicy  # noqa: E402
from mjreinforce.trained.video import record_video  # noqa: E402

pytestmark = [pytest.mark.video, pytest.mark.slow]

WIDTH, HEIGHT = 160, 128


@pytest.fixture(scope="module")
def untrained() -> TrainedPolicy:
    """A freshly initialized policy: its episodes last a few dozen steps, so videos of it are quick."""
    cfg = with_overrides(load_preset("vpg"), {"backend": "gymnasium"})
    spec = inspect_env(cfg.env_id)
    torch.manual_seed(0)
    policy = make_policy(cfg, spec.obs_dim, spec.act_dim, spec.act_low, spec.act_high).eval()
    return TrainedPolicy(cfg, policy, RunningNormalizer(spec.obs_dim, enabled=False), 0, Path("untrained"))


def read_frames(path: Path) -> np.ndarray:
    return np.stack(list(iio.imiter(path, plugin="FFMPEG")))


def test_video_of_two_episodes_is_a_valid_mp4(untrained: TrainedPolicy, tmp_path: Path) -> None:
    path = tmp_path / "sub" / "untrained.mp4"
    video = record_video(untrained, path, episodes=2, seed=11, width=WIDTH, height=HEIGHT)
    # one reset frame per episode plus one frame per step; the episodes are evaluation episodes 0 and 1
    lengths = evaluate_policy(untrained, 2, 11).lengths
    assert video.frames == int(lengths.sum()) + 2
    frames = read_frames(path)
    assert frames.shape == (video.frames, HEIGHT, WIDTH, 3) and frames.dtype == np.uint8
    assert frames.std() > 10  # a scene, not a blank image
    assert np.abs(frames[0].astype(int) - frames[int(lengths[0])].astype(int)).mean() > 0.5  # the pole moved
    # the video plays in real time: fps = 1 / (the env's control step dt = frame_skip * timestep)
    env = gym.make("InvertedPendulum-v5")
    dt = env.unwrapped.dt
    env.close()
    assert video.fps == pytest.approx(1 / dt)
    assert iio.immeta(path, plugin="FFMPEG")["fps"] == pytest.approx(1 / dt)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp file left behind


def test_failed_recording_leaves_the_old_file_untouched(
    untrained: TrainedPolicy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # MuJoCo appends its instability warning to ./MUJOCO_LOG.TXT
    path = tmp_path / "videos" / "video.mp4"
    path.parent.mkdir()
    path.write_bytes(b"an older video")
    with pytest.raises(PhysicsUnstableError):
        record_video(untrained, path, seed=3, physics=["gravity=-1e9"], width=WIDTH, height=HEIGHT)
    assert path.read_bytes() == b"an older video"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


@pytest.mark.parametrize("bad", [dict(path="video.gif"), dict(width=161), dict(episodes=0)])
def test_bad_video_arguments(untrained: TrainedPolicy, tmp_path: Path, bad: dict) -> None:
    kwargs = dict(path="video.mp4", width=WIDTH, height=HEIGHT, episodes=1) | bad
    with pytest.raises(mjreinforce.UserError):
        record_video(untrained, tmp_path / kwargs.pop("path"), **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_eval_cli_records_the_trained_policy(run_dir: Path, tmp_path: Path, cli) -> None:
    video, report = tmp_path / "trained.mp4", tmp_path / "eval.json"
    args = ("eval", str(run_dir), "--episodes", "2", "--video", str(video), "--video-size", f"{WIDTH}x{HEIGHT}")
    result = cli(*args, "--out", str(report), cwd=tmp_path)  # a real process: its GL context ends with it
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
    frames = read_frames(video)
    # the video's episode is evaluation episode 0, whose length eval.json bounds
    summary = json.loads(report.read_text())
    assert summary["length_min"] + 1 <= frames.shape[0] <= summary["length_max"] + 1
    assert frames.shape[1:] == (HEIGHT, WIDTH, 3) and frames.std() > 10
    # both are in the manifest, so the next `eval --video` replaces them without --overwrite (a foreign MP4
    # needs it: the corpus's outputs-eval_video_not_written_by_mjreinforce)
    assert written_by_mjreinforce(video) and written_by_mjreinforce(report)


NO_DISPLAY = {"DISPLAY": None, "WAYLAND_DISPLAY": None}
RECORD = ("eval", "run", "--episodes", "1", "--video", "v.mp4", "--video-size", f"{WIDTH}x{HEIGHT}", "--out", "e.json")
FIX = ("no working offscreen renderer", "libosmesa6", "MUJOCO_GL=osmesa")
NO_RENDERER = {  # real processes with these variables, each on a copy of the trained run at ``run``
    "pyopengl_platform_egl": Case(RECORD, FIX, env={"MUJOCO_GL": "osmesa", "PYOPENGL_PLATFORM": "egl", **NO_DISPLAY}),
    "mujoco_gl_nonsense": Case(RECORD, FIX, env={"MUJOCO_GL": "nonsense", **NO_DISPLAY}),  # mujoco refuses to import
    "glfw_without_a_display": Case(RECORD, FIX, env={"MUJOCO_GL": "glfw", **NO_DISPLAY}),  # fails at the first frame
}


@pytest.fixture(scope="module")
def no_renderer_runs(bad_inputs, run_dir: Path, tmp_path_factory: pytest.TempPathFactory, request) -> dict:
    return bad_inputs.run(selected_cases(request, NO_RENDERER), copies_of(run_dir, tmp_path_factory), timeout=180)


@pytest.mark.parametrize("name", NO_RENDERER)
def test_video_without_a_working_renderer(no_renderer_runs: dict, bad_inputs, name: str) -> None:
    line = bad_inputs.check(NO_RENDERER[name], no_renderer_runs[name])
    assert line.startswith("mjreinforce eval: error: no working offscreen renderer")
