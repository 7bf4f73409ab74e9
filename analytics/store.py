"""The I/O edge: one ``EventStore`` contract, two implementations.

- ``InfluxStore``: InfluxDB through the v1-compatible HTTP API (InfluxQL ``/query`` with
  ``epoch=ns``, read in time chunks and grouped by tags so tag strings travel once per series;
  writes as line protocol) via ``footfall.contracts.influx.InfluxClient``.
- ``DuckDBStore``: an embedded DuckDB file (no server), one table per measurement with the same
  tags, fields and point identity (tags + time: writing the same point again replaces it).

Both read the raw measurements of a window into ``RawData`` and write points (raw events, POS, KPIs).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from footfall.analytics.config import StoresConfig
from footfall.analytics.frames import ENTRANCE, NO_TRACK, PASSBY, RawData, RawDataBuilder
from footfall.contracts.influx import InfluxClient, influxql_string
from footfall.contracts.measurements import (
    CROSSING,
    HEARTBEAT,
    POS_TRANSACTION,
    WIFI,
    ZONE_VISIT,
    FieldValue,
    Point,
    escape_key,
    format_field,
    measurements,
)
from footfall.contracts.measurements import (
    measurement as declaration,
)

DAY_NS = 86_400_000_000_000
PASSBY_SUMS = "crossing:passby-sums"  # the name of the pre-aggregated crossing query
WRITE_BATCH = 20_000
# Rows per chunk of a streamed (chunked=true) InfluxQL answer; None = one JSON document.
READ_CHUNK_ROWS: int | None = 50_000


_SQL_TYPES = {"int": "BIGINT", "float": "DOUBLE", "str": "VARCHAR", "bool": "BOOLEAN"}


def schema(name: str) -> tuple[tuple[str, ...], dict[str, str]]:
    """(tag columns, {field: SQL type}) of one measurement, from its declaration in the contracts."""
    m = declaration(name)
    return m.tags, {f: _SQL_TYPES[t] for f, t in m.fields.items()}


class EventStore(Protocol):
    """What the job needs from a database. ``start``/``end`` are UTC nanoseconds, end exclusive.

    ``read_raw`` reads Wi-Fi sightings, POS transactions and passby crossings from the look-back
    ``wifi_start_ns`` on (repeat visitors and staff devices; whether a store has each source, see
    ``core.sources_available``), the rest from ``start_ns``."""

    def write_points(self, points: Iterable[Point]) -> int: ...

    def write_columns(self, measurement: str, columns: Mapping[str, np.ndarray]) -> int: ...

    def read_raw(
        self,
        config: StoresConfig,
        start_ns: int,
        end_ns: int,
        *,
        wifi_start_ns: int | None = None,
        store: str | None = None,
    ) -> RawData: ...

    def read_points(
        self, measurement: str, start_ns: int, end_ns: int, *, store: str | None = None
    ) -> list[Point]: ...

    def store_ids(self) -> list[str]: ...


def points_to_columns(points: Sequence[Point]) -> dict[str, dict[str, np.ndarray]]:
    """Group points by measurement into columns (tags, fields and ``time``); absent = None."""
    by_m: dict[str, list[Point]] = {}
    for p in points:
        by_m.setdefault(p.measurement, []).append(p)
    out: dict[str, dict[str, np.ndarray]] = {}
    for m, pts in by_m.items():
        tag_names, field_types = schema(m)
        cols: dict[str, np.ndarray] = {
            t: np.array([p.tags.get(t, "") for p in pts], dtype=object) for t in tag_names
        }
        for f in field_types:
            cols[f] = np.array([p.fields.get(f) for p in pts], dtype=object)
        cols["time"] = np.array([p.ts_ns for p in pts], np.int64)
        out[m] = cols
    return out


def _lines_from_columns(measurement: str, columns: Mapping[str, np.ndarray]) -> Iterable[str]:
    """Line protocol from columns, each value formatted and escaped as ``Point.to_line`` does."""
    tag_names, field_types = schema(measurement)
    tags = [t for t in tag_names if t in columns]
    fields = [f for f in field_types if f in columns]
    tag_cols = [columns[t] for t in tags]
    field_cols = [columns[f] for f in fields]
    kinds = [field_types[f] for f in fields]
    for i, ts in enumerate(columns["time"].tolist()):
        tag_part = "".join(f",{t}={escape_key(c[i])}" for t, c in zip(tags, tag_cols, strict=True) if c[i])
        parts = []
        for f, c, kind in zip(fields, field_cols, kinds, strict=True):
            v = c[i]
            if v is None or (isinstance(v, float) and v != v):
                continue
            parts.append(f"{f}={format_field(_as_sql_kind(v, kind))}")
        if parts:
            yield f"{measurement}{tag_part} {','.join(parts)} {ts}"


def _as_sql_kind(value: Any, sql_type: str) -> FieldValue:
    """A column's value as the Python type its declared field type is written as."""
    if sql_type == "VARCHAR":
        return str(value)
    if sql_type == "BIGINT":
        return int(value)
    if sql_type == "BOOLEAN":
        return bool(value)
    return float(value)


