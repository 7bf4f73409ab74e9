"""Ingest's fast path (contracts/fastpath.py) against the contract it accelerates.

The property that matters: whatever the fast path accepts, the contract (``parse_batch`` /
``parse_event`` + ``event_to_line``) accepts with the same lines. Declining is always safe, because
the caller then asks the contract. But the common valid message must really take the fast path.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, model_validator

from footfall.contracts import fastpath
from footfall.contracts.events import (
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_PAYLOAD_BYTES,
    CameraIssueEvent,
    CrossingEvent,
    EventError,
    HeartbeatEvent,
    OccupancyEvent,
    WifiEvent,
    ZoneVisitEvent,
    batch_topic,
    event_topic,
    parse_batch,
    parse_event,
)
from footfall.contracts.measurements import event_to_line
from tests.event_samples import DEVICE, STORE, VALID

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
MODELS = (CrossingEvent, ZoneVisitEvent, OccupancyEvent, HeartbeatEvent, WifiEvent, CameraIssueEvent)


def contract_lines(payload: bytes, topic: str) -> list[str] | None:
    """The contract's lines for a message it accepts whole, ``None`` when it rejects any of it."""
    try:
        if topic.endswith("/batch"):
            events, rejected = parse_batch(payload, topic=topic, now=NOW)
            return None if rejected else [event_to_line(e) for e in events]
        return [event_to_line(parse_event(payload, topic=topic, now=NOW))]
    except EventError:
        return None


def assert_sound(payload: bytes, topic: str) -> list[str] | None:
    """What the fast path accepts, the contract accepts with the same lines."""
    fast = fastpath.message_lines(payload, topic=topic, now=NOW)
    if fast is not None:
        assert contract_lines(payload, topic) == fast, payload
    return fast


# ---- the generated structs ------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_struct_mirrors_model(model: type[BaseModel]) -> None:
    (struct,) = [s for s in fastpath.STRUCTS if s.__name__ == f"Fast{model.__name__}"]
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    assert info.tag_field == "type"
    assert info.tag == model.model_fields["type"].default
    assert info.forbid_unknown_fields
    fields = {f.name: f for f in info.fields}
    model_fields = {k: v for k, v in model.model_fields.items() if k != "type"}
    assert set(fields) == set(model_fields)
    for name, field in model_fields.items():
        assert fields[name].required == field.is_required(), name
        if not field.is_required():
            assert fields[name].default == field.default, name


class _Checked(BaseModel):
    type: Literal["checked"] = "checked"
    a: int

    @model_validator(mode="after")
    def _check(self) -> _Checked:
        return self


class _MultipleOf(BaseModel):
    type: Literal["multiple"] = "multiple"
    a: int = Field(multiple_of=5)


class _Unanchored(BaseModel):
    type: Literal["unanchored"] = "unanchored"
    a: str = Field(pattern="^[a-z]+")


class _ListField(BaseModel):
    type: Literal["listed"] = "listed"
    a: list[int]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True)
    type: Literal["strict"] = "strict"
    a: int = Field(strict=False)


class _Lowered(BaseModel):
    model_config = ConfigDict(str_to_lower=True)
    type: Literal["lowered"] = "lowered"
    a: str


class _Aliased(BaseModel):
    type: Literal["aliased"] = "aliased"
    a: int = Field(alias="b")


@pytest.mark.parametrize(
    "model", [_Checked, _MultipleOf, _Unanchored, _ListField, _Strict, _Lowered, _Aliased]
)
def test_refuses_a_model_it_cannot_mirror(model: type[BaseModel]) -> None:
    """A validator or constraint the structs would not carry must stop the import, not be dropped."""
    with pytest.raises(TypeError, match="fast path"):
        fastpath._struct_for(model)


# ---- valid messages take the fast path, with the contract's lines -----------------------------------


@pytest.mark.parametrize("name", VALID)
def test_valid_event_takes_fast_path(name: str) -> None:
    event = VALID[name]
    topic = event_topic(STORE, DEVICE, event["type"])
    fast = assert_sound(json.dumps(event).encode(), topic)
    assert fast is not None
    assert len(fast) == 1


def test_valid_batch_of_every_type_takes_fast_path() -> None:
    payload = json.dumps(list(VALID.values())).encode()
    fast = assert_sound(payload, batch_topic(STORE, DEVICE))
    assert fast is not None
    assert len(fast) == len(VALID)


