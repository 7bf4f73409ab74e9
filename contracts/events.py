"""The event contract: what the edge publishes and ingest accepts (schema v1).

Every event is one JSON object. ``parse_event`` is the single validator used by every component,
and ``EventError.reason`` is the machine-readable reason that goes to the dead-letter topic.
"""

from __future__ import annotations

import base64
import json
import reprlib
import secrets
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_serializer,
    field_validator,
)

SCHEMA_VERSION = 1
TOPIC_ROOT = "footfall/v1"
DEADLETTER_TOPIC = f"{TOPIC_ROOT}/deadletter"
MAX_PAYLOAD_BYTES = 16 * 1024
# Events stamped further from "now" than this are rejected (clock drift, bad replays, typos).
MAX_PAST = timedelta(days=400)
MAX_FUTURE = timedelta(minutes=10)

# Store / device / line / zone names become MQTT topic levels and InfluxDB tag values:
# no '/', '+', '#', spaces or control characters.
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
EventId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
# InfluxDB stores integers as int64 and refuses a larger one (HTTP 400) only when the point is written;
# refused here instead, as ``wrong_type``.
INT64_MAX = 2**63 - 1
NonNegativeInt64 = Annotated[int, Field(ge=0, le=INT64_MAX)]
# The fields of an event that hold a time. Each must lie in ``ts_window``: InfluxDB stores times (and
# ``enter_ts`` as ``enter_ns``) as int64 nanoseconds, about 1677..2262.
TIME_FIELDS = ("ts", "enter_ts", "exit_ts")
LineKind = Literal["entrance", "passby"]
Direction = Literal["in", "out"]
EVENT_TYPES = ("crossing", "zone_visit", "occupancy", "heartbeat", "wifi", "camera_issue")
# What a camera's scene monitor reports (edge/scene.py): too little light, a lens obstructed, a view
# that shifted or rotated, identical frames, a picture out of focus.
CameraIssueKind = Literal["dark", "covered", "moved", "frozen", "blurred"]
CAMERA_ISSUES: tuple[str, ...] = get_args(CameraIssueKind)
_ISSUE = "(?:" + "|".join(CAMERA_ISSUES) + ")"
# A heartbeat's issues in force: comma-separated names, "" when the camera sees its scene normally.
# A string rather than a list so that ingest's fast path (contracts/fastpath.py) carries it.
CAMERA_ISSUES_PATTERN = f"^(?:{_ISSUE}(?:,{_ISSUE})*)?$"
# A heartbeat's detector input: "WIDTHxHEIGHT" of the model input, or "probing" while the edge still
# looks at the whole picture to plan it (edge/scale.py).
DETECTOR_INPUT_PATTERN = "^(?:probing|[1-9][0-9]{1,4}x[1-9][0-9]{1,4})$"
# A device may also send several of its events as one message on ``.../{store}/{device}/batch``: a
# JSON array of events. The edge does so when it has a backlog (see ``parse_batch``).
BATCH_TYPE = "batch"
# The last topic level of a device's retained online / offline status (see ``status_topic``).
STATUS_TYPE = "status"
MAX_BATCH_EVENTS = 5000
MAX_BATCH_BYTES = 1024 * 1024


def format_ts(ts: datetime) -> str:
    """RFC 3339 in UTC with microseconds and a ``Z`` suffix."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def stable_event_id(*parts: object) -> str:
    """A deterministic id from an event's natural key, so a resent event is recognisable."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "footfall:" + "|".join(str(p) for p in parts)))


class _Event(BaseModel):
    # No NaN / Infinity: InfluxDB cannot store them, so such an event must fail validation here.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    id: EventId
    store: Name
    device: Name
    ts: AwareDatetime

    @field_validator(*TIME_FIELDS, check_fields=False)
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        # In UTC, and with the standard library's tzinfo: comparing or subtracting datetimes that
        # carry pydantic's own TzInfo costs more than this conversion (ingest does both per event).
        try:
            return value.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00: no such UTC time
            raise ValueError("not representable in UTC") from None

    @field_serializer(*TIME_FIELDS, check_fields=False)
    def _ser_ts(self, value: datetime) -> str:
        return format_ts(value)

    @property
    def topic(self) -> str:
        return f"{TOPIC_ROOT}/{self.store}/{self.device}/{self.type}"  # type: ignore[attr-defined]

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)


