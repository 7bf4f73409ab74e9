"""The pure KPI core: numpy arrays in, KPI tables out. No I/O here.

Every function is vectorised over all stores at once. A KPI that cannot be computed is NaN in the
arrays and absent from the points (never 0, never infinite); an hour without heartbeats from any of
a store's devices has no point at all.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np

from footfall.analytics.config import StoreMeta, StoresConfig
from footfall.analytics.frames import ENTRANCE, NO_TRACK, PASSBY, RawData
from footfall.analytics.grid import HOUR_NS, MINUTE_NS, Grid
from footfall.contracts.kpis import Excess, Kpi, Measured, Ratio, Summed, core_kpis, kpis
from footfall.contracts.measurements import (
    ALL_STORES,
    KPI_DAILY,
    KPI_HOURLY,
    KPI_LINE_DAILY,
    KPI_ZONE_DAILY,
    KPI_ZONE_HOURLY,
    LINE_BALANCE_TOLERANCE,
    FieldValue,
    Point,
    datetime_to_ns,
)
from footfall.contracts.measurements import measurement as measurement_declaration

S_NS = 1_000_000_000
REPEAT_WINDOW_DAYS = 30
# Not a KPI of the table but a part of the revenue ratios: transactions that carry an amount.
PRICED = "priced_transactions"


# --------------------------------------------------------------------------- generic helpers


def safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0 or either side is NaN (a ratio without a denominator is absent)."""
    num = np.asarray(num, np.float64)
    den = np.asarray(den, np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=(den != 0) & ~np.isnan(den))
    return out


def grouped_quantiles(
    keys: np.ndarray, values: np.ndarray, qs: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantiles of ``values`` per distinct key (linear interpolation, like ``np.quantile``).

    Returns (distinct keys, counts, quantiles[len(keys), len(qs)])."""
    if len(keys) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, len(qs)))
    order = np.lexsort((values, keys))
    k, v = keys[order], values[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    counts = np.diff(np.r_[starts, len(k)])
    out = np.empty((len(starts), len(qs)))
    for j, q in enumerate(qs):
        pos = starts + q * (counts - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, starts + counts - 1)
        frac = pos - lo
        out[:, j] = v[lo] + (v[hi] - v[lo]) * frac
    return k[starts], counts, out


def staff_track_mask(
    key_a: tuple[np.ndarray, ...],
    ts_a: np.ndarray,
    key_s: tuple[np.ndarray, ...],
    start_s: np.ndarray,
    horizon_ns: np.ndarray | int,
) -> np.ndarray:
    """For each item A (e.g. a crossing), whether a staff item with the same key (store, device,
    track) started at or before it, at most ``horizon_ns`` earlier (scalar or per A item)."""
    n, m = len(ts_a), len(start_s)
    if n == 0 or m == 0:
        return np.zeros(n, bool)
    keys = [np.concatenate([a, s]).astype(np.int64) for a, s in zip(key_a, key_s, strict=True)]
    t = np.concatenate([ts_a, start_s])
    is_staff = np.r_[np.zeros(n, bool), np.ones(m, bool)]
    # Staff rows sort before A rows at the same instant, so "started at the same time" counts.
    order = np.lexsort((~is_staff, t, *reversed(keys)))
    ks = [k[order] for k in keys]
    new_group = np.r_[True, np.any([k[1:] != k[:-1] for k in ks], axis=0)]
    pos = np.arange(n + m)
    group_start = np.maximum.accumulate(np.where(new_group, pos, 0))
    last_staff = np.maximum.accumulate(np.where(is_staff[order], pos, -1))
    ts_sorted = t[order]
    horizon = np.broadcast_to(np.asarray(horizon_ns, np.int64), (n,))
    horizon_sorted = np.concatenate([horizon, np.zeros(m, np.int64)])[order]
    hit = (last_staff >= group_start) & (ts_sorted - ts_sorted[np.maximum(last_staff, 0)] <= horizon_sorted)
    out = np.zeros(n + m, bool)
    out[order] = hit
    return out[:n]


def _seen_in_staff_zone(
    key_a: tuple[np.ndarray, ...],
    ts_a: np.ndarray,
    key_s: tuple[np.ndarray, ...],
    enter_s: np.ndarray,
    exit_s: np.ndarray,
    horizon_ns: np.ndarray,
) -> np.ndarray:
    """A track is staff around a staff-zone visit: from the visit's start up to ``horizon`` later
    (a track starting in the back room) and from ``horizon`` before the visit's end (a track that
    comes in and goes to the back room)."""
    after = staff_track_mask(key_a, ts_a, key_s, enter_s, horizon_ns)
    before = staff_track_mask(key_a, -ts_a, key_s, -exit_s, horizon_ns)
    staff: np.ndarray = after | before  # typed: numpy's stubs give `|` of two arrays as Any
    return staff


def link_identities(device: np.ndarray, prev: np.ndarray) -> np.ndarray:
    """One canonical code per sighting for devices whose hashed id changed at a key rotation.

    The Wi-Fi bridge publishes each MAC's hash under the current key (``device``) and under the
    previous epoch's key (``prev``, -1 when absent): a sighting (h_new, h_old) is the same device as
    any sighting whose id is h_old. Ids joined by such pairs form connected components (a union-find,
    done here as vectorised min-label propagation with pointer jumping); every sighting gets its
    component's representative. Codes stay within the input's range."""
    device = np.asarray(device, np.int64)
    prev = np.asarray(prev, np.int64)
    linked = (prev >= 0) & (prev != device)
    if not linked.any():
        return device
    size = np.int64(max(int(device.max()), int(prev.max())) + 1)
    pairs = np.unique(device[linked] * size + prev[linked])  # distinct edges only
    a, b = pairs // size, pairs % size
    label = np.arange(size, dtype=np.int64)
    while True:
        low = np.minimum(label[a], label[b])
        nxt = label.copy()
        np.minimum.at(nxt, a, low)
        np.minimum.at(nxt, b, low)
        nxt = nxt[nxt]  # pointer jumping: follow the label's own label (halves chain lengths)
        if np.array_equal(nxt, label):
            component: np.ndarray = label[device]  # typed: indexing is Any in numpy's stubs
            return component
        label = nxt


@dataclass
class Sessions:
    store: np.ndarray
    device: np.ndarray
    start: np.ndarray
    end: np.ndarray
    max_rssi: np.ndarray
    sightings: np.ndarray
    randomized: np.ndarray

    @property
    def duration_s(self) -> np.ndarray:
        seconds: np.ndarray = (self.end - self.start) / S_NS  # typed: numpy's arithmetic is Any
        return seconds


def wifi_sessions(
    store: np.ndarray,
    device: np.ndarray,
    ts: np.ndarray,
    rssi: np.ndarray,
    randomized: np.ndarray,
    gap_ns: np.ndarray,
) -> Sessions:
    """Merge sightings of one device at one store into sessions: a new session starts after a
    silence longer than the store's ``gap_ns`` (indexed by store code)."""
    if len(ts) == 0:
        z = np.zeros(0, np.int64)
        return Sessions(z, z, z, z, z, z, np.zeros(0, bool))
    order = np.lexsort((ts, device, store))
    s, d, t, r = store[order], device[order], ts[order], rssi[order].astype(np.int64)
    new = np.r_[True, (s[1:] != s[:-1]) | (d[1:] != d[:-1]) | (t[1:] - t[:-1] > gap_ns[s[1:]])]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], len(t)] - 1
    return Sessions(
        store=s[starts],
        device=d[starts],
        start=t[starts],
        end=t[ends],
        max_rssi=np.maximum.reduceat(r, starts),
        sightings=ends - starts + 1,
        randomized=randomized[order][starts],
    )


