"""The KPI table (contracts/kpis.py) is the one place a KPI is declared: a KPI added there is
computed (per store, per day, in the store=all rollup), stored and listed with no other change."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

import footfall.contracts.kpis as table
from footfall.analytics.store import DuckDBStore, schema
from footfall.contracts.kpis import Kpi, Ratio
from footfall.contracts.measurements import ALL_STORES, KPI_DAILY, KPI_HOURLY, datetime_to_ns, measurement
from footfall.report import ReportInput, kpi_table
from tests.kpi_support import DAY, TRAFFIC, compute_two_stores

ADDED = Kpi(
    "exits_per_visitor",
    "float",
    Ratio("exits", "visitors"),
    "camera",
    "ratio",
    "exits per visitor",
    in_report=True,
)


@pytest.fixture
def added_kpi(monkeypatch: pytest.MonkeyPatch) -> Kpi:
    monkeypatch.setattr(table, "KPIS", (*table.KPIS, ADDED))
    return ADDED


def _value(points: list, store: str) -> float:
    (point,) = [p for p in points if p.tags["store"] == store]
    return point.fields[ADDED.name]


def test_a_kpi_added_to_the_table_is_computed_per_store_and_rolled_up(added_kpi: Kpi) -> None:
    tables = compute_two_stores()
    for store, n_in, n_out in TRAFFIC:
        assert _value(tables.hourly, store) == pytest.approx(n_out / n_in)
        assert _value(tables.daily, store) == pytest.approx(n_out / n_in)
    # the rollup divides the summed parts, not the stores' ratios
    total_in, total_out = sum(t[1] for t in TRAFFIC), sum(t[2] for t in TRAFFIC)
    assert _value(tables.hourly, ALL_STORES) == pytest.approx(total_out / total_in)
    assert _value(tables.daily, ALL_STORES) == pytest.approx(total_out / total_in)


def test_a_kpi_added_to_the_table_is_stored_and_read_back(added_kpi: Kpi, tmp_path: Path) -> None:
    tables = compute_two_stores()
    assert schema(KPI_DAILY)[1][ADDED.name] == "DOUBLE"
    with DuckDBStore(tmp_path / "kpis.duckdb") as db:
        db.write_points(tables.all_points())
        start = datetime_to_ns(datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC))
        stored = db.read_points(KPI_HOURLY, start, start + 86_400 * 10**9)
    assert _value(stored, "s1") == _value(tables.hourly, "s1")


def test_a_kpi_added_to_the_table_is_listed(added_kpi: Kpi) -> None:
    assert measurement(KPI_HOURLY).fields[ADDED.name] == "float"
    assert measurement(KPI_DAILY).fields[ADDED.name] == "float"
    rows = dict(kpi_table(ReportInput(store="s1", kpis={KPI_DAILY: compute_two_stores().daily})))
    ratio = TRAFFIC[0][2] / TRAFFIC[0][1]
    assert rows[ADDED.label] == f"{ratio * 100:.1f} %"


def test_without_the_added_kpi_nothing_lists_it() -> None:
    assert ADDED.name not in measurement(KPI_DAILY).fields
    assert all(ADDED.name not in p.fields for p in compute_two_stores().all_points())


def test_every_derived_kpi_names_parts_that_the_table_declares_for_its_periods() -> None:
    for k in table.kpis():
        parts = [k.made.num, k.made.den] if isinstance(k.made, Ratio) else []
        for part in parts:
            assert set(k.periods) <= set(table.kpi(part).periods), (k.name, part)