@pytest.mark.parametrize("struct", fastpath.STRUCTS, ids=lambda s: s.__name__)
def test_every_integer_fits_influxdb(struct: type[msgspec.Struct]) -> None:
    """InfluxDB stores int64: a larger integer would pass both paths and be refused on write."""
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    for field in info.fields:
        kinds = field.type.types if isinstance(field.type, msgspec.inspect.UnionType) else (field.type,)
        for kind in kinds:
            if isinstance(kind, msgspec.inspect.IntType):
                assert (kind.ge if kind.ge is not None else -(2**64)) >= -(2**63), field.name
                assert (kind.le if kind.le is not None else 2**64) <= 2**63 - 1, field.name


# ---- what the fast path must leave to the contract ----------------------------------------------------


def _with(**changes: Any) -> dict[str, Any]:
    event = dict(VALID["crossing_full"])
    for key, value in changes.items():
        if value is _DROP:
            event.pop(key)
        else:
            event[key] = value
    return event


_DROP = object()
DECLINED = {
    # The contract accepts these, reading them differently or more leniently: the contract decides.
    "seven_digit_fraction": (_with(ts="2026-11-22T11:59:00.1234567Z"), True),
    "int_as_float": (_with(track_id=7.0), True),
    "int_as_string": (_with(count="3"), True),
    "unix_ts": (_with(ts=1795348740), True),
    "ts_without_seconds": (_with(ts="2026-11-22T11:59Z"), True),
    "bool_for_int": (_with(track_id=True), True),
    # The contract rejects these.
    "name_with_newline": (_with(line="door\n"), False),
    "store_with_newline": (_with(store=STORE + "\n"), False),
    "id_with_space": (_with(id="a b"), False),
    "id_non_ascii": (_with(id="é"), False),
    "empty_id": (_with(id=""), False),
    "long_name": (_with(line="d" * 65), False),
    "unknown_field": (_with(colour="red"), False),
    "missing_field": (_with(line=_DROP), False),
    "missing_type": (_with(type=_DROP), False),
    "unknown_type": (_with(type="teleport"), False),
    "bad_literal": (_with(direction="sideways"), False),
    "negative_count": (_with(count=0), False),
    "naive_ts": (_with(ts="2026-11-22T11:59:00"), False),
    "future_ts": (_with(ts="2026-11-22T12:30:00Z"), False),
    "past_ts": (_with(ts="2024-01-01T00:00:00Z"), False),
    "other_store": (_with(store="store-b"), False),
    "other_device": (_with(device="cam-2"), False),
    # The camera-issue fields (the contract rejects these).
    "unknown_issue": ({**VALID["camera_issue"], "issue": "foggy"}, False),
    "issue_score_above_one": ({**VALID["camera_issue"], "score": 1.5}, False),
    "issue_bad_state": ({**VALID["camera_issue"], "state": "ongoing"}, False),
    "heartbeat_issue_list": ({**VALID["heartbeat_issues"], "camera_issues": ["dark"]}, False),
    "heartbeat_issues_trailing_comma": ({**VALID["heartbeat_issues"], "camera_issues": "dark,"}, False),
    "heartbeat_issues_unknown": ({**VALID["heartbeat_issues"], "camera_issues": "dark,foggy"}, False),
    "heartbeat_issues_newline": ({**VALID["heartbeat_issues"], "camera_issues": "dark\n"}, False),
    # Values InfluxDB would refuse on write (the contract rejects these).
    "track_id_beyond_int64": (_with(track_id=2**63), False),
    "dropped_frames_beyond_int64": ({**VALID["heartbeat"], "dropped_frames": 2**64 - 1}, False),
    "zone_enter_before_window": ({**VALID["zone_visit"], "enter_ts": "0001-01-01T00:00:00Z"}, False),
    "zone_enter_without_utc": ({**VALID["zone_visit"], "enter_ts": "0001-01-01T00:00:00+01:00"}, False),
    "zone_exit_after_window": ({**VALID["zone_visit"], "exit_ts": "2026-11-22T12:10:00.000001Z"}, False),
}


@pytest.mark.parametrize("name", DECLINED)
@pytest.mark.parametrize("batched", [False, True], ids=["event", "batch"])
def test_fast_path_declines(name: str, batched: bool) -> None:
    event, contract_accepts = DECLINED[name]
    good = VALID["crossing"]
    if batched:
        payload, topic = json.dumps([good, event, good]).encode(), batch_topic(STORE, DEVICE)
    else:
        payload, topic = json.dumps(event).encode(), event_topic(STORE, DEVICE, event.get("type", "crossing"))
    assert fastpath.message_lines(payload, topic=topic, now=NOW) is None
    assert (contract_lines(payload, topic) is not None) == contract_accepts


