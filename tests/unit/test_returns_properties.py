"""Property-based tests: the vectorized returns stage against a naive per-step reference.

Random rollouts with random terminations, truncations (also both at once) and a segment cut at
``T`` (episodes left open), checked against a reference that walks forward from each step.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mjreinforce.algo.returns import advantages_and_targets, discounted_returns, gae


def reference_next_value(t: int, i: int, ro: dict, bootstrap_truncated: bool) -> float:
    """The value after step t of env i, by the table in mjreinforce.algo.returns."""
    if ro["terminated"][t, i]:
        return 0.0
    if ro["truncated"][t, i] and not bootstrap_truncated:
        return 0.0
    return float(ro["next_state_values"][t, i])


def reference(ro: dict, method: str, gamma: float, lam: float, bootstrap_truncated: bool) -> tuple:
    """(advantages, targets) by walking forward from every step to its episode's end or the cut."""
    rewards, values = ro["rewards"], ro["values"]
    T, N = rewards.shape
    adv, targets = np.zeros((T, N)), np.zeros((T, N))
    for i in range(N):
        for t in range(T):
            g, a, discount = 0.0, 0.0, 1.0
            for k in range(t, T):
                nv = reference_next_value(k, i, ro, bootstrap_truncated)
                ended = ro["terminated"][k, i] or ro["truncated"][k, i]
                delta = rewards[k, i] + gamma * nv - values[k, i]
                a += (gamma * lam) ** (k - t) * delta
                g += discount * rewards[k, i]
                discount *= gamma
                if ended or k == T - 1:
                    g += discount * nv
                    break
            if method == "gae":
                adv[t, i], targets[t, i] = a, a + values[t, i]
            else:
                adv[t, i], targets[t, i] = g - values[t, i], g
    return adv, targets


@st.composite
def rollouts(draw: st.DrawFn) -> dict:
    T = draw(st.integers(1, 12))
    N = draw(st.integers(1, 4))
    floats = st.floats(-10, 10, allow_nan=False, width=64)
    bools = st.booleans()
    return {
        "rewards": draw(arrays(np.float64, (T, N), elements=floats)),
        "values": draw(arrays(np.float64, (T, N), elements=floats)),
        "next_state_values": draw(arrays(np.float64, (T, N), elements=floats)),
        "terminated": draw(arrays(np.bool_, (T, N), elements=bools)),
        "truncated": draw(arrays(np.bool_, (T, N), elements=bools)),
    }


GAMMA = st.floats(0.0, 1.0).filter(lambda g: g > 0)
LAM = st.floats(0.0, 1.0)


@settings(max_examples=150, deadline=None)
@given(ro=rollouts(), method=st.sampled_from(["returns", "gae"]), gamma=GAMMA, lam=LAM, boot=st.booleans())
def test_returns_stage_matches_the_per_step_reference(ro: dict, method: str, gamma: float, lam: float, boot: bool):
    batch = advantages_and_targets(
        ro["rewards"],
        ro["terminated"],
        ro["truncated"],
        ro["values"],
        ro["next_state_values"],
        method=method,  # type: ignore[arg-type]
        gamma=gamma,
        lam=lam,
        bootstrap_truncated=boot,
    )
    adv, targets = reference(ro, method, gamma, lam, boot)
    np.testing.assert_allclose(batch.advantages, adv, rtol=1e-9, atol=1e-7)
    np.testing.assert_allclose(batch.targets, targets, rtol=1e-9, atol=1e-7)


@settings(max_examples=100, deadline=None)
@given(ro=rollouts(), gamma=GAMMA)
def test_gae_with_lambda_one_is_reward_to_go_minus_values(ro: dict, gamma: float):
    ends = ro["terminated"] | ro["truncated"]
    # as in a real rollout: inside an episode the next state's value is V(s_{t+1}) = values[t + 1]
    consistent = ro["next_state_values"].copy()
    consistent[:-1] = np.where(ends[:-1], consistent[:-1], ro["values"][1:])
    nv = np.where(ro["terminated"], 0.0, consistent)
    returns = discounted_returns(ro["rewards"], ends, nv, gamma)
    np.testing.assert_allclose(
        gae(ro["rewards"], ro["values"], ends, nv, gamma, 1.0), returns - ro["values"], rtol=1e-9, atol=1e-6
    )


@settings(max_examples=100, deadline=None)
@given(ro=rollouts(), gamma=GAMMA)
def test_nothing_leaks_backwards_across_an_episode_end(ro: dict, gamma: float):
    """Changing rewards after an episode's end leaves that episode's returns unchanged."""
    ends = ro["terminated"] | ro["truncated"]
    nv = ro["next_state_values"]
    before = discounted_returns(ro["rewards"], ends, nv, gamma)
    for i in range(ends.shape[1]):
        hits = np.flatnonzero(ends[:, i])
        if hits.size:
            changed = ro["rewards"].copy()
            changed[hits[0] + 1 :, i] += 100.0
            after = discounted_returns(changed, ends, nv, gamma)
            np.testing.assert_array_equal(after[: hits[0] + 1, i], before[: hits[0] + 1, i])