class CrossingEvent(_Event):
    """A person (or a beam counter's interval count) crossed a configured line."""

    type: Literal["crossing"] = "crossing"
    line: Name
    kind: LineKind
    direction: Direction
    track_id: NonNegativeInt64 | None = None
    frame: NonNegativeInt64 | None = None
    # 1 for a camera crossing; a beam counter's interval total otherwise.
    count: int = Field(default=1, ge=1, le=100_000)
    source: Literal["camera", "beam"] = "camera"


class ZoneVisitEvent(_Event):
    """A tracked person left a zone (or the track ended inside it): one completed visit."""

    type: Literal["zone_visit"] = "zone_visit"
    zone: Name
    track_id: NonNegativeInt64
    enter_ts: AwareDatetime
    exit_ts: AwareDatetime
    dwell_s: float = Field(ge=0, le=7 * 24 * 3600)


class OccupancyEvent(_Event):
    """How many people are in a zone (or, with no zone, in the camera's view) at ``ts``."""

    type: Literal["occupancy"] = "occupancy"
    zone: Name | None = None
    count: int = Field(ge=0, le=100_000)


class HeartbeatEvent(_Event):
    """Edge device health, sent periodically even when nobody is around."""

    type: Literal["heartbeat"] = "heartbeat"
    fps: float = Field(ge=0)
    latency_ms: float = Field(ge=0)
    dropped_frames: NonNegativeInt64
    queue_depth: NonNegativeInt64 = 0
    frames: NonNegativeInt64 = 0
    uptime_s: float = Field(default=0, ge=0)
    # The camera issues in force at ``ts`` (see ``CameraIssueEvent``), e.g. "covered" or "dark,frozen";
    # "" when none; absent from devices without a scene monitor (sensor bridges, older edges).
    camera_issues: str | None = Field(default=None, pattern=CAMERA_ISSUES_PATTERN)
    # What the person detector works with, absent from devices without one (sensor bridges, older
    # edges): its input size, how tall the small people near the lines and zones were at that input
    # since the last heartbeat (their 10th percentile, pixels; absent when nobody was seen near them),
    # and the height the camera's input was planned for (``model.person_px``). People well under the
    # aim are missed: the ops dashboard alerts (contracts/config.py, ``PERSON_PX_WARN_SHARE``).
    detector_input: str | None = Field(default=None, pattern=DETECTOR_INPUT_PATTERN)
    person_px: float | None = Field(default=None, ge=0, le=100_000)
    person_px_aim: int | None = Field(default=None, ge=1, le=100_000)


class CameraIssueEvent(_Event):
    """A camera's picture stopped (``started``) or resumed (``cleared``) showing its scene usably.

    ``ts`` is the media time of the frame on which the monitor decided; ``score`` (0..1) is how
    strongly the fault showed then (for ``cleared``: its strength on the last faulty frame)."""

    type: Literal["camera_issue"] = "camera_issue"
    issue: CameraIssueKind
    state: Literal["started", "cleared"]
    score: float = Field(ge=0, le=1)


class WifiEvent(_Event):
    """A Wi-Fi probe sighting with the MAC replaced by a keyed, rotating hash."""

    type: Literal["wifi"] = "wifi"
    sensor: Name
    device_hash: str = Field(pattern=r"^[0-9a-f]{16,64}$")
    rssi: int = Field(ge=-120, le=0)
    randomized: bool
    key_epoch: NonNegativeInt64
    # The same MAC hashed with the previous epoch's key, so a visit just after a key rotation still
    # matches one just before it (repeat visits within 30 days; see docs/ingest.md).
    prev_device_hash: str | None = Field(default=None, pattern=r"^[0-9a-f]{16,64}$")