# --------------------------------------------------------------------------- InfluxDB


class InfluxStore:
    def __init__(
        self, client: InfluxClient, *, chunk_ns: int = DAY_NS, workers: int = 3, passby_sums: bool = True
    ) -> None:
        """``passby_sums=False`` reads passby crossings row by row too (the same KPIs, slower; for
        comparison)."""
        self.client = client
        self.chunk_ns = chunk_ns
        self.workers = workers
        self.passby_sums = passby_sums
        self._local = threading.local()

    def write_lines(self, lines: Iterable[str]) -> int:
        batch: list[str] = []
        n = 0
        for line in lines:
            batch.append(line)
            if len(batch) >= WRITE_BATCH:
                self.client.write_lines(batch)
                n += len(batch)
                batch = []
        self.client.write_lines(batch)
        return n + len(batch)

    def write_points(self, points: Iterable[Point]) -> int:
        return self.write_lines(p.to_line() for p in points)

    def write_columns(self, measurement: str, columns: Mapping[str, np.ndarray]) -> int:
        return self.write_lines(_lines_from_columns(measurement, columns))

    def _chunks(self, start_ns: int, end_ns: int) -> Iterable[tuple[int, int]]:
        t = start_ns
        while t < end_ns:
            yield t, min(t + self.chunk_ns, end_ns)
            t += self.chunk_ns

    def _select(
        self, what: str, measurement: str, a: int, b: int, store: str | None, group: str, extra: str = ""
    ) -> list[Any]:
        where = f"time >= {a} AND time < {b}"
        if store:
            where += f' AND "store" = {influxql_string(store)}'
        if extra:
            where += f" AND ({extra})"
        return self._client().query(
            f'SELECT {what} FROM "{measurement}" WHERE {where} GROUP BY {group}', chunk_size=READ_CHUNK_ROWS
        )

    def _client(self) -> InfluxClient:
        # requests sessions are not shared between threads: one client copy per reader thread
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = dataclasses.replace(self.client)
        return client

    # query name -> (measurement, selected fields, GROUP BY)
    _RAW_QUERIES: ClassVar[dict[str, tuple[str, str, str]]] = {
        # Entrance crossings row by row (staff tracks, opening hours and occupancy need each one);
        # passby crossings only as 15-minute sums: passersby has no per-track rule, and every time
        # zone offset is a multiple of 15 min, so a bucket lies inside one local hour.
        CROSSING: (CROSSING, '"count","track_id"', '"store","device","line","kind","direction"'),
        PASSBY_SUMS: (
            CROSSING,
            'sum("count")',
            'time(15m),"store","device","line","kind","direction" fill(none)',
        ),
        ZONE_VISIT: (ZONE_VISIT, '"enter_ns","dwell_s","track_id"', '"store","device","zone"'),
        # 15-min buckets are enough for coverage
        HEARTBEAT: (HEARTBEAT, 'count("fps")', 'time(15m),"store" fill(none)'),
        POS_TRANSACTION: (POS_TRANSACTION, '"amount","transaction_id"', '"store"'),
        WIFI: (WIFI, '"device_hash","prev_device_hash","rssi","randomized"', '"store"'),
    }

    def read_raw(
        self,
        config: StoresConfig,
        start_ns: int,
        end_ns: int,
        *,
        wifi_start_ns: int | None = None,
        store: str | None = None,
    ) -> RawData:
        """Day-sized queries per measurement, fetched by ``workers`` threads (InfluxDB answers
        one query per core) and decoded here in order."""
        lookback = start_ns if wifi_start_ns is None else wifi_start_ns
        jobs = [
            (name, a, z)
            for name in self._RAW_QUERIES
            for a, z in self._chunks(*self._span(name, start_ns, end_ns, lookback))
        ]
        entrance_filter = _maybe_entrance_filter(config) if self.passby_sums else ""

        def fetch(job: tuple[str, int, int]) -> tuple[str, list[Any]]:
            name, a, z = job
            measurement, what, group = self._RAW_QUERIES[name]
            extra = entrance_filter if name == CROSSING else ""
            return name, self._select(what, measurement, a, z, store, group, extra)

        b = RawDataBuilder(config)
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for name, series in pool.map(fetch, jobs):
                if series:
                    _decode(b, name, series, all_roles=not self.passby_sums)
        return b.build()

    def _span(self, name: str, start_ns: int, end_ns: int, lookback_ns: int) -> tuple[int, int]:
        """The range one raw query reads: Wi-Fi, POS and passby sums from the look-back. Without
        passby sums the window's passby crossings come row by row with the others, so only the
        look-back's are summed (they only say whether the store has passby lines)."""
        if name in (WIFI, POS_TRANSACTION):
            return lookback_ns, end_ns
        if name == PASSBY_SUMS:
            return lookback_ns, end_ns if self.passby_sums else min(start_ns, end_ns)
        return start_ns, end_ns

    def read_points(
        self, measurement: str, start_ns: int, end_ns: int, *, store: str | None = None
    ) -> list[Point]:
        out: list[Point] = []
        for s in self._select("*", measurement, start_ns, end_ns, store, "*"):
            names = s.columns[1:]
            for row in s.values:
                fields: dict[str, FieldValue] = {
                    k: v for k, v in zip(names, row[1:], strict=True) if v is not None
                }
                out.append(Point(measurement, dict(s.tags), fields, int(row[0])))
        return sorted(out, key=lambda p: (p.ts_ns, sorted(p.tags.items())))

    def store_ids(self) -> list[str]:
        series = self.client.query('SHOW TAG VALUES WITH KEY = "store"', epoch=None)
        return sorted({row[1] for s in series for row in s.values} - {"all"})


