"""Data-quality checks between pipeline steps fail with a reason an operator can act on."""

from __future__ import annotations

import numpy as np
import pytest
from fraudwatch.pipelines import quality


def test_row_count_below_minimum_names_the_data_and_the_limit():
    assert "1,000 rows" in quality.check_row_count("raw transactions", 1000, 100)
    with pytest.raises(quality.DataQualityError, match=r"raw transactions: 5 rows, fewer .* 100"):
        quality.check_row_count("raw transactions", 5, 100)


def test_a_step_that_drops_or_duplicates_rows_fails():
    with pytest.raises(quality.DataQualityError, match="dropped or duplicated"):
        quality.check_same_count("scored transactions", 990, 1000)


def test_null_rate_above_limit_lists_the_offending_columns():
    quality.check_null_rates("tx", {"amount": 1, "ts": 0}, 1000, 0.01)
    with pytest.raises(quality.DataQualityError, match=r"amount 5\.0%") as err:
        quality.check_null_rates("tx", {"amount": 50, "ts": 0}, 1000, 0.01)
    assert "ts" not in str(err.value).split("in ", 1)[1]


def test_scores_outside_zero_one_fail():
    with pytest.raises(quality.DataQualityError, match="2 values outside"):
        quality.check_in_range("scores", np.array([0.1, 1.5, -0.2]), 0, 1)


def test_same_distribution_has_small_psi_and_a_shift_fails():
    rng = np.random.default_rng(0)
    yesterday, today = rng.uniform(size=20_000), rng.uniform(size=20_000)
    assert quality.population_stability_index(yesterday, today) < 0.01
    quality.check_score_shift("scores", yesterday, today, 0.25)
    shifted = rng.beta(5, 1, size=20_000)  # most scores pushed towards 1
    assert quality.population_stability_index(yesterday, shifted) > 0.25
    with pytest.raises(quality.DataQualityError, match=r"shifted \(PSI"):
        quality.check_score_shift("scores", yesterday, shifted, 0.25)


def test_first_day_has_no_baseline_and_says_so():
    assert "not checked" in quality.check_score_shift("scores", None, np.array([0.5]), 0.25)
