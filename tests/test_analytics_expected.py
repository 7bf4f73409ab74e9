"""Expected traffic, anomalies and the line balance (analytics/expected.py, core.line_balance): pure
functions on numbers made here, checked against independent computations and known rates."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from footfall.analytics.config import StoreMeta, StoresConfig
from footfall.analytics.core import line_balance
from footfall.analytics.expected import (
    History,
    anomaly,
    count_quantiles,
    expect,
    history_of,
    outlier_days,
)
from footfall.analytics.frames import raw_from_events
from footfall.analytics.grid import build_grid
from footfall.contracts.events import CrossingEvent, HeartbeatEvent
from footfall.contracts.measurements import datetime_to_ns

OPEN = range(10, 18)  # full open hours of the synthetic store; 18:00-19:00 gets a quarter of the rate


def poisson_cdf(k: int, mean: float) -> float:
    if mean == 0:
        return 1.0
    return sum(math.exp(i * math.log(mean) - mean - math.lgamma(i + 1)) for i in range(k + 1))


def nbinom_cdf(k: int, mean: float, var: float) -> float:
    r = mean * mean / (var - mean)
    p = r / (r + mean)
    return sum(
        math.exp(math.lgamma(i + r) - math.lgamma(r) - math.lgamma(i + 1)) * p**r * (1 - p) ** i
        for i in range(k + 1)
    )


@pytest.mark.parametrize(
    ("mean", "var"), [(0.0, 0.0), (0.3, 0.3), (6.0, 6.0), (6.0, 9.0), (40.0, 80.0), (150.0, 150.0)]
)
def test_count_quantiles_are_the_smallest_counts_reaching_q(mean: float, var: float) -> None:
    qs = (0.025, 0.5, 0.975)
    found = count_quantiles(np.array([mean]), np.array([var]), qs)
    for q, (value,) in zip(qs, found, strict=True):
        k = int(value)
        cdf = (lambda j: poisson_cdf(j, mean)) if var <= mean else (lambda j: nbinom_cdf(j, mean, var))
        assert cdf(k) >= q - 1e-9
        assert k == 0 or cdf(k - 1) < q


def test_count_quantiles_of_a_large_mean_are_normal() -> None:
    low, high = count_quantiles(np.array([10_000.0]), np.array([10_000.0]), (0.025, 0.975))
    assert low[0] == pytest.approx(10_000 - 196, abs=2)
    assert high[0] == pytest.approx(10_000 + 196, abs=2)


def synthetic(rate: float, weeks: int, seed: int) -> tuple[np.ndarray, History]:
    """A store open Monday-Saturday 10-19 (a quarter of the rate in the last hour, as when nobody
    enters in its last 45 minutes), closed on Sundays: Poisson visitors, the true rates."""
    n = 7 * weeks
    weekday = np.arange(n) % 7
    rates = np.zeros((n, 24))
    rates[np.ix_(weekday < 6, list(OPEN))] = rate
    rates[weekday < 6, 18] = rate / 4
    visitors = np.random.default_rng(seed).poisson(rates).astype(float)
    history = History(
        visitors, np.ones((n, 24), bool), np.zeros(n, np.int64), weekday, (weekday == 6).astype(np.int64)
    )
    return rates, history


def with_visitors(history: History, visitors: np.ndarray, usable: np.ndarray | None = None) -> History:
    return History(
        visitors,
        history.usable if usable is None else usable,
        history.store,
        history.weekday,
        history.day_type,
    )


def test_forecast_of_a_steady_store_is_within_ten_percent() -> None:
    """Six weeks of a 6-an-hour store: the next week's rates, per open hour, within 10 % on average
    (each weekday-hour alone has 6 weeks x 6 = 36 visitors: 17 % noise; the model pools weekdays)."""
    rates, history = synthetic(6.0, weeks=7, seed=1)
    days = np.arange(42, 49)
    exp = expect(history, days, np.full(7, 42))
    open_ = rates[days] > 0
    mape = np.mean(np.abs(exp.expected[open_] - rates[days][open_]) / rates[days][open_])
    assert mape < 0.10
    assert np.all(exp.expected[rates[days] == 0] == 0)  # closed hours and Sundays: nobody expected
    assert np.all((exp.low <= exp.expected) & (exp.expected <= exp.high))


def test_interval_holds_95_percent_of_an_unchanged_store() -> None:
    rates, history = synthetic(8.0, weeks=10, seed=2)
    days = np.arange(28, 70)
    exp = expect(history, days, days)
    flags = anomaly(history.visitors[days], exp.low, exp.high)[rates[days] > 0]
    assert np.mean(flags != 0) <= 0.06  # discrete counts: at most ~5 % outside by construction
    assert np.mean(flags != 0) >= 0.005


def test_not_enough_history_is_absent() -> None:
    _, history = synthetic(6.0, weeks=3, seed=3)
    exp = expect(history, np.arange(21), np.arange(21))
    assert np.isnan(exp.expected[:14]).all()  # fewer than two same weekdays before
    assert not np.isnan(exp.expected[14:20, 12]).any()


def test_a_broken_day_is_an_outlier_and_costs_the_forecast_nothing() -> None:
    _, history = synthetic(6.0, weeks=7, seed=4)
    broken = history.visitors.copy()
    broken[36] = 0  # a Tuesday: the camera counted nobody
    assert list(np.flatnonzero(outlier_days(with_visitors(history, broken)))) == [36]
    days, ends = np.arange(42, 49), np.full(7, 42)
    with_break = expect(with_visitors(history, broken), days, ends)
    without = expect(
        with_visitors(history, broken, history.usable & (np.arange(49) != 36)[:, None]), days, ends
    )
    np.testing.assert_allclose(with_break.expected, without.expected)


@pytest.mark.parametrize(("rate", "counted", "hits"), [(6.0, 0.0, 7), (9.0, 0.1, 7), (12.0, 0.2, 7)])
def test_an_undercounting_day_is_flagged_below(rate: float, counted: float, hits: int) -> None:
    """Per-hour Poisson noise limits what one hour can show: a store of 6 an hour is flagged when its
    camera counts nobody, one of 9 when it counts one in ten, one of 12 at one in five: at least
    ``hits`` of its 9 open hours in 19 of 20 simulated stores (the last, a quarter-rate hour with a
    lower bound of 0, can never be flagged low)."""
    passed = 0
    for seed in range(20):
        _, history = synthetic(rate, weeks=5, seed=seed)
        visitors = history.visitors.copy()
        visitors[29] = np.random.default_rng(100 + seed).binomial(visitors[29].astype(int), counted)
        exp = expect(with_visitors(history, visitors), np.array([29]), np.array([29]))
        flags = anomaly(visitors[29], exp.low[0], exp.high[0])
        passed += int(np.sum(flags[10:19] == -1) >= hits)
    assert passed >= 19


def test_campaign_hours_left_out_do_not_inflate_the_baseline() -> None:
    rates, history = synthetic(6.0, weeks=7, seed=5)
    lifted = history.visitors.copy()
    campaign = np.zeros(49, bool)
    campaign[35:42] = True  # the whole last week before the forecast, +60 %
    lifted[campaign] = np.random.default_rng(6).poisson(rates[campaign] * 1.6)
    days, ends = np.arange(42, 49), np.full(7, 42)
    inflated = expect(with_visitors(history, lifted), days, ends).expected
    masked = expect(with_visitors(history, lifted, ~campaign[:, None] & history.usable), days, ends).expected
    open_ = rates[days] > 0
    true = rates[days][open_]
    assert np.mean(masked[open_] / true) == pytest.approx(1.0, abs=0.06)
    assert np.mean(inflated[open_] / true) > np.mean(masked[open_] / true) + 0.05


def test_a_weekday_of_its_own_keeps_its_shape() -> None:
    """A Saturday twice as busy from 14:00 is not averaged away by the other weekdays: its afternoon is
    expected near 12 an hour and clearly above its morning (the pooled model alone: 10 and 8.6)."""
    rates, history = synthetic(6.0, weeks=7, seed=7)
    saturday = history.weekday == 5
    rates[np.ix_(saturday, range(14, 18))] = 12.0
    visitors = np.random.default_rng(8).poisson(rates).astype(float)
    exp = expect(with_visitors(history, visitors), np.array([47]), np.array([42]))  # the next Saturday
    afternoon, morning = np.mean(exp.expected[0, 14:18]), np.mean(exp.expected[0, 10:14])
    assert afternoon == pytest.approx(12.0, rel=0.15)
    assert afternoon / morning >= 1.35


def test_anomaly_signs() -> None:
    flags = anomaly(np.array([0.0, 5, 20, 3]), np.array([2.0, 2, 2, np.nan]), np.array([9.0, 9, 9, np.nan]))
    assert flags[:3].tolist() == [-1, 0, 1]
    assert np.isnan(flags[3])


def test_history_of_a_grid_spreads_slots_into_local_hours() -> None:
    meta = StoreMeta(id="s", timezone="Asia/Kolkata", opening_hours={"mon-sat": "10:00-19:00"})
    grid = build_grid([meta], date(2026, 11, 2), date(2026, 11, 15))
    visitors = np.arange(grid.n_slots, dtype=float)
    usable = grid.slot_local_hour >= 12
    history = history_of(grid, [meta], visitors, usable)
    first = np.flatnonzero(grid.slot_day == 0)
    assert history.visitors[0, 13] == visitors[first[13]]
    assert not history.usable[0, 11]
    assert history.weekday[0] == 0  # 2026-11-02 is a Monday
    assert history.day_type[0] == history.day_type[1] != history.day_type[6]  # Sunday: closed


def test_line_balance_per_line_and_day() -> None:
    """In and out per entrance line and local day; the flag only once the day is over."""
    meta = StoreMeta(
        id="s", timezone="Europe/Berlin", entrance_lines=["door", "side"], passby_lines=["street"]
    )
    config = StoresConfig(stores=[meta])
    day = datetime(2026, 11, 3, 10, tzinfo=meta.tz)
    events = [HeartbeatEvent(id="h", store="s", device="cam", ts=day, fps=5, latency_ms=1, dropped_frames=0)]
    plan = {
        ("door", "in"): 20,
        ("door", "out"): 17,
        ("side", "in"): 10,
        ("side", "out"): 10,
        ("street", "in"): 5,
    }
    for (line, direction), n in plan.items():
        kind = "passby" if line == "street" else "entrance"
        events += [
            CrossingEvent(
                id=f"{line}-{direction}-{i}",
                store="s",
                device="cam",
                ts=day + timedelta(minutes=i),
                line=line,
                kind=kind,
                direction=direction,  # type: ignore[arg-type]
                track_id=i,
            )
            for i in range(n)
        ]
    grid = build_grid(config.stores, day.date(), day.date())
    raw = raw_from_events(events, config)
    midnight = datetime_to_ns(datetime(2026, 11, 3, tzinfo=meta.tz))
    over = {
        p.tags["line"]: p for p in line_balance(raw, grid, datetime_to_ns(datetime(2026, 11, 5, tzinfo=UTC)))
    }
    assert set(over) == {"door", "side"}  # passby lines have no balance
    assert over["door"].ts_ns == midnight
    assert over["door"].fields == {"entries": 20, "exits": 17, "balance": 0.85, "balance_flag": 1}
    assert over["side"].fields == {"entries": 10, "exits": 10, "balance": 1.0, "balance_flag": 0}
    during = {
        p.tags["line"]: p.fields for p in line_balance(raw, grid, datetime_to_ns(day + timedelta(hours=2)))
    }
    assert "balance_flag" not in during["door"]


@pytest.mark.parametrize(
    ("entries", "exits", "expected"),
    [
        (20, 17, {"balance": 0.85, "balance_flag": 1}),
        (10, 10, {"balance": 1.0, "balance_flag": 0}),
        (100, 105, {"balance": 1.05, "balance_flag": 0}),
        (50, 0, {"balance": 0.0, "balance_flag": 1}),  # a dead "out" direction
        (0, 50, {"balance_flag": 1}),  # a dead "in" direction: no ratio, but flagged all the same
        (0, 1, {"balance_flag": 1}),  # the mirror of (1, 0), which has balance 0
        (1, 0, {"balance": 0.0, "balance_flag": 1}),
    ],
)
def test_line_balance_flags_either_dead_direction(entries: int, exits: int, expected: dict) -> None:
    meta = StoreMeta(id="s", timezone="UTC", entrance_lines=["door"])
    config = StoresConfig(stores=[meta])
    day = datetime(2026, 11, 3, 10, tzinfo=UTC)
    events = [
        CrossingEvent(
            id=f"{direction}-{i}",
            store="s",
            device="cam",
            ts=day + timedelta(seconds=i),
            line="door",
            kind="entrance",
            direction=direction,  # type: ignore[arg-type]
            track_id=i,
        )
        for direction, n in (("in", entries), ("out", exits))
        for i in range(n)
    ]
    grid = build_grid(config.stores, day.date(), day.date())
    (point,) = line_balance(raw_from_events(events, config), grid)
    assert point.fields == {"entries": entries, "exits": exits, **expected}
