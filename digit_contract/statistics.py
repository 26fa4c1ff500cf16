"""How sure a comparison is: intervals, paired tests and corrections, in the standard library only.

Training (the report) and serving (`GET /models/compare`) both use these, so the service needs
neither SciPy nor the dataset: each test compares per-image correctness that the cards record.

- `wilson_interval`: a 95% confidence interval for an accuracy (Wilson score interval, which
  keeps its coverage near 0 and 1, where a model with 50 errors in 10,000 sits).
- `mcnemar_exact`: two models scored on the same images differ only where one is right and the
  other wrong; under "no difference" those discordant images split 50/50, so the two-sided
  p-value is a binomial tail (the exact McNemar test).
- `holm_adjust`: Holm's step-down correction, so a family of comparisons keeps a 5% chance in
  total of calling any non-difference significant.
- `permutation_test`: exact two-sided test on the difference of two small samples' means (the
  seed replicates), by enumerating every relabelling.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from fractions import Fraction
from statistics import NormalDist, fmean, stdev

ALPHA = 0.05
"""Significance level of every test this project reports (after Holm's correction)."""


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion `successes / n`.

    Raises:
        ValueError: n < 1, or successes outside 0..n.
    """
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got {successes}/{n}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # At p = 0 (or 1) one end is exactly 0 (or 1); rounding would leave it a hair away.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True)
class McNemarResult:
    only_a: int
    """Images model A got right and model B wrong."""
    only_b: int
    """Images model B got right and model A wrong."""
    p_value: float


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the two discordant counts.

    With n = only_a + only_b discordant images and k = min(only_a, only_b), the p-value is
    min(1, 2 * P[Binomial(n, 1/2) <= k]); exact integer arithmetic, so no underflow at large n.
    """
    if only_a < 0 or only_b < 0:
        raise ValueError(f"discordant counts must be >= 0, got {only_a} and {only_b}")
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = Fraction(sum(math.comb(n, i) for i in range(k + 1)), 2**n)
    return float(min(Fraction(1), 2 * tail))


def compare_paired(errors_a: Collection[int], errors_b: Collection[int]) -> McNemarResult:
    """McNemar's test of two models from the indices of the images each got wrong (same test set)."""
    set_a, set_b = set(errors_a), set(errors_b)
    only_a = len(set_b - set_a)  # B wrong, A right
    only_b = len(set_a - set_b)
    return McNemarResult(only_a=only_a, only_b=only_b, p_value=mcnemar_exact(only_a, only_b))


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given: reject where adjusted p < alpha.

    The i-th smallest of m p-values is multiplied by (m - i + 1), capped at 1, and made
    non-decreasing along that order.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


@dataclass(frozen=True)
class Spread:
    """Mean, sample standard deviation and range of one variant's runs."""

    n: int
    mean: float
    std: float | None
    """None for a single run: one run has no spread."""
    low: float
    high: float


def spread_of(values: Sequence[float]) -> Spread:
    if not values:
        raise ValueError("no values")
    return Spread(
        n=len(values),
        mean=fmean(values),
        std=stdev(values) if len(values) > 1 else None,
        low=min(values),
        high=max(values),
    )


MAX_RELABELLINGS = 1_000_000


def permutation_test(a: Sequence[float], b: Sequence[float]) -> float:
    """Exact two-sided p-value for "a and b come from one distribution", on the difference of means.

    Every way of splitting the pooled values into groups of len(a) and len(b) is equally likely
    under the null; p is the share of splits whose |mean difference| is at least the observed one.
    With 4 runs against 4 the smallest possible p is 2/70 = 0.029, with 2 against 2 it is 1/3: a
    few replicates can only show a large, consistent difference, and this says so.
    """
    if not a or not b:
        raise ValueError("both groups need at least one value")
    pooled = list(a) + list(b)
    size = len(a)
    if math.comb(len(pooled), size) > MAX_RELABELLINGS:
        raise ValueError(f"{len(a)} + {len(b)} values are too many to enumerate")
    total = sum(pooled)
    observed = abs(fmean(a) - fmean(b))
    # Tolerance: a relabelling equal to the observed split must count despite float rounding.
    tolerance = 1e-12 * max(1.0, abs(total))
    extreme = count = 0
    for group in itertools.combinations(pooled, size):
        first = sum(group)
        difference = abs(first / size - (total - first) / (len(pooled) - size))
        extreme += difference >= observed - tolerance
        count += 1
    return extreme / count
