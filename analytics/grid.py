"""Local-time hour and day buckets per store, DST-safe, and vectorised bucketing of timestamps.

Each store gets the UTC instants at which its local hours start (found with zoneinfo, so a 23- or
25-hour day and half-hour offsets are handled), laid end to end in one array of *slots*. Events are
bucketed with one ``np.searchsorted`` per time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from footfall.analytics.config import StoreMeta
from footfall.contracts.measurements import datetime_to_ns

HOUR_NS = 3_600_000_000_000
MINUTE_NS = 60_000_000_000
DAY_NS = 24 * HOUR_NS
_STEP = timedelta(minutes=15)  # every UTC offset in use is a multiple of 15 minutes


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def local_hour_starts(first: date, last: date, tz: ZoneInfo) -> tuple[np.ndarray, list[datetime]]:
    """UTC ns of every local hour start from ``first`` 00:00 to ``last`` 24:00 (the end included)."""
    begin, stop = local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz)
    starts: list[datetime] = []
    t = begin
    while t < stop:
        local = t.astimezone(tz)
        if local.minute == 0 and local.second == 0:
            starts.append(local)
        t += _STEP
    bounds = np.array([datetime_to_ns(x) for x in starts] + [datetime_to_ns(stop)], dtype=np.int64)
    return bounds, starts


@dataclass
class Grid:
    """Hour slots and day slots of every store over a window of local dates.

    ``emit`` marks the slots inside the output window; earlier ones exist only as look-back for the
    Wi-Fi KPIs (repeat visitors, staff devices)."""

    n_stores: int
    slot_store: np.ndarray  # int32
    slot_start: np.ndarray  # int64 UTC ns
    slot_end: np.ndarray  # int64 UTC ns
    slot_day: np.ndarray  # int64 index into day arrays
    slot_emit: np.ndarray  # bool
    slot_local_hour: np.ndarray  # int8 wall-clock hour (a repeated hour at DST end appears twice)
    day_store: np.ndarray  # int32
    day_ordinal: np.ndarray  # int64 proleptic Gregorian ordinal of the local date
    day_start: np.ndarray  # int64 UTC ns of local midnight
    day_open: np.ndarray  # int64 UTC ns of opening; -1 when closed
    day_close: np.ndarray  # int64 UTC ns of closing; -1 when closed
    day_emit: np.ndarray  # bool
    store_offset: np.ndarray  # int64 first slot of each store
    tz_groups: list[tuple[np.ndarray, np.ndarray]]  # (store codes, hour bounds) per time zone
    read_start_ns: int  # first instant of the first context day (raw events are read from here)
    read_end_ns: int  # end of the last (context) day
    lookback_start_ns: int  # Wi-Fi sightings, POS and passby crossings are read from here
    emit_start_ns: int  # earliest local midnight of the first emitted day over the stores
    emit_end_ns: int  # latest local midnight after the last emitted day
    dates: tuple[date, date, int, int]  # build_grid's first, last, lookback_days, context_days

    @property
    def n_slots(self) -> int:
        return len(self.slot_start)

    def for_stores(self, metas: list[StoreMeta]) -> Grid:
        """The grid of the same dates over ``metas`` (e.g. its stores and some found in the data)."""
        return build_grid(metas, *self.dates)

    @property
    def n_days(self) -> int:
        return len(self.day_start)

    def slot_of(self, store: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Hour slot of each (store code, UTC ns) pair; -1 outside the grid."""
        out = np.full(len(ts), -1, np.int64)
        if len(ts) == 0:
            return out
        for codes, bounds in self.tz_groups:
            if len(self.tz_groups) == 1:
                sel: slice | np.ndarray = slice(None)
                s, t = store, ts
            else:
                sel = np.isin(store, codes)
                s, t = store[sel], ts[sel]
            idx = np.searchsorted(bounds, t, side="right") - 1
            ok = (idx >= 0) & (idx < len(bounds) - 1)
            out_part = np.where(ok, self.store_offset[s] + idx, -1)
            out[sel] = out_part
        return out


# The grid's hour-slot and day columns and their types: one array per store each, laid end to end.
_COLUMNS: dict[str, type] = {
    "slot_store": np.int32,
    "slot_start": np.int64,
    "slot_end": np.int64,
    "slot_day": np.int64,
    "slot_emit": bool,
    "slot_local_hour": np.int8,
    "day_store": np.int32,
    "day_ordinal": np.int64,
    "day_start": np.int64,
    "day_open": np.int64,
    "day_close": np.int64,
    "day_emit": bool,
}