# Timestamps whose '.' or digits are \u escapes: the raw bytes show no long fraction, yet msgspec
# would round what pydantic truncates (a point 1 µs off the contract's).
ESCAPED_TS = {
    "escaped_dot": r"2026-11-22T11:59:00\u002e1234567Z",
    "escaped_seventh_digit": r"2026-11-22T11:59:00.123456\u0037Z",
    "escaped_nine_digits": r"2026-11-22T11:59:00\u002e999999999Z",
    "escaped_six_digits": r"2026-11-22T11:59:00\u002e123456Z",
    "escaped_letter": r"2026-11-22\u005411:59:00.25Z",
}


@pytest.mark.parametrize("name", ESCAPED_TS)
@pytest.mark.parametrize("batched", [False, True], ids=["event", "batch"])
def test_fast_path_declines_escaped_timestamps(name: str, batched: bool) -> None:
    event = json.dumps(dict(VALID["crossing"], ts="TS")).replace('"TS"', f'"{ESCAPED_TS[name]}"')
    topic = event_topic(STORE, DEVICE, "crossing")
    if batched:
        event, topic = f"[{json.dumps(VALID['crossing'])}, {event}]", batch_topic(STORE, DEVICE)
    payload = event.encode()
    assert fastpath.message_lines(payload, topic=topic, now=NOW) is None
    assert contract_lines(payload, topic) is not None


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"[]",
        b"{}",
        b"\xff\xfe",
        b'[{"type": "crossing", "id": "\xff"}]',
        b"[" + b",".join([json.dumps(VALID["occupancy_view"]).encode()] * (MAX_BATCH_EVENTS + 1)) + b"]",
        b"\xef\xbb\xbf" + json.dumps([VALID["crossing"]]).encode(),
        json.dumps([VALID["crossing"]]).encode() + b" x",
    ],
    ids=[
        "empty",
        "empty_list",
        "object",
        "invalid_utf8",
        "invalid_utf8_inside",
        "too_many",
        "bom",
        "trailing",
    ],
)
def test_fast_path_declines_bad_batches(payload: bytes) -> None:
    assert fastpath.batch_lines(payload, topic=batch_topic(STORE, DEVICE), now=NOW) is None


def test_oversized_messages_are_declined() -> None:
    """Size limits hold even for content that is otherwise valid (padding is valid JSON)."""
    event = json.dumps(VALID["crossing"]).encode()
    padded = event[:-1] + b" " * MAX_PAYLOAD_BYTES + b"}"
    topic = event_topic(STORE, DEVICE, "crossing")
    assert fastpath.event_line(padded, topic=topic, now=NOW) is None
    assert contract_lines(padded, topic) is None
    batch = b"[" + b",".join([event + b" " * 300] * 4000) + b"]"
    assert len(batch) > MAX_BATCH_BYTES
    assert fastpath.batch_lines(batch, topic=batch_topic(STORE, DEVICE), now=NOW) is None
    assert contract_lines(batch, batch_topic(STORE, DEVICE)) is None


@pytest.mark.parametrize("store", ["store a", "store-a\n", "-store"])
def test_batch_whose_topic_and_events_share_a_bad_name_is_declined(store: str) -> None:
    """Store and device are pattern-checked once per batch, on the topic's names."""
    payload = json.dumps([dict(VALID["crossing"], store=store)]).encode()
    topic = batch_topic(store, DEVICE)
    assert fastpath.batch_lines(payload, topic=topic, now=NOW) is None
    assert contract_lines(payload, topic) is None


def test_batch_on_another_topic_is_declined() -> None:
    payload = json.dumps([VALID["crossing"]]).encode()
    assert fastpath.batch_lines(payload, topic=event_topic(STORE, DEVICE, "crossing"), now=NOW) is None
    assert fastpath.event_line(payload, topic=batch_topic(STORE, DEVICE), now=NOW) is None
    single = json.dumps(VALID["crossing"]).encode()
    assert fastpath.event_line(single, topic=event_topic(STORE, DEVICE, "occupancy"), now=NOW) is None


# ---- randomised: mutate valid events, the fast path never accepts what the contract would not -------

RAW_TOKENS = [
    "1e400",
    "-1e400",
    "1E2",
    "-0",
    "-0.0",
    "5.0",
    "0.1234567",
    "18446744073709551616",
    "9223372036854775808",
    "-9223372036854775809",
    "true",
    "false",
    "null",
    "[]",
    "{}",
    '"5"',
    '""',
    '"\\u0000"',
    '"\\ud800"',
    '"door\\n"',
    '"\\n"',
    '"door "',
    '"\\u0064oor"',
    '"NaN"',
    "NaN",
    "Infinity",
]
KEYS = sorted({k for event in VALID.values() for k in event} | {"extra", "Type", "ID"})

