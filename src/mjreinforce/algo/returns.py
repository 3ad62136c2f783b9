"""Returns and advantages: pure, vectorized over envs, scanning backwards over time.

Conventions shared by every function here (``T`` steps, ``N`` envs):

- ``rewards[t]``: reward of the transition at step ``t``, shape ``(T, N)``.
- ``episode_ends[t]``: the episode ended at step ``t`` (terminated **or** truncated), ``(T, N)`` bool.
  Step ``t + 1`` of that env then belongs to a new episode.
- ``next_values[t]``: the value of the state *after* step ``t`` in the *same* episode, ``(T, N)``:

  ======================================  ===========================================
  step ``t`` ...                          ``next_values[t]``
  ======================================  ===========================================
  terminated (absorbing state)            ``0``
  truncated (time limit)                  ``V(final observation)`` with a critic, else 0
  last step of the segment, episode open  ``V(s_T)`` with a critic, else 0
  inside an episode                       ``V(s_{t+1})`` (only GAE reads these)
  ======================================  ===========================================

Terminations and truncations are kept apart: :func:`bootstrap_values` builds ``next_values``
from them (the table above), and :func:`advantages_and_targets` turns a rollout's rewards and
values into what the update needs. The scans themselves only need to know where episodes end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.floating]
BoolArray = NDArray[np.bool_]


def discounted_returns(
    rewards: FloatArray, episode_ends: BoolArray, next_values: FloatArray, gamma: float
) -> FloatArray:
    """Discounted reward-to-go, bootstrapped where an episode is cut off.

    ``G_t = r_t + gamma * G_{t+1}`` inside an episode, and ``G_t = r_t + gamma * next_values[t]``
    where the episode ends at ``t`` or the segment ends (``t = T - 1``). With ``next_values = 0``
    this is the tutorial's Monte-Carlo return ``sum_k gamma^k r_{t+k}`` up to the episode's end.

    Shapes: ``rewards``, ``episode_ends``, ``next_values``: ``(T, N)`` -> ``(T, N)`` float64.
    Edge cases: one-step episodes give ``r_t + gamma * next_values[t]``; ``gamma = 1`` sums rewards.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    returns = np.empty_like(rewards)
    running = np.asarray(next_values[-1], dtype=np.float64)
    for t in range(rewards.shape[0] - 1, -1, -1):
        # critical: at an episode end restart from that step's own bootstrap value.
        running = np.where(episode_ends[t], next_values[t], running)
        running = rewards[t] + gamma * running
        returns[t] = running
    return returns


