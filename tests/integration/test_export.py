"""``mjreinforce export`` and ``TrainedPolicy.export_onnx`` on really trained policies, checked with onnxruntime.

Tiny real runs (a few thousand steps of vpg on InvertedPendulum-v5: action clipping, tanh squashing,
observation normalization; and the tutorial's network) are trained once in a module fixture. Each is exported,
loaded with onnxruntime and compared with ``policy.act``; the torch-free controller loop of docs/export.md runs
in a subprocess without torch and must get ``mjreinforce eval``'s returns.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import mjreinforce
from mjreinforce.cli import main
from mjreinforce.config import load_preset, with_overrides
from mjreinforce.runs import checkpoint_dir, checkpoint_format
from mjreinforce.runs.outputs import check_output_file
from mjreinforce.trained.evaluation import evaluate_policy
from mjreinforce.trained.export import OPSET, TOLERANCE, export_onnx
from mjreinforce.trained.loading import TrainedPolicy

pytestmark = pytest.mark.slow

DOCS = Path(__file__).resolve().parents[2] / "docs" / "export.md"
TINY = {"backend": "gymnasium", "seeds": (1,), "total_steps": 4096, "tensorboard": False}
VARIANTS = {  # name -> (preset, overrides)
    "clip": ("vpg", {}),
    "tanh": ("vpg", {"action_bound": "tanh"}),
    "normalized": ("vpg", {"normalize_obs": True}),
    "tutorial": ("tutorial", {"total_steps": None, "total_episodes": 40}),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("export-runs")
    out = {}
    for name, (preset, overrides) in VARIANTS.items():
        cfg = with_overrides(load_preset(preset), {**TINY, **overrides})
        mjreinforce.train(cfg, root / name, preset=preset, quiet=True, plot=False)
        out[name] = root / name
    return out


@pytest.fixture(scope="module")
def exported(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("exported")
    for name, run_dir in runs.items():
        mjreinforce.load_policy(run_dir).export_onnx(root / f"{name}.onnx")
    return {name: root / f"{name}.onnx" for name in runs}


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def metadata(path: Path) -> dict[str, str]:
    return session(path).get_modelmeta().custom_metadata_map


@pytest.mark.parametrize("name", VARIANTS)
def test_onnxruntime_gives_the_policys_actions_at_three_batch_sizes(
    name: str, runs: dict[str, Path], exported: dict[str, Path]
) -> None:
    trained = mjreinforce.load_policy(runs[name])
    policy = session(exported[name])
    (graph_input,), (graph_output,) = policy.get_inputs(), policy.get_outputs()
    assert graph_input.shape[1:] == [4] and graph_output.shape[1:] == [1]  # dynamic batch axis
    assert isinstance(graph_input.shape[0], str) and graph_input.type == "tensor(float)"
    rng = np.random.default_rng(7)
    for batch in (1, 7, 256):  # observations unlike the verification's own: scales 0.1 .. 100
        obs = (rng.standard_normal((batch, 4)) * 10.0 ** rng.uniform(-1, 2, (batch, 1))).astype(np.float32)
        (actions,) = policy.run(None, {"obs": obs})
        assert actions.shape == (batch, 1) and actions.dtype == np.float32
        np.testing.assert_allclose(actions, trained.act(obs), rtol=0, atol=TOLERANCE)
    assert max(o.version for o in onnx.load(exported[name]).opset_import if o.domain in ("", "ai.onnx")) >= OPSET


def test_the_graph_holds_the_normalizer_and_the_action_bound(runs: dict[str, Path], exported: dict[str, Path]) -> None:
    trained = mjreinforce.load_policy(runs["normalized"])
    assert trained.normalizer.enabled and np.abs(trained.normalizer.mean).max() > 1e-3
    obs = np.random.default_rng(1).normal(size=(64, 4)).astype(np.float32) * 50  # far out: clipping matters
    (actions,) = session(exported["normalized"]).run(None, {"obs": obs})
    with torch.inference_mode():
        unnormalized = trained.policy.deterministic_action(torch.from_numpy(obs)).numpy()
    assert np.abs(actions - unnormalized).max() > 1e-3  # the statistics are in the graph
    np.testing.assert_allclose(actions, trained.act(obs), rtol=0, atol=TOLERANCE)
    for name in ("tanh", "clip"):  # far outside the bounds before the action bound: squashed or clipped into them
        (bounded,) = session(exported[name]).run(None, {"obs": obs * 100})
        assert np.all(np.abs(bounded) <= 3.0)


def test_the_metadata_describes_the_policy(runs: dict[str, Path], exported: dict[str, Path]) -> None:
    meta = metadata(exported["tanh"])
    file = checkpoint_dir.latest_checkpoint(runs["tanh"])
    _, ckpt_meta = checkpoint_format.load_checkpoint(file)
    env = gym.make("InvertedPendulum-v5")
    assert meta["env_id"] == "InvertedPendulum-v5" and meta["env_kwargs"] == "{}" and meta["env_module"] == ""
    assert (meta["obs_dim"], meta["act_dim"], meta["action_bound"]) == ("4", "1", "tanh")
    assert json.loads(meta["action_low"]) == env.action_space.low.tolist()
    assert json.loads(meta["action_high"]) == env.action_space.high.tolist()
    assert meta["preset"] == "vpg" and meta["config_sha256"] == ckpt_meta["config_sha256"]
    assert json.loads(meta["config"]) == ckpt_meta["config"]
    assert (meta["training_seed"], meta["checkpoint"]) == ("1", file.name)
    assert meta["mjreinforce_version"] == mjreinforce.__version__
    assert (meta["input"], meta["output"], meta["normalize_obs"]) == ("obs", "action", "false")
    assert metadata(exported["normalized"])["normalize_obs"] == "true"
    assert metadata(exported["tutorial"])["preset"] == "tutorial"


def test_export_refuses_a_graph_that_differs_from_act(runs: dict[str, Path], tmp_path: Path) -> None:
    @dataclass(frozen=True)
    class Shifted(TrainedPolicy):  # act() 1e-4 away from what the graph computes
        def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
            return super().act(obs, deterministic) + 1e-4

    trained = mjreinforce.load_policy(runs["clip"])
    shifted = Shifted(trained.config, trained.policy, trained.normalizer, trained.seed, trained.path)
    with pytest.raises(mjreinforce.UserError, match="export refused: .* differ .* no file written"):
        export_onnx(shifted, tmp_path / "p.onnx")
    assert list(tmp_path.iterdir()) == []  # not the file, nor its temporary


def test_the_cli_exports_a_chosen_seed_and_checkpoint(runs: dict[str, Path], tmp_path: Path, capsys) -> None:
    multi = tmp_path / "run"
    shutil.copytree(runs["clip"] / "seed_1", multi / "seed_1")
    shutil.copytree(runs["normalized"] / "seed_1", multi / "seed_3")
    name = checkpoint_dir.latest_checkpoint(multi, seed=3).name
    out = tmp_path / "out" / "p.onnx"  # a missing directory is made
    assert main(["export", str(multi), "--seed", "3", "--checkpoint", name, "--out", str(out)]) == 0
    assert metadata(out)["normalize_obs"] == "true" and metadata(out)["checkpoint"] == name
    text = capsys.readouterr().out
    assert "verified with onnxruntime" in text and "batch sizes 1, 7, 256" in text and f"wrote {out}" in text
    difference = float(re.search(r"max \|difference\| (\S+)", text).group(1))  # type: ignore[union-attr]
    assert difference <= TOLERANCE
    assert main(["export", str(multi), "--out", str(out), "--overwrite"]) == 0  # default: the first seed
    assert metadata(out)["normalize_obs"] == "false"
    by_path = multi / "seed_3" / "checkpoints" / name
    assert main(["export", str(multi), "--checkpoint", str(by_path), "--out", str(out), "--overwrite"]) == 0
    assert metadata(out)["normalize_obs"] == "true"


def test_output_paths_that_belong_to_a_run_are_refused(
    runs: dict[str, Path], exported: dict[str, Path], tmp_path: Path
) -> None:
    run_dir = runs["clip"]
    for own in (run_dir / "config.toml", run_dir / "summary.json", run_dir / "seed_1" / "p.onnx"):
        with pytest.raises(mjreinforce.UserError, match="refusing to write"):
            check_output_file(own, overwrite=True)
    link = tmp_path / "link"
    link.symlink_to(run_dir / "seed_1")  # through a symlinked directory too
    with pytest.raises(mjreinforce.UserError, match="inside its own seed_1/"):
        check_output_file(link / "p.onnx", overwrite=True)
    check_output_file(run_dir / "policy.onnx", overwrite=False)  # beside the run's files: allowed
    check_output_file(run_dir / "exports" / "policy.onnx", overwrite=False)
    check_output_file(exported["clip"], overwrite=False)  # export wrote it (its manifest says): replaced freely
    shutil.copy(exported["clip"], tmp_path / "copy.onnx")  # a copy elsewhere is no longer known to be ours
    with pytest.raises(mjreinforce.UserError, match="copy.onnx exists and mjreinforce did not write it"):
        check_output_file(tmp_path / "copy.onnx", overwrite=False)


# --------------------------------------------------------------------------------- the torch-free loop
def controller_loop() -> str:
    """The Python block of docs/export.md that follows the line ``<!-- controller loop -->``."""
    text = DOCS.read_text()
    return text.split("<!-- controller loop -->", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.parametrize("name", ["normalized", "tanh", "solved"])
def test_the_torch_free_loop_gets_evals_returns(
    name: str, runs: dict[str, Path], run_dir: Path, tmp_path: Path
) -> None:
    source = run_dir if name == "solved" else runs[name]  # "solved": the shared policy that reaches 1000
    assert main(["export", str(source), "--out", str(tmp_path / "policy.onnx")]) == 0
    script = controller_loop() + "import json, sys\nassert 'torch' not in sys.modules\nprint(json.dumps(returns))\n"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # plain onnxruntime + gymnasium only
    loop = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert loop.returncode == 0, loop.stderr
    returns = json.loads(loop.stdout.splitlines()[-1])
    report = tmp_path / "eval.json"
    args = ["eval", str(source), "--episodes", str(len(returns)), "--backend", "gymnasium", "--out", str(report)]
    assert main(args) == 0
    summary = json.loads(report.read_text())
    assert summary["return_mean"] == pytest.approx(np.mean(returns), rel=1e-9)
    assert (summary["return_min"], summary["return_max"]) == pytest.approx((min(returns), max(returns)), rel=1e-9)
    result = evaluate_policy(mjreinforce.load_policy(source), len(returns), summary["eval_seed"], backend="gymnasium")
    np.testing.assert_allclose(returns, result.returns, rtol=1e-9)  # episode by episode
    if name == "solved":
        assert min(returns) == 1000.0  # whole episodes: a thousand steps of agreement


# ----------------------------------------------------------------------------------------- bad input
BAD = {  # case -> (export arguments, fragments of the one error line); run/ is a copy of a run
    "damaged_checkpoint": (("damaged.safetensors", "--out", "p.onnx"), ("corrupted", "checksum")),
    "foreign_file": (("notes.txt", "--out", "p.onnx"), ("notes.txt", "not a mjreinforce checkpoint")),
    "pickle_file": (("model.pt", "--out", "p.onnx"), ("torch.save/pickle", "not loaded")),
    "missing_checkpoint_name": (("run", "--checkpoint", "ckpt_9.safetensors", "--out", "p.onnx"), ("ckpt_9",)),
    "checkpoint_twice": (("damaged.safetensors", "--checkpoint", "x", "--out", "p.onnx"), ("already",)),
    "unknown_seed": (("run", "--seed", "4", "--out", "p.onnx"), ("no seed 4",)),
    "negative_seed": (("run", "--seed", "-1", "--out", "p.onnx"), ("--seed", "a training seed")),
    "out_under_a_file": (("run", "--out", "notes.txt/p.onnx"), ("notes.txt", "Not a directory")),
    "out_read_only": (("run", "--out", "{ro}/p.onnx"), ("{ro}/p.onnx", "Read-only")),
    "out_exists": (("run", "--out", "existing.onnx"), ("existing.onnx exists", "--overwrite")),
    "out_is_a_directory": (("run", "--out", "run"), ("is a directory",)),
    "out_is_the_runs_config": (("run", "--out", "run/config.toml", "--overwrite"), ("one of its own files",)),
    "out_in_a_seed_dir": (("run", "--out", "run/seed_1/p.onnx"), ("inside its own seed_1/",)),
    "out_in_another_run": (("run", "--out", "other/p.onnx"), ("other", "that this command does not read")),
    "no_out": (("run",), ("--out",)),
}
IN_SUBPROCESS = ("damaged_checkpoint", "foreign_file", "out_under_a_file", "out_read_only", "no_out")
"""Cases run as the console script in a subprocess (a few at a time); the others call ``main`` in-process."""


def _snapshot(path: Path) -> dict[str, bytes | str]:
    """Every entry under ``path``: a file's bytes, a directory as "dir"."""
    return {str(p.relative_to(path)): p.read_bytes() if p.is_file() else "dir" for p in sorted(path.rglob("*"))}