def time_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields of an event model that hold a time (of ``TIME_FIELDS``), ``ts`` first."""
    return tuple(name for name in TIME_FIELDS if name in model.model_fields)


Event = Annotated[
    CrossingEvent | ZoneVisitEvent | OccupancyEvent | HeartbeatEvent | WifiEvent | CameraIssueEvent,
    Field(discriminator="type"),
]
_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
_TIMES: dict[type, tuple[str, ...]] = {model: time_fields(model) for model in get_args(get_args(Event)[0])}
_BATCH_ADAPTER: TypeAdapter[list[Event]] = TypeAdapter(list[Event])


# What the sender got wrong: the reasons a message is not a valid event.
EventErrorReason = Literal[
    "too_large",
    "invalid_utf8",
    "malformed_json",
    "not_an_object",
    "unknown_type",
    "missing_field",
    "wrong_type",
    "ts_out_of_range",
    "topic_mismatch",
    "bad_batch",
]
# Every reason a dead letter may carry: the sender's (above), a sensor message a bridge cannot map,
# a point InfluxDB itself refused (HTTP 400, e.g. a field type conflict), and ``internal_error``:
# footfall's own bug (logged with its traceback, counted; the message is kept in the dead letter).
DeadLetterReason = Literal[EventErrorReason, "bad_sensor_message", "db_rejected", "internal_error"]


class EventError(ValueError):
    """A message that is not a valid event. ``reason`` is one of ``REASONS``."""

    REASONS: tuple[EventErrorReason, ...] = get_args(EventErrorReason)

    def __init__(self, reason: EventErrorReason, detail: str) -> None:
        assert reason in self.REASONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def parse_event(payload: bytes | str, *, topic: str | None = None, now: datetime | None = None) -> Event:
    """Validate one message; raise ``EventError`` with a dead-letter reason when it is bad.

    With ``topic``, the store, device and type in the topic must match the payload, so a device
    allowed to publish under one store's topics cannot write events for another store.
    """
    raw = payload.encode() if isinstance(payload, str) else payload
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise EventError("too_large", f"{len(raw)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        # Fast path: pydantic parses and validates the bytes in one go (Rust).
        event = _EVENT_ADAPTER.validate_json(raw)
    except ValidationError:
        # Slow path, only for bad input: find the precise dead-letter reason.
        event = _validate_object(_load_json(raw))
    now = now or datetime.now(UTC)
    low, high = ts_window(now)
    if (late := _outside_window(event, low, high)) is not None:
        raise _ts_out_of_range(event, late, now)
    if topic is not None and topic != event.topic:
        raise EventError("topic_mismatch", f"topic {topic!r} but payload says {event.topic!r}")
    return event


@dataclass(frozen=True, slots=True)
class RejectedEvent:
    """One event of a batch that failed validation; the rest of the batch is still good."""

    index: int
    error: EventError
    payload: bytes  # the event's own JSON, for its dead letter


def split_topic(topic: str) -> tuple[str, str, str] | None:
    """``footfall/v1/{store}/{device}/{kind}`` -> ``(store, device, kind)``; ``None`` for any other topic.

    ``kind`` is an event type, ``batch`` or ``status``."""
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != TOPIC_ROOT:
        return None
    return parts[2], parts[3], parts[4]


def batch_topic(store: str, device: str) -> str:
    """Where a device publishes several of its events as one message (see ``parse_batch``)."""
    return f"{TOPIC_ROOT}/{store}/{device}/{BATCH_TYPE}"


def is_batch_topic(topic: str) -> bool:
    parts = split_topic(topic)
    return parts is not None and parts[2] == BATCH_TYPE


def batch_payload(events_json: Iterable[bytes]) -> bytes:
    """Events' JSON -> one batch message's payload: a JSON array of them."""
    return b"[" + b",".join(events_json) + b"]"


# An event of a batch as validated: the event or why it is not one, and the JSON item it came from.
_Candidate = tuple[Event | None, EventError | None, object]


def parse_batch(
    payload: bytes | str, *, topic: str, now: datetime | None = None
) -> tuple[list[Event], list[RejectedEvent]]:
    """Validate a batch message: a JSON array of 1..``MAX_BATCH_EVENTS`` events, all of the store and
    device named in ``topic`` (``footfall/v1/{store}/{device}/batch``), of any types.

    A message that is not a batch at all raises ``EventError``; single bad events are returned as
    ``RejectedEvent`` next to the good ones, so one bad event does not cost its neighbours.
    """
    raw = payload.encode() if isinstance(payload, str) else payload
    if len(raw) > MAX_BATCH_BYTES:
        raise EventError("too_large", f"{len(raw)} bytes > {MAX_BATCH_BYTES}")
    parts = split_topic(topic)
    if parts is None or parts[2] != BATCH_TYPE:
        raise EventError("topic_mismatch", f"{topic!r} is not {TOPIC_ROOT}/STORE/DEVICE/{BATCH_TYPE}")
    store, device, _ = parts
    now = now or datetime.now(UTC)
    low, high = ts_window(now)
    try:
        valid = _BATCH_ADAPTER.validate_json(raw)
    except ValidationError:
        valid = None
    # The common case, every event valid and in place, in one tight loop (ingest's hot path);
    # otherwise _sort_out finds which event is out of place and why.
    if (
        valid is not None
        and 1 <= len(valid) <= MAX_BATCH_EVENTS
        and all(
            _outside_window(e, low, high) is None and e.store == store and e.device == device for e in valid
        )
    ):
        return valid, []
    candidates: list[_Candidate]
    candidates = [(event, None, None) for event in valid] if valid is not None else _one_by_one(raw)
    if not 1 <= len(candidates) <= MAX_BATCH_EVENTS:
        raise EventError("bad_batch", f"{len(candidates)} events; a batch holds 1..{MAX_BATCH_EVENTS}")
    return _sort_out(candidates, topic, (store, device), now, (low, high))


def _one_by_one(raw: bytes) -> list[_Candidate]:
    """A batch that does not validate as a whole, validated event by event."""
    items = _load_json(raw)
    if not isinstance(items, list):
        kind = type(items).__name__
        raise EventError("bad_batch", f"a batch is a JSON array of events, got {kind}") from None
    candidates: list[_Candidate] = []
    for item in items:
        try:
            candidates.append((_validate_object(item), None, item))
        except EventError as exc:
            candidates.append((None, exc, item))
    return candidates


def _sort_out(
    candidates: list[_Candidate],
    topic: str,
    source: tuple[str, str],
    now: datetime,
    window: tuple[datetime, datetime],
) -> tuple[list[Event], list[RejectedEvent]]:
    """The valid events in place (in the time ``window`` accepted at ``now``, of the topic's store
    and device, ``source``), and the others rejected with the reason and their index in the batch."""
    store, device = source
    low, high = window
    events: list[Event] = []
    rejected: list[RejectedEvent] = []
    for index, (event, error, item) in enumerate(candidates):
        if event is not None:
            if (late := _outside_window(event, low, high)) is not None:
                error = _ts_out_of_range(event, late, now)
            elif event.store != store or event.device != device:
                error = EventError(
                    "topic_mismatch", f"topic {topic!r} but event says {event.store}/{event.device}"
                )
            else:
                events.append(event)
                continue
        assert error is not None
        text = event.to_json().encode() if event is not None else _dump_item(item)
        located = EventError(error.reason, f"event {index}: {error.detail}")
        rejected.append(RejectedEvent(index, located, text))
    return events, rejected


@dataclass(frozen=True, slots=True)
class _LongInteger:
    """A JSON integer with more digits than Python converts to ``int`` (``sys.get_int_max_str_digits``,
    4300). No event field takes it, so the event holding it is refused (``wrong_type``), and in a batch
    only that event, where ``json.loads`` would refuse the whole message."""

    digits: str


def _parse_int(text: str) -> int | _LongInteger:
    try:
        return int(text)
    except ValueError:
        return _LongInteger(text)


def _load_json(raw: bytes) -> object:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventError("invalid_utf8", str(exc)) from None
    try:
        return json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        raise EventError("malformed_json", str(exc)) from None
    except RecursionError:
        # Arrays or objects nested deeper than Python's parser goes (about 1000 levels; no event field
        # nests at all). The message as a whole is unreadable, so a batch cannot be split into events.
        raise EventError("malformed_json", "nested too deeply to parse") from None


def _validate_object(obj: object) -> Event:
    if not isinstance(obj, dict):
        raise EventError("not_an_object", f"got {type(obj).__name__}")
    if obj.get("type") not in EVENT_TYPES:
        raise EventError("unknown_type", f"type={obj.get('type')!r}")
    try:
        return _EVENT_ADAPTER.validate_python(obj)
    except ValidationError as exc:
        errors = exc.errors()
        missing = [e for e in errors if e["type"] == "missing"]
        first = (missing or errors)[0]
        where = ".".join(str(p) for p in first["loc"][1:]) or "(event)"
        raise EventError("missing_field" if missing else "wrong_type", f"{where}: {first['msg']}") from None


# Stands in for a long integer while ``_dump_item`` writes JSON: random, so no sender can forge it.
_LONG_INTEGER_MARK = f"long-integer-{secrets.token_hex(16)}"


def ts_window(now: datetime) -> tuple[datetime, datetime]:
    """The oldest and newest event time accepted at ``now``."""
    return now - MAX_PAST, now + MAX_FUTURE


def _outside_window(event: Event, low: datetime, high: datetime) -> str | None:
    """The first time field of ``event`` outside ``low..high``; ``None`` when all lie inside."""
    for name in _TIMES[type(event)]:
        if not low <= getattr(event, name) <= high:
            return name
    return None


def _ts_out_of_range(event: Event, name: str, now: datetime) -> EventError:
    return EventError("ts_out_of_range", f"{name}={format_ts(getattr(event, name))} now={format_ts(now)}")


def _dump_item(item: object) -> bytes:
    """An event of a batch (as ``_load_json`` read it) as JSON again, for its dead letter; long
    integers as they were sent."""
    longs: list[str] = []

    def long_integer(value: object) -> str:
        if not isinstance(value, _LongInteger):
            raise TypeError(f"{type(value).__name__} is not JSON")
        longs.append(value.digits)
        return _LONG_INTEGER_MARK

    try:
        text = json.dumps(item, ensure_ascii=False, allow_nan=True, default=long_integer)
    except (TypeError, ValueError, RecursionError):  # RecursionError: nested almost as deep as loads goes
        return reprlib.repr(item).encode()
    for digits in longs:  # in the order json.dumps met them
        text = text.replace(f'"{_LONG_INTEGER_MARK}"', digits, 1)
    return text.encode()


DEADLETTER_REASONS: tuple[DeadLetterReason, ...] = (
    *EventError.REASONS,
    "bad_sensor_message",
    "db_rejected",
    "internal_error",
)
# Dead letters carry the refused message itself up to this many bytes (then ``truncated``).
DEADLETTER_MAX_PAYLOAD_BYTES = 64 * 1024


class DeadLetter(BaseModel):
    """The JSON published on ``DEADLETTER_TOPIC`` for every message that could not be stored.

    ``payload`` holds the message as text when it is valid UTF-8, ``payload_b64`` otherwise.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: DeadLetterReason
    detail: str
    topic: str
    component: Name
    received_at: AwareDatetime
    size: int = Field(ge=0)
    payload: str | None = None
    payload_b64: str | None = None
    truncated: bool = False

    @field_serializer("received_at")
    def _ser_received_at(self, value: datetime) -> str:
        return format_ts(value)

    @classmethod
    def build(
        cls,
        *,
        reason: DeadLetterReason,
        detail: str,
        topic: str,
        payload: bytes,
        component: str,
        received_at: datetime,
    ) -> DeadLetter:
        kept = payload[:DEADLETTER_MAX_PAYLOAD_BYTES]
        try:
            text: str | None = kept.decode("utf-8")
            b64 = None
        except UnicodeDecodeError:
            text, b64 = None, base64.b64encode(kept).decode("ascii")
        return cls(
            reason=reason,
            detail=detail[:500],
            topic=topic[:512],
            component=component,
            received_at=received_at,
            size=len(payload),
            payload=text,
            payload_b64=b64,
            truncated=len(kept) < len(payload),
        )

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)


def event_topic(store: str, device: str, event_type: str) -> str:
    return f"{TOPIC_ROOT}/{store}/{device}/{event_type}"


def status_topic(store: str, device: str) -> str:
    """Retained ``online`` / ``offline`` (last will) status of an edge device or bridge."""
    return f"{TOPIC_ROOT}/{store}/{device}/{STATUS_TYPE}"


def is_status_topic(topic: str) -> bool:
    parts = split_topic(topic)
    return parts is not None and parts[2] == STATUS_TYPE


def ts_jitter_ns(event_id: str) -> int:
    """A deterministic sub-millisecond offset derived from the event id.

    InfluxDB overwrites points with the same series and timestamp. Adding this offset keeps two
    different events in the same millisecond apart (two such events of one series share a point with
    odds of 1 in 1,000,000) while a resent event (same id) still lands on exactly the same point and
    overwrites itself. CRC-32: uniform enough, deterministic, and the cheapest hash in the standard
    library (ingest computes it for every event). It defines point identity: every writer of a
    database must use the same function.
    """
    return zlib.crc32(event_id.encode()) % 1_000_000
