"""The InfluxDB contract: measurement names, tags and fields, and how an event becomes a point.

Tags are only low-cardinality dimensions (store, device, line, kind, direction, zone, ...).
Track ids, event ids and device hashes are fields, never tags.
"""

from __future__ import annotations

import linecache
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from pydantic import BaseModel

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
            "detector_input": "str",
            "person_px": "float",
            "person_px_aim": "int",
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
            _KPI_LINE_TYPES,
        ),
        Measurement(KPI_ZONE_HOURLY, ("store", "zone"), _KPI_ZONE_TYPES),
        Measurement(KPI_ZONE_DAILY, ("store", "zone"), _KPI_ZONE_TYPES),
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
    """The one mapping from a validated event to its InfluxDB point (see ``EventMapping``).

    The timestamp carries a deterministic sub-millisecond offset from the event id (see
    ``ts_jitter_ns``): a redelivered event overwrites itself, two people crossing in the same
    frame stay two points. Fields that are ``None`` are left out of the line by ``to_line``.
    """
    try:
        make_point = _POINT_MAKERS[type(event)]
    except KeyError:
        raise TypeError(f"no measurement for {type(event).__name__}") from None
    return make_point(event, datetime_to_ns(event.ts) + ts_jitter_ns(event.id))


def event_to_line(event: Event) -> str:
    """``event_to_point(event).to_line()``, formatted directly: ingest's hot path.

    The same mapping (a test checks both agree for every event type): tags in sorted order, fields in
    the declaration's order, ``None`` fields left out. Tag values need no escaping because the
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


@dataclass(frozen=True)
class EventMapping:
    """How one event type becomes a point of its measurement.

    Every tag and field of the measurement's declaration is the event's attribute of the same name,
    except those in ``computed``: a Python expression of the event ``e`` (evaluated in this module).
    A field that the event model lets be ``None`` is left out of the line when it is ``None``.
    The point maker and the line formatter of the event type are generated from this and the
    declaration when the module is imported (``generated_source`` shows the code)."""

    event: type[BaseModel]
    measurement: str
    computed: Mapping[str, str] = field(default_factory=dict)


EVENT_MAPPINGS = (
    EventMapping(CrossingEvent, CROSSING),
    EventMapping(ZoneVisitEvent, ZONE_VISIT, {"enter_ns": "datetime_to_ns(e.enter_ts)"}),
    # An occupancy without a zone is the whole camera view's.
    EventMapping(OccupancyEvent, OCCUPANCY, {"zone": "e.zone or VIEW_ZONE"}),
    EventMapping(HeartbeatEvent, HEARTBEAT),
    EventMapping(CameraIssueEvent, CAMERA_ISSUE),
    EventMapping(WifiEvent, WIFI),
)
# Tag, field and measurement names go into the generated code as they are: plain identifiers only.
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# How a field's value is written in a line, by declared type: ``{}`` is the value's expression.
_LINE_VALUE: dict[FieldType, str] = {
    "int": "{{{}}}i",
    "float": "{{float({})!r}}",
    "str": "{{_string_field({})}}",
    "bool": "{{'true' if {} else 'false'}}",
}


def _parts_of(mapping: EventMapping, declared: Measurement) -> tuple[dict[str, str], set[str]]:
    """Each tag's and field's expression, and the fields left out when ``None``."""
    model_fields = mapping.event.model_fields
    source: dict[str, str] = {}
    optional: set[str] = set()
    for name in (declared.name, *declared.tags, *declared.fields):
        if not _PLAIN_NAME.match(name):
            raise TypeError(f"{declared.name}: {name!r} is not a plain name")
    for name in (*declared.tags, *declared.fields):
        if name in mapping.computed:
            source[name] = mapping.computed[name]
        elif name in model_fields:
            source[name] = f"e.{name}"
            if name in declared.fields and type(None) in get_args(model_fields[name].annotation):
                optional.add(name)
        else:
            raise TypeError(f"{mapping.event.__name__} has no {name!r} for {declared.name}")
    if next(iter(declared.fields)) in optional:
        raise TypeError(f"{declared.name}: the first field must always be there (the line needs one)")
    return source, optional


def _line_formatter_source(mapping: EventMapping, declared: Measurement, function: str) -> str:
    source, optional = _parts_of(mapping, declared)
    tags = "".join(f",{tag}={{{source[tag]}}}" for tag in declared.tags)
    body = []
    required = ",".join(
        f"{name}={_LINE_VALUE[kind].format(source[name])}"
        for name, kind in declared.fields.items()
        if name not in optional
    )
    for name in (name for name in declared.fields if name in optional):
        body.append(f"    if (v := {source[name]}) is not None:")
        body.append(f'        fields += f",{name}={_LINE_VALUE[declared.fields[name]].format("v")}"')
    if not body:
        return f'def {function}(e, ts):\n    return f"{declared.name}{tags} {required} {{ts}}"\n'
    head = f'def {function}(e, ts):\n    fields = f"{required}"\n'
    return head + "\n".join(body) + f'\n    return f"{declared.name}{tags} {{fields}} {{ts}}"\n'


def _point_maker_source(mapping: EventMapping, declared: Measurement, function: str) -> str:
    source, optional = _parts_of(mapping, declared)
    tags = ", ".join(f"{tag!r}: {source[tag]}" for tag in declared.tags)

    def value(name: str, kind: FieldType) -> str:
        if kind != "float":
            return source[name]
        if name in optional:
            return f"None if (v := {source[name]}) is None else float(v)"
        return f"float({source[name]})"

    fields = ", ".join(f"{name!r}: {value(name, kind)}" for name, kind in declared.fields.items())
    return f"def {function}(e, ts):\n    return Point({declared.name!r}, {{{tags}}}, {{{fields}}}, ts)\n"


def generated_source(event_type: type) -> str:
    """The generated point maker and line formatter of one event type, as Python code."""
    for mapping in EVENT_MAPPINGS:
        if mapping.event is event_type:
            declared = measurement(mapping.measurement)
            point = _point_maker_source(mapping, declared, "point")
            return point + "\n" + _line_formatter_source(mapping, declared, "line")
    raise TypeError(f"no measurement for {event_type.__name__}")


def make_line_formatter(
    mapping: EventMapping, declared: Measurement | None = None
) -> Callable[[Any, int], str]:
    """The line formatter ``(event, ts_ns) -> line`` of ``mapping`` for the measurement as declared
    (``declared``: another declaration of it, as a test makes one)."""
    declared = declared or measurement(mapping.measurement)
    function = f"{declared.name}_line"
    formatter: Callable[[Any, int], str] = _compile(
        _line_formatter_source(mapping, declared, function), function
    )
    return formatter


def make_point_maker(
    mapping: EventMapping, declared: Measurement | None = None
) -> Callable[[Any, int], Point]:
    """The point maker ``(event, ts_ns) -> Point`` of ``mapping``, as ``make_line_formatter``."""
    declared = declared or measurement(mapping.measurement)
    function = f"{declared.name}_point"
    maker: Callable[[Any, int], Point] = _compile(_point_maker_source(mapping, declared, function), function)
    return maker


def _compile(source: str, function: str) -> Callable[[Any, int], Any]:
    """Define the generated function. Its code is kept in ``linecache`` under its own file name, so a
    traceback through it (ingest logs internal errors with theirs) shows the line that failed."""
    filename = f"<footfall.contracts.measurements: {function}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    # What the expressions in the code may use (``EventMapping.computed`` among them).
    scope: dict[str, Any] = {
        "Point": Point,
        "_string_field": _string_field,
        "datetime_to_ns": datetime_to_ns,
        "VIEW_ZONE": VIEW_ZONE,
    }
    exec(compile(source, filename, "exec"), scope)
    made: Callable[[Any, int], Any] = scope[function]
    return made


def _string_field(value: str) -> str:
    """A line-protocol string field value, quoted; escaped only when it needs to be (hot path).

    The one escaping of string fields: every formatter here and ``format_field`` use it."""
    if "\\" in value or '"' in value or "\n" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{value}"'


# By exact class: one dict look-up per event instead of a chain of isinstance checks.
_POINT_MAKERS: dict[type, Callable[[Any, int], Point]] = {
    m.event: make_point_maker(m) for m in EVENT_MAPPINGS
}
_LINE_FORMATTERS: dict[type, Callable[[Any, int], str]] = {
    m.event: make_line_formatter(m) for m in EVENT_MAPPINGS
}


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
_KPI_LINE_TYPES: dict[str, FieldType] = {
    "entries": "int",
    "exits": "int",
    "balance": "float",
    "balance_flag": "int",
}
KPI_LINE_FIELDS = tuple(_KPI_LINE_TYPES)
LINE_BALANCE_TOLERANCE = 0.10
# kpi_zone_hourly / kpi_zone_daily (tags store, zone): per store and zone, and pooled over the stores'
# visits per zone name (store=all, from the same code as the stores' values: analytics.core._zone_points).
_KPI_ZONE_TYPES: dict[str, FieldType] = {"visits": "int", "dwell_median_s": "float", "dwell_p90_s": "float"}
KPI_ZONE_FIELDS = tuple(_KPI_ZONE_TYPES)
KPI_CAMPAIGN_FIELDS = ("visitors", "baseline", "uplift", "uplift_pct", "ci_low", "ci_high")
# Added by analytics (additive): the interval in percent, the matched hours and baseline weeks used.
KPI_CAMPAIGN_EXTRA_FIELDS = ("ci_low_pct", "ci_high_pct", "hours", "baseline_weeks")
