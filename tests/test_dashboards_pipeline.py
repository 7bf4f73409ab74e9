"""The dashboards over what the real analytics job writes: raw events -> InfluxDB -> job -> panels.

The store history is the demo's (replayed visits, generated passers-by, POS and a campaign), built
here from a small hand-made clip run so no model is needed. The panels must show exactly what the
job computed (its own KPI tables are the expectation), on the real InfluxDB.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from footfall.contracts.config import CameraConfig, load_config
from footfall.contracts.influx import InfluxClient
from footfall.contracts.measurements import datetime_to_ns, event_to_point
from footfall.dashboards.definitions import find_query
from footfall.dashboards.spec import render_query
from tests.servers import InfluxServer
from tests.test_demo_run import _clip_run

pytestmark = pytest.mark.servers

TZ = ZoneInfo("Europe/Berlin")
LAST_DAY = date(2026, 3, 14)


@pytest.fixture(scope="module")
def job(influxdb: InfluxServer) -> tuple[InfluxClient, object, object]:
    from footfall import demo
    from footfall.analytics import Campaign, CampaignsConfig, InfluxStore, StoreMeta, StoresConfig, run_job

    config = load_config(demo.SAMPLE_CONFIG, CameraConfig)
    history = demo.build_history(_clip_run(config), config, last_day=LAST_DAY, weeks=5, tz=TZ, seed=11)
    client = influxdb.create_database(f"pipe_{uuid.uuid4().hex[:10]}")
    store = InfluxStore(client)
    store.write_lines(
        [event_to_point(e).to_line() for e in history.events] + [p.to_line() for p in history.pos]
    )
    stores = StoresConfig(
        rollup_timezone="Europe/Berlin",
        stores=[
            StoreMeta(id=config.store, timezone="Europe/Berlin", opening_hours={"mon-sat": "09:00-20:00"})
        ],
    )
    campaigns = CampaignsConfig(
        campaigns=[
            Campaign(
                name="window-display",
                stores=[config.store],
                start=history.campaign_start,
                end=history.campaign_end,
            )
        ]
    )
    result = run_job(store, history.first_day, history.last_day, stores, campaigns)
    return client, result, config


def _day_range(day: date) -> tuple[int, int]:
    start = datetime(day.year, day.month, day.day, tzinfo=TZ).astimezone(UTC)
    return datetime_to_ns(start) // 1_000_000, datetime_to_ns(start + timedelta(days=1)) // 1_000_000 - 1


def _panel(client: InfluxClient, uid: str, title: str, store: str, day: date) -> list:
    start, end = _day_range(day)
    query = render_query(find_query(uid, title), store=store, start_ms=start, end_ms=end)
    return client.query(query, epoch="ms")


@pytest.mark.parametrize("day", [LAST_DAY, LAST_DAY - timedelta(days=7)])
def test_store_manager_panels_show_the_jobs_kpis(job: tuple, day: date) -> None:
    client, result, config = job
    start, end = (v * 1_000_000 for v in _day_range(day))
    hourly = [p for p in result.kpis.hourly if p.tags["store"] == config.store and start <= p.ts_ns <= end]
    assert hourly
    visitors = sum(p.fields.get("visitors", 0) for p in hourly)
    (today,) = _panel(client, "footfall-store", "Visitors today", config.store, day)
    assert today.values[0][1] == visitors
    traffic = _panel(client, "footfall-store", "Hourly traffic", config.store, day)[0]
    assert traffic.column("visitors") == [p.fields["visitors"] for p in hourly if "visitors" in p.fields]
    conversion = _panel(client, "footfall-store", "Conversion today", config.store, day)[0].values[0][1]
    assert conversion == pytest.approx(sum(p.fields.get("transactions", 0) for p in hourly) / visitors)


def test_campaign_panels_show_the_jobs_uplift(job: tuple) -> None:
    client, result, config = job
    (row,) = [p for p in result.kpis.campaign if p.tags["store"] == config.store]
    start, _ = _day_range(LAST_DAY - timedelta(days=30))
    _, end = _day_range(LAST_DAY)
    query = render_query(
        find_query("footfall-marketing", "Campaign visitors against baseline"),
        store=config.store,
        start_ms=start,
        end_ms=end,
    )
    (series,) = client.query(query, epoch="ms")
    visitors, baseline, low, high = series.values[0][1:]
    assert (visitors, baseline) == (row.fields["visitors"], pytest.approx(row.fields["baseline"]))
    assert low == pytest.approx(row.fields["visitors"] - row.fields["ci_high"])
    assert high == pytest.approx(row.fields["visitors"] - row.fields["ci_low"])
    assert row.fields["uplift"] > 0  # the generated campaign week has more visitors