@pytest.fixture(scope="module")
def workdir_template(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What each bad-input case starts from: a copy of a run, a damaged and a foreign checkpoint, files."""
    path = tmp_path_factory.mktemp("template")
    shutil.copytree(runs["clip"], path / "run")
    data = bytearray(checkpoint_dir.latest_checkpoint(runs["clip"]).read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the tensor data
    (path / "damaged.safetensors").write_bytes(bytes(data))
    (path / "notes.txt").write_text("my notes\n")
    (path / "model.pt").write_bytes(b"\x80\x04" + b"\x00" * 64)  # a pickle's opening bytes
    (path / "existing.onnx").write_bytes(b"mine")
    shutil.copytree(runs["normalized"], path / "other")
    return path


@pytest.fixture(scope="module")
def bad_outcomes(workdir_template: Path, read_only_dir: Path | None, cli, tmp_path_factory) -> dict[str, tuple]:
    """IN_SUBPROCESS case -> (the process, the working directory before, after); None when it cannot run."""

    def run(case: str) -> tuple | None:
        if "{ro}" in " ".join(BAD[case][0]) and read_only_dir is None:
            return None
        workdir = tmp_path_factory.mktemp(case)
        shutil.copytree(workdir_template, workdir, dirs_exist_ok=True)
        before = _snapshot(workdir)
        args = [a.replace("{ro}", str(read_only_dir)) for a in BAD[case][0]]
        return cli("export", *args, cwd=workdir, timeout=240), before, _snapshot(workdir)

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(IN_SUBPROCESS, pool.map(run, IN_SUBPROCESS), strict=True))


def in_process(args: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> subprocess.CompletedProcess:
    """``mjreinforce export ARGS`` through :func:`main` in the current directory, as a finished process."""
    try:
        code = main(["export", *args])
    except SystemExit as exc:  # argparse's errors
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, captured.out, captured.err)


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    case: str,
    bad_outcomes: dict[str, tuple],
    workdir_template: Path,
    read_only_dir: Path | None,
    one_error_line,
    tmp_path: Path,
    capsys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if case in IN_SUBPROCESS:
        if bad_outcomes[case] is None:
            pytest.skip("needs root and a tmpfs mount for a read-only directory")
        proc, before, after = bad_outcomes[case]
    else:
        shutil.copytree(workdir_template, tmp_path, dirs_exist_ok=True)
        before = _snapshot(tmp_path)
        monkeypatch.chdir(tmp_path)
        proc, after = in_process(BAD[case][0], capsys), _snapshot(tmp_path)
    fragments = [f.replace("{ro}", str(read_only_dir)) for f in BAD[case][1]]
    one_error_line(proc, "export", fragments)
    assert after == before  # nothing created, replaced or left half-written
    if read_only_dir is not None:
        assert list(read_only_dir.iterdir()) == []
