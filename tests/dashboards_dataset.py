"""A small deterministic store dataset for the dashboard panel-query tests.

Raw events go through the contract's ``event_to_point(...).to_line()``; KPI points are written the
way analytics writes them (fields per ``KPI_*_FIELDS``). The expected values the tests compare with
are kept here as plain Python numbers, computed independently of InfluxDB.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from footfall.contracts.events import (
    CameraIssueEvent,
    CrossingEvent,
    HeartbeatEvent,
    OccupancyEvent,
    ZoneVisitEvent,
    stable_event_id,
)
from footfall.contracts.influx import InfluxClient
from footfall.contracts.measurements import (
    ALL_STORES,
    DEADLETTER,
    KPI_CAMPAIGN,
    KPI_DAILY,
    KPI_FORECAST_HOURLY,
    KPI_HOURLY,
    KPI_LINE_DAILY,
    KPI_ZONE_HOURLY,
    Point,
    datetime_to_ns,
    event_to_point,
)

DAY = datetime(2025, 3, 10, tzinfo=UTC)  # a Monday; DAY - 7 days is the same weekday
DAYS = (DAY - timedelta(days=7), DAY - timedelta(days=1), DAY)
STORES = ("store-a", "store-b")
OPEN_HOURS = range(9, 19)
ZONES = ("checkout", "promo")
CAMPAIGN = "spring-sale"
OTHER_CAMPAIGN = "loyalty-week"
DEAD_REASONS = {"malformed_json": 3, "topic_mismatch": 2}


def ms(ts: datetime) -> int:
    return datetime_to_ns(ts) // 1_000_000


@dataclass
class Hour:
    visitors: int
    passersby: int
    transactions: int
    revenue: float
    expected: float = 0.0  # the expected traffic and its interval, as analytics writes them
    low: float = 0.0
    high: float = 0.0

    @property
    def anomaly(self) -> int:
        return -1 if self.visitors < self.low else int(self.visitors > self.high)

    @property
    def kpis(self) -> dict[str, float | int]:
        return {
            "visitors_expected": self.expected,
            "visitors_expected_low": self.low,
            "visitors_expected_high": self.high,
            "traffic_anomaly": self.anomaly,
            "visitors": self.visitors,
            "exits": self.visitors,
            "passersby": self.passersby,
            "walkbys": max(self.passersby - self.visitors, 0),
            "capture_rate": self.visitors / self.passersby,
            "transactions": self.transactions,
            "revenue": self.revenue,
            "conversion": self.transactions / self.visitors,
            "sales_per_visitor": self.revenue / self.visitors,
        }


@dataclass
class Dataset:
    now: datetime
    # (store, day) -> hour -> KPIs
    hours: dict[tuple[str, datetime], dict[int, Hour]] = field(default_factory=dict)
    # store -> zone -> dwell seconds of completed visits on DAY
    dwell: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    # store -> device -> last occupancy count (whole view)
    occupancy_last: dict[str, dict[str, int]] = field(default_factory=dict)
    # (store, source) -> inward entrance crossings on DAY (counts summed)
    entrances: dict[tuple[str, str], int] = field(default_factory=dict)
    # store -> campaign -> fields
    campaign: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    # (store, device) -> list of heartbeats (ts, fps, latency_ms, dropped_frames, queue_depth)
    heartbeats: dict[tuple[str, str], list[tuple[datetime, float, float, int, int]]] = field(
        default_factory=dict
    )
    # (store, device) -> the camera issues of each heartbeat (same order as ``heartbeats``)
    camera_issues: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    issue_events: list[CameraIssueEvent] = field(default_factory=list)
    # (store, device, line) -> [(local midnight, entries, exits)]
    lines_daily: dict[tuple[str, str, str], list[tuple[datetime, int, int]]] = field(default_factory=dict)
    # (store, UTC hour) -> (expected, low, high) for the next 7 days' open hours
    forecast: dict[tuple[str, datetime], tuple[float, float, float]] = field(default_factory=dict)

    def day_totals(self, store: str, day: datetime) -> dict[str, float]:
        hours = self.hours[(store, day)].values()
        return {
            "visitors": sum(h.visitors for h in hours),
            "passersby": sum(h.passersby for h in hours),
            "transactions": sum(h.transactions for h in hours),
            "revenue": sum(h.revenue for h in hours),
        }


def build(now: datetime, seed: int = 5) -> tuple[Dataset, list[str]]:
    rng = random.Random(seed)
    data = Dataset(now=now)
    lines: list[str] = []

    def kpi(measurement: str, tags: dict[str, str], fields: dict[str, float | int], ts: datetime) -> None:
        lines.append(Point(measurement, tags, fields, datetime_to_ns(ts)).to_line())

    for day in DAYS:
        chain = {"visitors": 0, "transactions": 0, "revenue": 0.0, "passersby": 0}
        for store in STORES:
            hours: dict[int, Hour] = {}
            for hour in OPEN_HOURS:
                visitors = rng.randint(20, 80)
                transactions = rng.randint(0, visitors // 2)
                expected = round(visitors * rng.uniform(0.7, 1.3), 2)
                hours[hour] = Hour(
                    visitors,
                    visitors + rng.randint(40, 200),
                    transactions,
                    round(transactions * 23.5, 2),
                    expected,
                    float(int(expected * 0.8)),
                    float(int(expected * 1.2) + 1),
                )
                kpi(KPI_HOURLY, {"store": store}, hours[hour].kpis, day + timedelta(hours=hour))
                for zone in ZONES:
                    kpi(
                        KPI_ZONE_HOURLY,
                        {"store": store, "zone": zone},
                        {"visits": rng.randint(1, visitors)},
                        day + timedelta(hours=hour),
                    )
            data.hours[(store, day)] = hours
            totals = data.day_totals(store, day)
            for key in chain:
                chain[key] += totals[key]
            kpi(KPI_DAILY, {"store": store}, _daily_fields(totals), day)
        kpi(KPI_DAILY, {"store": ALL_STORES}, _daily_fields(chain), day)

    # As analytics writes them: one point per campaign and store at the campaign's start, sums over
    # the campaign's hours; ci_low/ci_high bound the uplift (visitors), uplift_pct is in percent.
    for store in STORES:
        data.campaign[store] = {}
        for campaign, start in ((CAMPAIGN, DAYS[1]), (OTHER_CAMPAIGN, DAYS[0])):
            visitors, baseline = float(rng.randint(300, 500)), float(rng.randint(250, 400))
            uplift = visitors - baseline
            fields = {
                "visitors": visitors,
                "baseline": baseline,
                "uplift": uplift,
                "uplift_pct": 100 * uplift / baseline,
                "ci_low": uplift - 40.0,
                "ci_high": uplift + 40.0,
            }
            data.campaign[store][campaign] = fields
            kpi(KPI_CAMPAIGN, {"store": store, "campaign": campaign}, fields, start)

    lines += _raw_events(data, rng)
    lines += _health(data, rng)
    return data, lines


def _health(data: Dataset, rng: random.Random) -> list[str]:
    """Line balance per day, camera issues, and the forecast of the next 7 days' open hours."""
    lines = []
    for store, exit_share in (("store-a", 1.0), ("store-b", 0.8)):
        key = (store, "cam-1", "door")
        data.lines_daily[key] = []
        for day in DAYS:
            entries = rng.randint(200, 400)
            exits = round(entries * exit_share)
            data.lines_daily[key].append((day, entries, exits))
            flag = int(abs(exits / entries - 1) > 0.1)
            fields = {"entries": entries, "exits": exits, "balance": exits / entries, "balance_flag": flag}
            lines.append(
                Point(
                    KPI_LINE_DAILY,
                    dict(zip(("store", "device", "line"), key, strict=True)),
                    fields,
                    datetime_to_ns(day),
                ).to_line()
            )
        tomorrow = datetime(data.now.year, data.now.month, data.now.day, tzinfo=UTC) + timedelta(days=1)
        for k in range(7):
            for hour in OPEN_HOURS:
                ts = tomorrow + timedelta(days=k, hours=hour)
                expected = round(rng.uniform(10, 60), 2)
                data.forecast[(store, ts)] = (
                    expected,
                    float(int(expected * 0.7)),
                    float(int(expected * 1.3) + 1),
                )
                fields = dict(
                    zip(
                        ("visitors_expected", "visitors_expected_low", "visitors_expected_high"),
                        data.forecast[(store, ts)],
                        strict=True,
                    )
                )
                lines.append(
                    Point(KPI_FORECAST_HOURLY, {"store": store}, fields, datetime_to_ns(ts)).to_line()
                )
    # store-b's camera was covered 20 minutes ago; store-a's was moved on DAY and put back an hour later
    for store, issue, begin, end in (
        ("store-a", "moved", DAY + timedelta(hours=10), DAY + timedelta(hours=11)),
        ("store-b", "covered", data.now - timedelta(minutes=20), None),
    ):
        for state, ts in (("started", begin), ("cleared", end)):
            if ts is not None:
                event = CameraIssueEvent(
                    id=stable_event_id(store, issue, state), store=store, device="cam-1", ts=ts,
                    issue=issue, state=state, score=0.9 if state == "started" else 0.1,
                )  # fmt: skip
                data.issue_events.append(event)
                lines.append(event_to_point(event).to_line())
    return lines


