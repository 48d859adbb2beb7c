"""Statistical checks of dropout masks drawn by a framework's own RNG.

Input: recovered masks as multiplier arrays (0 where dropped, the scale where kept), from a
mask oracle. Deterministic properties (values exactly 0 or the scale, fixed per sequence,
nothing dropped in eval mode, seed reproducibility) are checked exactly; random ones with
scipy.stats tests at a stated false-alarm probability:

- `rate_test`: exact two-sided binomial test of the drop count (scipy.stats.binomtest);
- `independence_test`: chi-square test of independence of paired keep/drop indicators
  (consecutive steps, two batch rows, two units, two gates; scipy.stats.chi2_contingency),
  which alarms when the pairs agree more (a shared mask) or less than independence allows.

Every alarm threshold is a *family* false-alarm probability ALPHA = 1e-6, split over the
checks of one family (one adapter path's measurement) by Holm's step-down procedure (`holm`).
`required_draws` gives the number of independent mask elements for which the rate test has
power >= 0.99 against a rate off by 0.01 (computed from the exact binomial distribution), and
`power_rate` the power of a given design; the suites draw at least that many.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 1e-6
POWER = 0.99
DELTA = 0.01

__all__ = ["ALPHA", "POWER", "DELTA", "Check", "holm", "rate_test", "independence_test", "required_draws",
           "power_rate", "value_deviation", "keep_indicator"]


@dataclass
class Check:
    """One check's outcome: a p-value for a random property (None for an exact one, whose
    `ok` is then decided already); `alarm` is set by `holm`."""

    name: str
    p_value: float | None
    detail: str
    ok: bool = True
    alarm: bool = False


def holm(checks, alpha=ALPHA):
    """Holm's step-down procedure over the checks with p-values (family-wise false-alarm
    probability <= alpha); exact checks alarm iff not ok. Returns the checks, alarms set."""
    exact = [c for c in checks if c.p_value is None]
    tested = sorted((c for c in checks if c.p_value is not None), key=lambda c: c.p_value)
    for c in exact:
        c.alarm = not c.ok
    m = len(tested)
    rejecting = True
    for i, c in enumerate(tested):
        rejecting = rejecting and c.p_value <= alpha / (m - i)
        c.alarm = rejecting
    return checks


def value_deviation(values, scale):
    """Largest distance of any element from {0, scale}."""
    v = np.asarray(values, np.float64)
    return float(np.max(np.minimum(np.abs(v), np.abs(v - scale)), initial=0.0))


def keep_indicator(values, scale):
    """1 where kept (closer to the scale than to 0), 0 where dropped."""
    v = np.asarray(values, np.float64)
    return (np.abs(v - scale) < np.abs(v)).astype(np.int8)


def rate_test(dropped, n, p, name="drop rate"):
    """Exact two-sided binomial test: `dropped` of `n` independent elements at drop rate p."""
    if n <= 0:
        raise ValueError("rate_test: no elements")
    if p in (0.0, 1.0):  # degenerate: exact
        ok = dropped == (n if p == 1.0 else 0)
        return Check(name, None, f"{dropped}/{n} dropped, configured {p}", ok=ok)
    pv = stats.binomtest(int(dropped), int(n), p).pvalue
    return Check(name, pv, f"{dropped}/{n} dropped = {dropped / n:.4f}, configured {p}; binomial p = {pv:.3g}")


def independence_test(a, b, name):
    """Chi-square test that paired 0/1 indicators a, b are independent (2x2 contingency). A
    table with an empty row or column (all kept or all dropped) cannot show dependence: p = 1."""
    a, b = np.asarray(a, np.int8).ravel(), np.asarray(b, np.int8).ravel()
    table = np.array([[np.sum((a == i) & (b == j)) for j in (0, 1)] for i in (0, 1)])
    if (table.sum(axis=0) == 0).any() or (table.sum(axis=1) == 0).any():
        return Check(name, 1.0, f"degenerate table {table.tolist()}")
    res = stats.chi2_contingency(table, correction=False)
    agree = (table[0, 0] + table[1, 1]) / table.sum()
    return Check(name, float(res.pvalue), f"{table.sum()} pairs agree {agree:.4f}; chi-square p = {res.pvalue:.3g}")


def _rejection_region(n, p, alpha):
    """(lo, hi): counts k <= lo or k >= hi reject H0 drop rate = p at two-sided level alpha
    (equal tails, from the exact binomial distribution)."""
    lo = int(stats.binom.ppf(alpha / 2, n, p)) - 1  # P(K <= lo) <= alpha/2
    while lo >= 0 and stats.binom.cdf(lo, n, p) > alpha / 2:
        lo -= 1
    hi = int(stats.binom.isf(alpha / 2, n, p)) + 1  # P(K >= hi) <= alpha/2
    while stats.binom.sf(hi - 1, n, p) > alpha / 2:
        hi += 1
    return lo, hi


def power_rate(n, p, delta=DELTA, alpha=ALPHA):
    """Smaller of the powers of the rate test (n elements, level alpha) against p - delta and
    p + delta (the exact binomial probabilities of landing in the rejection region)."""
    lo, hi = _rejection_region(n, p, alpha)
    out = []
    for q in (p - delta, p + delta):
        if 0 < q < 1:
            out.append(float(stats.binom.cdf(lo, n, q) + stats.binom.sf(hi - 1, n, q)))
    return min(out)


def required_draws(p, delta=DELTA, alpha=ALPHA, power=POWER):
    """The smallest n (to 1%) for which `power_rate(n, p) >= power`: independent elements
    the rate test needs."""
    lo, hi = 1000, 1000
    while power_rate(hi, p, delta, alpha) < power:
        lo, hi = hi, hi * 2
    while hi - lo > max(1, lo // 100):
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if power_rate(mid, p, delta, alpha) >= power else (mid, hi)
    return hi
