"""PPO's maths and update: the clipped surrogate's gradient, the minibatches, target_kl, the KL estimator, the keys."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from mjreinforce.algo.policy import make_policy, value_network
from mjreinforce.algo.ppo_loss import (
    approx_kl,
    clip_fraction,
    clipped_surrogate_loss,
    clipped_values,
    minibatch_indices,
)
from mjreinforce.algo.returns import Advantages
from mjreinforce.algo.update import Learner, policy_loss
from mjreinforce.config import PPO_FIELDS, Config, load_preset, preset_env_overrides, validate
from mjreinforce.errors import UserError
from mjreinforce.suite.grid import DEFAULT_ENVS

OBS_DIM, ACT_DIM = 4, 2
LOW, HIGH = -np.ones(ACT_DIM), np.ones(ACT_DIM)
PPO = Config(algorithm="ppo", use_critic=True, advantage="gae", rollout_steps=16, num_envs=2, num_minibatches=4)


def _learner(cfg: Config, seed: int = 0) -> Learner:
    torch.manual_seed(seed)
    return Learner(cfg, make_policy(cfg, OBS_DIM, ACT_DIM, LOW, HIGH), value_network(cfg, OBS_DIM))


def _rollout(seed: int = 0, T: int = 16, N: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray, Advantages]:
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(T, N, OBS_DIM)).astype(np.float32)
    raw = rng.normal(size=(T, N, ACT_DIM)).astype(np.float32)
    adv = rng.normal(size=(T, N)) * 3 + 1
    values = rng.normal(size=(T, N))
    return obs, raw, np.ones((T, N), dtype=bool), Advantages(adv, adv + values, values)


def _grads(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in module.parameters() if p.grad is not None]


# --------------------------------------------------------------------------
# the clipped surrogate
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("policy_kind", "bound"), [("mlp", "clip"), ("mlp", "tanh"), ("tutorial", "clip")])
@pytest.mark.parametrize("normalize", [True, False])
def test_one_epoch_one_minibatch_at_ratio_one_is_the_vpg_gradient(
    policy_kind: str, bound: str, normalize: bool
) -> None:
    """At r = 1 the clipped surrogate's gradient is the vanilla policy gradient, with the same advantage
    normalization and entropy bonus; the critic's joint loss does not touch the policy's gradient."""
    common = dict(policy=policy_kind, action_bound=bound, normalize_advantages=normalize, entropy_coef=0.01)
    vpg = _learner(Config(use_critic=True, advantage="gae", **common))  # type: ignore[arg-type]
    ppo = _learner(replace(PPO, update_epochs=1, num_minibatches=1, **common))  # type: ignore[arg-type]
    for p, q in zip(vpg.policy.parameters(), ppo.policy.parameters(), strict=True):
        torch.testing.assert_close(p, q)  # the same initial policy
    obs, raw, _, batch = _rollout()
    valid = np.random.default_rng(1).random(obs.shape[:2]) < 0.7  # invalid steps left out of both
    vpg.update(obs, raw, valid, batch)
    metrics = ppo.update(obs, raw, valid, batch)
    assert metrics.epochs == 1.0 and metrics.clip_fraction == 0.0 and metrics.approx_kl == pytest.approx(0, abs=1e-7)
    for g_vpg, g_ppo in zip(_grads(vpg.policy), _grads(ppo.policy), strict=True):
        torch.testing.assert_close(g_ppo, g_vpg, rtol=1e-5, atol=1e-7)
    assert any(g.abs().sum() > 0 for g in _grads(ppo.policy))


def test_the_surrogate_gradient_at_ratio_one_is_the_policy_gradient() -> None:
    log_probs = torch.randn(32, dtype=torch.float64, requires_grad=True)
    advantages = torch.randn(32, dtype=torch.float64)
    ppo = torch.autograd.grad(clipped_surrogate_loss(log_probs - log_probs.detach(), advantages, 0.2), log_probs)[0]
    vpg = torch.autograd.grad(policy_loss(log_probs, advantages, torch.zeros(32), 0.0, "mean"), log_probs)[0]
    torch.testing.assert_close(ppo, vpg)


@pytest.mark.parametrize(
    ("advantage", "ratio", "zero"),
    [
        (1.0, 1.5, True),  # A > 0 and r > 1 + eps: clipped, no push further up
        (1.0, 0.5, False),  # A > 0 below the range: the gradient still raises r
        (-1.0, 0.5, True),  # A < 0 and r < 1 - eps: clipped, no push further down
        (-1.0, 1.5, False),  # A < 0 above the range: the gradient still lowers r
        (1.0, 1.1, False),  # inside the range: the gradient of r A
        (-1.0, 0.9, False),
    ],
)
def test_outside_the_clip_range_the_gradient_is_zero_only_in_the_clipped_direction(
    advantage: float, ratio: float, zero: bool
) -> None:
    log_ratio = torch.tensor([np.log(ratio)], dtype=torch.float64, requires_grad=True)
    loss = clipped_surrogate_loss(log_ratio, torch.tensor([advantage], dtype=torch.float64), 0.2)
    (grad,) = torch.autograd.grad(loss, log_ratio)
    if zero:
        assert grad.item() == 0.0
    else:  # d(-r A)/d log r = -r A: descent raises r where A > 0, lowers it where A < 0
        assert grad.item() == pytest.approx(-ratio * advantage)
    assert clip_fraction(log_ratio.detach(), 0.2).item() == (1.0 if abs(ratio - 1) > 0.2 else 0.0)


def test_value_clipping_keeps_the_prediction_near_the_old_value() -> None:
    values, old = torch.tensor([0.0, 5.0, 10.0]), torch.tensor([4.0, 4.0, 4.0])
    torch.testing.assert_close(clipped_values(values, old, 0.5), torch.tensor([3.5, 4.5, 4.5]))
    assert clipped_values(values, old, None) is values


# --------------------------------------------------------------------------
# minibatches
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("T", "N", "k"), [(16, 2, 4), (7, 3, 5), (5, 1, 32), (64, 4, 1), (3, 3, 9)])
def test_every_valid_step_is_in_exactly_one_minibatch_and_no_invalid_step_in_any(T: int, N: int, k: int) -> None:
    rng = np.random.default_rng(T * N + k)
    valid = rng.random((T, N)) < 0.6
    valid[0, 0] = True
    torch.manual_seed(0)
    epochs = [minibatch_indices(valid, k) for _ in range(3)]
    for batches in epochs:
        everything = torch.cat(batches).numpy()
        np.testing.assert_array_equal(np.sort(everything), np.flatnonzero(valid))  # each valid step exactly once
        sizes = [len(b) for b in batches]
        assert len(batches) == min(k, int(valid.sum())) and max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
    if valid.sum() > 3:  # shuffled anew each epoch
        assert not all(torch.equal(torch.cat(epochs[0]), torch.cat(e)) for e in epochs[1:])
    assert minibatch_indices(np.zeros((4, 2), dtype=bool), 4) == []


def test_the_shuffle_draws_from_torchs_global_rng_so_a_seed_repeats_the_update() -> None:
    """A checkpoint saves torch's RNG state; that is all the update needs to repeat itself."""
    obs, raw, valid, batch = _rollout()
    params = []
    for shuffle_seed in (5, 5, 6):
        learner = _learner(PPO)
        torch.manual_seed(shuffle_seed)
        learner.update(obs, raw, valid, batch)
        params.append(torch.nn.utils.parameters_to_vector(learner.policy.parameters()))
    assert torch.equal(params[0], params[1]) and not torch.equal(params[0], params[2])


