"""Expected traffic per store and local hour, from the store's own history: arrays in, arrays out.

Used for the anomaly flags of ``kpi_hourly`` (each hour against the weeks before it) and for the
staffing forecast (the coming days against the weeks before the first of them). The method, for a
target day T of store s and each local hour h (history: the ``weeks`` weeks before the window end):

1. **History cells** are hours with data (heartbeats), outside campaign windows of that store, on
   days that are not *outliers*: a day whose visitors over its hours with data are less than half,
   or more than twice, the median of the same hours on the same weekday of the surrounding weeks (a
   broken camera, a closure, an unknown event). One bad day then costs nothing.
2. **Pooled estimate**: over the history days with T's opening hours (a "day type"), a Poisson
   log-linear model ``visitors = a[weekday] x b[hour]`` fitted by iterative proportional fitting:
   weekdays share an hourly profile, so each hour's rate rests on ~6x more data than its own weekday.
3. **Own estimate**: the mean of the same weekday and hour over the history weeks (``n`` of them).
4. **Shrinkage**: the own estimates win as far as the weekday's hours differ from the pooled ones by
   more than Poisson noise explains (a positive-part James-Stein weight on their chi-square: a
   Saturday with its own afternoon peak keeps it); otherwise the pooled one, ~2.5x less noisy.
5. **Interval**: quantiles ``level`` of a negative binomial with that mean and a variance of Poisson
   noise + the estimate's own uncertainty + over-dispersion estimated from the history (moment
   estimator). ``traffic_anomaly`` is -1 below the interval, +1 above, 0 inside.

An hour needs at least ``min_weeks`` usable same-weekday weeks, else it has no expectation (absent).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import date

import numpy as np

from footfall.analytics.config import Campaign, StoreMeta
from footfall.analytics.grid import Grid
from footfall.contracts.measurements import KPI_EXPECTED_FIELDS, datetime_to_ns

HOURS = 24
# Weeks of history (a season changes traffic over months; six weeks follow it and outvote one bad day).
WEEKS = 6
MIN_WEEKS = 2
# The interval: 95 % of hours of an unchanged store fall inside.
LEVEL = 0.95
# A history day outside [half, double] of its weekday's median over the same hours is an outlier,
# judged only when that median is at least 10 visitors (less is Poisson noise, not an event).
OUTLIER_FACTOR = 2.0
OUTLIER_MIN_VISITORS = 10.0
IPF_ROUNDS = 25


@dataclass(frozen=True)
class History:
    """Visitors per (day, local hour) of the days of a grid (days of one store consecutive)."""

    visitors: np.ndarray  # (n_days, 24) float
    usable: np.ndarray  # (n_days, 24) bool: data (heartbeats), not in a campaign
    store: np.ndarray  # (n_days,) int store code
    weekday: np.ndarray  # (n_days,) 0 = Monday
    day_type: np.ndarray  # (n_days,) int: days with the same code share opening hours (and store)


@dataclass(frozen=True)
class Expectation:
    """Per target (day, hour): expected visitors and interval; NaN where history is too short."""

    expected: np.ndarray  # (n_targets, 24)
    low: np.ndarray
    high: np.ndarray


def outlier_days(history: History, weeks: int = WEEKS) -> np.ndarray:
    """Days whose total over their usable hours is outside [1/2, 2] x the median of the same hours
    on the same weekday within ``weeks`` weeks either side (same store)."""
    n = len(history.store)
    offsets = 7 * np.concatenate([-np.arange(weeks, 0, -1), np.arange(1, weeks + 1)])
    nb = np.arange(n)[:, None] + offsets[None, :]  # (n, 2*weeks)
    ok = (nb >= 0) & (nb < n)
    nb = np.clip(nb, 0, n - 1)
    ok &= history.store[nb] == history.store[:, None]
    both = history.usable[:, None, :] & history.usable[nb] & ok[..., None]  # (n, 2w, 24)
    own = (history.visitors[:, None, :] * both).sum(axis=2)  # the day, over hours shared with each
    other = (history.visitors[nb] * both).sum(axis=2)
    has = both.any(axis=2)
    ratio = np.where(has & (other > 0), own / np.where(other > 0, other, 1), np.nan)
    typical = np.where(has, other, np.nan)
    with warnings.catch_warnings():  # a day without any comparable neighbour: NaN, not judged
        warnings.simplefilter("ignore", RuntimeWarning)
        median_ratio = np.nanmedian(ratio, axis=1)
        median_other = np.nanmedian(typical, axis=1)
    judged = median_other >= OUTLIER_MIN_VISITORS
    return judged & ((median_ratio < 1 / OUTLIER_FACTOR) | (median_ratio > OUTLIER_FACTOR))


def expect(
    history: History,
    targets: np.ndarray,
    ends: np.ndarray,
    *,
    weeks: int = WEEKS,
    min_weeks: int = MIN_WEEKS,
    level: float = LEVEL,
) -> Expectation:
    """Expected visitors of the days ``targets`` (indices into ``history``), from the ``weeks``
    weeks before ``ends`` (index of the first day not used; the target itself for an anomaly check,
    the first forecast day for a forecast)."""
    usable = history.usable & ~outlier_days(history, weeks)[:, None]
    own_mean, own_n = _same_weekday(history, usable, targets, ends, weeks)
    pooled, pooled_n, dispersion = _pooled(history, usable, targets, ends, weeks)
    weight = _own_weight(own_mean, own_n, pooled)[:, None]
    mean = pooled + weight * (own_mean - pooled)
    own_var = own_mean / np.maximum(own_n, 1)
    estimate_var = (1 - weight) ** 2 * pooled / np.maximum(pooled_n, 1) + weight**2 * own_var
    variance = mean + estimate_var + dispersion[:, None] * mean**2
    low, high = count_quantiles(mean, variance, ((1 - level) / 2, (1 + level) / 2))
    enough = own_n >= min_weeks
    nan = np.full_like(mean, np.nan)
    return Expectation(np.where(enough, mean, nan), np.where(enough, low, nan), np.where(enough, high, nan))


def _own_weight(own_mean: np.ndarray, own_n: np.ndarray, pooled: np.ndarray) -> np.ndarray:
    """How far to trust the target weekday's own hourly means over the pooled model: a positive-part
    James-Stein weight on the chi-square of their differences over the day's hours. Differences no
    larger than Poisson noise (chi-square ~ its degrees of freedom) give 0; a weekday whose day has
    its own shape (a busy Saturday afternoon) gives nearly 1."""
    has = (own_n > 0) & (pooled > 0)
    noise = np.divide(pooled, own_n, out=np.ones_like(pooled), where=has)
    chi2 = np.where(has, (own_mean - pooled) ** 2 / noise, 0.0).sum(axis=1)
    dof = has.sum(axis=1)
    weight: np.ndarray = np.divide(np.maximum(chi2 - dof, 0), chi2, out=np.zeros_like(chi2), where=chi2 > 0)
    return weight  # typed: numpy's stubs give this division as Any


def _same_weekday(
    history: History, usable: np.ndarray, targets: np.ndarray, ends: np.ndarray, weeks: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and count of the usable same-weekday hours of the ``weeks`` weeks before ``ends``."""
    first_k = (targets - ends) // 7 + 1  # the nearest same weekday before the window end
    days = targets[:, None] - 7 * (first_k[:, None] + np.arange(weeks)[None, :])  # (t, weeks)
    ok = (days >= 0) & (history.store[np.maximum(days, 0)] == history.store[targets][:, None])
    days = np.maximum(days, 0)
    use = usable[days] & ok[..., None]  # (t, weeks, 24)
    n = use.sum(axis=1)
    total = (history.visitors[days] * use).sum(axis=1)
    return np.divide(total, n, out=np.zeros(total.shape), where=n > 0), n


