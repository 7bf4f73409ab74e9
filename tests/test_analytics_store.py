"""The analytics readers and the previous-key Wi-Fi hash: stored, read back, and absent in older data."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest

from footfall.analytics import DuckDBStore, InfluxStore, StoreMeta, StoresConfig, pos_points, run_job
from footfall.analytics.pos import PosTransaction
from footfall.analytics.store import EventStore
from footfall.contracts.events import CrossingEvent, Event, HeartbeatEvent, WifiEvent
from footfall.contracts.influx import InfluxClient, influxql_string
from footfall.contracts.measurements import KPI_DAILY, KPI_HOURLY, Point, datetime_to_ns, event_to_point
from tests.simulator import SimConfig, emit_to_influx, emit_to_store, simulate

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
CONFIG = StoresConfig(stores=[StoreMeta(id="s", timezone="UTC")])
WINDOW = (int(T0.timestamp() - 3600) * 10**9, int(T0.timestamp() + 3600) * 10**9)


def _sightings(with_prev: bool) -> list[WifiEvent]:
    # device A under key 1, then under key 2 with A's key-1 hash as its previous hash; device C alone
    rows = [("a" * 32, None), ("b" * 32, "a" * 32), ("c" * 32, "9" * 32)]
    return [
        WifiEvent(
            id=f"w{i}",
            store="s",
            device="wifi-1",
            ts=T0 + timedelta(minutes=i),
            sensor="s1",
            device_hash=h,
            prev_device_hash=p if with_prev else None,
            rssi=-60,
            randomized=False,
            key_epoch=1 + i,
        )
        for i, (h, p) in enumerate(rows)
    ]


def _assert_codes(raw, with_prev: bool) -> None:  # type: ignore[no-untyped-def]
    w = raw.wifi
    order = np.argsort(w.ts)
    dev, prev = w.device_hash[order], w.prev_hash[order]
    assert len(set(dev.tolist())) == 3
    if with_prev:
        assert prev[0] == -1
        assert prev[1] == dev[0]  # one coding for both columns
        assert prev[2] >= 0
        assert prev[2] not in dev.tolist()
    else:
        assert prev.tolist() == [-1, -1, -1]


@pytest.mark.parametrize("with_prev", [True, False])
def test_duckdb_reads_previous_hashes_in_one_coding(tmp_path: Path, with_prev: bool) -> None:
    with DuckDBStore(tmp_path / "w.duckdb") as store:
        store.write_points(event_to_point(e) for e in _sightings(with_prev))
        _assert_codes(store.read_raw(CONFIG, *WINDOW), with_prev)


def test_duckdb_file_from_before_the_field_gets_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE wifi (store VARCHAR NOT NULL, device VARCHAR NOT NULL, sensor VARCHAR NOT NULL, "
        "id VARCHAR, device_hash VARCHAR, rssi BIGINT, randomized BOOLEAN, key_epoch BIGINT, "
        '"time" BIGINT NOT NULL, PRIMARY KEY (store, device, sensor, "time"))'
    )
    old_ns = WINDOW[0] + 10**9
    con.execute(
        f"INSERT INTO wifi VALUES ('s', 'wifi-1', 's1', 'old', '{'e' * 32}', -50, false, 1, {old_ns})"
    )
    con.close()
    with DuckDBStore(path) as store:
        store.write_points(event_to_point(e) for e in _sightings(True))
        raw = store.read_raw(CONFIG, *WINDOW)
    assert len(raw.wifi) == 4
    assert sorted(raw.wifi.prev_hash.tolist())[:2] == [-1, -1]  # the old row and the first sighting


@pytest.mark.servers
@pytest.mark.parametrize("with_prev", [True, False])
def test_influx_reads_previous_hashes_in_one_coding(influx_db: InfluxClient, with_prev: bool) -> None:
    # without any prev_device_hash in the database InfluxDB leaves the column out of its answer
    influx_db.write_lines([event_to_point(e).to_line() for e in _sightings(with_prev)])
    _assert_codes(InfluxStore(influx_db).read_raw(CONFIG, *WINDOW), with_prev)


@pytest.mark.servers
@pytest.mark.parametrize("line_roles", ["configured lines", "event kinds"])
def test_influx_and_duckdb_readers_give_the_same_kpis(
    influx_db: InfluxClient, tmp_path: Path, line_roles: str
) -> None:
    """The InfluxDB reader takes passby crossings as 15-minute sums and entrance crossings row by row;
    the DuckDB reader takes every row: the KPIs must be identical, whether the stores list their
    lines or the crossings' ``kind`` decides (then the row filter is only ``kind != 'passby'``)."""
    sim = simulate(SimConfig(weeks=1, seed=3))
    config = sim.stores
    if line_roles == "event kinds":
        config = StoresConfig(
            rollup_timezone=config.rollup_timezone,
            stores=[
                m.model_copy(update={"entrance_lines": None, "passby_lines": None}) for m in config.stores
            ],
        )
    emit_to_influx(sim, influx_db)
    with DuckDBStore(tmp_path / "same.duckdb") as duck:
        emit_to_store(sim, duck)
        from_duck = run_job(duck, sim.start, sim.end, config, write=False).kpis
    for passby_sums in (True, False):
        influx = InfluxStore(influx_db, passby_sums=passby_sums)
        from_influx = run_job(influx, sim.start, sim.end, config, write=False).kpis
        for measurement in (KPI_HOURLY, KPI_DAILY):
            duck_table, influx_table = from_duck.table(measurement), from_influx.table(measurement)
            assert sum("passersby" in f for f in duck_table.values()) > 20  # 4 stores x 7 days at least
            assert influx_table.keys() == duck_table.keys()
            for key, fields in duck_table.items():
                assert influx_table[key] == pytest.approx(fields, rel=1e-12), (passby_sums, key)