def staff_devices(
    sessions_store: np.ndarray,
    device: np.ndarray,
    slot: np.ndarray,
    slot_day: np.ndarray,
    min_hours: np.ndarray,
    min_days: np.ndarray,
) -> np.ndarray:
    """Per sighting: whether its (store, device) is present in >= min_hours distinct local hours on
    >= min_days local days (thresholds per store; min_hours <= 0 disables the rule)."""
    n = len(device)
    if n == 0 or not (min_hours > 0).any():
        return np.zeros(n, bool)
    # one int64 key per (store, device) and per (store, device, hour slot): 1-D uniques are fast
    width = np.int64(int(device.max()) + 1)
    pair = sessions_store.astype(np.int64) * width + device
    ok = slot >= 0
    n_slots = np.int64(len(slot_day))
    hour_keys = np.unique(pair[ok] * n_slots + slot[ok])  # distinct (store, device, hour)
    h_pair, h_slot = hour_keys // n_slots, hour_keys % n_slots
    n_days = np.int64(int(slot_day.max()) + 1)
    day_keys, hours_per_day = np.unique(h_pair * n_days + slot_day[h_slot], return_counts=True)
    d_pair = day_keys // n_days
    d_store = d_pair // width
    busy = (min_hours[d_store] > 0) & (hours_per_day >= min_hours[d_store])
    pairs, busy_days = np.unique(d_pair[busy], return_counts=True)
    staff_pairs = pairs[busy_days >= min_days[pairs // width]]
    return np.isin(pair, staff_pairs)


def occupancy_minutes(
    day_open: np.ndarray, day_close: np.ndarray, ev_day: np.ndarray, ev_ts: np.ndarray, delta: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """People inside at the end of every opening minute of every day, corrected to 0 at closing.

    Raw occupancy after minute m = sum of (in - out) with ts < open + (m+1) min (crossings before
    opening count into the first minute; after closing they are ignored). The drift D left at
    closing is removed linearly over the day, ``occ_m - D * (m+1)/M``, then floored at 0.
    Returns (day index of each minute, UTC ns of each minute's start, corrected occupancy)."""
    open_days = np.flatnonzero(day_open >= 0)
    n_min = ((day_close[open_days] - day_open[open_days]) // MINUTE_NS).astype(np.int64)
    base = np.r_[0, np.cumsum(n_min)]
    total = int(base[-1])
    minute_day = np.repeat(open_days, n_min)
    minute_idx = np.arange(total) - np.repeat(base[:-1], n_min)
    minute_start = day_open[minute_day] + minute_idx * MINUTE_NS
    if total == 0:
        return minute_day, minute_start, np.zeros(0)
    day_pos = np.full(len(day_open), -1, np.int64)
    day_pos[open_days] = np.arange(len(open_days))
    pos = day_pos[ev_day]
    keep = (pos >= 0) & (ev_ts < day_close[ev_day])
    pos, ts, dl = pos[keep], ev_ts[keep], delta[keep]
    m = np.clip((ts - day_open[open_days][pos]) // MINUTE_NS, 0, None)
    net = np.bincount(base[pos] + m, weights=dl, minlength=total)
    running = np.cumsum(net)
    before = np.repeat(np.r_[0.0, running[base[1:-1] - 1]] if len(open_days) > 1 else np.zeros(1), n_min)
    raw = running - before
    drift = np.repeat(raw[base[1:] - 1], n_min)
    corrected = np.maximum(raw - drift * (minute_idx + 1) / np.repeat(n_min, n_min), 0.0)
    return minute_day, minute_start, corrected


def repeat_flags(
    store: np.ndarray, device: np.ndarray, day_ordinal: np.ndarray, window_days: int = REPEAT_WINDOW_DAYS
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (store, device, day) visits and whether each repeats an earlier-day visit of the same
    device at the same store within ``window_days``. Returns (keys[3, n], is_repeat[n])."""
    if len(store) == 0:
        return np.zeros((3, 0), np.int64), np.zeros(0, bool)
    # one int64 key per (store, device, day): a 1-D unique sorts by store, device, then day
    width = np.int64(int(device.max()) + 1)
    day0 = int(day_ordinal.min())
    span = np.int64(int(day_ordinal.max()) - day0 + 1)
    flat = np.unique((store.astype(np.int64) * width + device) * span + (day_ordinal - day0))
    pair, day = flat // span, flat % span + day0
    keys = np.stack([pair // width, pair % width, day])
    same = np.r_[False, (keys[0, 1:] == keys[0, :-1]) & (keys[1, 1:] == keys[1, :-1])]
    gap = np.r_[0, keys[2, 1:] - keys[2, :-1]]
    return keys, same & (gap <= window_days)


# --------------------------------------------------------------------------- the KPI tables


@dataclass
class KpiTables:
    """The job's output: points per KPI measurement (already filtered to the output window)."""

    hourly: list[Point] = field(default_factory=list)
    daily: list[Point] = field(default_factory=list)
    zone_hourly: list[Point] = field(default_factory=list)
    zone_daily: list[Point] = field(default_factory=list)
    campaign: list[Point] = field(default_factory=list)
    line_daily: list[Point] = field(default_factory=list)
    # Hourly visitors per slot and coverage, kept for the campaign report and expected traffic.
    slot_visitors: np.ndarray | None = None
    slot_covered: np.ndarray | None = None
    slot_grid: Grid | None = None  # the grid those slots belong to

    def all_points(self) -> list[Point]:
        return self.hourly + self.daily + self.zone_hourly + self.zone_daily + self.campaign + self.line_daily

    def table(self, measurement: str) -> dict[tuple[str, ...], dict[str, FieldValue | None]]:
        """{(store, [zone|campaign,] ts_ns as str): fields} for one measurement, for tests and reports."""
        out: dict[tuple[str, ...], dict[str, FieldValue | None]] = {}
        for p in self.all_points():
            if p.measurement == measurement:
                key = (p.tags["store"], *(v for k, v in sorted(p.tags.items()) if k != "store"), str(p.ts_ns))
                out[key] = dict(p.fields)
        return out


def _points(
    measurement: str, tags: list[dict[str, str]], ts: np.ndarray, columns: dict[str, np.ndarray]
) -> list[Point]:
    names = list(columns)
    matrix = (
        np.column_stack([columns[n].astype(np.float64) for n in names]) if names else np.zeros((len(ts), 0))
    )
    finite = np.isfinite(matrix)
    is_int = [measurement_declaration(measurement).fields[n] == "int" for n in names]
    points = []
    for i in range(len(ts)):
        row, ok = matrix[i], finite[i]
        fields_: dict[str, float | int] = {}
        for j, name in enumerate(names):
            if ok[j]:
                fields_[name] = int(np.rint(row[j])) if is_int[j] else float(row[j])
        if fields_:
            points.append(Point(measurement, tags[i], fields_, int(ts[i])))
    return points


def _sum_by(index: np.ndarray, size: int, weights: np.ndarray | None = None) -> np.ndarray:
    # bincount returns integers for empty input even with weights: always hand back floats.
    return np.bincount(index, weights=weights, minlength=size).astype(np.float64)


def line_balance(raw: RawData, grid: Grid, now_ns: int | None = None) -> list[Point]:
    """Per entrance line (store, device, line) and emitted local day: crossings in and out (every
    crossing of the line, staff and closed hours included: the line's own balance), exits / entries,
    and ``balance_flag`` (1 when more than LINE_BALANCE_TOLERANCE from 1, or exits without any
    entries) once the day is over by ``now_ns`` (a day in progress has people inside)."""
    cr = raw.crossings
    slot = grid.slot_of(cr.store, cr.ts)
    day = np.where(slot >= 0, grid.slot_day[np.maximum(slot, 0)], -1)
    sel = (day >= 0) & (cr.role == ENTRANCE)
    sel &= grid.day_emit[np.maximum(day, 0)]
    n_lines, n_dev = max(len(raw.lines), 1), max(len(raw.devices), 1)
    key = (day[sel] * n_dev + cr.device[sel]) * n_lines + cr.line[sel]
    keys, inverse = np.unique(key, return_inverse=True)
    entries = _sum_by(inverse, len(keys), np.where(cr.inbound[sel], cr.count[sel], 0))
    exits = _sum_by(inverse, len(keys), np.where(cr.inbound[sel], 0, cr.count[sel]))
    d, rest = keys // (n_dev * n_lines), keys % (n_dev * n_lines)
    balance = safe_ratio(exits, entries)
    day_end = np.zeros(grid.n_days, np.int64)
    np.maximum.at(day_end, grid.slot_day, grid.slot_end)
    over = np.full(len(keys), now_ns is None) | (day_end[d] <= (now_ns or 0))
    # No entries but exits (the balance itself absent) is the worst miscount of all, the mirror of
    # entries without exits (balance 0): flagged as well.
    off = (entries == 0) | (np.abs(balance - 1) > LINE_BALANCE_TOLERANCE)
    flag = np.where(over, off, np.nan)
    tags = [
        {
            "store": raw.stores.labels[grid.day_store[a]],
            "device": raw.devices.labels[b],
            "line": raw.lines.labels[c],
        }
        for a, b, c in zip(d, rest // n_lines, rest % n_lines, strict=True)
    ]
    columns = {
        "entries": entries,
        "exits": exits,
        "balance": balance,
        "balance_flag": flag.astype(np.float64),
    }
    return _points(KPI_LINE_DAILY, tags, grid.day_start[d], columns)


@dataclass
class Columns:
    """KPI columns of one period: per hour slot (``hourly``) and per local day (``daily``) of the grid."""

    hourly: dict[str, np.ndarray] = field(default_factory=dict)
    daily: dict[str, np.ndarray] = field(default_factory=dict)
    # Samples the rollup pools for a ``Measured("median")`` KPI: name -> (unit per sample, -1 = not
    # a sample; value per sample), units being the period's slots or days.
    hourly_samples: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    daily_samples: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def add(self, other: Columns) -> None:
        self.hourly |= other.hourly
        self.daily |= other.daily
        self.hourly_samples |= other.hourly_samples
        self.daily_samples |= other.daily_samples


@dataclass
class Coverage:
    slot: np.ndarray  # per slot: some device of the store sent a heartbeat in that hour
    day_hours: np.ndarray  # per day: covered hours


@dataclass
class Staff:
    """Staff-zone visits: tracks seen there (same store, device, track id) are staff."""

    in_staff_zone: np.ndarray  # per zone visit
    key: tuple[np.ndarray, np.ndarray, np.ndarray]
    start: np.ndarray
    end: np.ndarray
    horizon: np.ndarray  # per store, ns

    def tracks(self, key: tuple[np.ndarray, ...], ts: np.ndarray, store: np.ndarray) -> np.ndarray:
        return _seen_in_staff_zone(key, ts, self.key, self.start, self.end, self.horizon[store])


@dataclass
class Traffic:
    columns: Columns
    entrance: np.ndarray  # per crossing: a counted entrance crossing
    day: np.ndarray  # per crossing: its day (-1 outside the grid)


def compute_kpis(raw: RawData, grid: Grid, config: StoresConfig, *, now_ns: int | None = None) -> KpiTables:
    """All hourly/daily KPIs (per store and the ``store=all`` rollup) of the grid's output window;
    ``now_ns``: days not over by then get no line-balance flag (None: all are over).

    The stages each produce some of the KPI table's (``contracts.kpis``) columns; the daily sums,
    derived KPIs, gaps and the rollup follow from the table. A store found in ``raw`` but not in
    ``config`` is computed with the defaults, over the grid's dates (``KpiTables.slot_grid``)."""
    config, grid = cover_stores(raw, grid, config)
    metas = [config.meta(s) or StoreMeta(id=s) for s in raw.stores.labels]
    cov = coverage_stage(raw, grid)
    staff = staff_stage(raw, metas)
    traffic = traffic_stage(raw, grid, metas, staff)
    cols = Columns(daily={"covered_hours": cov.day_hours})
    cols.add(traffic.columns)
    cols.add(occupancy_stage(raw, grid, traffic, cov))
    cols.add(wifi_stage(raw, grid, metas, cov))
    cols.add(pos_stage(raw, grid))
    available = sources_available(raw, grid, metas)  # per day
    by_slot = {source: has[grid.slot_day] for source, has in available.items()}
    hourly, daily = _period_columns(cols, grid, cov, (by_slot, available))
    out = KpiTables(
        slot_visitors=cols.hourly["visitors"],
        slot_covered=cov.slot,
        slot_grid=grid,
        line_daily=line_balance(raw, grid, now_ns),
    )
    roll = rollup_units(grid, config, cov)
    out.hourly = _store_points(
        KPI_HOURLY, raw, grid.slot_store, grid.slot_start, hourly, cov.slot & grid.slot_emit
    )
    out.hourly += _rollup(KPI_HOURLY, hourly, cols.hourly_samples, roll.hourly, by_slot)
    day_emit = grid.day_emit & (cov.day_hours > 0)
    out.daily = _store_points(KPI_DAILY, raw, grid.day_store, grid.day_start, daily, day_emit)
    out.daily += _rollup(KPI_DAILY, daily, cols.daily_samples, roll.daily, available)
    out.zone_hourly, out.zone_daily = zones_stage(raw, grid, staff, cov, roll)
    return out


def cover_stores(raw: RawData, grid: Grid, config: StoresConfig) -> tuple[StoresConfig, Grid]:
    """``config`` and ``grid`` extended to every store of ``raw``: one missing from the config (it
    appeared in the data) gets the defaults, and the grid is rebuilt over the same dates with it.
    Store codes stay those of ``raw``, which lists the configured stores first."""
    if len(raw.stores) <= grid.n_stores:
        return config, grid
    config = config.with_stores(raw.stores.labels)
    return config, grid.for_stores(config.stores)


# --------------------------------------------------------------------------- stages


def coverage_stage(raw: RawData, grid: Grid) -> Coverage:
    """An hour counts only if some device of the store sent a heartbeat in it."""
    hb_slot = grid.slot_of(raw.heartbeats.store, raw.heartbeats.ts)
    covered = _sum_by(hb_slot[hb_slot >= 0], grid.n_slots) > 0
    return Coverage(covered, _sum_by(grid.slot_day[covered], grid.n_days))


def staff_stage(raw: RawData, metas: list[StoreMeta]) -> Staff:
    """The visits of each store's staff zones, which mark the tracks seen there as staff."""
    zv = raw.zone_visits
    staff_zone_codes = np.zeros((len(metas), max(len(raw.zones), 1)), bool)
    for code, meta in enumerate(metas):
        for zone in meta.staff.zones:
            zone_code = raw.zones.get(zone)
            if zone_code is not None:
                staff_zone_codes[code, zone_code] = True
    in_staff_zone = staff_zone_codes[zv.store, zv.zone] if len(zv) else np.zeros(0, bool)
    return Staff(
        in_staff_zone=in_staff_zone,
        key=(zv.store[in_staff_zone], zv.device[in_staff_zone], zv.track[in_staff_zone]),
        start=zv.enter[in_staff_zone],
        end=zv.ts[in_staff_zone],
        horizon=np.array([int(m.staff.track_horizon_s * S_NS) for m in metas], np.int64),
    )


def traffic_stage(raw: RawData, grid: Grid, metas: list[StoreMeta], staff: Staff) -> Traffic:
    """Visitors and exits (entrance crossings without staff, in opening hours unless the store counts
    outside them) and passers-by (passby crossings) per slot."""
    cr, n_sl = raw.crossings, grid.n_slots
    cr_slot = grid.slot_of(cr.store, cr.ts)
    cr_staff = staff.tracks((cr.store, cr.device, cr.track), cr.ts, cr.store) & (cr.track != NO_TRACK)
    cr_day = np.where(cr_slot >= 0, grid.slot_day[np.maximum(cr_slot, 0)], -1)
    is_open = np.zeros(len(cr), bool)
    if len(cr):
        dd = np.maximum(cr_day, 0)
        is_open = (grid.day_open[dd] >= 0) & (cr.ts >= grid.day_open[dd]) & (cr.ts < grid.day_close[dd])
    count_outside = np.array([m.staff.count_outside_hours for m in metas], bool)
    counted = (cr_slot >= 0) & ~cr_staff & (is_open | count_outside[cr.store])
    entrance = counted & (cr.role == ENTRANCE)
    inbound, outbound = entrance & cr.inbound, entrance & ~cr.inbound
    passby = (cr_slot >= 0) & (cr.role == PASSBY)
    hourly = {
        "visitors": _sum_by(cr_slot[inbound], n_sl, cr.count[inbound]),
        "exits": _sum_by(cr_slot[outbound], n_sl, cr.count[outbound]),
        "passersby": _sum_by(cr_slot[passby], n_sl, cr.count[passby]),
    }
    return Traffic(Columns(hourly=hourly), entrance, cr_day)


def occupancy_stage(raw: RawData, grid: Grid, traffic: Traffic, cov: Coverage) -> Columns:
    """Average and peak people inside over the covered opening minutes, corrected to 0 at closing."""
    cr = raw.crossings
    delta = np.where(cr.inbound, cr.count, -cr.count).astype(np.float64)
    sel = traffic.entrance & (traffic.day >= 0)
    minute_day, minute_start, occ = occupancy_minutes(
        grid.day_open, grid.day_close, traffic.day[sel], cr.ts[sel], delta[sel]
    )
    minute_slot = grid.slot_of(grid.day_store[minute_day], minute_start)
    ok = (minute_slot >= 0) & cov.slot[np.maximum(minute_slot, 0)]
    columns = Columns()
    for cols, unit, size in (
        (columns.hourly, minute_slot[ok], grid.n_slots),
        (columns.daily, minute_day[ok], grid.n_days),
    ):
        cols["occupancy_avg"], cols["occupancy_max"] = _mean_and_max(unit, occ[ok], size)
    return columns


def _mean_and_max(unit: np.ndarray, values: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    n = _sum_by(unit, size)
    highest = np.full(size, -np.inf)
    np.maximum.at(highest, unit, values)
    highest[n == 0] = np.nan
    return safe_ratio(_sum_by(unit, size, values), n), highest


def wifi_stage(raw: RawData, grid: Grid, metas: list[StoreMeta], cov: Coverage) -> Columns:
    """Wi-Fi sessions without staff devices: visits vs walk-bys, visit duration, repeat visitors."""
    wf, n_sl, n_dy = raw.wifi, grid.n_slots, grid.n_days
    wf_slot = grid.slot_of(wf.store, wf.ts)
    min_hours = np.array([m.staff.wifi_min_hours_per_day or 0 for m in metas], np.int64)
    min_days = np.array([m.staff.wifi_min_days for m in metas], np.int64)
    # one id per physical device across key rotations, for staff devices, sessions and repeats
    wf_device = link_identities(wf.device_hash, wf.prev_hash)
    wf_staff = staff_devices(wf.store, wf_device, wf_slot, grid.slot_day, min_hours, min_days)
    gap = np.array([int(m.wifi.session_gap_s * S_NS) for m in metas], np.int64)
    keep = ~wf_staff & (wf_slot >= 0)
    ses = wifi_sessions(wf.store[keep], wf_device[keep], wf.ts[keep], wf.rssi[keep], wf.randomized[keep], gap)
    visit_min_ns = np.array([int(m.wifi.visit_min_s * S_NS) for m in metas], np.int64)
    visit_rssi = np.array([m.wifi.visit_min_rssi for m in metas], np.int64)
    ses_visit = (ses.end - ses.start >= visit_min_ns[ses.store]) & (ses.max_rssi >= visit_rssi[ses.store])
    ses_slot = grid.slot_of(ses.store, ses.start)
    ses_day = grid.slot_day[np.maximum(ses_slot, 0)]
    v_sel = (ses_slot >= 0) & ses_visit
    v_cov = v_sel & cov.slot[np.maximum(ses_slot, 0)]
    durations = ses.duration_s
    hourly_unit, daily_unit = np.where(v_sel, ses_slot, -1), np.where(v_cov, ses_day, -1)
    wifi_visitors, repeat_visitors = _repeat_visitors(ses, v_sel, v_cov, ses_day, grid)
    return Columns(
        hourly={
            "wifi_visits": _sum_by(ses_slot[v_sel], n_sl),
            "wifi_walkbys": _sum_by(ses_slot[(ses_slot >= 0) & ~ses_visit], n_sl),
            "visit_duration_median_s": _median_by(ses_slot[v_sel], durations[v_sel], n_sl),
        },
        daily={
            "visit_duration_median_s": _median_by(ses_day[v_cov], durations[v_cov], n_dy),
            "wifi_visitors": wifi_visitors,
            "repeat_visitors": repeat_visitors,
        },
        hourly_samples={"visit_duration_median_s": (hourly_unit, durations)},
        daily_samples={"visit_duration_median_s": (daily_unit, durations)},
    )


def _repeat_visitors(
    ses: Sessions, visit: np.ndarray, counted: np.ndarray, ses_day: np.ndarray, grid: Grid
) -> tuple[np.ndarray, np.ndarray]:
    """Per day: distinct devices (randomized MACs left out) with a ``counted`` visit, one in a
    covered hour like the day's ``wifi_visits``, and those of them with any visit on an earlier day.
    The earlier visit counts whether its hour was covered or not: the 30-day look-back is read
    without heartbeats, and a re-run of any window must find the same history."""
    sel = visit & ~ses.randomized
    store, device, ordinal = ses.store[sel], ses.device[sel], grid.day_ordinal[ses_day[sel]]
    rkeys, is_repeat = repeat_flags(store, device, ordinal)
    if rkeys.shape[1]:
        span, width = int(ordinal.max() - ordinal.min()) + 1, int(device.max()) + 1

        def code(s: np.ndarray, d: np.ndarray, o: np.ndarray) -> np.ndarray:
            flat: np.ndarray = (s.astype(np.int64) * width + d) * span + (o - ordinal.min())
            return flat

        c = counted[sel]
        keep = np.isin(code(rkeys[0], rkeys[1], rkeys[2]), code(store[c], device[c], ordinal[c]))
        rkeys, is_repeat = rkeys[:, keep], is_repeat[keep]
    # day index of each (store, ordinal): days of one store are consecutive in the grid
    day_lookup = {
        (int(s), int(o)): i for i, (s, o) in enumerate(zip(grid.day_store, grid.day_ordinal, strict=True))
    }
    rday = (
        np.array([day_lookup[(int(s), int(o))] for s, o in zip(rkeys[0], rkeys[2], strict=True)], np.int64)
        if rkeys.shape[1]
        else np.zeros(0, np.int64)
    )
    return _sum_by(rday, grid.n_days), _sum_by(rday[is_repeat], grid.n_days)


def pos_stage(raw: RawData, grid: Grid) -> Columns:
    """POS transactions, those of them that carry an amount (``PRICED``) and their revenue per slot."""
    ps = raw.pos
    ps_slot = grid.slot_of(ps.store, ps.ts)
    ok = ps_slot >= 0
    has_amount = ok & ~np.isnan(ps.amount)
    return Columns(
        hourly={
            "transactions": _sum_by(ps_slot[ok], grid.n_slots),
            PRICED: _sum_by(ps_slot[has_amount], grid.n_slots),
            "revenue": _sum_by(ps_slot[has_amount], grid.n_slots, ps.amount[has_amount]),
        }
    )


def sources_available(raw: RawData, grid: Grid, metas: list[StoreMeta]) -> dict[str, np.ndarray]:
    """Per source of the KPI table, per day of the grid: whether the store has that input. It has
    it on a day when the source has data at the store in the ``REPEAT_WINDOW_DAYS`` days ending with
    that day (inside the look-back the job reads Wi-Fi, POS and passby crossings for, also for the
    context day before the window): decided per day, so a day finds the same answer in any window
    it is run in. Configured passby lines count on every day."""
    cr, ps = raw.crossings, raw.pos
    passby, priced = cr.role == PASSBY, ~np.isnan(ps.amount)
    configured = np.array([bool(m.passby_lines) for m in metas], bool)
    return {
        "camera": np.ones(grid.n_days, bool),
        "passby": configured[grid.day_store] | _seen_lately(grid, cr.store[passby], cr.ts[passby]),
        "wifi": _seen_lately(grid, raw.wifi.store, raw.wifi.ts),
        "pos": _seen_lately(grid, ps.store, ps.ts),
        "revenue": _seen_lately(grid, ps.store[priced], ps.ts[priced]),
    }


def _seen_lately(grid: Grid, store: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Per day of the grid: a record of its store in the REPEAT_WINDOW_DAYS days ending with it."""
    slot = grid.slot_of(store, ts)
    per_day = _sum_by(grid.slot_day[slot[slot >= 0]], grid.n_days)
    running = np.r_[0.0, np.cumsum(per_day)]
    day = np.arange(grid.n_days)
    # a store's days are consecutive and in date order in the grid: stop at its first one
    first_of_store = np.searchsorted(grid.day_store, grid.day_store)
    since = np.maximum(day - (REPEAT_WINDOW_DAYS - 1), first_of_store)
    seen: np.ndarray = running[day + 1] - running[since] > 0  # typed: Any in numpy's stubs
    return seen


# --------------------------------------------------------------------------- from the KPI table


def _period_columns(
    cols: Columns, grid: Grid, cov: Coverage, available: tuple[dict[str, np.ndarray], dict[str, np.ndarray]]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every core KPI per slot and per day (and the ``PRICED`` part the rollup needs): summed KPIs
    add up the covered hours of a day, derived ones follow from their parts, and a store without a
    KPI's source on that day (``available``: per slot, per day) has none (NaN)."""
    cov_slots = np.flatnonzero(cov.slot)
    day_of_slot = grid.slot_day[cov_slots]
    daily = dict(cols.daily)
    for name in (*(k.name for k in core_kpis("daily") if isinstance(k.made, Summed)), PRICED):
        daily[name] = _sum_by(day_of_slot, grid.n_days, cols.hourly[name][cov_slots])
    hourly = _finished(core_kpis("hourly"), cols.hourly, available[0])
    return hourly, _finished(core_kpis("daily"), daily, available[1])


def _finished(
    table: tuple[Kpi, ...], parts: dict[str, np.ndarray], available: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The table's columns from ``parts`` (``PRICED`` kept for the rollup's revenue ratios), absent
    where their source is not ``available`` (per unit)."""
    cols = derive(table, parts) | {PRICED: parts[PRICED]}
    # transactions without any amount have no revenue: absent, not 0
    unpriced = (cols["transactions"] > 0) & (cols[PRICED] == 0)
    cols["revenue"] = np.where(unpriced, np.nan, cols["revenue"])
    blank_unavailable(cols, available)
    return cols


def derive(table: tuple[Kpi, ...], parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The columns of ``table``, in its order: derived KPIs from ``parts``, the others as given."""
    return {k.name: _made_from(k, parts.__getitem__) for k in table}


def _made_from(k: Kpi, part: Callable[[str], np.ndarray]) -> np.ndarray:
    if isinstance(k.made, Ratio):
        den = part(k.made.den)
        if k.source == "revenue":
            den = den * _priced_share(part)
        return safe_ratio(part(k.made.num), den)
    if isinstance(k.made, Excess):
        excess: np.ndarray = np.maximum(part(k.made.a) - part(k.made.b), 0)  # typed: Any in numpy's stubs
        return excess
    return part(k.name)


def _priced_share(part: Callable[[str], np.ndarray]) -> np.ndarray:
    """The share of the transactions that carry an amount (1 without transactions). Revenue sums
    those only, so a revenue ratio's denominator is scaled to them: ATV = revenue / priced
    transactions, sales per visitor = ATV x conversion (revenue / visitors when all are priced)."""
    transactions = part("transactions")
    share: np.ndarray = np.where(transactions == 0, 1.0, safe_ratio(part(PRICED), transactions))
    return share


def blank_unavailable(cols: dict[str, np.ndarray], available: dict[str, np.ndarray]) -> None:
    """A store without passby lines / Wi-Fi sensors / POS data (``available``: per unit of the
    columns) has no such KPIs (absent, not 0)."""
    for k in kpis():
        if k.name in cols and k.source in available:
            cols[k.name] = np.where(available[k.source], cols[k.name], np.nan)


def _store_points(
    measurement: str,
    raw: RawData,
    store_of: np.ndarray,
    ts: np.ndarray,
    cols: dict[str, np.ndarray],
    emit: np.ndarray,
) -> list[Point]:
    idx = np.flatnonzero(emit)
    labels = raw.stores.labels
    tags = [{"store": labels[s]} for s in store_of[idx]]
    return _points(measurement, tags, ts[idx], {k: v[idx] for k, v in cols.items() if k != PRICED})


# --------------------------------------------------------------------------- rollup over all stores


@dataclass
class RollupUnits:
    """How the stores' units (slots or days) of one period map onto the rollup's units."""

    emit: np.ndarray  # per store unit: goes into the rollup
    index: np.ndarray  # per store unit: its rollup unit
    ts: np.ndarray  # per rollup unit: its time


@dataclass
class Rollup:
    hourly: RollupUnits
    daily: RollupUnits


def rollup_units(grid: Grid, config: StoresConfig, cov: Coverage) -> Rollup:
    """UTC hours, and calendar days stamped at midnight in the rollup time zone."""
    hour_of_slot = grid.slot_start // HOUR_NS
    hours, slot_idx = np.unique(hour_of_slot, return_inverse=True)
    days, day_idx = np.unique(grid.day_ordinal, return_inverse=True)
    tz = ZoneInfo(config.rollup_timezone)
    # The hourly rollup covers the UTC hours of the whole emitted range of all stores; its inputs
    # include the stores' context-day slots, so re-running any window rewrites the same values.
    start = grid.emit_start_ns - grid.emit_start_ns % HOUR_NS
    hour_in = cov.slot & (hour_of_slot * HOUR_NS >= start) & (hour_of_slot * HOUR_NS < grid.emit_end_ns)
    day_ts = np.array(
        [
            datetime_to_ns(
                datetime.combine(date.fromordinal(int(o)), datetime.min.time(), tz).astimezone(UTC)
            )
            for o in days
        ],
        np.int64,
    )
    return Rollup(
        hourly=RollupUnits(hour_in, slot_idx, hours * HOUR_NS),
        daily=RollupUnits(grid.day_emit & (cov.day_hours > 0), day_idx, day_ts),
    )


def _rollup(
    measurement: str,
    cols: dict[str, np.ndarray],
    samples: dict[str, tuple[np.ndarray, np.ndarray]],
    units: RollupUnits,
    available: dict[str, np.ndarray],
) -> list[Point]:
    """Sum the stores' emitted units into the ``store=all`` rollup; ratios from summed parts, over the
    stores that have the KPI's source (``available``: per store unit; e.g. capture rate only over
    stores with passby lines)."""
    n = len(units.ts)
    src = np.flatnonzero(units.emit)
    ri = units.index[src]

    def total(name: str, source: str | None = None) -> np.ndarray:
        v = cols[name][src]
        ok = ~np.isnan(v)
        if source is not None and source in available:
            ok &= available[source][src]
        s = _sum_by(ri[ok], n, v[ok])
        s[_sum_by(ri[ok], n) == 0] = np.nan
        return s

    res: dict[str, np.ndarray] = {}
    for k in kpis():
        if k.name not in cols:
            continue
        if k.derived:
            res[k.name] = _made_from(k, functools.partial(total, source=k.source))
        elif isinstance(k.made, Measured) and k.made.rollup == "median":
            unit, values = samples[k.name]
            sel = (unit >= 0) & units.emit[np.maximum(unit, 0)]
            res[k.name] = _median_by(units.index[unit[sel]], values[sel], n)
        elif isinstance(k.made, Summed) or (isinstance(k.made, Measured) and k.made.rollup == "sum"):
            res[k.name] = total(k.name)
    idx = np.flatnonzero(_sum_by(ri, n) > 0)
    return _points(
        measurement, [{"store": ALL_STORES}] * len(idx), units.ts[idx], {k: v[idx] for k, v in res.items()}
    )


# --------------------------------------------------------------------------- zones


def zones_stage(
    raw: RawData, grid: Grid, staff: Staff, cov: Coverage, roll: Rollup
) -> tuple[list[Point], list[Point]]:
    """Visits and dwell (median, p90) per store and zone, and pooled over stores per zone name; staff
    zones and staff tracks left out."""
    zv = raw.zone_visits
    zv_slot = grid.slot_of(zv.store, zv.ts)
    zv_staff = staff.in_staff_zone | staff.tracks((zv.store, zv.device, zv.track), zv.enter, zv.store)
    ok = (zv_slot >= 0) & ~zv_staff & cov.slot[np.maximum(zv_slot, 0)]
    visits = _ZoneVisits(zv_slot[ok], zv.zone[ok].astype(np.int64), zv.dwell_s[ok])
    hourly_units = _ZoneUnits(
        visits.slot, grid.slot_emit, roll.hourly.emit, grid.slot_start, grid.slot_store, roll.hourly
    )
    daily_units = _ZoneUnits(
        grid.slot_day[visits.slot], grid.day_emit, grid.day_emit, grid.day_start, grid.day_store, roll.daily
    )
    hourly = [
        p
        for pooled in (False, True)
        for p in _zone_points(KPI_ZONE_HOURLY, raw, visits, hourly_units, pooled)
    ]
    daily = [
        p for pooled in (False, True) for p in _zone_points(KPI_ZONE_DAILY, raw, visits, daily_units, pooled)
    ]
    return hourly, daily


@dataclass
class _ZoneVisits:
    slot: np.ndarray
    zone: np.ndarray
    dwell_s: np.ndarray


@dataclass
class _ZoneUnits:
    of_visit: np.ndarray  # per visit: its slot or day
    emit: np.ndarray
    pooled_emit: np.ndarray  # which units go into the pooled (store=all) zone values
    ts: np.ndarray
    store: np.ndarray
    roll: RollupUnits


def _zone_points(
    measurement: str, raw: RawData, v: _ZoneVisits, units: _ZoneUnits, pooled: bool
) -> list[Point]:
    n_z = max(len(raw.zones.labels), 1)
    e_ok = (units.pooled_emit if pooled else units.emit)[units.of_visit]
    unit = units.roll.index[units.of_visit[e_ok]] if pooled else units.of_visit[e_ok]
    keys, counts, qs = grouped_quantiles(unit * n_z + v.zone[e_ok], v.dwell_s[e_ok], (0.5, 0.9))
    u, z = keys // n_z, keys % n_z
    labels, zone_labels = raw.stores.labels, raw.zones.labels
    tags = [
        {"store": ALL_STORES if pooled else labels[units.store[a]], "zone": zone_labels[b]}
        for a, b in zip(u, z, strict=True)
    ]
    ts = units.roll.ts[u] if pooled else units.ts[u]
    columns = {"visits": counts.astype(np.float64), "dwell_median_s": qs[:, 0], "dwell_p90_s": qs[:, 1]}
    return _points(measurement, tags, ts, columns)


def _median_by(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    out = np.full(size, np.nan)
    keys, _, qs = grouped_quantiles(index.astype(np.int64), values, (0.5,))
    out[keys] = qs[:, 0]
    return out
