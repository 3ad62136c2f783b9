"""PPO learns: a short real run of the ``ppo`` preset balances InvertedPendulum."""

from __future__ import annotations

from pathlib import Path

import pytest

from mjreinforce.config import load_preset, with_overrides
from mjreinforce.training.run import train


@pytest.mark.slow
def test_ppo_preset_reaches_the_maximum_return_on_inverted_pendulum(tmp_path: Path, read_csv) -> None:
    # measured with the preset as tuned: seeds 1-5 each reached 1000 at 7,680 env steps
    cfg = with_overrides(
        load_preset("ppo"), {"seeds": (1,), "total_steps": 30_000, "target_return": 1000.0, "tensorboard": False}
    )
    result = train(cfg, tmp_path / "run", quiet=True, plot=False)
    r = result.seeds[1]
    assert r.steps_to_target is not None, f"best evaluation {r.best_eval_mean_return}"
    assert r.status == "finished" and r.steps_to_target == r.env_steps < 30_000
    evals = read_csv(tmp_path / "run" / "seed_1" / "evals.csv")
    assert float(evals[-1]["eval_mean_return"]) == 1000.0
    assert all(float(e["eval_mean_return"]) < 1000.0 for e in evals[:-1])