# --------------------------------------------------------------------------
# the update: epochs, target_kl, metrics
# --------------------------------------------------------------------------


def _policy_steps(learner: Learner) -> int:
    return int(next(iter(learner.policy_optimizer.state.values()))["step"])


def test_the_update_runs_update_epochs_times_num_minibatches_steps() -> None:
    learner = _learner(replace(PPO, update_epochs=3, learning_rate=1e-2, value_learning_rate=1e-2))
    metrics = learner.update(*_rollout())
    assert _policy_steps(learner) == 12 and metrics.epochs == 3.0
    assert metrics.approx_kl is not None and metrics.approx_kl > 0
    assert metrics.clip_fraction is not None and 0 <= metrics.clip_fraction <= 1
    assert metrics.value_loss is not None and metrics.explained_variance is not None


def test_target_kl_stops_the_epochs_before_the_step_that_would_exceed_it() -> None:
    cfg = replace(PPO, update_epochs=10, learning_rate=1e-2, value_learning_rate=1e-2)
    free = _learner(cfg).update(*_rollout())
    assert free.epochs == 10.0 and free.approx_kl is not None and free.approx_kl > 1e-4
    stopped = _learner(replace(cfg, target_kl=1e-4))
    metrics = stopped.update(*_rollout())
    steps = _policy_steps(stopped)
    assert 1 <= steps < 40 and metrics.epochs == steps / 4
    # with a large target nothing stops
    assert _learner(replace(cfg, target_kl=10.0)).update(*_rollout()).epochs == 10.0


