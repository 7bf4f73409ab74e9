"""The InfluxDB contract: measurement names, tags and fields, and how an event becomes a point.

Tags are only low-cardinality dimensions (store, device, line, kind, direction, zone, ...).
Track ids, event ids and device hashes are fields, never tags.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from footfall.contracts.events import (
    CameraIssueEvent,
    CrossingEvent,
    DeadLetter,
    Event,
    HeartbeatEvent,
    OccupancyEvent,
    WifiEvent,
    ZoneVisitEvent,
    stable_event_id,
    ts_jitter_ns,
)
from footfall.contracts.kpis import kpis

CROSSING = "crossing"
ZONE_VISIT = "zone_visit"
OCCUPANCY = "occupancy"
HEARTBEAT = "heartbeat"
WIFI = "wifi"
CAMERA_ISSUE = "camera_issue"
DEADLETTER = "deadletter"
POS_TRANSACTION = "pos_transaction"
KPI_HOURLY = "kpi_hourly"
KPI_DAILY = "kpi_daily"
KPI_CAMPAIGN = "kpi_campaign"
KPI_FORECAST_HOURLY = "kpi_forecast_hourly"
KPI_LINE_DAILY = "kpi_line_daily"

# Occupancy of the whole camera view is stored with this zone tag.
VIEW_ZONE = "_view"
# The rollup over all stores in the KPI measurements.
ALL_STORES = "all"

FieldValue = float | int | str | bool
FieldType = Literal["int", "float", "str", "bool"]


@dataclass(frozen=True)
class Measurement:
    """One InfluxDB measurement: its tags (in line-protocol order) and its fields with their types.

    The one description of a measurement: the line formatters, the DuckDB tables and the readers
    derive from it, and tests check every written point against it."""

    name: str
    tags: tuple[str, ...]
    fields: Mapping[str, FieldType]


_RAW_MEASUREMENTS = (
    Measurement(
        CROSSING,
        ("device", "direction", "kind", "line", "source", "store"),
        {"id": "str", "count": "int", "track_id": "int", "frame": "int"},
    ),
    Measurement(
        ZONE_VISIT,
        ("device", "store", "zone"),
        {"id": "str", "dwell_s": "float", "track_id": "int", "enter_ns": "int"},
    ),
    Measurement(OCCUPANCY, ("device", "store", "zone"), {"id": "str", "count": "int"}),
    Measurement(
        HEARTBEAT,
        ("device", "store"),
        {
            "id": "str",
            "fps": "float",
            "latency_ms": "float",
            "dropped_frames": "int",
            "queue_depth": "int",
            "frames": "int",
            "uptime_s": "float",
            "camera_issues": "str",
        },
    ),
    Measurement(CAMERA_ISSUE, ("device", "issue", "store"), {"id": "str", "state": "str", "score": "float"}),
    Measurement(
        WIFI,
        ("device", "sensor", "store"),
        {
            "id": "str",
            "device_hash": "str",
            "rssi": "int",
            "randomized": "bool",
            "key_epoch": "int",
            "prev_device_hash": "str",
        },
    ),
    Measurement(POS_TRANSACTION, ("store",), {"transaction_id": "str", "amount": "float", "items": "int"}),
    Measurement(
        DEADLETTER,
        ("component", "reason"),
        {"count": "int", "topic": "str", "detail": "str", "size": "int"},
    ),
)


def measurement(name: str) -> Measurement:
    """The declaration of one measurement (KPI ones built from the KPI table at call time)."""
    for m in _RAW_MEASUREMENTS:
        if m.name == name:
            return m
    for m in _kpi_measurements():
        if m.name == name:
            return m
    raise KeyError(f"no measurement named {name!r}")


def measurements() -> tuple[Measurement, ...]:
    """Every measurement footfall writes."""
    return (*_RAW_MEASUREMENTS, *_kpi_measurements())


def _kpi_measurements() -> tuple[Measurement, ...]:
    zone: dict[str, FieldType] = {"visits": "int", "dwell_median_s": "float", "dwell_p90_s": "float"}
    as_float: FieldType = "float"
    campaign = dict.fromkeys(KPI_CAMPAIGN_FIELDS + KPI_CAMPAIGN_EXTRA_FIELDS, as_float) | {
        "hours": "int",
        "baseline_weeks": "int",
    }
    return (
        Measurement(KPI_HOURLY, ("store",), {k.name: k.kind for k in kpis("hourly")}),
        Measurement(KPI_DAILY, ("store",), {k.name: k.kind for k in kpis("daily")}),
        Measurement(KPI_FORECAST_HOURLY, ("store",), dict.fromkeys(KPI_FORECAST_FIELDS, "float")),
        Measurement(
            KPI_LINE_DAILY,
            ("device", "line", "store"),
            {"entries": "int", "exits": "int", "balance": "float", "balance_flag": "int"},
        ),
        Measurement(KPI_ZONE_HOURLY, ("store", "zone"), zone),
        Measurement(KPI_ZONE_DAILY, ("store", "zone"), zone),
        Measurement(KPI_CAMPAIGN, ("campaign", "store"), campaign),
    )


@dataclass(frozen=True, slots=True)
class Point:
    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue | None]  # None: left out of the line
    ts_ns: int

    def to_line(self) -> str:
        """InfluxDB line protocol (nanosecond precision)."""
        tag_part = "".join(
            f",{escape_key(k)}={escape_key(v)}" for k, v in sorted(self.tags.items()) if v != ""
        )
        field_part = ",".join(
            f"{escape_key(k)}={format_field(v)}" for k, v in self.fields.items() if v is not None
        )
        return f"{_escape_measurement(self.measurement)}{tag_part} {field_part} {self.ts_ns}"

    def number(self, name: str) -> float:
        """A numeric field (a KPI, a count) as a float; ``TypeError`` for a string, boolean or absent one."""
        value = self.fields.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{self.measurement}: field {name!r} is {value!r}, not a number")
        return float(value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def datetime_to_ns(ts: datetime) -> int:
    if ts.tzinfo is None:
        ts = ts.astimezone(UTC)  # naive = local time, as ``datetime.timestamp`` reads it
    # Integer arithmetic on the timedelta: exact, where float seconds would round.
    return (ts - _EPOCH) // _MICROSECOND * 1000


def ns_to_datetime(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).replace(microsecond=(ns % 1_000_000_000) // 1000)


def event_to_point(event: Event) -> Point:
    """The one mapping from a validated event to its InfluxDB point.

    The timestamp carries a deterministic sub-millisecond offset from the event id (see
    ``ts_jitter_ns``): a redelivered event overwrites itself, two people crossing in the same
    frame stay two points. Fields that are ``None`` are left out of the line by ``to_line``.
    """
    try:
        tags_and_fields = _POINT_PARTS[type(event)]
    except KeyError:
        raise TypeError(f"no measurement for {type(event).__name__}") from None
    name, tags, fields = tags_and_fields(event)
    ts_ns = datetime_to_ns(event.ts) + ts_jitter_ns(event.id)
    return Point(
        name, {"store": event.store, "device": event.device} | tags, {"id": event.id} | fields, ts_ns
    )


_Parts = tuple[str, dict[str, str], dict[str, FieldValue | None]]


def _crossing_parts(e: CrossingEvent) -> _Parts:
    tags = {"line": e.line, "kind": e.kind, "direction": e.direction, "source": e.source}
    return CROSSING, tags, {"count": e.count, "track_id": e.track_id, "frame": e.frame}


def _zone_visit_parts(e: ZoneVisitEvent) -> _Parts:
    fields: dict[str, FieldValue | None] = {
        "dwell_s": float(e.dwell_s),
        "track_id": e.track_id,
        "enter_ns": datetime_to_ns(e.enter_ts),
    }
    return ZONE_VISIT, {"zone": e.zone}, fields


def _occupancy_parts(e: OccupancyEvent) -> _Parts:
    return OCCUPANCY, {"zone": e.zone or VIEW_ZONE}, {"count": e.count}


def _heartbeat_parts(e: HeartbeatEvent) -> _Parts:
    fields: dict[str, FieldValue | None] = {
        "fps": float(e.fps),
        "latency_ms": float(e.latency_ms),
        "dropped_frames": e.dropped_frames,
        "queue_depth": e.queue_depth,
        "frames": e.frames,
        "uptime_s": float(e.uptime_s),
        "camera_issues": e.camera_issues,  # None: no scene monitor
    }
    return HEARTBEAT, {}, fields


def _camera_issue_parts(e: CameraIssueEvent) -> _Parts:
    return CAMERA_ISSUE, {"issue": e.issue}, {"state": e.state, "score": float(e.score)}


def _wifi_parts(e: WifiEvent) -> _Parts:
    fields: dict[str, FieldValue | None] = {
        "device_hash": e.device_hash,
        "rssi": e.rssi,
        "randomized": e.randomized,
        "key_epoch": e.key_epoch,
        "prev_device_hash": e.prev_device_hash,  # None: no previous epoch
    }
    return WIFI, {"sensor": e.sensor}, fields


_POINT_PARTS: dict[type, Callable[[Any], _Parts]] = {
    CrossingEvent: _crossing_parts,
    ZoneVisitEvent: _zone_visit_parts,
    OccupancyEvent: _occupancy_parts,
    HeartbeatEvent: _heartbeat_parts,
    CameraIssueEvent: _camera_issue_parts,
    WifiEvent: _wifi_parts,
}


def event_to_line(event: Event) -> str:
    """``event_to_point(event).to_line()``, formatted directly: ingest's hot path.

    The same mapping (a test checks both agree for every event type): tags in sorted order, fields in
    ``event_to_point``'s order, ``None`` fields left out. Tag values need no escaping because the
    contract only lets names be ``[A-Za-z0-9_.:-]``.
    """
    return line_formatter(type(event))(event, datetime_to_ns(event.ts) + ts_jitter_ns(event.id))


def line_formatter(event_type: type) -> Callable[[Any, int], str]:
    """The line formatter of one event class: ``(event, ts_ns) -> line``.

    It reads the fields by attribute, so any object with that event's fields and validated values
    (ingest's fast path decodes into such structs, see ``contracts.fastpath``) gives the same line.
    """
    try:
        return _LINE_FORMATTERS[event_type]
    except KeyError:
        raise TypeError(f"no measurement for {event_type.__name__}") from None


def _crossing_line(e: Any, ts: int) -> str:
    fields = f"id={_string_field(e.id)},count={e.count}i"
    if (track_id := e.track_id) is not None:
        fields += f",track_id={track_id}i"
    if (frame := e.frame) is not None:
        fields += f",frame={frame}i"
    return (
        f"{CROSSING},device={e.device},direction={e.direction},kind={e.kind},"
        f"line={e.line},source={e.source},store={e.store} {fields} {ts}"
    )


def _zone_visit_line(e: Any, ts: int) -> str:
    return (
        f"{ZONE_VISIT},device={e.device},store={e.store},zone={e.zone} "
        f"id={_string_field(e.id)},dwell_s={float(e.dwell_s)!r},track_id={e.track_id}i,"
        f"enter_ns={datetime_to_ns(e.enter_ts)}i {ts}"
    )


def _occupancy_line(e: Any, ts: int) -> str:
    return (
        f"{OCCUPANCY},device={e.device},store={e.store},zone={e.zone or VIEW_ZONE} "
        f"id={_string_field(e.id)},count={e.count}i {ts}"
    )


def _heartbeat_line(e: Any, ts: int) -> str:
    fields = (
        f"id={_string_field(e.id)},fps={float(e.fps)!r},latency_ms={float(e.latency_ms)!r},"
        f"dropped_frames={e.dropped_frames}i,queue_depth={e.queue_depth}i,"
        f"frames={e.frames}i,uptime_s={float(e.uptime_s)!r}"
    )
    if (issues := e.camera_issues) is not None:
        fields += f",camera_issues={_string_field(issues)}"
    return f"{HEARTBEAT},device={e.device},store={e.store} {fields} {ts}"


def _camera_issue_line(e: Any, ts: int) -> str:
    return (
        f"{CAMERA_ISSUE},device={e.device},issue={e.issue},store={e.store} "
        f"id={_string_field(e.id)},state={_string_field(e.state)},score={float(e.score)!r} {ts}"
    )


def _wifi_line(e: Any, ts: int) -> str:
    fields = (
        f"id={_string_field(e.id)},device_hash={_string_field(e.device_hash)},rssi={e.rssi}i,"
        f"randomized={'true' if e.randomized else 'false'},key_epoch={e.key_epoch}i"
    )
    if (previous := e.prev_device_hash) is not None:
        fields += f",prev_device_hash={_string_field(previous)}"
    return f"{WIFI},device={e.device},sensor={e.sensor},store={e.store} {fields} {ts}"


# By exact class: one dict look-up instead of a chain of isinstance checks per event.
_LINE_FORMATTERS: dict[type, Callable[[Any, int], str]] = {
    CrossingEvent: _crossing_line,
    ZoneVisitEvent: _zone_visit_line,
    OccupancyEvent: _occupancy_line,
    HeartbeatEvent: _heartbeat_line,
    WifiEvent: _wifi_line,
    CameraIssueEvent: _camera_issue_line,
}


def _string_field(value: str) -> str:
    """A line-protocol string field value, quoted; escaped only when it needs to be (hot path).

    The one escaping of string fields: every formatter here and ``format_field`` use it."""
    if "\\" in value or '"' in value or "\n" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{value}"'


def pos_transaction_point(
    store: str, ts_ns: int, transaction_id: str, amount: float | None, items: int | None = None
) -> Point:
    """One point-of-sale transaction. The time carries a sub-millisecond offset derived from
    (store, transaction_id), so re-importing the same file overwrites the same points."""
    fields: dict[str, FieldValue] = {"transaction_id": transaction_id}
    if amount is not None:
        fields["amount"] = float(amount)
    if items is not None:
        fields["items"] = int(items)
    ts = ts_ns - ts_ns % 1_000_000 + ts_jitter_ns(stable_event_id("pos", store, transaction_id))
    return Point(POS_TRANSACTION, {"store": store}, fields, ts)


def deadletter_point(letter: DeadLetter) -> Point:
    """One refused message, counted in ``deadletter`` (tags reason, component; field count=1).

    The timestamp is the receive time plus an offset from topic and payload, so two refused
    messages in the same millisecond stay two points.
    """
    key = f"{letter.topic}|{letter.payload or letter.payload_b64 or ''}|{letter.size}"
    return Point(
        DEADLETTER,
        {"reason": letter.reason, "component": letter.component},
        {"count": 1, "topic": letter.topic, "detail": letter.detail, "size": letter.size},
        datetime_to_ns(letter.received_at) + ts_jitter_ns(key),
    )


def _escape_measurement(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace(" ", "\\ ")


def escape_key(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def format_field(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"InfluxDB cannot store the float {value!r}")
        return repr(value)
    return _string_field(str(value))


# KPI measurements written by analytics and read by the dashboards. Tag ``store`` (``all`` = the
# chain rollup); zone KPIs add tag ``zone``; campaign KPIs add tag ``campaign``. A KPI that cannot
# be computed (no data, zero denominator) is absent from the point, never 0 or infinite.
KPI_ZONE_HOURLY = "kpi_zone_hourly"
KPI_ZONE_DAILY = "kpi_zone_daily"
# The store KPIs (kpi_hourly, kpi_daily) are declared in ``contracts.kpis``; these lists are views of
# that table as it is at import (code that must see a KPI added later calls ``kpis()``).
KPI_STORE_FIELDS = tuple(k.name for k in kpis() if k.source != "history")
# Added to kpi_hourly by analytics: the traffic expected from the store's own history (the same weekday
# and hour of the weeks before, robust to a broken day; analytics/expected.py), its interval, and
# where the hour's visitors lie: -1 below the interval, 0 inside, +1 above (absent until the hour is
# over, and without enough history).
KPI_HOURLY_EXTRA_FIELDS = tuple(k.name for k in kpis("hourly") if k.source == "history")
KPI_EXPECTED_FIELDS = tuple(k for k in KPI_HOURLY_EXTRA_FIELDS if k.startswith("visitors_expected"))
# kpi_forecast_hourly (tag store): the expected visitors of the open hours of the coming days.
KPI_FORECAST_FIELDS = KPI_EXPECTED_FIELDS
# kpi_line_daily (tags store, device, line; time = local midnight): per entrance line and local day,
# crossings in and out (staff included: the line's own balance), exits / entries, and balance_flag 1
# when that ratio is more than 10 % from 1 (a line that miscounts one direction; set once the day is over).
KPI_LINE_FIELDS = ("entries", "exits", "balance", "balance_flag")
LINE_BALANCE_TOLERANCE = 0.10
KPI_ZONE_FIELDS = ("visits", "dwell_median_s", "dwell_p90_s")
KPI_CAMPAIGN_FIELDS = ("visitors", "baseline", "uplift", "uplift_pct", "ci_low", "ci_high")
# Added by analytics (additive): the interval in percent, the matched hours and baseline weeks used.
KPI_CAMPAIGN_EXTRA_FIELDS = ("ci_low_pct", "ci_high_pct", "hours", "baseline_weeks")
