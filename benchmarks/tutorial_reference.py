"""The Gymnasium tutorial's REINFORCE loop, re-implemented: the one reference for the tutorial.

"Training using REINFORCE for Mujoco", in its original per-step style. Two users:

- the benchmark times it (``throughput`` row "the tutorial's original per-step code"), with the
  tutorial's own seeding: the env is reset with the same seed before every episode;
- the parity test (``tests/integration/test_training.py``) checks that the ``tutorial`` preset
  reproduces its episode returns and weights exactly, with the tutorial's one defect fixed as in the
  preset: the env is seeded once, ``reset(seed=seed)`` before the first episode, and later resets are
  unseeded (the tutorial's reseeding starts every episode from one state).

What the tutorial does, and so what this does:

- one forward pass per env step that keeps its autograd graph (``log_prob`` of each sampled
  action is stored as a tensor with history until the update);
- rewards in a Python list, rewards-to-go built backwards with ``list.insert(0, g)``;
- the loss is a Python sum over per-step tensors, one backward pass per episode;
- one episode per update;
- ``RecordEpisodeStatistics(env, 50)`` around ``gym.make(env_id)``;
- ``torch``, ``random`` and ``numpy`` seeded with the seed before the network is built;
- network: 2 shared tanh layers (16, 32), a mean head and a softplus std head, ``+1e-6`` on both;
  AdamW(lr=1e-4), gamma 0.99.

The code is written from the tutorial's description, not copied. The benchmark runs torch with one
thread (``torch.set_num_threads(1)`` before calling this), as does the test suite.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions.normal import Normal

from benchmarks.throughput import Measurement, Stopwatch
from mjreinforce.envs.vector import inspect_env


class TutorialPolicyNetwork(nn.Module):
    """Shared trunk ``obs -> 16 -> 32`` (tanh), mean head and ``log(1 + exp(.))`` std head."""

    def __init__(self, obs_dim: int, act_dim: int) -> None:
        super().__init__()
        self.shared_net = nn.Sequential(nn.Linear(obs_dim, 16), nn.Tanh(), nn.Linear(16, 32), nn.Tanh())
        self.policy_mean_net = nn.Sequential(nn.Linear(32, act_dim))
        self.policy_stddev_net = nn.Sequential(nn.Linear(32, act_dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.shared_net(x.float())
        means = self.policy_mean_net(features)
        stddevs = torch.log(1 + torch.exp(self.policy_stddev_net(features)))
        return means, stddevs


class TutorialAgent:
    """The tutorial's agent: per-step sampling with a kept graph, per-episode update."""

    def __init__(self, obs_dim: int, act_dim: int) -> None:
        self.learning_rate = 1e-4
        self.gamma = 0.99
        self.eps = 1e-6
        self.probs: list[torch.Tensor] = []
        self.rewards: list[float] = []
        self.net = TutorialPolicyNetwork(obs_dim, act_dim)
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=self.learning_rate)

    def sample_action(self, state: np.ndarray) -> np.ndarray:
        """Sample ``a ~ N(mean + eps, std + eps)`` for one observation; keep ``log pi(a|s)`` with its graph."""
        batch = torch.tensor(np.array([state]))
        means, stddevs = self.net(batch)
        dist = Normal(means[0] + self.eps, stddevs[0] + self.eps)
        action = dist.sample()
        self.probs.append(dist.log_prob(action))
        return action.numpy()

    def update(self) -> None:
        """Loss ``-sum_t mean(log pi(a_t|s_t)) G_t`` built term by term; one AdamW step."""
        running_g = 0.0
        returns: list[float] = []
        for reward in self.rewards[::-1]:
            running_g = reward + self.gamma * running_g
            returns.insert(0, running_g)
        deltas = torch.tensor(returns)
        loss = torch.zeros(())
        for log_prob, delta in zip(self.probs, deltas, strict=True):
            loss = loss + log_prob.mean() * delta * (-1)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.probs = []
        self.rewards = []


@dataclass
class TutorialRun:
    """What :func:`run_tutorial` did: the trained agent, each episode's undiscounted return, and the
    timed loop (env steps, episodes, wall and CPU seconds; env and agent construction excluded, as in
    the trainer's ``wall_seconds``)."""

    agent: TutorialAgent
    returns: list[float]
    measurement: Measurement


def run_tutorial(env_id: str, episodes: int, seed: int, *, reseed_every_episode: bool) -> TutorialRun:
    """Train the tutorial's agent for ``episodes`` episodes of ``env_id`` from ``seed``.

    ``reseed_every_episode``: the tutorial's ``reset(seed=seed)`` before every episode (True), or
    the preset's fix, a seeded first reset and unseeded later ones (False)."""
    env = gym.wrappers.RecordEpisodeStatistics(gym.make(env_id), 50)
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    spec = inspect_env(env_id)
    agent = TutorialAgent(spec.obs_dim, spec.act_dim)
    returns: list[float] = []
    env_steps = 0
    watch = Stopwatch()
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed) if reseed_every_episode or episode == 0 else env.reset()
        done, episode_return = False, 0.0
        while not done:
            action = agent.sample_action(obs)
            obs, reward, terminated, truncated, _ = env.step(action)
            agent.rewards.append(float(reward))
            episode_return += float(reward)
            env_steps += 1
            done = terminated or truncated
        agent.update()
        returns.append(episode_return)
    seconds, cpu_seconds = watch.read()
    env.close()
    return TutorialRun(agent, returns, Measurement(env_steps, episodes, seconds, cpu_seconds))