def _maybe_entrance_filter(config: StoresConfig) -> str:
    """An InfluxQL condition that keeps every crossing that can be an entrance crossing of some store
    (the event's kind says entrance, or its line is configured as an entrance line somewhere) and
    drops the rest, which are passby crossings (read as sums) or ignored lines. Rows it lets through
    that are not entrances are dropped by role when decoded."""
    lines = sorted({line for meta in config.stores for line in (meta.entrance_lines or [])})
    return " OR ".join(["\"kind\" != 'passby'", *(f'"line" = {influxql_string(line)}' for line in lines)])


def _decode(b: RawDataBuilder, name: str, series: list[Any], *, all_roles: bool = False) -> None:
    if name in (CROSSING, PASSBY_SUMS):
        combo, cols = _stack(series, 3 if name == CROSSING else 2)
        combos = [
            (s.tags["store"], s.tags["device"], s.tags["line"], s.tags["kind"], s.tags["direction"])
            for s in series
        ]
        if name == CROSSING:
            b.add_crossings(
                combos=combos,
                combo=combo,
                ts=_ints(cols[0]),
                count=_ints(cols[1], 1),
                track=_ints(cols[2], NO_TRACK),
                only_role=None if all_roles else ENTRANCE,
            )
        else:  # one row per 15-minute bucket: its start, the bucket's total, no track
            b.add_crossings(
                combos=combos,
                combo=combo,
                ts=_ints(cols[0]),
                count=_ints(cols[1]),
                track=np.full(len(combo), NO_TRACK, np.int64),
                only_role=PASSBY,
            )
    elif name == ZONE_VISIT:
        combo, cols = _stack(series, 4)
        b.add_zone_visits(
            combos=[(s.tags["store"], s.tags["device"], s.tags["zone"]) for s in series],
            combo=combo,
            ts=_ints(cols[0]),
            enter=_ints(cols[1]),
            dwell_s=_floats(cols[2]),
            track=_ints(cols[3], NO_TRACK),
        )
    else:
        for s in series:
            _, cols = _stack([s], len(s.columns))
            if name == HEARTBEAT:
                b.add_heartbeats(store=s.tags["store"], ts=_ints(cols[0]))
            elif name == POS_TRANSACTION:
                b.add_pos(store=s.tags["store"], ts=_ints(cols[0]), amount=_floats(cols[1]))
            else:
                # by name: InfluxDB leaves out a selected field that no point of the range has
                col = dict(zip(s.columns, cols, strict=True))
                n = len(cols[0])
                b.add_wifi(
                    store=s.tags["store"],
                    ts=_ints(col["time"]),
                    device_hash=col["device_hash"],
                    rssi=_ints(col["rssi"]),
                    randomized=col["randomized"].astype(bool),
                    prev_hash=col.get("prev_device_hash", np.full(n, None, dtype=object)),
                )