def test_the_kl_estimator_matches_the_exact_kl_for_small_policy_changes() -> None:
    """``mean((r - 1) - log r)`` over actions drawn by the old policy estimates KL(old || new)."""
    gen = torch.Generator().manual_seed(0)
    mean = torch.randn(64, ACT_DIM, generator=gen, dtype=torch.float64)
    std = torch.rand(64, ACT_DIM, generator=gen, dtype=torch.float64) + 0.5
    old = Normal(mean, std)
    for step in (0.01, 0.05, 0.1):
        new = Normal(mean + step * torch.randn(mean.shape, generator=gen, dtype=torch.float64), std * (1 + step))
        u = old.sample((4000,))  # (4000, 64, act_dim)
        log_ratio = (new.log_prob(u) - old.log_prob(u)).sum(-1).reshape(-1)
        exact = kl_divergence(old, new).sum(-1).mean()
        assert approx_kl(log_ratio).item() == pytest.approx(exact.item(), rel=0.05)
    assert approx_kl(torch.zeros(8)).item() == 0.0


def test_ppo_without_a_critic_trains_the_policy_alone() -> None:
    cfg = replace(PPO, use_critic=False, advantage="returns", accept_zero_bootstrap=True)
    learner = _learner(validate(cfg))
    obs, raw, valid, batch = _rollout()
    metrics = learner.update(
        obs, raw, valid, Advantages(batch.advantages, batch.advantages, np.zeros_like(obs[..., 0]))
    )
    assert learner.value is None and metrics.value_loss is None and metrics.epochs == 10.0


# --------------------------------------------------------------------------
# config
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        *[
            ({name: value}, f"{name} is set but applies only with algorithm = 'ppo'")
            for name, value in [
                ("clip_range", 0.3),
                ("update_epochs", 3),
                ("num_minibatches", 8),
                ("clip_range_vf", 0.2),
                ("target_kl", 0.01),
                ("vf_coef", 1.0),
            ]
        ],
        ({"algorithm": "ppo", "use_critic": True, "value_iterations": 5}, "value_iterations has no effect"),
        ({"algorithm": "ppo", "loss_reduction": "sum"}, "loss_reduction = 'sum' applies only"),
        ({"algorithm": "ppo", "vf_coef": 1.0}, "vf_coef is set but has no effect without a critic"),
        ({"algorithm": "ppo", "clip_range_vf": 0.2}, "clip_range_vf is set but has no effect without a critic"),
        ({"algorithm": "ppo", "use_critic": True, "rollout_steps": 8, "num_envs": 2}, "num_minibatches (32) is more"),
        ({"algorithm": "ppo", "clip_range": 0.0}, "clip_range must be in (0, 1]"),
        ({"algorithm": "ppo", "target_kl": -1.0}, "target_kl must be in (0, 1e6]"),
        ({"algorithm": "ppo", "update_epochs": 0}, "update_epochs must be in [1, 10000]"),
    ],
)
def test_bad_ppo_settings_are_one_line_errors(changes: dict[str, object], fragment: str) -> None:
    with pytest.raises(UserError) as exc:
        validate(replace(Config(), **changes))  # type: ignore[arg-type]
    assert fragment in str(exc.value) and "\n" not in str(exc.value)


def test_ppo_fields_are_the_ones_the_rule_names() -> None:
    assert set(PPO_FIELDS) == {
        "clip_range",
        "update_epochs",
        "num_minibatches",
        "clip_range_vf",
        "target_kl",
        "vf_coef",
    }


TASKS = ("InvertedPendulum-v5", *DEFAULT_ENVS)  # the quickstart and the suite


@pytest.mark.parametrize("env_id", TASKS)
def test_the_ppo_preset_is_valid_on_every_task(env_id: str) -> None:
    cfg = validate(load_preset("ppo", env_id))
    assert cfg.algorithm == "ppo" and cfg.algorithm_name == "PPO" and cfg.env_id == env_id
    assert cfg.learning_rate == cfg.value_learning_rate  # RL Zoo's one optimizer: one learning rate
    assert cfg.rollout_steps * cfg.num_envs % cfg.num_minibatches == 0  # minibatches of equal size
    assert set(preset_env_overrides("ppo", env_id)) <= set(Config.__dataclass_fields__)
