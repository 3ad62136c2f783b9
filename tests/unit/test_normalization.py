"""RunningNormalizer: merged statistics equal numpy's over all the data seen; state round trip."""

from __future__ import annotations

import numpy as np
import pytest

from mjreinforce.algo.normalization import RunningNormalizer


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