HOSTILE_STORES = ["x' OR 1=1 --", 's\' OR "store" =~ /.*/ --', "back\\slash'quote\"s"]


@pytest.mark.servers
@pytest.mark.parametrize("hostile", HOSTILE_STORES)
def test_a_hostile_store_name_reads_nothing_and_changes_no_query(
    influx_db: InfluxClient, hostile: str
) -> None:
    influx_db.write_lines([event_to_point(e).to_line() for e in _sightings(with_prev=True)])
    store = InfluxStore(influx_db)
    assert len(store.read_raw(CONFIG, *WINDOW, store="s").wifi) == 3  # the filter does select
    assert len(store.read_raw(CONFIG, *WINDOW, store=hostile).wifi) == 0
    assert store.read_points("wifi", *WINDOW, store=hostile) == []


@pytest.mark.parametrize("value", HOSTILE_STORES)
def test_influxql_string_quotes_every_value_into_one_literal(value: str) -> None:
    literal = influxql_string(value)
    assert literal[0] == literal[-1] == "'"
    inner = literal[1:-1]
    # every quote inside is escaped, and so is every backslash: the literal cannot end early
    assert re.sub(r"\\.", "", inner).count("'") == 0
    assert re.sub(r"\\(.)", r"\1", inner) == value


def _one_day_of_each_source() -> list[Point]:
    """Store s1 (no line lists: the events' kind decides) on Mon 5 - Thu 8 Oct 2026: heartbeats and
    10 visitors a day; passers-by, POS sales and a Wi-Fi visit on Monday only."""
    monday = datetime(2026, 10, 5, tzinfo=UTC)
    events: list[Event] = []
    for day in range(4):
        midnight = monday + timedelta(days=day)
        events += [
            HeartbeatEvent(
                id=f"hb{day}-{h}",
                store="s1",
                device="cam",
                ts=midnight + timedelta(hours=h, minutes=30),
                fps=10,
                latency_ms=1,
                dropped_frames=0,
            )
            for h in range(24)
        ]
        events += [
            CrossingEvent(
                id=f"in{day}-{i}",
                store="s1",
                device="cam",
                ts=midnight + timedelta(hours=12, minutes=i),
                line="door",
                kind="entrance",
                direction="in",
                track_id=100 * day + i,
            )
            for i in range(10)
        ]
    events += [
        CrossingEvent(
            id=f"street{i}",
            store="s1",
            device="cam",
            ts=monday + timedelta(hours=12, seconds=i),
            line="street",
            kind="passby",
            direction="in",
            track_id=900 + i,
        )
        for i in range(20)
    ]
    events += [
        e.model_copy(update={"store": "s1", "ts": monday + timedelta(hours=12, minutes=2 * i)})
        for i, e in enumerate(_sightings(with_prev=False)[:1] * 3)
    ]
    sales = [
        PosTransaction(
            "s1", datetime_to_ns(monday + timedelta(hours=12, minutes=30, seconds=i)), f"t{i}", 10.0, 1
        )
        for i in range(5)
    ]
    return [event_to_point(e) for e in events] + pos_points(sales)


def _wednesday(store: EventStore, first: date) -> dict[str, dict]:
    config = StoresConfig(stores=[StoreMeta(id="s1")])
    kpis = run_job(store, first, date(2026, 10, 7), config, write=False).kpis
    start = datetime_to_ns(datetime(2026, 10, 7, tzinfo=UTC))
    return {
        f"{p.measurement} {p.tags['store']} {p.ts_ns}": p.fields
        for p in kpis.hourly + kpis.daily
        if start <= p.ts_ns < start + 86_400 * 10**9
    }


def _assert_a_day_is_the_same_in_any_window(store: EventStore) -> None:
    alone, in_a_wider_window = _wednesday(store, date(2026, 10, 7)), _wednesday(store, date(2026, 10, 5))
    assert alone == in_a_wider_window
    daily = alone[f"kpi_daily s1 {datetime_to_ns(datetime(2026, 10, 7, tzinfo=UTC))}"]
    # Monday's sales, passers-by and phone lie in the 30 days before: Wednesday has those sources, at 0
    assert {k: daily[k] for k in ("visitors", "transactions", "conversion", "passersby", "wifi_visits")} == {
        "visitors": 10,
        "transactions": 0,
        "conversion": 0.0,
        "passersby": 0,
        "wifi_visits": 0,
    }


def test_duckdb_a_day_has_the_same_points_in_any_window(tmp_path: Path) -> None:
    with DuckDBStore(tmp_path / "w.duckdb") as store:
        store.write_points(_one_day_of_each_source())
        _assert_a_day_is_the_same_in_any_window(store)


@pytest.mark.servers
@pytest.mark.parametrize("passby_sums", [True, False])
def test_influx_a_day_has_the_same_points_in_any_window(influx_db: InfluxClient, passby_sums: bool) -> None:
    influx_db.write_lines([p.to_line() for p in _one_day_of_each_source()])
    _assert_a_day_is_the_same_in_any_window(InfluxStore(influx_db, passby_sums=passby_sums))