def _pooled(
    history: History, usable: np.ndarray, targets: np.ndarray, ends: np.ndarray, weeks: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The weekday x hour model over the history days of the target's day type: (expected for the
    target's weekday (t, 24), usable days per hour (t, 24), over-dispersion per target (t,))."""
    span = 7 * weeks
    days = ends[:, None] - span + np.arange(span)[None, :]  # (t, span)
    ok = (days >= 0) & (days < ends[:, None])
    days = np.maximum(days, 0)
    ok &= (history.store[days] == history.store[targets][:, None]) & (
        history.day_type[days] == history.day_type[targets][:, None]
    )
    use = usable[days] & ok[..., None]  # (t, span, 24)
    y = history.visitors[days] * use
    onehot = history.weekday[days][..., None] == np.arange(7)  # (t, span, 7)
    a, b = np.ones((len(targets), 7)), np.ones((len(targets), HOURS))
    for _ in range(IPF_ROUNDS):
        a_day = np.take_along_axis(a, history.weekday[days], axis=1)  # (t, span)
        b = _ratio(y.sum(axis=1), (a_day[..., None] * use).sum(axis=1))
        by_day_y = np.einsum("tsh,tsw->tw", y, onehot)
        by_day_b = np.einsum("tsh,th,tsw->tw", use, b, onehot)
        a = _ratio(by_day_y, by_day_b)
    cell = np.take_along_axis(a, history.weekday[days], axis=1)[..., None] * b[:, None, :]
    expected = np.take_along_axis(a, history.weekday[targets][:, None], axis=1) * b
    # Moment estimator of a negative binomial's over-dispersion: E[(y - mu)^2 - y] = phi mu^2.
    excess = (((y - cell * use) ** 2 - y) * use).sum(axis=(1, 2))
    dispersion = np.clip(_ratio(excess, ((cell * use) ** 2).sum(axis=(1, 2))), 0, 1)
    return expected, use.sum(axis=1), dispersion


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    ratio: np.ndarray = np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)
    return ratio  # typed: numpy's stubs give this division as Any


