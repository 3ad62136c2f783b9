"""Aggregate statistics over episodes, seeds and runs: pure numpy, no plotting.

The conventions follow Agarwal et al. (2021), "Deep RL at the edge of the
statistical precipice" (the ``rliable`` library): summarize a run by the
interquartile mean (IQM) of its per-seed scores, report percentile-bootstrap
confidence intervals over seeds, and compare two runs by the probability of
improvement. Every function that draws random numbers takes a seeded
``np.random.Generator``, so identical inputs give identical intervals.

Arrays are 1-D unless stated; empty inputs give NaN (or None), never an error.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

Statistic = Callable[[NDArray[np.float64]], float]


def _as_1d(x: ArrayLike) -> NDArray[np.float64]:
    return np.asarray(x, dtype=np.float64).reshape(-1)


def iqm(x: ArrayLike) -> float:
    """Interquartile mean: the 25%-trimmed mean (``scipy.stats.trim_mean(x, 0.25)`` semantics).

    With ``n = len(x)`` and ``k = floor(0.25 * n)``: sort ``x`` and average
    ``sorted[k : n - k]``. So for ``n < 4`` nothing is cut (plain mean), for
    ``n = 5`` the smallest and largest values are dropped, and IQM([1..8]) =
    mean(3, 4, 5, 6) = 4.5. Empty input gives NaN.
    """
    values = np.sort(_as_1d(x))
    n = values.size
    if n == 0:
        return float("nan")
    k = int(0.25 * n)  # critical: floor, exactly as scipy's trim_mean
    return float(values[k : n - k].mean())


def bootstrap_ci(
    x: ArrayLike,
    statistic: Statistic,
    n_boot: int = 2000,
    confidence: float = 0.95,
    *,
    rng: np.random.Generator,
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of ``statistic(x)``.

    Draw ``n_boot`` resamples of ``x`` (same size, with replacement; ``x`` holds
    one value per seed or run), evaluate ``statistic`` on each, and return the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of those
    values. One value gives a zero-width interval; no values give (NaN, NaN).
    """
    values = _as_1d(x)
    if values.size == 0:
        return (float("nan"), float("nan"))
    indices = rng.integers(0, values.size, size=(n_boot, values.size))
    boot = np.array([statistic(values[row]) for row in indices])
    return _percentile_interval(boot, confidence)


def _percentile_interval(boot: NDArray[np.float64], confidence: float) -> tuple[float, float]:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    alpha = 1.0 - confidence
    low, high = np.quantile(boot, [alpha / 2.0, 1.0 - alpha / 2.0])
    return (float(low), float(high))


def probability_of_improvement(x: ArrayLike, y: ArrayLike) -> float:
    """P(X > Y) + 0.5 P(X = Y), estimated over all ``len(x) * len(y)`` pairs.

    The Mann-Whitney U statistic divided by ``n_x * n_y``:
    ``mean_{i,j} [ 1(x_i > y_j) + 0.5 * 1(x_i = y_j) ]``. 0.5 means no evidence
    either way, 1 means every seed of X beats every seed of Y. NaN if either
    input is empty.
    """
    a, b = _as_1d(x), _as_1d(y)
    if a.size == 0 or b.size == 0:
        return float("nan")
    greater = a[:, None] > b[None, :]
    equal = a[:, None] == b[None, :]
    return float(greater.mean() + 0.5 * equal.mean())


def probability_of_improvement_ci(
    x: ArrayLike,
    y: ArrayLike,
    n_boot: int = 2000,
    confidence: float = 0.95,
    *,
    rng: np.random.Generator,
) -> tuple[float, float]:
    """Percentile-bootstrap CI of :func:`probability_of_improvement`.

    ``x`` and ``y`` are resampled independently (a stratified bootstrap: each
    run keeps its own number of seeds), as rliable does.
    """
    a, b = _as_1d(x), _as_1d(y)
    if a.size == 0 or b.size == 0:
        return (float("nan"), float("nan"))
    ia = rng.integers(0, a.size, size=(n_boot, a.size))
    ib = rng.integers(0, b.size, size=(n_boot, b.size))
    boot = np.array([probability_of_improvement(a[i], b[j]) for i, j in zip(ia, ib, strict=True)])
    return _percentile_interval(boot, confidence)


