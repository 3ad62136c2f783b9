"""Collector on real MuJoCo envs, checked against an independent replay with plain gymnasium envs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from mjreinforce.algo.normalization import RunningNormalizer
from mjreinforce.algo.policy import MLPPolicy
from mjreinforce.algo.rollout import Collector, Episode, Rollout
from mjreinforce.config import Config
from mjreinforce.envs.vector import make_vec_env

ENV = "InvertedPendulum-v5"
SEED = 11
LOW, HIGH = np.array([-3.0]), np.array([3.0])


class RecordingPolicy(MLPPolicy):
    """A real MLP policy that also records what each ``sample`` call returned and under which mode."""

    def __init__(self, cfg: Config) -> None:
        super().__init__(4, 1, LOW, HIGH, cfg)
        self.calls: list[tuple[bool, bool, bool]] = []  # (requires_grad, inference mode, grad mode)

    def sample(self, obs: torch.Tensor) -> torch.Tensor:
        raw = super().sample(obs)
        self.calls.append((raw.requires_grad, torch.is_inference_mode_enabled(), torch.is_grad_enabled()))
        return raw


def _setup(num_envs: int, max_episode_steps: int | None = None, init_log_std: float = 0.5):
    torch.manual_seed(0)
    cfg = Config(env_id=ENV, init_log_std=init_log_std)
    kwargs = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
    env = make_vec_env(cfg, num_envs, SEED, backend="gymnasium", **kwargs)
    return RecordingPolicy(cfg), Collector(env, 4, 1)


def _replay(rollout: Rollout, num_envs: int, max_episode_steps: int | None = None) -> None:
    """Replay each env's clipped actions in its own plain gymnasium env (seeded ``SEED + i`` once,
    unseeded resets after) and check every stored array of the rollout against it."""
    kwargs = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
    for i in range(num_envs):
        env = gym.make(ENV, **kwargs)
        obs, _ = env.reset(seed=SEED + i)
        for t in range(rollout.rewards.shape[0]):
            np.testing.assert_array_equal(rollout.obs[t, i], obs)
            action = np.clip(rollout.raw_actions[t, i].astype(np.float64), LOW, HIGH)
            obs, reward, terminated, truncated, _ = env.step(action)
            assert rollout.rewards[t, i] == reward
            assert (rollout.terminated[t, i], rollout.truncated[t, i]) == (terminated, truncated)
            np.testing.assert_array_equal(rollout.next_obs[t, i], obs)  # the final obs at an episode end
            if terminated or truncated:
                obs, _ = env.reset()
        env.close()


def test_fixed_length_rollout_shapes_and_replay() -> None:
    policy, collector = _setup(num_envs=3)
    episodes: list[Episode] = []
    rollout = collector.collect(policy, RunningNormalizer(4, enabled=False), 40, episodes.append)
    t, n = 40, 3
    assert rollout.obs.shape == rollout.next_obs.shape == (t, n, 4)
    assert rollout.raw_actions.shape == (t, n, 1)
    for name in ("rewards", "terminated", "truncated", "valid"):
        assert getattr(rollout, name).shape == (t, n), name
    assert rollout.terminated.dtype == rollout.truncated.dtype == rollout.valid.dtype == np.bool_
    assert rollout.valid.all()  # fixed-length mode: every step enters the loss
    assert rollout.terminated.any(), "a random policy drops the pole within 40 steps"
    _replay(rollout, n)
    # inside an episode next_obs[t] is obs[t + 1]; at an end obs[t + 1] is the next episode's reset state
    ends = rollout.episode_ends[:-1]
    np.testing.assert_array_equal(rollout.next_obs[:-1][~ends], rollout.obs[1:][~ends])
    assert not np.any(np.all(rollout.next_obs[:-1][ends] == rollout.obs[1:][ends], axis=-1))
    assert collector.env_steps == t * n
    _check_episode_records(episodes, rollout, steps_per_t=n)
    collector.env.close()


def test_rollouts_continue_open_episodes_and_count_env_steps() -> None:
    policy, collector = _setup(num_envs=2)
    episodes: list[Episode] = []
    norm = RunningNormalizer(4, enabled=False)
    first = collector.collect(policy, norm, 25, episodes.append)
    second = collector.collect(policy, norm, 25, episodes.append)
    assert collector.env_steps == 100
    # the second rollout continues the open episodes (no reset in fixed-length mode): replaying both
    # back to back in one plain env per index checks that, and the episode records
    both = Rollout(**{k: np.concatenate([getattr(first, k), getattr(second, k)]) for k in first.__dataclass_fields__})
    _replay(both, 2)
    _check_episode_records(episodes, both, steps_per_t=2)
    collector.env.close()


def _check_episode_records(episodes: list[Episode], rollout: Rollout, steps_per_t: int) -> None:
    """Each ``on_episode`` record, in the order episodes ended: length and return from the rewards,
    flags as stored, ``env_steps`` = all envs' steps so far when it ended."""
    ends = np.argwhere(rollout.episode_ends)  # (t, i) rows, ordered by t then i
    assert len(episodes) == len(ends)
    for ep, (t, i) in zip(episodes, ends, strict=True):
        start = max([s + 1 for s, j in ends if j == i and s < t], default=0)
        assert ep.length == t - start + 1
        assert ep.ret == pytest.approx(rollout.rewards[start : t + 1, i].sum())
        assert ep.env_steps == (t + 1) * steps_per_t
        assert (ep.terminated, ep.truncated) == (rollout.terminated[t, i], rollout.truncated[t, i])