def count_quantiles(mean: np.ndarray, variance: np.ndarray, qs: tuple[float, ...]) -> tuple[np.ndarray, ...]:
    """Quantiles (the smallest count whose CDF reaches q) of a negative binomial with that mean and
    variance (a Poisson when the variance does not exceed the mean). Means above 200: normal."""
    mean = np.asarray(mean, np.float64)
    var = np.maximum(np.asarray(variance, np.float64), mean)
    small = mean <= 200
    m, v = np.where(small, mean, 0.0), np.where(small, var, 0.0)
    kmax = int(np.ceil(np.max(m + 10 * np.sqrt(v), initial=0))) + 10
    extra = v - m
    r = np.divide(m * m, extra, out=np.full(m.shape, np.inf), where=extra > 1e-9)
    poisson = ~np.isfinite(r)
    p_success = np.divide(r, r + m, out=np.ones(m.shape), where=~poisson)
    pmf = np.where(poisson, np.exp(-m), np.exp(np.where(poisson, 0, r) * np.log(p_success)))
    cdf = pmf.copy()
    found = [np.where(pmf >= q, 0, -1) for q in qs]
    for k in range(kmax):
        step = np.where(poisson, m / (k + 1), (k + np.where(poisson, 0, r)) / (k + 1) * (1 - p_success))
        pmf = pmf * step
        cdf = cdf + pmf
        for f, q in zip(found, qs, strict=True):
            f[(f < 0) & (cdf >= q)] = k + 1
    out = []
    for f, q in zip(found, qs, strict=True):
        normal = np.ceil(mean + _z(q) * np.sqrt(var) - 0.5)
        out.append(np.where(small & (f >= 0), f, np.maximum(normal, 0)).astype(np.float64))
    return tuple(out)


def _z(q: float) -> float:
    """Standard normal quantile."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(q)


def anomaly(visitors: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """-1 below the interval, +1 above, 0 inside; NaN without an interval."""
    flag = np.where(visitors < low, -1.0, np.where(visitors > high, 1.0, 0.0))
    return np.where(np.isnan(low) | np.isnan(visitors), np.nan, flag)


# --------------------------------------------------------------------------- from and to a grid's slots


def history_of(grid: Grid, metas: list[StoreMeta], visitors: np.ndarray, usable: np.ndarray) -> History:
    """The (day, local hour) matrices of a grid's slot values. Both slots of the wall-clock hour that
    repeats when daylight saving time ends add into one cell; the hour skipped when it starts stays
    unusable."""
    y = np.zeros((grid.n_days, HOURS))
    u = np.zeros((grid.n_days, HOURS), bool)
    hour = grid.slot_local_hour.astype(np.int64)
    np.add.at(y, (grid.slot_day, hour), np.where(usable, visitors, 0.0))
    u[grid.slot_day[usable], hour[usable]] = True
    types: dict[tuple[int, tuple[int, int] | None], int] = {}
    day_type = np.array(
        [
            types.setdefault((int(s), metas[s].hours_on(date.fromordinal(int(o)))), len(types))
            for s, o in zip(grid.day_store, grid.day_ordinal, strict=True)
        ],
        np.int64,
    )
    weekday = (grid.day_ordinal - 1) % 7  # ordinal 1 (0001-01-01) was a Monday
    return History(y, u, grid.day_store.astype(np.int64), weekday.astype(np.int64), day_type)


def campaign_slots(grid: Grid, labels: list[str], campaigns: list[Campaign]) -> np.ndarray:
    """Slots inside a campaign window of their store: never part of a baseline."""
    inside = np.zeros(grid.n_slots, bool)
    for c in campaigns:
        codes = [labels.index(s) for s in c.stores if s in labels]
        start, end = datetime_to_ns(c.start), datetime_to_ns(c.end)
        inside |= np.isin(grid.slot_store, codes) & (grid.slot_start < end) & (grid.slot_end > start)
    return inside


def slot_expectation(grid: Grid, target_days: np.ndarray, exp: Expectation) -> dict[str, np.ndarray]:
    """The expectation of the target days spread back onto the grid's slots (NaN elsewhere)."""
    row = np.full(grid.n_days, -1, np.int64)
    row[target_days] = np.arange(len(target_days))
    r = row[grid.slot_day]
    hour = grid.slot_local_hour.astype(np.int64)
    out = {}
    for name, values in zip(KPI_EXPECTED_FIELDS, (exp.expected, exp.low, exp.high), strict=True):
        out[name] = np.where(r >= 0, values[np.maximum(r, 0), hour], np.nan)
    return out
