"""RunningNormalizer: merged statistics equal numpy's over all the data seen; state round trip. RewardScaler:
the std of every discounted return so far, carried across rollouts."""

from __future__ import annotations

import numpy as np
import pytest

from mjreinforce.algo.normalization import RewardScaler, RunningNormalizer


def _batches(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    # different sizes and leading shapes (T, N, dim) and (B, dim), one single row, shifted scales
    return [
        rng.normal(5.0, 3.0, size=(7, 3, 4)),
        rng.normal(-2.0, 0.1, size=(1, 4)),
        rng.normal(0.0, 10.0, size=(50, 4)),
        rng.uniform(-1, 1, size=(2, 2, 4)),
    ]


def test_running_statistics_equal_numpy_over_the_concatenated_batches() -> None:
    norm = RunningNormalizer(4)
    seen: list[np.ndarray] = []
    for batch in _batches():
        norm.update(batch)
        seen.append(batch.reshape(-1, 4))
        everything = np.concatenate(seen)
        np.testing.assert_allclose(norm.mean, everything.mean(0), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(norm.var, everything.var(0), rtol=1e-10, atol=1e-12)
        assert norm.count == everything.shape[0]


def test_first_update_replaces_the_prior() -> None:
    norm = RunningNormalizer(2)
    np.testing.assert_array_equal(norm.mean, [0.0, 0.0])
    np.testing.assert_array_equal(norm.var, [1.0, 1.0])
    norm.update(np.array([[1.0, 2.0], [3.0, 6.0]]))
    np.testing.assert_allclose(norm.mean, [2.0, 4.0])
    np.testing.assert_allclose(norm.var, [1.0, 4.0])


def test_normalization_formula_and_clip() -> None:
    norm = RunningNormalizer(2, clip=5.0)
    norm.update(np.array([[1.0, 2.0], [3.0, 6.0]]))  # mean (2, 4), var (1, 4)
    out = norm(np.array([[2.0, 4.0], [4.0, 0.0], [1000.0, -1000.0]]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0], [0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(out[1], [2.0 / np.sqrt(1 + 1e-8), -4.0 / np.sqrt(4 + 1e-8)], rtol=1e-6)
    np.testing.assert_array_equal(out[2], [5.0, -5.0])


def test_normalizing_does_not_change_the_statistics() -> None:
    norm = RunningNormalizer(4)
    norm.update(_batches()[0])
    before = norm.state()
    norm(np.ones((3, 4)))
    after = norm.state()
    for key in before:
        np.testing.assert_array_equal(before[key], after[key])


def test_disabled_normalizer_is_the_identity_and_never_updates() -> None:
    norm = RunningNormalizer(4, enabled=False)
    norm.update(_batches()[0])
    assert norm.count == 0
    x = np.random.default_rng(1).normal(size=(3, 4)) * 100
    out = norm(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, x.astype(np.float32))


def test_state_round_trip_continues_identically() -> None:
    a = RunningNormalizer(4)
    batches = _batches(3)
    a.update(batches[0])
    a.update(batches[1])
    b = RunningNormalizer(4)
    b.load_state(a.state())
    for norm in (a, b):
        norm.update(batches[2])
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.var, b.var)
    assert a.count == b.count == pytest.approx(7 * 3 + 1 + 50)
    x = batches[3]
    np.testing.assert_array_equal(a(x), b(x))


def test_state_is_a_copy() -> None:
    norm = RunningNormalizer(2)
    norm.update(np.array([[1.0, 2.0], [3.0, 4.0]]))
    state = norm.state()
    state["mean"][:] = 99.0
    assert not np.any(norm.mean == 99.0)
    other = RunningNormalizer(2)
    other.load_state(state)
    state["var"][:] = -1.0
    assert np.all(other.var > 0)


# --------------------------------------------------------------------------
# RewardScaler: rewards / sqrt(Var[G] + eps), G the per-env discounted return restarted at episode ends
# --------------------------------------------------------------------------


def _discounted_returns_by_hand(rewards: np.ndarray, ends: np.ndarray, gamma: float) -> np.ndarray:
    """G_t = gamma G_{t-1} + r_t per env, G restarting after an end; the plain double loop."""
    out = np.zeros_like(rewards)
    for n in range(rewards.shape[1]):
        g = 0.0
        for t in range(rewards.shape[0]):
            g = gamma * g + rewards[t, n]
            out[t, n] = g
            if ends[t, n]:
                g = 0.0
    return out


def test_reward_scale_is_the_std_of_every_discounted_return_so_far_across_rollouts() -> None:
    rng = np.random.default_rng(3)
    gamma, T, N = 0.9, 40, 3
    rewards = rng.normal(2.0, 5.0, size=(2 * T, N))
    ends = rng.random((2 * T, N)) < 0.1
    scaler = RewardScaler(N, gamma)
    scaler.update(rewards[:T], ends[:T])
    scaler.update(rewards[T:], ends[T:])  # the open returns carry over from the first rollout
    returns = _discounted_returns_by_hand(rewards, ends, gamma)
    np.testing.assert_allclose(scaler.stats.var[0], returns.var(), rtol=1e-10)
    np.testing.assert_allclose(scaler(rewards[T:]), rewards[T:] / np.sqrt(returns.var() + 1e-8), rtol=1e-6)


def test_reward_scaling_keeps_signs_clips_and_is_the_identity_when_disabled() -> None:
    rewards = np.array([[1e6, -3.0], [0.5, 0.0]])
    ends = np.zeros((2, 2), dtype=bool)
    scaler = RewardScaler(2, 0.99)
    scaler.stats.var[0] = 1.0  # scale 1: only the clip acts
    np.testing.assert_allclose(scaler(rewards), [[10.0, -3.0], [0.5, 0.0]], rtol=1e-6)
    off = RewardScaler(2, 0.99, enabled=False)
    off.update(rewards, ends)
    assert off.stats.count == 0 and off(rewards) is rewards


def test_reward_scaler_state_round_trips_with_or_without_the_open_returns() -> None:
    rng = np.random.default_rng(0)
    scaler = RewardScaler(2, 0.99)
    scaler.update(rng.normal(size=(5, 2)), np.zeros((5, 2), dtype=bool))
    for with_returns in (True, False):
        copy = RewardScaler(2, 0.99)
        copy.load_state(scaler.state(), with_returns=with_returns)
        assert copy.stats.var[0] == scaler.stats.var[0] and copy.stats.count == scaler.stats.count
        np.testing.assert_array_equal(copy.returns, scaler.returns if with_returns else np.zeros(2))
