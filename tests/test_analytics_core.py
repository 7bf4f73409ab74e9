"""Pure-function tests of the KPI core with exact expected values."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from footfall.analytics.campaign import t975, uplift_from_sums
from footfall.analytics.config import StaffRules, StoreMeta, StoresConfig, load_campaigns, load_stores
from footfall.analytics.core import (
    compute_kpis,
    grouped_quantiles,
    link_identities,
    occupancy_minutes,
    repeat_flags,
    safe_ratio,
    staff_track_mask,
    wifi_sessions,
)
from footfall.analytics.frames import raw_from_events
from footfall.analytics.grid import HOUR_NS, MINUTE_NS, build_grid
from footfall.analytics.pos import PosTransaction
from footfall.contracts.config import ConfigError
from footfall.contracts.events import CrossingEvent, HeartbeatEvent, WifiEvent, ZoneVisitEvent
from footfall.contracts.measurements import datetime_to_ns

S = 1_000_000_000


@pytest.mark.parametrize(
    ("num", "den", "expected"),
    [
        (3, 4, 0.75),
        (0, 5, 0.0),
        (5, 0, math.nan),
        (0, 0, math.nan),
        (math.nan, 2, math.nan),
        (2, math.nan, math.nan),
    ],
)
def test_safe_ratio_is_absent_without_a_denominator(num: float, den: float, expected: float) -> None:
    got = float(safe_ratio(np.array([num]), np.array([den]))[0])
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("q", [0.0, 0.5, 0.9, 1.0])
def test_grouped_quantiles_match_numpy_per_group(seed: int, q: float) -> None:
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, 7, 300)
    values = rng.exponential(100, 300)
    uniq, counts, qs = grouped_quantiles(keys, values, (q,))
    for k, c, got in zip(uniq, counts, qs[:, 0], strict=True):
        assert c == np.sum(keys == k)
        assert got == pytest.approx(np.quantile(values[keys == k], q), rel=1e-12)


def test_grouped_quantiles_exact_small_example() -> None:
    keys, counts, qs = grouped_quantiles(
        np.array([5, 5, 5, 5, 2]), np.array([40.0, 10.0, 30.0, 20.0, 7.0]), (0.5, 0.9)
    )
    assert keys.tolist() == [2, 5]
    assert counts.tolist() == [1, 4]
    assert qs.tolist() == [[7.0, 7.0], [25.0, 37.0]]  # 0.9 * 3 = 2.7 -> 30 + 0.7 * 10


def test_staff_track_mask_matches_key_and_horizon() -> None:
    # crossings: (store, device, track, ts)
    c_store = np.array([0, 0, 0, 1, 0])
    c_dev = np.array([0, 0, 0, 0, 1])
    c_track = np.array([7, 7, 8, 7, 7])
    c_ts = np.array([100, 500, 150, 150, 150]) * S
    s_key = (np.array([0]), np.array([0]), np.array([7]))
    s_start = np.array([90]) * S
    mask = staff_track_mask((c_store, c_dev, c_track), c_ts, s_key, s_start, 300 * S)
    # same key within 300 s after the staff-zone start; other track/store/device never
    assert mask.tolist() == [True, False, False, False, False]


def test_wifi_sessions_split_on_gap_and_per_device() -> None:
    ts = np.array([0, 60, 120, 1000, 1010, 30]) * S
    store = np.zeros(6, np.int64)
    device = np.array([1, 1, 1, 1, 1, 2])
    rssi = np.array([-80, -60, -70, -90, -85, -50])
    ses = wifi_sessions(store, device, ts, rssi, np.zeros(6, bool), np.array([300 * S]))
    assert ses.device.tolist() == [1, 1, 2]
    assert (ses.duration_s).tolist() == [120.0, 10.0, 0.0]
    assert ses.max_rssi.tolist() == [-60, -85, -50]
    assert ses.sightings.tolist() == [3, 2, 1]


def test_occupancy_is_corrected_to_zero_at_closing() -> None:
    # one day open 10 minutes; 3 in, 1 out -> raw drift 2 at closing, removed linearly
    day_open = np.array([0])
    day_close = np.array([10 * MINUTE_NS])
    ev_ts = np.array([0, 0, 60, 300]) * S + 1
    delta = np.array([1.0, 1.0, 1.0, -1.0])
    _, starts, occ = occupancy_minutes(day_open, day_close, np.zeros(4, np.int64), ev_ts, delta)
    raw = np.array([2, 3, 3, 3, 3, 2, 2, 2, 2, 2], float)
    expected = np.maximum(raw - 2 * np.arange(1, 11) / 10, 0)
    assert starts.tolist() == [m * MINUTE_NS for m in range(10)]
    assert occ == pytest.approx(expected)
    assert occ[-1] == 0.0


def test_repeat_flags_within_30_days() -> None:
    store = np.array([0, 0, 0, 0, 1, 0])
    device = np.array([5, 5, 5, 6, 5, 5])
    day = np.array([100, 100, 120, 120, 125, 151])  # day 151 is 31 days after 120
    keys, rep = repeat_flags(store, device, day)
    got = {tuple(k): r for k, r in zip(keys.T.tolist(), rep.tolist(), strict=True)}
    assert got == {
        (0, 5, 100): False,
        (0, 5, 120): True,
        (0, 5, 151): False,
        (0, 6, 120): False,
        (1, 5, 125): False,
    }


@pytest.mark.parametrize(
    ("device", "prev", "same_groups"),
    [
        ([0, 1, 2], [-1, -1, -1], [[0], [1], [2]]),  # no previous hashes: ids unchanged
        ([0, 1, 1], [-1, 0, 0], [[0, 1, 2]]),  # h1 seen with prev h0 = the device seen as h0
        ([3, 2, 1, 0], [2, 1, 0, -1], [[0, 1, 2, 3]]),  # a chain over several rotations, any order
        ([5, 4, 5, 9], [4, -1, 4, 8], [[0, 1, 2], [3]]),  # h9's previous hash h8 was never seen alone
        ([0, 1, 2, 3], [1, 0, 3, 2], [[0, 1], [2, 3]]),  # two devices stay two
        ([7, 7], [7, 7], [[0, 1]]),  # prev == current (no rotation) links nothing else
    ],
)
def test_link_identities_joins_hashes_across_rotations(
    device: list[int], prev: list[int], same_groups: list[list[int]]
) -> None:
    ids = link_identities(np.array(device), np.array(prev))
    groups = {}
    for i, c in enumerate(ids.tolist()):
        groups.setdefault(c, []).append(i)
    assert sorted(groups.values()) == same_groups
    assert ids.min() >= 0
    assert ids.max() <= max(max(device), max(prev))


def test_link_identities_long_random_chains_match_a_plain_union_find() -> None:
    rng = np.random.default_rng(3)
    n = 4000
    device = rng.integers(0, 3000, n)
    prev = np.where(rng.random(n) < 0.5, rng.integers(0, 3000, n), -1)
    parent = list(range(3000))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(device.tolist(), prev.tolist(), strict=True):
        if b >= 0:
            parent[find(a)] = find(b)
    expected = np.array([find(d) for d in device.tolist()])
    got = link_identities(device, prev)
    # the same partition of the sightings (representatives may differ)
    pairs = np.unique(np.stack([got, expected]), axis=1)
    assert len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]


def _wifi(i: int, ts: datetime, device_hash: str, prev: str | None, rssi: int = -55) -> WifiEvent:
    return WifiEvent(
        id=f"w{i}",
        store="s",
        device="wifi-1",
        ts=ts,
        sensor="s1",
        device_hash=device_hash,
        prev_device_hash=prev,
        rssi=rssi,
        randomized=False,
        key_epoch=1,
    )


@pytest.mark.parametrize("linked", [True, False])
def test_wifi_kpis_follow_a_device_across_a_key_rotation(linked: bool) -> None:
    """Hashes under key 1 before 2026-03-03 00:00 UTC, under key 2 (with the key-1 hash as the previous
    one) after it: one visit spanning the rotation is one session, and the visit four days later is a
    repeat. Without the previous hash (``linked=False``) both would be miscounted."""
    old, new, other_prev = "a" * 32, "b" * 32, "c" * 32
    rotation = datetime(2026, 3, 3, tzinfo=UTC)
    sightings = [
        (rotation - timedelta(minutes=4), old, None),  # a visit 23:56-00:02 across the rotation
        (rotation - timedelta(minutes=1), old, None),
        (rotation + timedelta(minutes=2), new, old),
        (datetime(2026, 3, 2, 10, tzinfo=UTC), old, None),  # an earlier visit, key 1
        (datetime(2026, 3, 2, 10, 3, tzinfo=UTC), old, None),
        (datetime(2026, 3, 6, 10, tzinfo=UTC), new, old),  # four days later, key 2
        (datetime(2026, 3, 6, 10, 3, tzinfo=UTC), new, old),
    ]
    events: list = [_wifi(i, ts, h, p if linked else None) for i, (ts, h, p) in enumerate(sightings)]
    events += [
        HeartbeatEvent(
            id=f"hb{i}",
            store="s",
            device="cam",
            ts=datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=10 * i),
            fps=10,
            latency_ms=1,
            dropped_frames=0,
        )
        for i in range(6 * 24 * 7)
    ]
    # an unrelated device whose previous hash is nobody's: counted on its own
    events.append(_wifi(900, datetime(2026, 3, 6, 12, tzinfo=UTC), "d" * 32, other_prev))
    # 4 minutes: a visit, and clear of the 300 s session gap (points carry a sub-ms offset)
    events.append(_wifi(901, datetime(2026, 3, 6, 12, 4, tzinfo=UTC), "d" * 32, other_prev))
    config = StoresConfig(stores=[StoreMeta(id="s", timezone="UTC")])
    grid = build_grid(config.stores, date(2026, 3, 2), date(2026, 3, 6), lookback_days=30, context_days=1)
    kpis = compute_kpis(raw_from_events(events, config), grid, config)
    daily = {
        datetime.fromtimestamp(int(k[1]) // S, UTC).date().day: v
        for k, v in kpis.table("kpi_daily").items()
        if k[0] == "s"
    }
    if linked:
        assert daily[2]["wifi_visits"] == 2
        assert daily[3]["wifi_visits"] == 0
        assert daily[6]["wifi_visitors"] == 2
        assert daily[6]["repeat_visitors"] == 1
        assert daily[6]["repeat_rate"] == 0.5
    else:
        assert daily[2]["wifi_visits"] == 2  # 10:00-10:03, and 23:56-23:59 (3 min)
        assert daily[3]["wifi_walkbys"] == 1  # 00:02 alone: a new device, a walk-by
        assert daily[6]["repeat_visitors"] == 0


@pytest.mark.parametrize(
    ("tz", "day", "hours"),
    [
        ("Europe/Berlin", date(2026, 3, 29), 23),
        ("Europe/Berlin", date(2026, 10, 25), 25),
        ("Asia/Kolkata", date(2026, 10, 25), 24),
    ],
)
def test_grid_has_local_hours_across_dst(tz: str, day: date, hours: int) -> None:
    grid = build_grid([StoreMeta(id="s", timezone=tz)], day, day)
    assert grid.n_slots == hours
    assert np.all(np.diff(grid.slot_start) == HOUR_NS)
    first = datetime.fromtimestamp(grid.slot_start[0] / 1e9, UTC).astimezone(
        StoreMeta(id="s", timezone=tz).tz
    )
    assert (first.date(), first.hour, first.minute) == (day, 0, 0)
    # bucketing: one second after each slot start lands in that slot
    assert grid.slot_of(np.zeros(hours, np.int32), grid.slot_start + S).tolist() == list(range(hours))
    assert grid.slot_of(np.zeros(1, np.int32), np.array([grid.slot_end[-1]])).tolist() == [-1]


def _at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 10, 6, hour, minute, second, tzinfo=UTC)


def _crossing(
    i: int, t: datetime, line: str, direction: str, track: int | None = None, count: int = 1
) -> CrossingEvent:
    kind = "passby" if line == "street" else "entrance"
    source = "beam" if track is None else "camera"
    return CrossingEvent(
        id=f"c{i}",
        store="s1",
        device="cam",
        ts=t,
        line=line,
        kind=kind,
        direction=direction,
        track_id=track,
        count=count,
        source=source,
    )


def test_compute_kpis_exact_small_store_day() -> None:
    meta = StoreMeta(
        id="s1",
        timezone="UTC",
        opening_hours={"mon-sun": "09:00-12:00"},
        staff=StaffRules(zones=["backroom"], count_outside_hours=False),
    )
    cfg = StoresConfig(stores=[meta])
    events = [
        # heartbeats in hours 08, 09, 11 only: hour 10 is a gap
        *(
            HeartbeatEvent(
                id=f"h{h}", store="s1", device="cam", ts=_at(h, 30), fps=10, latency_ms=1, dropped_frames=0
            )
            for h in (8, 9, 11)
        ),
        _crossing(1, _at(8, 50), "door", "in", 1),  # before opening: not a visitor
        _crossing(2, _at(9, 5), "door", "in", 2),
        _crossing(3, _at(9, 6), "door", "in", None, count=3),  # a beam counter interval total
        _crossing(4, _at(9, 20), "door", "out", 4),
        _crossing(5, _at(9, 40), "door", "out", 5),  # staff: track 5 starts in the back room
        ZoneVisitEvent(
            id="z1",
            store="s1",
            device="cam",
            ts=_at(9, 35),
            zone="backroom",
            track_id=5,
            enter_ts=_at(9, 30),
            exit_ts=_at(9, 35),
            dwell_s=300,
        ),
        ZoneVisitEvent(
            id="z2",
            store="s1",
            device="cam",
            ts=_at(9, 30),
            zone="shelf",
            track_id=2,
            enter_ts=_at(9, 10),
            exit_ts=_at(9, 30),
            dwell_s=1200,
        ),
        ZoneVisitEvent(
            id="z3",
            store="s1",
            device="cam",
            ts=_at(9, 50),
            zone="shelf",
            track_id=9,
            enter_ts=_at(9, 49),
            exit_ts=_at(9, 50),
            dwell_s=60,
        ),
        _crossing(6, _at(9, 1), "street", "in", 20),
        _crossing(7, _at(9, 2), "street", "out", 21),
        _crossing(8, _at(10, 30), "door", "in", 30),  # in the gap hour
        _crossing(9, _at(11, 10), "door", "out", 31),
    ]
    raw = raw_from_events(events, cfg)
    grid = build_grid(cfg.stores, date(2026, 10, 6), date(2026, 10, 6))
    kpis = compute_kpis(raw, grid, cfg)
    hourly = {p.ts_ns: p.fields for p in kpis.hourly if p.tags["store"] == "s1"}
    assert set(hourly) == {datetime_to_ns(_at(h)) for h in (8, 9, 11)}  # hour 10: no point at all
    assert hourly[datetime_to_ns(_at(8))] == {"visitors": 0, "exits": 0, "passersby": 0, "walkbys": 0}
    h9 = hourly[datetime_to_ns(_at(9))]
    assert {k: h9[k] for k in ("visitors", "exits", "passersby", "walkbys", "capture_rate")} == {
        "visitors": 4,
        "exits": 1,
        "passersby": 2,
        "walkbys": 0,
        "capture_rate": 2.0,
    }
    assert "conversion" not in h9  # no POS data for this store: absent, not 0
    # occupancy after each minute of 09:00-09:59: 0 (min 0-4), 1 (5), 4 (6-19), 3 (20-59); the
    # track of 08:50 is staff-free but before opening and uncounted; the out at 11:10 leaves drift
    # -1 +1... drift at closing: 4 - 1 + 1 (10:30) - 1 (11:10) = 3, removed linearly over 180 min.
    raw_occ = np.array([0] * 5 + [1] + [4] * 14 + [3] * 40, float)
    drift = 3.0
    corrected = np.maximum(raw_occ - drift * np.arange(1, 61) / 180, 0)
    assert h9["occupancy_avg"] == pytest.approx(corrected.mean())
    assert h9["occupancy_max"] == pytest.approx(corrected.max())
    zones = {
        (p.tags["store"], p.tags["zone"]): p.fields
        for p in kpis.zone_hourly
        if p.ts_ns == datetime_to_ns(_at(9))
    }
    assert zones[("s1", "shelf")] == {"visits": 2, "dwell_median_s": 630.0, "dwell_p90_s": 1086.0}
    assert ("s1", "backroom") not in zones
    daily = [p.fields for p in kpis.daily if p.tags["store"] == "s1"]
    assert (daily[0]["visitors"], daily[0]["exits"], daily[0]["covered_hours"]) == (4, 2, 3)


def test_uplift_interval_exact() -> None:
    weekly = np.array([100.0, 110.0, 90.0, 100.0])
    up = uplift_from_sums("s", 150.0, weekly, 10)
    s = float(np.std(weekly, ddof=1))
    half = 3.182 * s * math.sqrt(1.25)
    assert (up.baseline, up.uplift, up.uplift_pct) == (100.0, 50.0, 50.0)
    assert (up.ci_low, up.ci_high) == pytest.approx((50 - half, 50 + half))
    assert t975(200) == pytest.approx(1.972, abs=1e-3)


def test_store_config_errors_name_file_and_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "stores.yaml"
    path.write_text(
        "stores:\n  - id: a\n    timezone: Mars/Olympus\n"
        "    opening_hours: {mon: '10:00-09:00'}\n    colour: red\n"
    )
    with pytest.raises(ConfigError) as err:
        load_stores(path)
    text = str(err.value)
    assert f"{path}: stores.0.timezone" in text
    assert "stores.0.opening_hours" in text
    assert "stores.0.colour: unknown key" in text


def test_campaigns_load_from_csv(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "c.csv"
    path.write_text(
        "name,stores,start,end,channel\npromo,a;b,2026-11-05T00:00:00+01:00,2026-11-08T00:00:00+01:00,social\n"
    )
    c = load_campaigns(path).get("promo")
    assert c.stores == ["a", "b"]
    assert c.start == datetime(2026, 11, 4, 23, tzinfo=UTC)
    assert c.end - c.start == timedelta(days=3)
    with pytest.raises(ConfigError, match="no campaign named"):
        load_campaigns(path).get("nope")


# --------------------------------------------------------------------------- review fixes


def _heartbeats(store: str, first: datetime, hours: int, skip: tuple[int, ...] = ()) -> list[HeartbeatEvent]:
    """One heartbeat in each hour from ``first``, except the hours (counted from 0) in ``skip``."""
    return [
        HeartbeatEvent(
            id=f"hb-{store}-{h}",
            store=store,
            device="cam",
            ts=first + timedelta(hours=h, minutes=30),
            fps=10,
            latency_ms=1,
            dropped_frames=0,
        )
        for h in range(hours)
        if h not in skip
    ]


def _visitors(store: str, hour: datetime, n: int, line: str = "door") -> list[CrossingEvent]:
    kind = "passby" if line == "street" else "entrance"
    return [
        CrossingEvent(
            id=f"{store}-{line}-{hour.isoformat()}-{i}",
            store=store,
            device="cam",
            ts=hour + timedelta(minutes=i),
            line=line,
            kind=kind,
            direction="in",
            track_id=int(hour.timestamp()) // 60 + i,
        )
        for i in range(n)
    ]


def _sales(store: str, hour: datetime, n: int, amount: float | None) -> list[PosTransaction]:
    return [
        PosTransaction(
            store, datetime_to_ns(hour + timedelta(minutes=30, seconds=i)), f"{hour}-{i}", amount, 1
        )
        for i in range(n)
    ]


def _fields(kpis, measurement: str, store: str, at: datetime) -> dict:  # type: ignore[no-untyped-def]
    return kpis.table(measurement)[(store, str(datetime_to_ns(at)))]


REVENUE_KPIS = ("transactions", "revenue", "atv", "sales_per_visitor", "conversion")


@pytest.mark.parametrize(
    ("measurement", "hour", "expected"),
    [
        # 4 sales at 20.00, 10 visitors
        ("kpi_hourly", 10, {"transactions": 4, "revenue": 80.0, "atv": 20.0, "sales_per_visitor": 8.0}),
        # 4 sales from a file without amounts: no revenue, so no ATV and no sales per visitor
        ("kpi_hourly", 12, {"transactions": 4, "conversion": 0.4}),
        # 10 visitors, nobody buys: 0 revenue and 0 per visitor, no ATV without transactions
        ("kpi_hourly", 14, {"transactions": 0, "revenue": 0.0, "sales_per_visitor": 0.0, "conversion": 0.0}),
        # the day: ATV over the 4 priced sales; sales per visitor = ATV x conversion (8 of 30)
        ("kpi_daily", 0, {"transactions": 8, "revenue": 80.0, "atv": 20.0, "sales_per_visitor": 16 / 3}),
    ],
)
def test_revenue_kpis_use_the_transactions_that_carry_an_amount(
    measurement: str, hour: int, expected: dict
) -> None:
    """A store importing one POS file with amounts and one without: revenue sums the priced sales,
    ATV divides by those only, and an hour of unpriced sales has no revenue at all (not 0)."""
    config = StoresConfig(stores=[StoreMeta(id="s1")])
    midnight = datetime(2026, 10, 6, tzinfo=UTC)
    events: list = _heartbeats("s1", midnight, 24)
    for h in (10, 12, 14):
        events += _visitors("s1", midnight + timedelta(hours=h), 10)
    pos = _sales("s1", midnight + timedelta(hours=10), 4, 20.0) + _sales(
        "s1", midnight + timedelta(hours=12), 4, None
    )
    grid = build_grid(config.stores, midnight.date(), midnight.date())
    kpis = compute_kpis(raw_from_events(events, config, pos), grid, config)
    for store in ("s1", "all"):  # one store: the rollup says the same
        got = _fields(kpis, measurement, store, midnight + timedelta(hours=hour))
        if "conversion" not in expected:
            got.pop("conversion", None)
        assert {k: got[k] for k in REVENUE_KPIS if k in got} == pytest.approx(expected), store


def _one_source_each(day: datetime) -> tuple[list, list[PosTransaction]]:
    """POS sales, passers-by (line roles from the events' kind) and a Wi-Fi visit on ``day`` only."""
    events: list = _visitors("s1", day + timedelta(hours=12), 5, line="street")
    events += [_wifi(800 + i, day + timedelta(hours=12, minutes=2 * i), "e" * 32, None) for i in range(3)]
    events = [e.model_copy(update={"store": "s1"}) for e in events]
    return events, _sales("s1", day + timedelta(hours=12), 5, 10.0)


SOURCE_KPIS = ("transactions", "revenue", "conversion", "passersby", "walkbys", "wifi_visits")


@pytest.mark.parametrize(
    ("days_before", "has_sources"),
    [(0, True), (2, True), (29, True), (30, False), (45, False)],
)
def test_a_store_has_a_source_on_days_with_its_data_in_the_30_days_up_to_them(
    days_before: int, has_sources: bool
) -> None:
    """Whether POS, passby and Wi-Fi KPIs are 0 or absent on a day is decided from the 30 days ending
    with it, so a day computed in any window of the job gets the same points."""
    config = StoresConfig(stores=[StoreMeta(id="s1")])
    day = date(2026, 10, 7)
    midnight = datetime(2026, 10, 7, tzinfo=UTC)
    events, pos = _one_source_each(midnight - timedelta(days=days_before))
    events += _heartbeats("s1", midnight, 24) + _visitors("s1", midnight + timedelta(hours=9), 10)
    # the job's grid: 30 days of look-back, one context day
    grid = build_grid(config.stores, day, day, lookback_days=30, context_days=1)
    daily = _fields(
        compute_kpis(raw_from_events(events, config, pos), grid, config), "kpi_daily", "s1", midnight
    )
    assert daily["visitors"] == 10
    if has_sources:
        expected = 5 if days_before == 0 else 0
        assert daily["transactions"] == expected
        assert daily["passersby"] == expected
        assert daily["wifi_visits"] == (1 if days_before == 0 else 0)
        assert daily["conversion"] == expected / 10
    else:
        assert not set(SOURCE_KPIS) & set(daily)


def test_daily_wifi_visitors_come_from_covered_hours_like_the_visits() -> None:
    """The camera (the only heartbeat source) is down 10:00-11:00 on 6 Oct while the Wi-Fi bridge goes
    on: the phone seen then is neither a visit nor a visitor of that day, but it is history for its
    repeat visit on 7 Oct (the look-back before a window is read without heartbeats anyway)."""
    config = StoresConfig(stores=[StoreMeta(id="s1")])
    midnight = datetime(2026, 10, 6, tzinfo=UTC)
    events: list = _heartbeats("s1", midnight, 48, skip=(10,))
    for i, (hour, phone) in enumerate([(10, "a"), (12, "b"), (24 + 9, "a")]):
        t = midnight + timedelta(hours=hour, minutes=10)
        events += [_wifi(10 * i + m, t + timedelta(minutes=2 * m), phone * 32, None) for m in range(6)]
    events = [e.model_copy(update={"store": "s1"}) for e in events]
    grid = build_grid(config.stores, date(2026, 10, 6), date(2026, 10, 7))
    kpis = compute_kpis(raw_from_events(events, config), grid, config)
    first, second = (_fields(kpis, "kpi_daily", "s1", midnight + timedelta(days=d)) for d in (0, 1))
    assert (first["covered_hours"], first["wifi_visits"], first["wifi_visitors"]) == (23, 1, 1)
    assert first["repeat_visitors"] == 0
    assert (second["wifi_visits"], second["wifi_visitors"], second["repeat_visitors"]) == (1, 1, 1)


def test_the_pure_api_computes_a_store_missing_from_the_config_with_defaults() -> None:
    """raw_from_events -> build_grid -> compute_kpis with a store only the events name: it gets the
    defaults (UTC, always open, line roles from the events' kind) like in the job."""
    config = StoresConfig(stores=[StoreMeta(id="a", timezone="Asia/Kolkata")])
    midnight = datetime(2026, 10, 6, tzinfo=UTC)
    events: list = []
    for store in ("a", "x"):
        events += _heartbeats(store, midnight - timedelta(hours=6), 36)
        events += _visitors(store, midnight + timedelta(hours=3), 7)
        events += _visitors(store, midnight + timedelta(hours=4), 2, line="street")
    grid = build_grid(config.stores, date(2026, 10, 6), date(2026, 10, 6))
    kpis = compute_kpis(raw_from_events(events, config), grid, config)
    assert kpis.slot_grid is not None
    assert kpis.slot_grid.n_stores == 2
    x = _fields(kpis, "kpi_daily", "x", midnight)
    assert (x["visitors"], x["passersby"], x["covered_hours"]) == (7, 2, 24)
    kolkata = datetime(2026, 10, 6, tzinfo=StoreMeta(id="a", timezone="Asia/Kolkata").tz)
    assert _fields(kpis, "kpi_daily", "a", kolkata)["visitors"] == 7
    assert _fields(kpis, "kpi_hourly", "x", midnight + timedelta(hours=3))["visitors"] == 7


@pytest.mark.parametrize(
    ("hours", "day", "expected"),
    [
        # a weekday inside a longer key overrides it, in either order of the keys
        ({"daily": "09:00-20:00", "sun": "10:00-16:00"}, date(2026, 10, 11), (600, 960)),
        ({"sun": "10:00-16:00", "daily": "09:00-20:00"}, date(2026, 10, 11), (600, 960)),
        ({"daily": "09:00-20:00", "sun": "10:00-16:00"}, date(2026, 10, 10), (540, 1200)),
        ({"mon-fri": "09:00-20:00", "fri": "09:00-22:00"}, date(2026, 10, 9), (540, 1320)),
        ({"mon-fri": "09:00-20:00", "fri": "09:00-22:00"}, date(2026, 10, 8), (540, 1200)),
        # three levels: the smallest key naming the day wins
        (
            {"all": "08:00-22:00", "sat-sun": "10:00-18:00", "sun": "12:00-16:00"},
            date(2026, 10, 10),
            (600, 1080),
        ),
        (
            {"all": "08:00-22:00", "sat-sun": "10:00-18:00", "sun": "12:00-16:00"},
            date(2026, 10, 11),
            (720, 960),
        ),
        ({"mon-fri": "09:00-20:00"}, date(2026, 10, 11), None),  # not listed: closed
    ],
)
def test_opening_hours_a_key_inside_another_overrides_it(
    hours: dict[str, str], day: date, expected: tuple[int, int] | None
) -> None:
    assert StoreMeta(id="s", opening_hours=hours).hours_on(day) == expected


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ("{daily: '09:00-20:00', mon-sun: '10:00-18:00'}", "'daily' and 'mon-sun' both set mon, tue"),
        ("{mon-wed: '09:00-20:00', tue-fri: '10:00-18:00'}", "'mon-wed' and 'tue-fri' both set tue, wed"),
        ("{sun: '09:00-20:00', Sun: '10:00-18:00'}", "'sun' and 'Sun' both set sun"),
    ],
)
def test_opening_hours_that_overlap_without_nesting_are_rejected(tmp_path, hours: str, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "stores.yaml"
    path.write_text(f"stores:\n  - id: a\n    opening_hours: {hours}\n")
    with pytest.raises(ConfigError) as err:
        load_stores(path)
    assert f"{path}: stores.0.opening_hours: " in str(err.value)
    assert message in str(err.value)