def build_grid(
    metas: list[StoreMeta], first: date, last: date, lookback_days: int = 0, context_days: int = 0
) -> Grid:
    """Slots for local dates ``first - lookback_days`` .. ``last + context_days`` of every store (codes =
    list order); only ``first`` .. ``last`` are emitted. Context days let the ``store=all`` hourly
    rollup of the whole emitted UTC range include stores in other time zones."""
    begin = first - timedelta(days=max(lookback_days, context_days))
    by_tz: dict[str, list[int]] = {}
    for code, meta in enumerate(metas):
        by_tz.setdefault(meta.timezone, []).append(code)
    tz_bounds: dict[str, tuple[np.ndarray, list[datetime]]] = {
        name: local_hour_starts(begin, last + timedelta(days=context_days), ZoneInfo(name)) for name in by_tz
    }
    parts: dict[str, list[np.ndarray]] = {name: [] for name in _COLUMNS}
    offsets = np.zeros(len(metas) + 1, np.int64)
    n_days = 0
    for code, meta in enumerate(metas):
        store = _store_columns(code, meta, *tz_bounds[meta.timezone], n_days, (first, last))
        for name, array in store.items():
            parts[name].append(array)
        offsets[code + 1] = offsets[code] + len(store["slot_start"])
        n_days += len(store["day_start"])
    col: dict[str, np.ndarray] = {
        name: np.concatenate(arrays).astype(_COLUMNS[name]) if arrays else np.zeros(0, _COLUMNS[name])
        for name, arrays in parts.items()
    }
    windows = _windows([ZoneInfo(name) for name in by_tz], [b for b, _ in tz_bounds.values()])
    after_last = last + timedelta(days=1)
    return Grid(
        n_stores=len(metas),
        slot_store=col["slot_store"],
        slot_start=col["slot_start"],
        slot_end=col["slot_end"],
        slot_day=col["slot_day"],
        slot_emit=col["slot_emit"],
        slot_local_hour=col["slot_local_hour"],
        day_store=col["day_store"],
        day_ordinal=col["day_ordinal"],
        day_start=col["day_start"],
        day_open=col["day_open"],
        day_close=col["day_close"],
        day_emit=col["day_emit"],
        store_offset=offsets,
        tz_groups=[(np.array(codes, np.int32), tz_bounds[name][0]) for name, codes in by_tz.items()],
        read_start_ns=windows.first_midnight(first - timedelta(days=context_days)),
        read_end_ns=windows.read_end_ns,
        lookback_start_ns=windows.lookback_start_ns,
        emit_start_ns=windows.first_midnight(first),
        emit_end_ns=windows.last_midnight(after_last),
        dates=(first, last, lookback_days, context_days),
    )


def _store_columns(
    code: int,
    meta: StoreMeta,
    bounds: np.ndarray,
    starts: list[datetime],
    first_day: int,
    emitted: tuple[date, date],
) -> dict[str, np.ndarray]:
    """One store's hour slots (the hour ``bounds`` and local ``starts`` of its time zone) and local
    days, its days numbered from ``first_day``; ``emitted``: the first and last dates output."""
    dates = np.array([s.date().toordinal() for s in starts], np.int64)
    days, day_of_slot = np.unique(dates, return_inverse=True)
    opens, closes = _opening_ns(meta, days)
    low, high = (d.toordinal() for d in emitted)
    midnights = [datetime_to_ns(local_midnight(date.fromordinal(int(o)), meta.tz)) for o in days]
    return {
        "slot_store": np.full(len(starts), code, np.int32),
        "slot_start": bounds[:-1],
        "slot_end": bounds[1:],
        "slot_day": day_of_slot.reshape(-1) + first_day,
        "slot_emit": (dates >= low) & (dates <= high),
        "slot_local_hour": np.array([s.hour for s in starts], np.int8),
        "day_store": np.full(len(days), code, np.int32),
        "day_ordinal": days,
        "day_start": np.array(midnights, np.int64),
        "day_open": np.array(opens, np.int64),
        "day_close": np.array(closes, np.int64),
        "day_emit": (days >= low) & (days <= high),
    }


@dataclass(frozen=True)
class _Windows:
    """Instants that bound what is read, over every time zone of the stores (UTC when none)."""

    zones: list[ZoneInfo]
    read_end_ns: int  # end of the latest time zone's last day
    lookback_start_ns: int  # start of the earliest time zone's first day

    def first_midnight(self, day: date) -> int:
        return min(datetime_to_ns(local_midnight(day, tz)) for tz in self.zones)

    def last_midnight(self, day: date) -> int:
        return max(datetime_to_ns(local_midnight(day, tz)) for tz in self.zones)


def _windows(zones: list[ZoneInfo], bounds: list[np.ndarray]) -> _Windows:
    return _Windows(
        zones or [ZoneInfo("UTC")],
        max(int(b[-1]) for b in bounds) if bounds else 0,
        min(int(b[0]) for b in bounds) if bounds else 0,
    )


def _opening_ns(meta: StoreMeta, ordinals: np.ndarray) -> tuple[list[int], list[int]]:
    """UTC ns of opening and closing on each local day (-1 on a closed day)."""
    tz = meta.tz
    opens, closes = [], []
    for ordinal in ordinals:
        d = date.fromordinal(int(ordinal))
        hours = meta.hours_on(d)
        if hours is None:
            opens.append(-1)
            closes.append(-1)
            continue
        midnight_local = datetime(d.year, d.month, d.day, tzinfo=tz)
        opens.append(_wall_ns(midnight_local, hours[0], tz))
        closes.append(_wall_ns(midnight_local, hours[1], tz))
    return opens, closes


def _wall_ns(midnight_local: datetime, minutes: int, tz: ZoneInfo) -> int:
    """UTC ns of a local wall-clock time (minutes after midnight), resolved in the local calendar so
    a DST change earlier that day does not shift it."""
    if minutes >= 1440:
        nxt = (midnight_local + timedelta(days=1)).date()
        return datetime_to_ns(local_midnight(nxt, tz))
    wall = midnight_local.replace(hour=minutes // 60, minute=minutes % 60)
    return datetime_to_ns(wall.astimezone(UTC))
