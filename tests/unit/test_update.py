"""One update of the learner: the policy-gradient direction, gradient clipping, the critic's fixed point."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mjreinforce.algo.policy import make_policy, value_network
from mjreinforce.algo.returns import Advantages, advantages_and_targets
from mjreinforce.algo.update import Learner, UpdateMetrics
from mjreinforce.config import Config

OBS_DIM, ACT_DIM = 4, 2
LOW, HIGH = -np.ones(ACT_DIM), np.ones(ACT_DIM)


def _learner(cfg: Config, seed: int = 0) -> Learner:
    torch.manual_seed(seed)
    policy = make_policy(cfg, OBS_DIM, ACT_DIM, LOW, HIGH)
    return Learner(cfg, policy, value_network(cfg, OBS_DIM))


def _batch(advantages: np.ndarray) -> Advantages:
    return Advantages(advantages, advantages.copy(), np.zeros_like(advantages))


def _log_prob(learner: Learner, obs: np.ndarray, raw: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        lp, _ = learner.policy.log_prob(torch.as_tensor(obs, dtype=torch.float32), torch.as_tensor(raw))
    return lp.numpy()


@pytest.mark.parametrize("policy_kind,bound", [("mlp", "clip"), ("mlp", "tanh"), ("tutorial", "clip")])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_one_update_moves_log_prob_with_the_sign_of_the_advantage(policy_kind, bound, seed, sign) -> None:
    cfg = Config(policy=policy_kind, action_bound=bound, normalize_advantages=False, learning_rate=1e-3)
    learner = _learner(cfg, seed)
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(1, 1, OBS_DIM))
    raw = rng.normal(size=(1, 1, ACT_DIM)).astype(np.float32)
    before = _log_prob(learner, obs[0], raw[0])
    learner.update(obs, raw, np.ones((1, 1), dtype=bool), _batch(np.full((1, 1), sign)))
    after = _log_prob(learner, obs[0], raw[0])
    assert np.sign(after - before)[0] == sign


def test_invalid_steps_do_not_enter_the_loss() -> None:
    cfg = Config(normalize_advantages=False, learning_rate=1e-3)
    learner = _learner(cfg)
    obs = np.random.default_rng(0).normal(size=(2, 1, OBS_DIM))
    raw = np.zeros((2, 1, ACT_DIM), dtype=np.float32)
    valid = np.array([[True], [False]])
    first = learner.update(obs, raw, valid, _batch(np.array([[1.0], [1e6]])))
    learner2 = _learner(cfg)
    second = learner2.update(obs, raw, valid, _batch(np.array([[1.0], [-7.0]])))
    assert first.policy_loss == second.policy_loss
    for p, q in zip(learner.policy.parameters(), learner2.policy.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_gradient_clipping_bounds_the_applied_gradient_and_reports_the_raw_norm() -> None:
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(8, 2, OBS_DIM))
    raw = rng.normal(size=(8, 2, ACT_DIM)).astype(np.float32)
    adv = rng.normal(size=(8, 2)) * 100
    valid = np.ones((8, 2), dtype=bool)
    unclipped = _learner(Config(normalize_advantages=False))
    m0 = unclipped.update(obs, raw, valid, _batch(adv))
    clipped = _learner(Config(normalize_advantages=False, max_grad_norm=0.01))
    m1 = clipped.update(obs, raw, valid, _batch(adv))
    assert m1.grad_norm == pytest.approx(m0.grad_norm, rel=1e-5) and m0.grad_norm > 0.01
    applied = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in clipped.policy.parameters()]))
    assert applied.item() == pytest.approx(0.01, rel=1e-4)
    raw_norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in unclipped.policy.parameters()]))
    assert raw_norm.item() == pytest.approx(m0.grad_norm, rel=1e-5)


def test_linear_schedule_anneals_both_learning_rates() -> None:
    cfg = Config(lr_schedule="linear", learning_rate=1e-3, use_critic=True, value_learning_rate=4e-3)
    learner = _learner(cfg)
    learner.set_progress(0.25)
    assert learner.policy_optimizer.param_groups[0]["lr"] == pytest.approx(7.5e-4)
    assert learner.value_optimizer is not None
    assert learner.value_optimizer.param_groups[0]["lr"] == pytest.approx(3e-3)
    constant = _learner(Config(lr_schedule="constant", learning_rate=1e-3))
    constant.set_progress(0.9)
    assert constant.policy_optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)


def test_critic_converges_to_the_infinite_horizon_value_when_episodes_are_only_truncated() -> None:
    """Reward 1 every step, time limits but no terminations: with bootstrapping at truncations the
    value of every state is sum_k gamma^k = 1 / (1 - gamma) (Stable-Baselines3 checks the same)."""
    gamma = 0.9
    cfg = Config(use_critic=True, advantage="gae", gamma=gamma, value_learning_rate=3e-3, value_iterations=10)
    learner = _learner(cfg)
    rng = np.random.default_rng(0)
    T, N = 16, 4
    for _ in range(400):
        obs = rng.uniform(-1, 1, size=(T, N, OBS_DIM))
        next_obs = np.concatenate([obs[1:], rng.uniform(-1, 1, size=(1, N, OBS_DIM))])
        truncated = rng.random((T, N)) < 0.1  # a time limit somewhere; the state after it is still worth 10
        batch = advantages_and_targets(
            np.ones((T, N)),
            np.zeros((T, N), dtype=bool),
            truncated,
            learner.values(obs),
            learner.values(next_obs),
            method="gae",
            gamma=gamma,
            lam=0.95,
            bootstrap_truncated=True,
        )
        learner.update(obs, np.zeros((T, N, ACT_DIM), dtype=np.float32), np.ones((T, N), dtype=bool), batch)
    values = learner.values(rng.uniform(-1, 1, size=(100, OBS_DIM)))
    np.testing.assert_allclose(values, 1 / (1 - gamma), rtol=0.03)


def _metrics(**changes: float | None) -> UpdateMetrics:
    values = dict(
        policy_loss=0.5,
        value_loss=1.0,
        entropy=1.4,
        action_std=1.0,
        explained_variance=None,
        grad_norm=2.0,
        learning_rate=1e-3,
        value_learning_rate=1e-3,
    )
    return UpdateMetrics(**{**values, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"policy_loss": float("nan")}, "policy loss is nan"),
        ({"value_loss": float("inf")}, "value loss is inf"),
        ({"grad_norm": float("inf")}, "gradient norm is inf"),
        ({"action_std": float("nan")}, "action std is nan"),
        ({"entropy": float("-inf")}, "entropy is -inf"),
    ],
)
def test_divergence_names_the_first_non_finite_metric(changes: dict[str, float], reason: str) -> None:
    learner = _learner(Config(use_critic=True))
    assert learner.divergence(_metrics()) is None
    assert learner.divergence(_metrics(**changes)) == reason


@pytest.mark.parametrize("network", ["policy", "value"])
def test_divergence_sees_a_non_finite_weight(network: str) -> None:
    learner = _learner(Config(use_critic=True))
    module = learner.policy if network == "policy" else learner.value
    assert module is not None
    with torch.no_grad():
        next(module.parameters()).view(-1)[0] = float("nan")
    assert (
        learner.divergence(_metrics())
        == f"a {'policy' if network == 'policy' else 'value network'} weight is not finite"
    )


def test_a_huge_learning_rate_update_is_seen_as_divergence() -> None:
    cfg = Config(hidden_sizes=(256,) * 8, activation="relu", learning_rate=1.0, normalize_advantages=False)
    learner = _learner(cfg, seed=1)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(64, 1, OBS_DIM)) * 10
    raw = rng.normal(size=(64, 1, ACT_DIM)).astype(np.float32)
    batch = _batch(rng.normal(size=(64, 1)) * 100)
    reason = None
    for _ in range(5):  # the trainer stops at the first divergence: a NaN policy cannot even be evaluated
        reason = learner.divergence(learner.update(obs, raw, np.ones((64, 1), dtype=bool), batch))
        if reason is not None:
            break
    assert reason is not None