def _stack(series: Sequence[Any], n_cols: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Concatenate the rows of several series: (series index per row, columns as object arrays).

    One 2-D object array and column slices: numpy's C loop instead of transposing in Python (3x)."""
    sizes = [len(s.values) for s in series]
    combo = np.repeat(np.arange(len(series)), sizes)
    rows = [row for s in series for row in s.values]
    if not rows:
        return combo, [np.zeros(0, object) for _ in range(n_cols)]
    table = np.empty((len(rows), n_cols), dtype=object)
    table[:] = rows
    return combo, [table[:, j] for j in range(n_cols)]


def _ints(values: np.ndarray, default: int = 0) -> np.ndarray:
    try:
        return values.astype(np.int64)
    except (TypeError, ValueError):  # None where a point lacks the field
        return np.where(values == None, default, values).astype(np.int64)  # noqa: E711 - elementwise


def _floats(values: np.ndarray) -> np.ndarray:
    return np.where(values == None, np.nan, values).astype(np.float64)  # noqa: E711 - elementwise


# --------------------------------------------------------------------------- DuckDB


class DuckDBStore:
    """An embedded DuckDB file with the InfluxDB measurements as tables (``time`` = UTC ns)."""

    def __init__(self, path: str | Path) -> None:
        import duckdb

        self.path = str(path)
        self.con = duckdb.connect(self.path)
        self._lock = threading.Lock()
        for declared in measurements():
            name, (tags, fields) = declared.name, schema(declared.name)
            cols = [f'"{t}" VARCHAR NOT NULL' for t in tags] + [f'"{f}" {typ}' for f, typ in fields.items()]
            key = ", ".join([f'"{t}"' for t in tags] + ['"time"'])
            self.con.execute(
                f'CREATE TABLE IF NOT EXISTS "{name}" ({", ".join(cols)}, '
                f'"time" BIGINT NOT NULL, PRIMARY KEY ({key}))'
            )
            # files made by an older version lack fields added since (e.g. wifi.prev_device_hash)
            for f, typ in fields.items():
                self.con.execute(f'ALTER TABLE "{name}" ADD COLUMN IF NOT EXISTS "{f}" {typ}')

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> DuckDBStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write_points(self, points: Iterable[Point]) -> int:
        n = 0
        for measurement, cols in points_to_columns(list(points)).items():
            n += self.write_columns(measurement, cols)
        return n

    def write_columns(self, measurement: str, columns: Mapping[str, np.ndarray]) -> int:
        """Upsert rows: a row with the same tags and time replaces the stored one (like InfluxDB)."""
        tags, fields = schema(measurement)
        n = len(columns["time"])
        if n == 0:
            return 0
        batch: dict[str, np.ndarray] = {}
        select = []
        for name in (*tags, *fields, "time"):
            col = columns.get(name)
            if col is None:
                select.append(f"'' AS \"{name}\"" if name in tags else f'NULL::{fields[name]} AS "{name}"')
                continue
            batch[name] = np.asarray(col)
            if batch[name].dtype.kind == "f" and name in fields:
                select.append(
                    f'CAST(CASE WHEN isnan("{name}") THEN NULL ELSE "{name}" END AS {fields[name]}) '
                    f'AS "{name}"'
                )
            elif name in fields:
                select.append(f'CAST("{name}" AS {fields[name]}) AS "{name}"')
            else:
                select.append(f'"{name}"')
        target = ", ".join(f'"{c}"' for c in (*tags, *fields, "time"))
        with self._lock:
            self.con.register("_batch", batch)
            try:
                self.con.execute(
                    # columns by name: a table migrated from an older file has its added ones last
                    f'INSERT OR REPLACE INTO "{measurement}" ({target}) '
                    f"SELECT {', '.join(select)} FROM _batch"
                )
            finally:
                self.con.unregister("_batch")
        return n

    def _where(self, a: int, b: int, store: str | None, prefix: str = "") -> tuple[str, list[Any]]:
        sql = f'{prefix}"time" >= ? AND {prefix}"time" < ?'
        params: list[Any] = [a, b]
        if store:
            sql += f' AND {prefix}"store" = ?'
            params.append(store)
        return sql, params

    def _coded(
        self,
        measurement: str,
        tags: tuple[str, ...],
        values: str,
        a: int,
        b: int,
        store: str | None,
        joins: str = "",
        group: str = "",
    ) -> tuple[list[tuple[str, ...]], dict[str, np.ndarray]]:
        where, params = self._where(a, b, store)
        m_where, _ = self._where(a, b, store, prefix="m.")
        tag_sql = ", ".join(f'"{t}"' for t in tags)
        combos = [
            tuple(r)
            for r in self.con.execute(
                f'SELECT DISTINCT {tag_sql} FROM "{measurement}" WHERE {where}', params
            ).fetchall()
        ]
        if not combos:
            return [], {}
        keys = {t: np.array([c[i] for c in combos], dtype=object) for i, t in enumerate(tags)}
        keys["_combo"] = np.arange(len(combos), dtype=np.int64)
        self.con.register("_combos", keys)
        try:
            data = self.con.execute(
                f'SELECT k._combo AS combo, {values} FROM "{measurement}" m '
                f"JOIN _combos k USING ({tag_sql}) {joins} WHERE {m_where} {group}",
                params,
            ).fetchnumpy()
        finally:
            self.con.unregister("_combos")
        return combos, {k: np.asarray(v) for k, v in data.items()}

    def read_raw(
        self,
        config: StoresConfig,
        start_ns: int,
        end_ns: int,
        *,
        wifi_start_ns: int | None = None,
        store: str | None = None,
    ) -> RawData:
        b = RawDataBuilder(config)
        lookback = start_ns if wifi_start_ns is None else wifi_start_ns
        with self._lock:
            self._read_crossings(b, start_ns, end_ns, store)
            self._read_passby_sums(b, lookback, start_ns, store)
            self._read_zone_visits(b, start_ns, end_ns, store)
            self._read_heartbeats(b, start_ns, end_ns, store)
            self._read_pos(b, lookback, end_ns, store)
            self._read_wifi(b, lookback, end_ns, store)
        return b.build()

    def _read_crossings(self, b: RawDataBuilder, start_ns: int, end_ns: int, store: str | None) -> None:
        """Crossings, their tag combinations coded once."""
        combos, d = self._coded(
            CROSSING,
            ("store", "device", "line", "kind", "direction"),
            '"time" AS ts, "count", coalesce(track_id, -1) AS track',
            start_ns,
            end_ns,
            store,
        )
        if combos:
            b.add_crossings(combos=combos, combo=d["combo"], ts=d["ts"], count=d["count"], track=d["track"])

    def _read_passby_sums(self, b: RawDataBuilder, start_ns: int, end_ns: int, store: str | None) -> None:
        """Passby crossings of the look-back before the window, as 15-minute sums like the InfluxDB
        reader's: they only say whether the store has passby lines."""
        combos, d = self._coded(
            CROSSING,
            ("store", "device", "line", "kind", "direction"),
            '("time" // 900000000000) * 900000000000 AS ts, sum("count")::BIGINT AS "count"',
            start_ns,
            end_ns,
            store,
            group="GROUP BY ALL",
        )
        if combos:
            track = np.full(len(d["ts"]), NO_TRACK, np.int64)
            b.add_crossings(
                combos=combos, combo=d["combo"], ts=d["ts"], count=d["count"], track=track, only_role=PASSBY
            )

    def _read_zone_visits(self, b: RawDataBuilder, start_ns: int, end_ns: int, store: str | None) -> None:
        """Zone visits, their tag combinations coded once."""
        combos, d = self._coded(
            ZONE_VISIT,
            ("store", "device", "zone"),
            '"time" AS ts, enter_ns, dwell_s, coalesce(track_id, -1) AS track',
            start_ns,
            end_ns,
            store,
        )
        if combos:
            b.add_zone_visits(
                combos=combos,
                combo=d["combo"],
                ts=d["ts"],
                enter=d["enter_ns"],
                dwell_s=d["dwell_s"],
                track=d["track"],
            )

    def _read_heartbeats(self, b: RawDataBuilder, start_ns: int, end_ns: int, store: str | None) -> None:
        """Heartbeats reduced to 15-minute buckets, like the InfluxDB reader."""
        where, params = self._where(start_ns, end_ns, store)
        hb = self.con.execute(
            'SELECT store, ("time" // 900000000000) * 900000000000 AS ts '
            f"FROM heartbeat WHERE {where} GROUP BY ALL",
            params,
        ).fetchnumpy()
        b.add_heartbeats(store=np.asarray(hb["store"], dtype=object), ts=np.asarray(hb["ts"]))

    def _read_pos(self, b: RawDataBuilder, start_ns: int, end_ns: int, store: str | None) -> None:
        """POS transactions, read from the look-back on (whether the store has POS on a day)."""
        where, params = self._where(start_ns, end_ns, store)
        pos = self.con.execute(
            "SELECT store, \"time\" AS ts, coalesce(amount, 'NaN'::DOUBLE) AS amount "
            f"FROM pos_transaction WHERE {where}",
            params,
        ).fetchnumpy()
        b.add_pos(
            store=np.asarray(pos["store"], dtype=object),
            ts=np.asarray(pos["ts"]),
            amount=np.asarray(pos["amount"]),
        )

    def _read_wifi(self, b: RawDataBuilder, wifi_from: int, end_ns: int, store: str | None) -> None:
        """Wi-Fi sightings from ``wifi_from`` (the repeat-visitor lookback)."""
        # Both hashes coded in SQL with one numbering, so the same hash gets the same code in
        # either column (the hash strings never cross into Python).
        w_where, w_params = self._where(wifi_from, end_ns, store)
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE _wifi_ids AS SELECT h, row_number() OVER () - 1 AS code FROM "
            f"(SELECT device_hash AS h FROM wifi WHERE {w_where} UNION "
            f"SELECT prev_device_hash FROM wifi WHERE {w_where} AND prev_device_hash IS NOT NULL)",
            w_params + w_params,
        )
        try:
            combos, wf = self._coded(
                WIFI,
                ("store",),
                'm."time" AS ts, d.code AS dev, coalesce(p.code, -1) AS prev, m.rssi, m.randomized',
                wifi_from,
                end_ns,
                store,
                joins="JOIN _wifi_ids d ON m.device_hash = d.h "
                "LEFT JOIN _wifi_ids p ON m.prev_device_hash = p.h",
            )
        finally:
            self.con.execute("DROP TABLE IF EXISTS _wifi_ids")
        if not combos:
            return
        b.add_wifi(
            store=([c[0] for c in combos], wf["combo"]),
            ts=np.asarray(wf["ts"]),
            device_hash=np.asarray(wf["dev"]),
            rssi=np.asarray(wf["rssi"]),
            randomized=np.asarray(wf["randomized"]),
            prev_hash=np.asarray(wf["prev"]),
        )

    def read_points(
        self, measurement: str, start_ns: int, end_ns: int, *, store: str | None = None
    ) -> list[Point]:
        tags, fields = schema(measurement)
        where, params = self._where(start_ns, end_ns, store)
        with self._lock:
            columns = ", ".join(f'"{c}"' for c in (*tags, *fields, "time"))
            rows = self.con.execute(
                f'SELECT {columns} FROM "{measurement}" WHERE {where} ORDER BY "time"', params
            ).fetchall()
        out = []
        for row in rows:
            t = {k: v for k, v in zip(tags, row[: len(tags)], strict=True) if v}
            f = {k: v for k, v in zip(fields, row[len(tags) : -1], strict=True) if v is not None}
            out.append(Point(measurement, t, f, int(row[-1])))
        return sorted(out, key=lambda p: (p.ts_ns, sorted(p.tags.items())))

    def store_ids(self) -> list[str]:
        with self._lock:
            rows = self.con.execute(
                " UNION ".join(
                    f'SELECT DISTINCT store FROM "{m}"'
                    for m in (CROSSING, HEARTBEAT, WIFI, ZONE_VISIT, POS_TRANSACTION)
                )
            ).fetchall()
        return sorted({r[0] for r in rows})
