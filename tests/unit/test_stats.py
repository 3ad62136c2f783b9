"""Statistics on hand-made arrays, checked against hand computations."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mjreinforce.analysis import stats
from mjreinforce.analysis.suite_report import SuiteRun, eval_curve, suite_row
from mjreinforce.runs.reading import RunData


# --- IQM -------------------------------------------------------------------
def test_iqm_of_one_to_eight_drops_two_from_each_end() -> None:
    # n = 8, floor(8/4) = 2 cut from each end: mean(3, 4, 5, 6) = 4.5
    assert stats.iqm([8, 1, 7, 2, 6, 3, 5, 4]) == pytest.approx(4.5)


def test_iqm_of_five_drops_one_from_each_end() -> None:
    # n = 5, floor(5/4) = 1: mean(2, 3, 4) = 3, the outlier 100 is ignored
    assert stats.iqm([100, 2, 1, 4, 3]) == pytest.approx(3.0)


def test_iqm_ignores_outliers_on_both_sides() -> None:
    # sorted [-100, 1, 2, 3, 4, 5, 6, 10]: mean(2, 3, 4, 5) = 3.5
    assert stats.iqm([10, 1, 2, 3, 4, 5, 6, -100]) == pytest.approx(3.5)


def test_iqm_of_fewer_than_four_is_the_plain_mean() -> None:
    assert stats.iqm([1.0, 2.0, 6.0]) == pytest.approx(3.0)


def test_iqm_of_nothing_is_nan() -> None:
    assert math.isnan(stats.iqm([]))


# --- bootstrap --------------------------------------------------------------
def test_bootstrap_ci_contains_point_estimate_and_is_ordered() -> None:
    x = np.random.default_rng(0).normal(5.0, 2.0, size=20)
    low, high = stats.bootstrap_ci(x, np.mean, rng=np.random.default_rng(1))
    assert low < float(np.mean(x)) < high


def test_bootstrap_ci_of_two_values_spans_them() -> None:
    # Resample means of [1, 2] are 1, 1.5, 2 with probabilities 1/4, 1/2, 1/4,
    # so the 2.5% and 97.5% quantiles of 2000 resamples are exactly 1 and 2.
    low, high = stats.bootstrap_ci([1.0, 2.0], np.mean, rng=np.random.default_rng(0))
    assert (low, high) == (1.0, 2.0)


def test_bootstrap_ci_shrinks_with_more_data() -> None:
    data = np.random.default_rng(0).normal(0.0, 1.0, size=1000)
    small = stats.bootstrap_ci(data[:10], stats.iqm, rng=np.random.default_rng(1))
    large = stats.bootstrap_ci(data, stats.iqm, rng=np.random.default_rng(1))
    assert large[1] - large[0] < 0.5 * (small[1] - small[0])


def test_bootstrap_ci_same_seed_same_interval() -> None:
    x = np.arange(10.0) ** 2
    first = stats.bootstrap_ci(x, stats.iqm, rng=np.random.default_rng(42))
    second = stats.bootstrap_ci(x, stats.iqm, rng=np.random.default_rng(42))
    assert first == second


def test_bootstrap_ci_of_one_value_has_zero_width() -> None:
    assert stats.bootstrap_ci([3.5], np.mean, rng=np.random.default_rng(0)) == (3.5, 3.5)


def test_bootstrap_ci_rejects_confidence_outside_unit_interval() -> None:
    with pytest.raises(ValueError, match="confidence"):
        stats.bootstrap_ci([1.0, 2.0], np.mean, confidence=1.5, rng=np.random.default_rng(0))


# --- probability of improvement --------------------------------------------
def test_probability_of_improvement_by_hand() -> None:
    # pairs (x, y): (3,2) win, (3,1) win, (1,2) loss, (1,1) tie -> (2 + 0.5) / 4
    assert stats.probability_of_improvement([3.0, 1.0], [2.0, 1.0]) == pytest.approx(0.625)


def test_probability_of_improvement_matches_pair_enumeration() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 5, size=7), rng.integers(0, 5, size=4)
    score = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(x, y))
    assert stats.probability_of_improvement(x, y) == pytest.approx(score / (7 * 4))


def test_probability_of_improvement_is_complementary() -> None:
    x, y = [1.0, 4.0, 4.0, 9.0], [4.0, 2.0, 8.0]
    assert stats.probability_of_improvement(x, y) + stats.probability_of_improvement(y, x) == pytest.approx(1.0)


def test_probability_of_improvement_ci_for_dominating_run_is_one() -> None:
    low, high = stats.probability_of_improvement_ci([10, 11, 12], [1, 2, 3], rng=np.random.default_rng(0))
    assert (low, high) == (1.0, 1.0)


def test_probability_of_improvement_ci_is_within_unit_interval_and_covers_estimate() -> None:
    x, y = [1.0, 4.0, 4.0, 9.0, 3.0], [4.0, 2.0, 8.0, 0.0]
    low, high = stats.probability_of_improvement_ci(x, y, rng=np.random.default_rng(0))
    assert 0.0 <= low <= stats.probability_of_improvement(x, y) <= high <= 1.0
    assert low < high


# --- moving mean, targets, final window -------------------------------------
def test_moving_mean_uses_partial_windows_at_the_start() -> None:
    np.testing.assert_allclose(stats.moving_mean([1.0, 2.0, 3.0, 4.0], 2), [1.0, 1.5, 2.5, 3.5])


def test_steps_to_target_reached() -> None:
    env_steps = [10, 20, 30, 40, 50]
    returns = [0.0, 0.0, 10.0, 10.0, 10.0]
    # full 2-episode windows end at episodes 2..5 with means 0, 5, 10, 10: first >= 10 at env step 40
    assert stats.steps_to_target(env_steps, returns, target=10.0, window=2) == 40
    assert stats.seconds_to_target([0.5, 1.0, 1.5, 2.0, 2.5], returns, target=10.0, window=2) == 2.0


def test_steps_to_target_never_reached() -> None:
    assert stats.steps_to_target([10, 20, 30], [1.0, 2.0, 3.0], target=3.1, window=1) is None
    assert stats.seconds_to_target([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], target=3.1, window=1) is None


def test_steps_to_target_needs_a_full_window() -> None:
    # The first episode alone is 100, but no full 2-episode window has mean >= 60.
    assert stats.steps_to_target([5, 10, 15], [100.0, 0.0, 0.0], target=60.0, window=2) is None
    # Fewer episodes than the window: never reached, however high the returns.
    assert stats.steps_to_target([5, 10], [100.0, 100.0], target=1.0, window=3) is None


def test_final_window_mean() -> None:
    assert stats.final_window_mean([1.0, 2.0, 3.0, 4.0], 2) == pytest.approx(3.5)
    assert stats.final_window_mean([1.0, 2.0, 3.0, 4.0], 10) == pytest.approx(2.5)
    assert math.isnan(stats.final_window_mean([], 5))


# --- curves on a grid ------------------------------------------------------
def test_curve_on_grid_takes_most_recent_episode_and_nan_before_first() -> None:
    out = stats.curve_on_grid([10, 20, 30], [1.0, 2.0, 3.0], [5, 10, 15, 29.9, 30, 35])
    np.testing.assert_array_equal(out, [np.nan, 1.0, 1.0, 2.0, 3.0, 3.0])


def test_curve_on_grid_with_tied_x_takes_the_later_episode() -> None:
    # two episodes ending at the same env step (vectorized envs): the later row wins
    np.testing.assert_array_equal(stats.curve_on_grid([10, 10], [1.0, 2.0], [10]), [2.0])


def test_curve_on_grid_rejects_decreasing_x() -> None:
    with pytest.raises(ValueError, match="non-decreasing"):
        stats.curve_on_grid([10, 5], [1.0, 2.0], [7])


# --------------------------------------------------------------------------
# the suite figure's curve is the table's score at every evaluation round
# --------------------------------------------------------------------------


def _suite_cell(evals: pd.DataFrame, finished: list[int]) -> SuiteRun:
    last = evals.sort_values("env_steps").groupby("seed")["eval_mean_return"].last()
    summaries = {
        s: {"final_eval_mean_return": float(last[s]), "env_steps": 300, "eval_env_steps": 10} for s in finished
    }
    run = RunData(Path("cell"), "cell", "Hopper-v5", "ppo", pd.DataFrame({"seed": []}), evals, {})
    return SuiteRun("Hopper-v5", "ppo", run, summaries)


def test_the_eval_curve_ends_at_the_tables_final_iqm_and_stops_where_a_seed_stops() -> None:
    rng = np.random.default_rng(1)
    evals = pd.DataFrame(
        [
            {"seed": s, "env_steps": 100 * (k + 1) + s, "eval_mean_return": float(rng.normal(100 * k, 30))}
            for s in (1, 2, 3, 4, 5)
            for k in range(3)
        ]
    )
    cell = _suite_cell(evals, [1, 2, 3, 4, 5])
    curve = eval_curve(evals, [1, 2, 3, 4, 5])
    row = suite_row(cell, np.random.default_rng(0))
    assert len(curve) == 3
    assert curve["iqm"].iloc[-1] == row["final_iqm"]
    assert (curve["ci_low"].iloc[-1], curve["ci_high"].iloc[-1]) == (row["final_ci_low"], row["final_ci_high"])
    assert curve["iqm"].max() == row["best_iqm"]
    np.testing.assert_allclose(curve["env_steps"], [103.0, 203.0, 303.0])
    # a seed with only two rounds: the curve stops at round 2 rather than mixing seed sets
    shorter = evals[~((evals["seed"] == 5) & (evals["env_steps"] > 300))]
    assert len(eval_curve(shorter, [1, 2, 3, 4, 5])) == 2