date = st.sampled_from(["2026-11-22", "2026-11-21", "2026-02-29", "2026-13-01", "0001-01-01", "20261122"])
separator = st.sampled_from(["T", "t", " ", "_", ""])
clock = st.sampled_from(["11:59:00", "11:59", "23:59:60", "24:00:00", "11:59:00:00", "115900", "11"])
fraction = st.one_of(st.just(""), st.from_regex(r"\A[.,][0-9]{0,10}\Z"))
offset = st.sampled_from(
    ["Z", "z", "", "+00:00", "-00:00", "+01:00", "-01:30", "+0100", "+01", "+24:00", "+23:59"]
)
timestamps = st.builds(lambda *parts: "".join(parts), date, separator, clock, fraction, offset)


def _escape(char: str) -> str:
    return f"\\u{ord(char):04x}" if ord(char) < 0x10000 else json.dumps(char)[1:-1]


@st.composite
def escaped_json(draw: st.DrawFn, texts: st.SearchStrategy[str]) -> str:
    """A JSON string of one of ``texts`` with some of its characters written as \\u escapes."""
    text = draw(texts)
    escaped = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return (
        '"'
        + "".join(_escape(c) if e else json.dumps(c)[1:-1] for c, e in zip(text, escaped, strict=True))
        + '"'
    )


timestamps_json = st.one_of(timestamps.map(json.dumps), escaped_json(timestamps))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner, max_size=2),
    max_leaves=4,
)
value_text = st.one_of(
    json_values.map(lambda v: json.dumps(v, allow_nan=True)),
    st.sampled_from(RAW_TOKENS),
    timestamps_json,
    st.sampled_from(["door", "store-a", "cam-1", "store-b", "e-1", "0123456789abcdef"]).map(json.dumps),
)


@st.composite
def mutated_events(draw: st.DrawFn) -> str:
    """A valid event's JSON text with some keys dropped, replaced, added or repeated."""
    items = [(k, json.dumps(v)) for k, v in draw(st.sampled_from(list(VALID.values()))).items()]
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["set", "drop", "duplicate", "ts"]))
        key = draw(st.sampled_from(KEYS))
        if action == "drop":
            items = [(k, v) for k, v in items if k != key]
        elif action == "ts":
            field = draw(st.sampled_from(["ts", "enter_ts", "exit_ts"]))
            items = [(k, v) for k, v in items if k != field] + [(field, draw(timestamps_json))]
        else:
            if action == "set":
                items = [(k, v) for k, v in items if k != key]
            items.append((key, draw(value_text)))
    order = draw(st.permutations(items))
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in order) + "}"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=mutated_events())
def test_mutated_event_is_never_accepted_against_the_contract(event: str) -> None:
    for event_type in ("crossing", "zone_visit", "occupancy", "heartbeat", "wifi", "camera_issue"):
        assert_sound(event.encode(), event_topic(STORE, DEVICE, event_type))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(
        st.one_of(mutated_events(), st.sampled_from(list(VALID.values())).map(json.dumps)),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_batch_is_never_accepted_against_the_contract(events: list[str]) -> None:
    assert_sound(("[" + ",".join(events) + "]").encode(), batch_topic(STORE, DEVICE))


@settings(max_examples=300, deadline=None)
@given(ts=timestamps)
def test_timestamp_forms_are_read_as_the_contract_reads_them(ts: str) -> None:
    event = dict(VALID["zone_visit"], ts=ts, exit_ts=ts)
    assert_sound(json.dumps(event).encode(), event_topic(STORE, DEVICE, "zone_visit"))


@settings(max_examples=300, deadline=None)
@given(ts=escaped_json(st.builds("2026-11-22T11:59:00.{}Z".format, st.from_regex(r"\A[0-9]{1,9}\Z"))))
def test_escaped_timestamps_are_read_as_the_contract_reads_them(ts: str) -> None:
    """A \\u escape may hide the fraction's length from the fast path's byte scan."""
    event = json.dumps(dict(VALID["crossing"], ts="TS")).replace('"TS"', ts)
    for payload, topic in [
        (event, event_topic(STORE, DEVICE, "crossing")),
        (f"[{event}]", batch_topic(STORE, DEVICE)),
    ]:
        assert_sound(payload.encode(), topic)