def moving_mean(returns: ArrayLike, window: int) -> NDArray[np.float64]:
    """Trailing mean over the last ``window`` values; shape ``(n,)`` like ``returns``.

    ``out[i] = mean(returns[max(0, i - window + 1) : i + 1])``: the first
    ``window - 1`` entries average the (fewer) episodes seen so far, so a curve
    starts at episode 1 instead of at episode ``window``.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    values = _as_1d(returns)
    csum = np.concatenate([[0.0], np.cumsum(values)])
    ends = np.arange(1, values.size + 1)
    starts = np.maximum(0, ends - window)
    return (csum[ends] - csum[starts]) / (ends - starts)


def _first_reaching(x: ArrayLike, returns: ArrayLike, target: float, window: int) -> float | None:
    """First ``x[i]`` with a *full* window whose mean is >= ``target``; None if never."""
    xs, values = _as_1d(x), _as_1d(returns)
    if xs.size != values.size:
        raise ValueError(f"x and returns differ in length: {xs.size} != {values.size}")
    if values.size < window:
        return None
    means = moving_mean(values, window)
    reached = np.flatnonzero(means[window - 1 :] >= target)
    if reached.size == 0:
        return None
    return float(xs[window - 1 + reached[0]])


def steps_to_target(env_steps: ArrayLike, returns: ArrayLike, target: float, window: int) -> int | None:
    """Env steps at the end of the first episode whose trailing ``window``-episode mean return >= target.

    Episodes are in the order they finished; ``env_steps[i]`` is the cumulative
    step count at the end of episode ``i``. Only full windows count (episode
    ``i >= window - 1``), so one lucky early episode cannot reach the target;
    a seed with fewer than ``window`` episodes never reaches it. Returns None
    when the target is never reached.
    """
    found = _first_reaching(env_steps, returns, target, window)
    return None if found is None else int(found)


def seconds_to_target(wall_seconds: ArrayLike, returns: ArrayLike, target: float, window: int) -> float | None:
    """Like :func:`steps_to_target`, but returns the wall-clock seconds of that episode."""
    return _first_reaching(wall_seconds, returns, target, window)


def final_window_mean(returns: ArrayLike, window: int) -> float:
    """Mean of the last ``min(window, n)`` returns; NaN when there are none."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    values = _as_1d(returns)
    if values.size == 0:
        return float("nan")
    return float(values[-window:].mean())


def curve_on_grid(x: ArrayLike, y: ArrayLike, grid: ArrayLike) -> NDArray[np.float64]:
    """Step interpolation of ``y(x)`` onto ``grid``: shape ``(len(grid),)``.

    ``out[g] = y[i]`` for the last ``i`` with ``x[i] <= grid[g]`` (the most
    recent episode at or before the grid point), NaN before ``x[0]``. ``x`` must
    be non-decreasing (cumulative env steps or seconds). Values after the last
    episode repeat ``y[-1]``; mask them if the curve should stop there.
    """
    xs, ys, g = _as_1d(x), _as_1d(y), _as_1d(grid)
    if xs.size != ys.size:
        raise ValueError(f"x and y differ in length: {xs.size} != {ys.size}")
    if xs.size and np.any(np.diff(xs) < 0):
        raise ValueError("x must be non-decreasing")
    idx = np.searchsorted(xs, g, side="right") - 1
    out = np.full(g.shape, np.nan)
    valid = idx >= 0
    out[valid] = ys[idx[valid]]
    return out


__all__ = [
    "bootstrap_ci",
    "curve_on_grid",
    "final_window_mean",
    "iqm",
    "moving_mean",
    "probability_of_improvement",
    "probability_of_improvement_ci",
    "seconds_to_target",
    "steps_to_target",
]