def _daily_fields(totals: dict[str, float]) -> dict[str, float | int]:
    return {
        "visitors": int(totals["visitors"]),
        "passersby": int(totals["passersby"]),
        "transactions": int(totals["transactions"]),
        "revenue": float(totals["revenue"]),
        "capture_rate": totals["visitors"] / totals["passersby"],
        "conversion": totals["transactions"] / totals["visitors"],
        "sales_per_visitor": totals["revenue"] / totals["visitors"],
    }


def _raw_events(data: Dataset, rng: random.Random) -> list[str]:
    lines: list[str] = []
    noon = DAY + timedelta(hours=12)
    for store in STORES:
        device = "cam-1"
        data.dwell[store] = {}
        for zone in ZONES:
            dwells = [round(rng.uniform(5, 600), 1) for _ in range(rng.randint(5, 11))]
            data.dwell[store][zone] = dwells
            for track, dwell in enumerate(dwells):
                exit_ts = noon + timedelta(minutes=track)
                event = ZoneVisitEvent(
                    id=stable_event_id(store, zone, track),
                    store=store,
                    device=device,
                    ts=exit_ts,
                    zone=zone,
                    track_id=track,
                    enter_ts=exit_ts - timedelta(seconds=dwell),
                    exit_ts=exit_ts,
                    dwell_s=dwell,
                )
                lines.append(event_to_point(event).to_line())
        # Entrances: camera crossings one by one, a beam counter's interval totals, plus crossings
        # the panel must ignore (outward, and the street-side passby line).
        for source, line, kind, direction, count in [
            ("camera", "door", "entrance", "in", 1),
            ("camera", "door", "entrance", "out", 1),
            ("camera", "street", "passby", "in", 1),
            ("beam", "side-door", "entrance", "in", rng.randint(2, 9)),
        ]:
            for n in range(rng.randint(3, 8)):
                event = CrossingEvent(
                    id=stable_event_id(store, source, line, direction, n),
                    store=store,
                    device=device if source == "camera" else "beam-1",
                    ts=noon + timedelta(seconds=n),  # same second for all: the jitter keeps them apart
                    line=line,
                    kind=kind,
                    direction=direction,
                    count=count,
                    source=source,
                    track_id=n if source == "camera" else None,
                )
                lines.append(event_to_point(event).to_line())
                if kind == "entrance" and direction == "in":
                    data.entrances[(store, source)] = data.entrances.get((store, source), 0) + count
        data.occupancy_last[store] = {}
        for device_name in ("cam-1", "cam-2"):
            counts = [rng.randint(0, 15) for _ in range(4)]
            data.occupancy_last[store][device_name] = counts[-1]
            for i, count in enumerate(counts):
                occ = OccupancyEvent(
                    id=stable_event_id(store, device_name, "occ", i),
                    store=store,
                    device=device_name,
                    ts=data.now - timedelta(minutes=10 - i),
                    count=count,
                )
                lines.append(event_to_point(occ).to_line())
            # A zone's occupancy must not leak into the whole-view figure.
            zone_occ = OccupancyEvent(
                id=stable_event_id(store, device_name, "zone-occ"),
                store=store,
                device=device_name,
                ts=data.now - timedelta(minutes=1),
                zone="checkout",
                count=99,
            )
            lines.append(event_to_point(zone_occ).to_line())
    # Heartbeats every minute for the last 2 hours; store-a/cam-2 went silent 30 minutes ago.
    for store, device, silent_for in [
        ("store-a", "cam-1", 0),
        ("store-a", "cam-2", 30),
        ("store-b", "cam-1", 0),
    ]:
        beats = []
        for minute in range(120, silent_for, -1):
            ts = data.now - timedelta(minutes=minute)
            beat = (
                ts,
                round(rng.uniform(8, 15), 2),
                round(rng.uniform(40, 120), 1),
                120 - minute,
                minute % 7,
            )
            beats.append(beat)
            covered = store == "store-b" and minute <= 20  # see the camera issue events
            data.camera_issues.setdefault((store, device), []).append("covered" if covered else "")
            event = HeartbeatEvent(
                id=stable_event_id(store, device, "hb", minute),
                store=store,
                device=device,
                ts=ts,
                fps=beat[1],
                latency_ms=beat[2],
                dropped_frames=beat[3],
                queue_depth=beat[4],
                frames=(120 - minute) * 600,
                uptime_s=(120 - minute) * 60.0,
                camera_issues=data.camera_issues[(store, device)][-1],
                detector_input="1088x512",
                person_px=None if minute % 10 == 3 else 50.0 + minute % 20,
                person_px_aim=64,
            )
            lines.append(event_to_point(event).to_line())
        data.heartbeats[(store, device)] = beats
    for reason, count in DEAD_REASONS.items():
        for n in range(count):
            ts_ns = datetime_to_ns(data.now - timedelta(minutes=5 + n))
            lines.append(
                # The shape of ingest's ``deadletter_point``: tags reason, component; field count=1.
                Point(
                    DEADLETTER,
                    {"reason": reason, "component": "ingest"},
                    {"count": 1, "topic": "footfall/v1/x", "detail": f"bad message {n}", "size": 10},
                    ts_ns,
                ).to_line()
            )
    return lines


def load(client: InfluxClient, lines: list[str]) -> None:
    for start in range(0, len(lines), 5000):
        client.write_lines(lines[start : start + 5000])
