"""Gaussian policies: shapes, densities against torch.distributions, action bounding, tutorial init."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Normal

from mjreinforce.algo.normalization import RunningNormalizer
from mjreinforce.algo.policy import MLPPolicy, TutorialPolicy, ValueNetwork, make_policy
from mjreinforce.config import Config
from mjreinforce.errors import UserError
from mjreinforce.trained.loading import TrainedPolicy

OBS_DIM, ACT_DIM = 5, 3
LOW = np.array([-3.0, -1.0, 0.0])
HIGH = np.array([3.0, 2.0, 0.5])


def _obs(batch: int = 7, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, OBS_DIM, generator=torch.Generator().manual_seed(seed))


def _mlp(**kwargs: object) -> MLPPolicy:
    torch.manual_seed(0)
    return MLPPolicy(OBS_DIM, ACT_DIM, LOW, HIGH, Config(**kwargs))  # type: ignore[arg-type]


def _tutorial(obs_dim: int = OBS_DIM, act_dim: int = ACT_DIM) -> TutorialPolicy:
    torch.manual_seed(0)
    return TutorialPolicy(obs_dim, act_dim, LOW[:act_dim], HIGH[:act_dim])


POLICIES = {
    "tutorial": _tutorial,
    "mlp": _mlp,
    "mlp_state_std": lambda: _mlp(state_dependent_std=True),
    "mlp_tanh": lambda: _mlp(action_bound="tanh", activation="relu", hidden_sizes=(8,)),
}


@pytest.mark.parametrize("name", POLICIES)
def test_shapes_and_positive_std(name: str) -> None:
    policy = POLICIES[name]()
    obs = _obs(7) * 50  # large inputs too: std must stay > 0
    mean, std = policy.mean_std(obs)
    assert mean.shape == std.shape == (7, ACT_DIM)
    assert torch.all(std > 0) and torch.all(torch.isfinite(std))
    raw = policy.sample(obs)
    assert raw.shape == (7, ACT_DIM)
    log_probs, entropy = policy.log_prob(obs, raw)
    assert log_probs.shape == entropy.shape == (7,)
    assert policy.env_action(raw).shape == (7, ACT_DIM)
    assert policy.deterministic_action(obs).shape == (7, ACT_DIM)


@pytest.mark.parametrize("name", ["mlp", "mlp_state_std", "mlp_tanh"])
def test_mlp_log_prob_is_the_normal_density_summed_over_action_dims(name: str) -> None:
    policy = POLICIES[name]()
    obs = _obs()
    with torch.no_grad():
        mean, std = policy.mean_std(obs)
        raw = mean + std * torch.randn(mean.shape, generator=torch.Generator().manual_seed(3))
        log_probs, entropy = policy.log_prob(obs, raw)
    reference = Normal(mean, std)
    torch.testing.assert_close(log_probs, reference.log_prob(raw).sum(-1))
    torch.testing.assert_close(entropy, reference.entropy().sum(-1))


def test_tutorial_log_prob_is_the_normal_density_averaged_over_action_dims() -> None:
    policy = _tutorial()
    obs = _obs()
    with torch.no_grad():
        mean, std = policy.mean_std(obs)
        raw = mean + 0.5 * std
        log_probs, _ = policy.log_prob(obs, raw)
    torch.testing.assert_close(log_probs, Normal(mean, std).log_prob(raw).mean(-1))
    # the tutorial's mean over dims is not the joint density for act_dim > 1
    assert not torch.allclose(log_probs, Normal(mean, std).log_prob(raw).sum(-1))


def test_tutorial_mean_and_std_are_computed_as_in_the_tutorial() -> None:
    policy = _tutorial()
    obs = _obs()
    with torch.no_grad():
        h = torch.tanh(policy.shared_net[2](torch.tanh(policy.shared_net[0](obs))))
        expected_mean = policy.policy_mean_net(h) + 1e-6
        expected_std = torch.log(1 + torch.exp(policy.policy_stddev_net(h))) + 1e-6
        mean, std = policy.mean_std(obs)
    torch.testing.assert_close(mean, expected_mean, rtol=0, atol=0)
    torch.testing.assert_close(std, expected_std, rtol=0, atol=0)


def test_log_prob_keeps_the_graph_for_the_update() -> None:
    policy = _mlp()
    obs = _obs()
    with torch.no_grad():
        raw = policy.sample(obs)
    log_probs, _ = policy.log_prob(obs, raw)
    assert log_probs.requires_grad
    log_probs.sum().backward()
    assert policy.log_std.grad is not None and torch.all(policy.log_std.grad != 0)


@pytest.mark.parametrize("seed", [1, 2, 8])
def test_tutorial_initial_weights_match_the_tutorials_layer_order(seed: int) -> None:
    obs_dim, act_dim = 4, 1
    # The tutorial's Policy_Network.__init__, written out: shared 4->16, 16->32, then mean, then std head.
    torch.manual_seed(seed)
    shared1, shared2 = nn.Linear(obs_dim, 16), nn.Linear(16, 32)
    mean_head, std_head = nn.Linear(32, act_dim), nn.Linear(32, act_dim)
    expected = [
        shared1.weight,
        shared1.bias,
        shared2.weight,
        shared2.bias,
        mean_head.weight,
        mean_head.bias,
        std_head.weight,
        std_head.bias,
    ]

    torch.manual_seed(seed)
    policy = TutorialPolicy(obs_dim, act_dim, np.array([-3.0]), np.array([3.0]))
    got = [
        policy.shared_net[0].weight,
        policy.shared_net[0].bias,
        policy.shared_net[2].weight,
        policy.shared_net[2].bias,
        policy.policy_mean_net.weight,
        policy.policy_mean_net.bias,
        policy.policy_stddev_net.weight,
        policy.policy_stddev_net.bias,
    ]
    assert len(list(policy.parameters())) == len(expected)
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, rtol=0, atol=0)
    # ... and the RNG is left where the tutorial leaves it, so the first sampled action agrees too
    assert torch.rand(1).item() == pytest.approx(_rand_after_tutorial_init(seed, obs_dim, act_dim), abs=0)


def _rand_after_tutorial_init(seed: int, obs_dim: int, act_dim: int) -> float:
    torch.manual_seed(seed)
    for fan_in, fan_out in ((obs_dim, 16), (16, 32), (32, act_dim), (32, act_dim)):
        nn.Linear(fan_in, fan_out)
    return torch.rand(1).item()


def test_tanh_bound_keeps_actions_inside_the_box_and_maps_zero_to_the_centre() -> None:
    policy = POLICIES["mlp_tanh"]()
    low, high = torch.tensor(LOW, dtype=torch.float32), torch.tensor(HIGH, dtype=torch.float32)
    raw = torch.tensor([[-1e6, 1e6, 40.0], [5.0, -5.0, -40.0], [0.3, -0.2, 0.1]])
    a = policy.env_action(raw)
    assert torch.all(a >= low) and torch.all(a <= high)
    torch.testing.assert_close(policy.env_action(torch.zeros(1, ACT_DIM)), ((low + high) / 2)[None])
    # tanh-rescale, written out: low + (tanh(u) + 1) / 2 * (high - low)
    torch.testing.assert_close(a[2], low + (torch.tanh(raw[2]) + 1) / 2 * (high - low))
    # strictly monotone in u (so it does not collapse distinct raw actions inside the box)
    assert a[2, 0] > policy.env_action(torch.tensor([[0.2, -0.2, 0.1]]))[0, 0]


def test_clip_bound_clips_to_the_box_and_leaves_inside_values_alone() -> None:
    policy = _mlp(action_bound="clip")
    raw = torch.tensor([[-10.0, 10.0, 0.25], [2.5, -0.5, -1.0]])
    expected = torch.tensor([[-3.0, 2.0, 0.25], [2.5, -0.5, 0.0]])
    torch.testing.assert_close(policy.env_action(raw), expected, rtol=0, atol=0)


def test_deterministic_action_is_the_bounded_mean() -> None:
    policy = _mlp(action_bound="clip")
    obs = _obs()
    with torch.no_grad():
        mean, _ = policy.mean_std(obs)
        torch.testing.assert_close(policy.deterministic_action(obs), policy.env_action(mean))


def test_state_independent_std_is_one_free_parameter() -> None:
    policy = _mlp(init_log_std=-0.5)
    assert isinstance(policy.log_std, nn.Parameter) and policy.log_std.shape == (ACT_DIM,)
    _, std = policy.mean_std(_obs(9) * 10)
    torch.testing.assert_close(std, torch.full((9, ACT_DIM), float(np.exp(-0.5))))


def test_state_dependent_std_starts_at_init_log_std_and_then_depends_on_the_state() -> None:
    policy = _mlp(state_dependent_std=True, init_log_std=-1.0)
    assert not any(name == "log_std" for name, _ in policy.named_parameters())
    obs = _obs(9)
    _, std0 = policy.mean_std(obs)
    # zero-initialised head: every state starts at exp(init_log_std)
    torch.testing.assert_close(std0, torch.full((9, ACT_DIM), float(np.exp(-1.0))))
    with torch.no_grad():
        policy.log_std_head.weight.normal_(generator=torch.Generator().manual_seed(0))
        _, std1 = policy.mean_std(obs)
    assert std1[:, 0].unique().numel() == 9  # a different std for each state
    # the state-independent policy ignores the state whatever its mean weights are
    free = _mlp()
    _, std_free = free.mean_std(obs)
    assert std_free[:, 0].unique().numel() == 1


def test_std_is_clamped_in_log_space() -> None:
    policy = _mlp()
    with torch.no_grad():
        policy.log_std.fill_(50.0)
        _, big = policy.mean_std(_obs())
        policy.log_std.fill_(-50.0)
        _, small = policy.mean_std(_obs())
    torch.testing.assert_close(big, torch.full_like(big, float(np.exp(2.0))))
    torch.testing.assert_close(small, torch.full_like(small, float(np.exp(-20.0))))


def test_value_network_output_shape() -> None:
    v = ValueNetwork(OBS_DIM, (16, 16), "tanh")
    assert v(_obs(6)).shape == (6,)


def test_make_policy_picks_the_class_and_rejects_tanh_with_infinite_bounds() -> None:
    assert isinstance(make_policy(Config(policy="tutorial"), 4, 1, LOW[:1], HIGH[:1]), TutorialPolicy)
    assert isinstance(make_policy(Config(), 4, 1, LOW[:1], HIGH[:1]), MLPPolicy)
    with pytest.raises(UserError, match="finite"):
        make_policy(Config(action_bound="tanh"), 4, 1, np.array([-np.inf]), np.array([np.inf]))


@pytest.mark.parametrize("activation", ["tanh", "relu", "elu"])
@pytest.mark.parametrize("state_dependent_std", [False, True])
def test_mlp_mean_is_the_networks_output(activation: str, state_dependent_std: bool) -> None:
    policy = _mlp(activation=activation, state_dependent_std=state_dependent_std, hidden_sizes=(8, 6))
    obs = _obs()
    with torch.no_grad():
        mean, _ = policy.mean_std(obs)
        expected = (
            policy.mean_head(policy.trunk(obs)) if state_dependent_std else policy.mean_net(obs)
        )  # nn.Module calls, layer by layer
    torch.testing.assert_close(mean, expected, rtol=0, atol=0)
    # obs -> 8 -> 6 -> mean (three Linear layers), plus the log-std head when the std depends on the state
    n_linear = sum(isinstance(m, nn.Linear) for m in policy.modules())
    assert n_linear == (4 if state_dependent_std else 3)


def _linear_layers(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


@pytest.mark.parametrize("state_dependent_std", [False, True])
def test_orthogonal_init_gains_and_a_centred_initial_policy(state_dependent_std: bool) -> None:
    policy = _mlp(orthogonal_init=True, state_dependent_std=state_dependent_std, hidden_sizes=(32, 16))
    layers = [m for m in _linear_layers(policy) if m is not getattr(policy, "log_std_head", None)]
    assert [tuple(m.weight.shape) for m in layers] == [(32, OBS_DIM), (16, 32), (ACT_DIM, 16)]
    for layer, gain in zip(layers, (np.sqrt(2), np.sqrt(2), 0.01), strict=True):
        w = layer.weight.detach().double()
        small = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w  # orthonormal rows or columns, times the gain
        torch.testing.assert_close(small, gain**2 * torch.eye(small.shape[0], dtype=torch.float64), atol=1e-5, rtol=0)
        assert not layer.bias.any()
    mean, std = policy.mean_std(_obs(64))
    assert mean.abs().max() < 0.1  # near the centre of the raw action space; the default init is not
    assert _mlp(state_dependent_std=state_dependent_std).mean_std(_obs(64))[0].abs().max() > 0.1
    torch.testing.assert_close(std, torch.ones_like(std))  # init_log_std = 0 untouched


def test_orthogonal_init_of_the_critic_and_default_init_unchanged() -> None:
    torch.manual_seed(0)
    critic = ValueNetwork(OBS_DIM, (16, 16), "tanh", orthogonal=True)
    out = _linear_layers(critic)[-1].weight.detach().double()
    torch.testing.assert_close(out @ out.T, torch.ones(1, 1, dtype=torch.float64), atol=1e-5, rtol=0)  # gain 1
    torch.manual_seed(0)
    default = ValueNetwork(OBS_DIM, (16, 16), "tanh")
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Linear(OBS_DIM, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1))
    for a, b in zip(default.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # orthogonal_init = False: torch's init, same draws


# --------------------------------------------------------------------------
# TrainedPolicy.act: the observation is checked (shape, finite) unless check=False
# --------------------------------------------------------------------------
def _trained(obs_dim: int = 4) -> TrainedPolicy:
    torch.manual_seed(0)
    cfg = Config()
    policy = make_policy(cfg, obs_dim, 1, np.array([-3.0]), np.array([3.0]))
    return TrainedPolicy(cfg, policy, RunningNormalizer(obs_dim, enabled=False), 1, Path("ckpt.safetensors"))


@pytest.mark.parametrize("shape", [(3,), (2, 3), (5,), (1, 1, 4), ()])
def test_act_names_the_expected_observation_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError) as exc:
        _trained().act(np.zeros(shape))
    message = str(exc.value)
    assert f"obs has shape {shape}" in message and "expects (4,) for one observation or (B, 4)" in message
    assert "\n" not in message


def test_act_refuses_non_finite_observations_naming_the_entries() -> None:
    trained = _trained()
    with pytest.raises(ValueError, match=r"obs is not finite: obs\[1\] = nan, obs\[3\] = inf \(pass check=False"):
        trained.act(np.array([0.0, np.nan, 0.0, np.inf]))
    batch = np.zeros((8, 4))
    batch[2, 1], batch[5:, :] = -np.inf, np.nan
    with pytest.raises(ValueError, match=r"obs\[2, 1\] = -inf, obs\[5, 0\] = nan.* and 8 more") as exc:
        trained.act(batch, deterministic=False)
    assert "\n" not in str(exc.value)


def test_act_with_check_false_skips_the_checks_and_gives_the_same_actions() -> None:
    trained = _trained()
    obs = np.random.default_rng(0).normal(size=(16, 4))
    np.testing.assert_array_equal(trained.act(obs, check=False), trained.act(obs))
    np.testing.assert_array_equal(trained.act(obs[0], check=False), trained.act(obs[0]))
    assert trained.act(obs[0]).shape == (1,) and trained.act(list(obs[0])).shape == (1,)  # a list is an array
    assert np.isnan(trained.act(np.full(4, np.nan), check=False)).all()  # what the check exists to stop
