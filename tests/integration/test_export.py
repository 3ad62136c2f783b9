"""``mjreinforce export`` and ``TrainedPolicy.export_onnx`` on really trained policies, checked with onnxruntime.

Tiny real runs (a few thousand steps of vpg on InvertedPendulum-v5: action clipping, tanh squashing,
observation normalization; and the tutorial's network) are trained once in a module fixture. Each is exported,
loaded with onnxruntime and compared with ``policy.act``; the torch-free controller loop of docs/export.md runs
in a subprocess without torch and must get ``mjreinforce eval``'s returns, also for a user's env package. Export's
bad inputs are in the bad-input corpus (tests/integration/test_bad_input_corpus.py, class ``export``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
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

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "export.md"
ARM = "examples.two_link_arm:TwoLinkArm-v0"
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
def arm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny vpg run on the worked example's two-link arm, a user's env package (``module:EnvId``)."""
    path = tmp_path_factory.mktemp("export-arm") / "arm"
    cfg = with_overrides(load_preset("vpg"), {**TINY, "total_steps": 1024, "env_id": ARM})
    mjreinforce.train(cfg, path, preset="vpg", quiet=True, plot=False)
    return path


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
    assert meta["xml_file_sha256"] == ""
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


@pytest.mark.parametrize("name", ["normalized", "tanh", "solved", "arm"])
def test_the_torch_free_loop_gets_evals_returns(
    name: str, runs: dict[str, Path], run_dir: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if name == "arm":  # a user's env: the loop's directory holds its package, as the user's project would
        source = request.getfixturevalue("arm_run")
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(ROOT / "examples" / "two_link_arm", tmp_path / "examples" / "two_link_arm", ignore=ignore)
    else:  # "solved": the shared policy that reaches 1000
        source = run_dir if name == "solved" else runs[name]
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
    # The graph reads float32 observations where act() reads float64 ones: on the pendulum the actions come out the
    # same; the arm's unclipped actions differ in float32 rounding, and 200 steps carry that into its returns.
    rel = 1e-5 if name == "arm" else 1e-9
    assert summary["return_mean"] == pytest.approx(np.mean(returns), rel=rel)
    assert (summary["return_min"], summary["return_max"]) == pytest.approx((min(returns), max(returns)), rel=rel)
    result = evaluate_policy(mjreinforce.load_policy(source), len(returns), summary["eval_seed"], backend="gymnasium")
    np.testing.assert_allclose(returns, result.returns, rtol=rel)  # episode by episode
    if name == "solved":
        assert min(returns) == 1000.0  # whole episodes: a thousand steps of agreement
