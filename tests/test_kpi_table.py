"""The KPI table (contracts/kpis.py) is the one place a KPI is declared: a KPI added there is
computed (per store, per day, in the store=all rollup), stored and listed with no other change."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

import footfall.contracts.kpis as table
from footfall.analytics.config import StoreMeta, StoresConfig
from footfall.analytics.core import KpiTables, compute_kpis
from footfall.analytics.frames import raw_from_events
from footfall.analytics.grid import build_grid
from footfall.analytics.store import DuckDBStore, schema
from footfall.contracts.events import CrossingEvent, Event, HeartbeatEvent
from footfall.contracts.kpis import Kpi, Ratio
from footfall.contracts.measurements import ALL_STORES, KPI_DAILY, KPI_HOURLY, datetime_to_ns, measurement
from footfall.report import ReportInput, kpi_table

DAY = date(2026, 10, 6)
# (store, inbound crossings, outbound crossings) in the 10:00 hour
TRAFFIC = (("s1", 4, 2), ("s2", 2, 3))
ADDED = Kpi(
    "exits_per_visitor",
    "float",
    Ratio("exits", "visitors"),
    "camera",
    "ratio",
    "exits per visitor",
    in_report=True,
)


def _at(minute: int) -> datetime:
    return datetime(DAY.year, DAY.month, DAY.day, 10, minute, tzinfo=UTC)


def _events() -> list[Event]:
    events: list[Event] = []
    for store, n_in, n_out in TRAFFIC:
        events.append(
            HeartbeatEvent(
                id=f"{store}-hb", store=store, device="cam", ts=_at(0), fps=10, latency_ms=1, dropped_frames=0
            )
        )
        for i, direction in enumerate(["in"] * n_in + ["out"] * n_out):
            events.append(
                CrossingEvent(
                    id=f"{store}-{i}",
                    store=store,
                    device="cam",
                    ts=_at(i + 1),
                    line="door",
                    kind="entrance",
                    direction=direction,
                    track_id=100 + i,
                )
            )
    return events


def _compute() -> KpiTables:
    config = StoresConfig(
        stores=[
            StoreMeta(id=s, timezone="UTC", opening_hours={"mon-sun": "09:00-18:00"}) for s, _, _ in TRAFFIC
        ]
    )
    return compute_kpis(raw_from_events(_events(), config), build_grid(config.stores, DAY, DAY), config)


@pytest.fixture
def added_kpi(monkeypatch: pytest.MonkeyPatch) -> Kpi:
    monkeypatch.setattr(table, "KPIS", (*table.KPIS, ADDED))
    return ADDED


def _value(points: list, store: str) -> float:
    (point,) = [p for p in points if p.tags["store"] == store]
    return point.fields[ADDED.name]


def test_a_kpi_added_to_the_table_is_computed_per_store_and_rolled_up(added_kpi: Kpi) -> None:
    tables = _compute()
    for store, n_in, n_out in TRAFFIC:
        assert _value(tables.hourly, store) == pytest.approx(n_out / n_in)
        assert _value(tables.daily, store) == pytest.approx(n_out / n_in)
    # the rollup divides the summed parts, not the stores' ratios
    total_in, total_out = sum(t[1] for t in TRAFFIC), sum(t[2] for t in TRAFFIC)
    assert _value(tables.hourly, ALL_STORES) == pytest.approx(total_out / total_in)
    assert _value(tables.daily, ALL_STORES) == pytest.approx(total_out / total_in)


def test_a_kpi_added_to_the_table_is_stored_and_read_back(added_kpi: Kpi, tmp_path: Path) -> None:
    tables = _compute()
    assert schema(KPI_DAILY)[1][ADDED.name] == "DOUBLE"
    with DuckDBStore(tmp_path / "kpis.duckdb") as db:
        db.write_points(tables.all_points())
        start = datetime_to_ns(datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC))
        stored = db.read_points(KPI_HOURLY, start, start + 86_400 * 10**9)
    assert _value(stored, "s1") == _value(tables.hourly, "s1")


def test_a_kpi_added_to_the_table_is_listed(added_kpi: Kpi) -> None:
    assert measurement(KPI_HOURLY).fields[ADDED.name] == "float"
    assert measurement(KPI_DAILY).fields[ADDED.name] == "float"
    rows = dict(kpi_table(ReportInput(store="s1", kpis={KPI_DAILY: _compute().daily})))
    ratio = TRAFFIC[0][2] / TRAFFIC[0][1]
    assert rows[ADDED.label] == f"{ratio * 100:.1f} %"


def test_without_the_added_kpi_nothing_lists_it() -> None:
    assert ADDED.name not in measurement(KPI_DAILY).fields
    assert all(ADDED.name not in p.fields for p in _compute().all_points())


def test_every_derived_kpi_names_parts_that_the_table_declares_for_its_periods() -> None:
    for k in table.kpis():
        parts = [k.made.num, k.made.den] if isinstance(k.made, Ratio) else []
        for part in parts:
            assert set(k.periods) <= set(table.kpi(part).periods), (k.name, part)