def gae(
    rewards: FloatArray,
    values: FloatArray,
    episode_ends: BoolArray,
    next_values: FloatArray,
    gamma: float,
    lam: float,
) -> FloatArray:
    """Generalized advantage estimation (Schulman et al. 2016).

    ``delta_t = r_t + gamma * next_values[t] - values[t]`` (the TD(0) error) and
    ``A_t = delta_t + gamma * lam * A_{t+1}``, the recursion cut where the episode ends at ``t``
    or at the end of the segment. Value targets for the critic are ``A_t + values[t]``.

    Special cases: ``lam = 0`` gives ``A_t = delta_t``; ``lam = 1`` gives
    ``discounted_returns(rewards, episode_ends, next_values, gamma) - values``.

    Shapes: ``rewards``, ``values`` (``V(s_t)``), ``episode_ends``, ``next_values``: ``(T, N)`` -> ``(T, N)``.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    deltas = rewards + gamma * next_values - values
    advantages = np.empty_like(deltas)
    running = np.zeros(rewards.shape[1:], dtype=np.float64)
    for t in range(rewards.shape[0] - 1, -1, -1):
        # critical: do not let the next episode's advantage leak across an episode end.
        running = deltas[t] + gamma * lam * np.where(episode_ends[t], 0.0, running)
        advantages[t] = running
    return advantages


def normalize(x: FloatArray, mask: BoolArray | None = None, eps: float = 1e-8) -> FloatArray:
    """Standardize ``x`` to zero mean and unit std over the entries where ``mask`` is true.

    ``(x - mean) / (std + eps)``; masked-out entries are returned as 0. A batch with a single
    entry (std 0) becomes 0 rather than dividing by ``eps``.
    """
    x = np.asarray(x, dtype=np.float64)
    mask = np.ones(x.shape, dtype=bool) if mask is None else mask
    selected = x[mask]
    if selected.size == 0:
        return np.zeros_like(x)
    out = (x - selected.mean()) / (selected.std() + eps)
    return np.where(mask, out, 0.0)


def finished_episodes_mask(episode_ends: BoolArray) -> BoolArray:
    """Mask of the steps that belong to an episode that ended within the segment.

    ``mask[t, i]`` is true when env ``i`` ends an episode at some step ``t' >= t`` (the ending step
    included); the steps of the episode still running at the cut are false. Shape ``(T, N)`` -> ``(T, N)``.
    """
    ends_from_here: np.ndarray = np.cumsum(episode_ends[::-1], axis=0)[::-1]
    return ends_from_here > 0


def bootstrap_values(
    next_state_values: FloatArray, terminated: BoolArray, truncated: BoolArray, bootstrap_truncated: bool
) -> FloatArray:
    """``next_values`` (the table in the module docstring) from the critic's ``V`` of each step's next state.

    ``next_state_values[t]``: ``V`` of the observation after step ``t`` in the same episode (the final
    observation where the episode ended at ``t``), or zeros without a critic. The result is 0 where the
    episode terminated, 0 where it was truncated unless ``bootstrap_truncated``, else ``next_state_values``.

    Shapes: all ``(T, N)`` -> ``(T, N)`` float64.
    """
    # critical: a termination is an absorbing state, worth 0 whatever the critic says about its observation.
    next_values = np.where(terminated, 0.0, next_state_values)
    if not bootstrap_truncated:  # the tutorial: a time limit treated like a termination
        next_values = np.where(truncated, 0.0, next_values)
    return next_values


@dataclass(frozen=True)
class Advantages:
    """What the update needs from the returns stage, each ``(T, N)`` float64.

    - ``advantages``: ``A_t`` (GAE, or reward-to-go minus ``V(s_t)``), before any normalization
    - ``targets``: value targets for the critic, ``A_t + V(s_t)``
    - ``values``: ``V(s_t)`` the advantages were computed with (zeros without a critic)
    """

    advantages: FloatArray
    targets: FloatArray
    values: FloatArray


def advantages_and_targets(
    rewards: FloatArray,
    terminated: BoolArray,
    truncated: BoolArray,
    values: FloatArray,
    next_state_values: FloatArray,
    *,
    method: Literal["returns", "gae"],
    gamma: float,
    lam: float,
    bootstrap_truncated: bool,
) -> Advantages:
    """The returns stage: advantages and value targets of one rollout.

    ``values``: ``V(s_t)`` and ``next_state_values``: ``V`` of the state after step ``t`` (see
    :func:`bootstrap_values`), both zeros without a critic. ``method = "gae"`` gives GAE(``lam``)
    (:func:`gae`) with targets ``A_t + V(s_t)``; ``"returns"`` gives the reward-to-go ``G_t``
    (:func:`discounted_returns`) as targets and ``G_t - V(s_t)`` as advantages.

    Shapes: every array ``(T, N)``; terminations and truncations stay separate inputs.
    """
    next_values = bootstrap_values(next_state_values, terminated, truncated, bootstrap_truncated)
    ends = terminated | truncated
    if method == "gae":
        adv = gae(rewards, values, ends, next_values, gamma, lam)
        return Advantages(adv, adv + values, values)
    returns = discounted_returns(rewards, ends, next_values, gamma)
    return Advantages(returns - values, returns, values)