def test_terminated_and_truncated_are_kept_apart() -> None:
    policy, collector = _setup(num_envs=4, max_episode_steps=6, init_log_std=-1.0)
    episodes: list[Episode] = []
    rollout = collector.collect(policy, RunningNormalizer(4, enabled=False), 60, episodes.append)
    _replay(rollout, 4, max_episode_steps=6)
    _check_episode_records(episodes, rollout, steps_per_t=4)
    assert rollout.terminated.any() and rollout.truncated.any()
    truncated_only = [e for e in episodes if e.truncated and not e.terminated]
    terminated = [e for e in episodes if e.terminated]
    assert truncated_only and terminated
    assert all(e.length == 6 for e in truncated_only)  # the time limit, not a fall
    assert all(e.length <= 6 for e in terminated)
    collector.env.close()


def test_episode_mode_collects_until_every_env_finished_an_episode() -> None:
    policy, collector = _setup(num_envs=3)
    episodes: list[Episode] = []
    norm = RunningNormalizer(4, enabled=False)
    rollout = collector.collect(policy, norm, 0, episodes.append)
    ends = rollout.episode_ends
    first_end = ends.argmax(axis=0)  # each env's first episode end
    last_end = ends.shape[0] - 1 - ends[::-1].argmax(axis=0)  # and its last one
    assert ends.any(axis=0).all()
    assert rollout.rewards.shape[0] == first_end.max() + 1  # stops when the last env finishes its first episode
    for i in range(3):  # every finished episode is in the loss; only the one open at the cut is not
        expected = np.arange(rollout.rewards.shape[0]) <= last_end[i]
        np.testing.assert_array_equal(rollout.valid[:, i], expected)
    _replay(rollout, 3)
    assert collector.env_steps == rollout.rewards.size
    _check_episode_records(episodes, rollout, steps_per_t=3)  # also episodes of envs that finished early

    # the next episode-mode rollout restarts every env (open episodes of early finishers are dropped)
    steps_before = collector.env_steps
    second = collector.collect(policy, norm, 0, episodes.append)
    assert second.valid[0].all() and collector.env_steps == steps_before + second.rewards.size
    collector.env.close()


def test_episode_mode_with_a_minimum_batch_collects_whole_episodes_past_it() -> None:
    policy, collector = _setup(num_envs=3)  # InvertedPendulum with std e^0.5 falls within tens of steps
    episodes: list[Episode] = []
    norm = RunningNormalizer(4, enabled=False)
    rollout = collector.collect(policy, norm, 0, episodes.append, min_steps=300)
    ends = rollout.episode_ends
    t = ends.shape[0]

    def may_stop(k: int) -> bool:  # every env finished an episode in the first k steps, and k * N >= 300
        return bool(ends[:k].any(axis=0).all()) and k * 3 >= 300

    assert may_stop(t) and not may_stop(t - 1)  # stops at the first step it may
    assert (ends.sum(axis=0) > 1).any()  # several episodes per env: the batch grew past the first ones
    last_end = t - 1 - ends[::-1].argmax(axis=0)
    for i in range(3):  # every finished episode is in the loss; only the one open at the cut is not
        np.testing.assert_array_equal(rollout.valid[:, i], np.arange(t) <= last_end[i])
    _replay(rollout, 3)
    _check_episode_records(episodes, rollout, steps_per_t=3)
    collector.env.close()


def test_collection_keeps_no_autograd_graph() -> None:
    policy, collector = _setup(num_envs=2)
    rollout = collector.collect(policy, RunningNormalizer(4, enabled=False), 10, lambda e: None)
    assert len(policy.calls) == 10
    assert all(not requires_grad and inference for requires_grad, inference, _ in policy.calls)
    for name in Rollout.__dataclass_fields__:
        assert isinstance(getattr(rollout, name), np.ndarray), name  # plain arrays, nothing attached
    assert all(p.grad is None for p in policy.parameters())
    collector.env.close()


def test_policy_sees_normalized_obs_but_the_rollout_stores_raw_obs() -> None:
    policy, collector = _setup(num_envs=2)
    norm = RunningNormalizer(4)
    norm.update(np.random.default_rng(0).normal(3.0, 0.01, size=(100, 4)))  # far from the real obs
    seen: list[torch.Tensor] = []
    original = policy.mean_std

    def recording_mean_std(obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        seen.append(obs.clone())
        return original(obs)

    policy.mean_std = recording_mean_std  # type: ignore[method-assign]
    rollout = collector.collect(policy, norm, 5, lambda e: None)
    _replay(rollout, 2)  # raw observations stored
    for t in range(5):
        np.testing.assert_allclose(seen[t].numpy(), norm(rollout.obs[t]), rtol=1e-6)
    collector.env.close()
