"""Data-quality checks between pipeline steps. Each returns a short description of what it saw
and raises DataQualityError — a one-line reason an operator can act on — when a threshold
is breached."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from fraudwatch.errors import UserError


class DataQualityError(UserError):
    """A check between steps failed; the message names the data, the value and the limit."""


def check_row_count(what: str, rows: int, minimum: int) -> str:
    if rows < minimum:
        raise DataQualityError(
            f"{what}: {rows:,} rows, fewer than the minimum {minimum:,}; check that the day's "
            "events were landed (or lower quality.min_transactions)"
        )
    return f"{what}: {rows:,} rows (minimum {minimum:,})"


def check_same_count(what: str, rows: int, expected: int) -> str:
    if rows != expected:
        raise DataQualityError(
            f"{what}: {rows:,} rows but {expected:,} went in; a step dropped or duplicated rows"
        )
    return f"{what}: {rows:,} rows, as many as went in"


def check_null_rates(what: str, null_counts: dict[str, int], rows: int, max_rate: float) -> str:
    """`null_counts` maps column → number of nulls among `rows` rows."""
    rates = {c: (n / rows if rows else 0.0) for c, n in null_counts.items()}
    bad = {c: r for c, r in rates.items() if r > max_rate}
    if bad:
        listed = ", ".join(f"{c} {r:.1%}" for c, r in sorted(bad.items()))
        raise DataQualityError(
            f"{what}: null rate above {max_rate:.1%} in {listed}; fix the source or raise "
            "quality.max_null_rate"
        )
    worst = max(rates.values(), default=0.0)
    return f"{what}: null rates at most {worst:.2%} (limit {max_rate:.1%})"


def check_in_range(what: str, values: np.ndarray, low: float, high: float) -> str:
    values = np.asarray(values, dtype=np.float64)
    outside = int(np.sum((values < low) | (values > high)))
    if outside:
        raise DataQualityError(f"{what}: {outside:,} values outside [{low}, {high}]")
    return f"{what}: all {len(values):,} values in [{low}, {high}]"


def population_stability_index(
    baseline: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray, bins: int = 10
) -> float:
    """PSI of two score samples over the baseline's decile bins (0 = same distribution;
    0.1–0.25 a moderate shift; above 0.25 a major one, by the usual credit-risk convention)."""
    base = np.asarray(baseline, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    base, cur = base[~np.isnan(base)], cur[~np.isnan(cur)]
    if len(base) == 0 or len(cur) == 0:
        raise DataQualityError("score shift: a score sample is empty; nothing to compare")
    edges = np.unique(np.quantile(base, np.linspace(0, 1, bins + 1)))
    edges[0], edges[-1] = -math.inf, math.inf
    b = np.histogram(base, edges)[0] / len(base)
    c = np.histogram(cur, edges)[0] / len(cur)
    eps = 1e-4  # an empty bin would make the logarithm infinite
    b, c = np.clip(b, eps, None), np.clip(c, eps, None)
    return float(np.sum((c - b) * np.log(c / b)))


def check_score_shift(
    what: str, baseline: np.ndarray | None, current: np.ndarray, max_psi: float
) -> str:
    if baseline is None:
        return f"{what}: no earlier scored day to compare with; shift not checked"
    psi = population_stability_index(baseline, current)
    if psi > max_psi:
        raise DataQualityError(
            f"{what}: score distribution shifted (PSI {psi:.3f} > {max_psi}) against the "
            "previous day; inspect the day's data and the promoted model before publishing"
        )
    return f"{what}: PSI {psi:.3f} against the previous day (limit {max_psi})"
