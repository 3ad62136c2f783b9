"""Returns and advantages against arrays computed by hand (in comments) or from closed forms.

Every returns function has a hand-computed test here; what holds for random rollouts (the whole stage against
a per-step reference, GAE(1) as reward-to-go minus values, nothing leaking backwards across an episode end) is
in test_returns_properties.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mjreinforce.algo.returns import (
    advantages_and_targets,
    bootstrap_values,
    discounted_returns,
    finished_episodes_mask,
    gae,
    normalize,
)
from mjreinforce.algo.update import policy_loss

# --------------------------------------------------------------------------
# discounted_returns
# --------------------------------------------------------------------------


def col(*values: float) -> np.ndarray:
    """A single-env ``(T, 1)`` column."""
    return np.array(values, dtype=np.float64)[:, None]


def bcol(*values: bool) -> np.ndarray:
    return np.array(values, dtype=bool)[:, None]


def test_gamma_one_sums_the_rewards_to_go() -> None:
    rewards = col(1.0, 2.0, 3.0)
    ends = bcol(False, False, True)
    out = discounted_returns(rewards, ends, np.zeros_like(rewards), gamma=1.0)
    np.testing.assert_array_equal(out, col(6.0, 5.0, 3.0))


def test_gamma_half_by_hand() -> None:
    # G2 = 3; G1 = 2 + 0.5 * 3 = 3.5; G0 = 1 + 0.5 * 3.5 = 2.75
    rewards = col(1.0, 2.0, 3.0)
    out = discounted_returns(rewards, bcol(False, False, True), np.zeros_like(rewards), gamma=0.5)
    np.testing.assert_allclose(out, col(2.75, 3.5, 3.0), rtol=0, atol=1e-12)


def test_one_step_episodes_are_reward_plus_discounted_bootstrap() -> None:
    rewards = col(1.0, -2.0, 0.5, 4.0)
    ends = bcol(True, True, True, True)
    next_values = col(0.0, 10.0, 0.0, -4.0)
    out = discounted_returns(rewards, ends, next_values, gamma=0.9)
    # r_t + 0.9 * next_values[t], no step sees another one's reward
    np.testing.assert_allclose(out, col(1.0, -2.0 + 9.0, 0.5, 4.0 - 3.6), rtol=0, atol=1e-12)


def test_long_episode_matches_the_geometric_series() -> None:
    n, g = 300, 0.99
    rewards = np.ones((n, 1))
    ends = np.zeros((n, 1), dtype=bool)
    ends[-1] = True
    out = discounted_returns(rewards, ends, np.zeros_like(rewards), g)
    steps_left = np.arange(n, 0, -1, dtype=np.float64)[:, None]  # n - t rewards from step t on
    np.testing.assert_allclose(out, (1 - g**steps_left) / (1 - g), rtol=1e-12)
    assert out[0, 0] == pytest.approx((1 - 0.99**300) / 0.01, rel=1e-12)


def test_several_envs_with_different_episode_ends_and_bootstraps() -> None:
    # env 0: terminates at t=1 (next value 0); a new episode runs t=2..3, open at the segment end.
    # env 1: truncated at t=2 with V(final obs) = 8; a new episode at t=3, open, V(s_T) = 2.
    rewards = np.array([[1.0, 1.0], [1.0, 2.0], [1.0, 3.0], [1.0, 4.0]])
    ends = np.array([[False, False], [True, False], [False, True], [False, False]])
    # Values at steps that neither end an episode nor the segment are ignored by discounted_returns
    # (only GAE reads them), so they are garbage here on purpose.
    next_values = np.array([[99.0, 99.0], [0.0, 99.0], [99.0, 8.0], [10.0, 2.0]])
    out = discounted_returns(rewards, ends, next_values, gamma=0.5)
    # env 0: G3 = 1 + .5*10 = 6; G2 = 1 + .5*6 = 4; G1 = 1 + .5*0 = 1; G0 = 1 + .5*1 = 1.5
    # env 1: G3 = 4 + .5*2 = 5; G2 = 3 + .5*8 = 7; G1 = 2 + .5*7 = 5.5; G0 = 1 + .5*5.5 = 3.75
    expected = np.array([[1.5, 3.75], [1.0, 5.5], [4.0, 7.0], [6.0, 5.0]])
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)


def test_termination_and_truncation_differ_only_through_next_values() -> None:
    rewards = col(1.0, 1.0, 1.0)
    ends = bcol(False, False, True)
    terminated = discounted_returns(rewards, ends, col(0.0, 0.0, 0.0), gamma=0.9)
    truncated = discounted_returns(rewards, ends, col(0.0, 0.0, 5.0), gamma=0.9)
    # the bootstrap 5 enters discounted once more per step back: 0.9*5, 0.81*5, 0.729*5
    np.testing.assert_allclose(truncated - terminated, col(0.729 * 5, 0.81 * 5, 0.9 * 5), rtol=0, atol=1e-12)


def test_returns_accept_integer_and_float32_input_and_return_float64() -> None:
    out = discounted_returns(np.ones((2, 3), dtype=np.float32), np.zeros((2, 3), dtype=bool), np.zeros((2, 3)), 1.0)
    assert out.dtype == np.float64 and out.shape == (2, 3)
    np.testing.assert_array_equal(out, np.array([[2.0] * 3, [1.0] * 3]))


# --------------------------------------------------------------------------
# gae
# --------------------------------------------------------------------------


def test_gae_by_hand() -> None:
    # gamma .9, lambda .8 (gamma*lambda = .72), V = .5 everywhere, termination at t=2.
    # deltas: d0 = 1 + .9*.5 - .5 = .95; d1 = .95; d2 = 1 + 0 - .5 = .5
    # A2 = .5; A1 = .95 + .72*.5 = 1.31; A0 = .95 + .72*1.31 = 1.8932
    rewards = col(1.0, 1.0, 1.0)
    values = col(0.5, 0.5, 0.5)
    adv = gae(rewards, values, bcol(False, False, True), col(0.5, 0.5, 0.0), gamma=0.9, lam=0.8)
    np.testing.assert_allclose(adv, col(1.8932, 1.31, 0.5), rtol=0, atol=1e-12)


def test_gae_by_hand_two_envs_with_an_episode_end_in_the_middle() -> None:
    # gamma = 1, lambda = .5. env 0: end at t=0 (terminated), new episode t=1 open with V(s_T) = 3.
    # env 1: no end, V(s_T) = 0.
    rewards = np.array([[1.0, 0.0], [2.0, 1.0]])
    values = np.array([[1.0, 1.0], [1.0, 2.0]])
    next_values = np.array([[0.0, 2.0], [3.0, 0.0]])
    ends = np.array([[True, False], [False, False]])
    # env 0: d1 = 2 + 3 - 1 = 4 -> A1 = 4; d0 = 1 + 0 - 1 = 0 -> A0 = 0 (no leak of A1)
    # env 1: d1 = 1 + 0 - 2 = -1 -> A1 = -1; d0 = 0 + 2 - 1 = 1 -> A0 = 1 + .5*(-1) = .5
    adv = gae(rewards, values, ends, next_values, gamma=1.0, lam=0.5)
    np.testing.assert_allclose(adv, np.array([[0.0, 0.5], [4.0, -1.0]]), rtol=0, atol=1e-12)


def _consistent_segment(rng: np.random.Generator, t: int, n: int) -> tuple[np.ndarray, ...]:
    """Random rewards, values, ends and next_values where next_values[t] = values[t+1] inside episodes."""
    rewards = rng.normal(size=(t, n))
    values = rng.normal(size=(t, n))
    ends = rng.random((t, n)) < 0.2
    terminated = ends & (rng.random((t, n)) < 0.5)
    next_values = np.empty((t, n))
    next_values[:-1] = values[1:]
    next_values[-1] = rng.normal(size=n)  # V(s_T): the segment's bootstrap
    next_values = np.where(ends, rng.normal(size=(t, n)), next_values)  # V(final obs) at truncations
    next_values = np.where(terminated, 0.0, next_values)
    return rewards, values, ends, next_values


def test_gae_lambda_zero_is_the_td0_error() -> None:
    rewards, values, ends, next_values = _consistent_segment(np.random.default_rng(1), 30, 4)
    adv = gae(rewards, values, ends, next_values, gamma=0.97, lam=0.0)
    np.testing.assert_allclose(adv, rewards + 0.97 * next_values - values, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------
# normalize, finished_episodes_mask
# --------------------------------------------------------------------------


def test_normalize_without_mask_has_zero_mean_unit_std() -> None:
    x = np.random.default_rng(2).normal(3.0, 7.0, size=(20, 3))
    out = normalize(x)
    assert out.mean() == pytest.approx(0.0, abs=1e-12)
    assert out.std() == pytest.approx(1.0, abs=1e-6)


def test_normalize_uses_only_masked_entries_and_zeros_the_rest() -> None:
    x = np.array([[1.0, 100.0], [2.0, -50.0], [3.0, 7.0]])
    mask = np.array([[True, False], [True, False], [True, False]])
    out = normalize(x, mask)
    std = np.sqrt(2.0 / 3.0)  # population std of 1, 2, 3
    np.testing.assert_allclose(out[:, 0], [-1 / std, 0.0, 1 / std], rtol=1e-7)
    np.testing.assert_array_equal(out[:, 1], [0.0, 0.0, 0.0])


def test_normalize_single_element_is_zero_not_a_division_by_eps() -> None:
    np.testing.assert_array_equal(normalize(np.array([[5.0]])), np.array([[0.0]]))
    out = normalize(np.array([5.0, 9.0]), np.array([True, False]))
    np.testing.assert_array_equal(out, [0.0, 0.0])


def test_normalize_empty_mask_gives_zeros() -> None:
    np.testing.assert_array_equal(normalize(np.ones((2, 2)), np.zeros((2, 2), dtype=bool)), np.zeros((2, 2)))


def test_finished_episodes_mask() -> None:
    # env 0 ends at t=1 and t=3; env 1 never ends; env 2 ends at t=0 and t=2 (t=3 runs on at the cut).
    ends = np.array(
        [
            [False, False, True],
            [True, False, False],
            [False, False, True],
            [True, False, False],
        ]
    )
    expected = np.array(
        [
            [True, False, True],
            [True, False, True],
            [True, False, True],
            [True, False, False],
        ]
    )
    np.testing.assert_array_equal(finished_episodes_mask(ends), expected)


# --------------------------------------------------------------------------
# The returns stage: terminations and truncations build different next_values
# --------------------------------------------------------------------------


@pytest.mark.parametrize("bootstrap_truncated", [True, False])
def test_returns_stage_bootstraps_truncations_but_not_terminations(bootstrap_truncated: bool) -> None:
    # env 0 terminates at t=1; env 1 is truncated at t=1; both then run open to the segment end. The
    # critic says V = 4 everywhere, also at the terminal observation (which must be ignored).
    terminated = np.array([[False, False], [True, False], [False, False]])
    truncated = np.array([[False, False], [False, True], [False, False]])
    values = np.full((3, 2), 4.0)
    batch = advantages_and_targets(
        np.ones((3, 2)),
        terminated,
        truncated,
        values,
        values.copy(),
        method="returns",
        gamma=0.5,
        lam=0.95,
        bootstrap_truncated=bootstrap_truncated,
    )
    v_trunc = 4.0 if bootstrap_truncated else 0.0
    # open episode at t=2: G = 1 + .5*4 = 3 (both envs)
    # env 0: G1 = 1 + .5*0 = 1, G0 = 1 + .5 = 1.5; env 1: G1 = 1 + .5*v_trunc, G0 = 1 + .5*G1
    g1 = 1 + 0.5 * v_trunc
    expected = np.array([[1.5, 1 + 0.5 * g1], [1.0, g1], [3.0, 3.0]])
    np.testing.assert_allclose(batch.targets, expected)
    np.testing.assert_allclose(batch.advantages, expected - 4.0)
    np.testing.assert_array_equal(batch.values, values)


def test_bootstrap_values_by_hand() -> None:
    v = np.array([[5.0, 6.0, 7.0]])
    terminated = np.array([[True, False, False]])
    truncated = np.array([[False, True, False]])
    np.testing.assert_array_equal(bootstrap_values(v, terminated, truncated, True), [[0.0, 6.0, 7.0]])
    np.testing.assert_array_equal(bootstrap_values(v, terminated, truncated, False), [[0.0, 0.0, 7.0]])
    # both flags at once (gymnasium at the time limit): a termination wins
    both = np.array([[True, False, False]])
    np.testing.assert_array_equal(bootstrap_values(v, both, both, True), [[0.0, 6.0, 7.0]])


def test_policy_loss_sum_and_mean_by_hand() -> None:
    log_probs = torch.tensor([-1.0, -2.0])
    adv = torch.tensor([3.0, -1.0])
    entropy = torch.tensor([0.5, 1.5])
    # sum: -( -3 + 2 ) = 1; mean: 0.5; entropy bonus: 0.1 * mean(0.5, 1.5) = 0.1
    assert policy_loss(log_probs, adv, entropy, 0.0, "sum").item() == pytest.approx(1.0)
    assert policy_loss(log_probs, adv, entropy, 0.0, "mean").item() == pytest.approx(0.5)
    assert policy_loss(log_probs, adv, entropy, 0.1, "sum").item() == pytest.approx(0.9)
