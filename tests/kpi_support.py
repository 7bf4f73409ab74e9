"""Two stores' 10:00 hour of entrance traffic and their KPIs: a small computed KPI table that tests of
the KPI table and of the measurement declarations share."""

from __future__ import annotations

from datetime import UTC, date, datetime

from footfall.analytics.config import StoreMeta, StoresConfig
from footfall.analytics.core import KpiTables, compute_kpis
from footfall.analytics.frames import raw_from_events
from footfall.analytics.grid import build_grid
from footfall.contracts.events import CrossingEvent, Event, HeartbeatEvent

DAY = date(2026, 10, 6)
# (store, inbound crossings, outbound crossings) in the 10:00 hour
TRAFFIC = (("s1", 4, 2), ("s2", 2, 3))


def at(minute: int) -> datetime:
    return datetime(DAY.year, DAY.month, DAY.day, 10, minute, tzinfo=UTC)


def events() -> list[Event]:
    out: list[Event] = []
    for store, n_in, n_out in TRAFFIC:
        out.append(
            HeartbeatEvent(
                id=f"{store}-hb", store=store, device="cam", ts=at(0), fps=10, latency_ms=1, dropped_frames=0
            )
        )
        for i, direction in enumerate(["in"] * n_in + ["out"] * n_out):
            out.append(
                CrossingEvent(
                    id=f"{store}-{i}",
                    store=store,
                    device="cam",
                    ts=at(i + 1),
                    line="door",
                    kind="entrance",
                    direction=direction,
                    track_id=100 + i,
                )
            )
    return out


def compute_two_stores() -> KpiTables:
    config = StoresConfig(
        stores=[
            StoreMeta(id=s, timezone="UTC", opening_hours={"mon-sun": "09:00-18:00"}) for s, _, _ in TRAFFIC
        ]
    )
    return compute_kpis(raw_from_events(events(), config), build_grid(config.stores, DAY, DAY), config)
