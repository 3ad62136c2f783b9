"""``env_workers > 0``: gymnasium's AsyncVectorEnv and envpool's worker threads step the same envs as the
in-process versions, with the same same-step autoreset."""

from __future__ import annotations

import numpy as np
import pytest

from mjreinforce.config import Config
from mjreinforce.envs.vector import make_vec_env


def _trajectory(backend: str, env_workers: int, steps: int = 60) -> list[tuple[np.ndarray, ...]]:
    cfg = Config(env_id="InvertedPendulum-v5", env_workers=env_workers)
    env = make_vec_env(cfg, 3, seed=11, backend=backend)
    rng = np.random.default_rng(0)
    try:
        out = [(env.reset(),)]
        for _ in range(steps):
            step = env.step(rng.uniform(-3, 3, size=(3, 1)))
            out.append((step.obs, step.rewards, step.terminated, step.truncated, step.final_obs))
        return out
    finally:
        env.close()


@pytest.mark.parametrize("backend", ["gymnasium", "envpool"])
def test_env_workers_give_the_same_steps_as_in_process(backend: str) -> None:
    in_process = _trajectory(backend, env_workers=0)
    workers = _trajectory(backend, env_workers=2)
    ends = sum(int((t[2] | t[3]).sum()) for t in in_process[1:])
    assert ends >= 3, "random actions should end several episodes, so autoreset is exercised"
    for a, b in zip(in_process, workers, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_allclose(x, y, rtol=0, atol=1e-12)
