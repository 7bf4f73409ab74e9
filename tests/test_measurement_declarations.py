"""Every measurement footfall writes matches its one declaration (contracts.measurements), and every
string field goes through the one escaping function."""

from __future__ import annotations

import json
import re
import traceback
from datetime import UTC, datetime

import numpy as np
import pytest

from footfall.analytics.store import _lines_from_columns, points_to_columns
from footfall.contracts.events import CrossingEvent, DeadLetter, parse_event
from footfall.contracts.measurements import (
    CROSSING,
    EVENT_MAPPINGS,
    EventMapping,
    FieldValue,
    Measurement,
    Point,
    deadletter_point,
    event_to_line,
    event_to_point,
    format_field,
    make_line_formatter,
    make_point_maker,
    measurement,
    measurements,
    pos_transaction_point,
)
from tests.event_samples import VALID
from tests.kpi_support import compute_two_stores

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
HOSTILE = 'x\' OR 1=1 -- "quoted" back\\slash, comma=equals\nnewline'
_FIELD = re.compile(r'([^=,]+)=("(?:[^"\\]|\\.)*"|[^,]*)(?:,|$)')


def parse_line(line: str) -> tuple[str, dict[str, str], dict[str, FieldValue]]:
    """(measurement, tags, typed fields) of one line-protocol line (tags hold no escapes here)."""
    head, rest = re.split(r"(?<!\\) ", line, maxsplit=1)
    field_part, _ts = rest.rsplit(" ", 1)
    name, *tag_items = head.split(",")
    tags = dict(item.split("=", 1) for item in tag_items)
    fields: dict[str, FieldValue] = {}
    for key, raw in _FIELD.findall(field_part):
        fields[key] = _typed(raw)
    return name, tags, fields


def _typed(raw: str) -> FieldValue:
    if raw.startswith('"'):
        return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), raw[1:-1])
    if raw in ("true", "false"):
        return raw == "true"
    if raw.endswith("i"):
        return int(raw[:-1])
    return float(raw)


_PY_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def assert_declared(line: str) -> None:
    name, tags, fields = parse_line(line)
    declared = measurement(name)
    assert set(tags) <= set(declared.tags), line
    assert fields, line
    for key, value in fields.items():
        assert type(value) is _PY_TYPES[declared.fields[key]], (line, key)


@pytest.mark.parametrize("name", sorted(VALID))
def test_ingest_lines_match_the_declaration(name: str) -> None:
    event = parse_event(json.dumps(VALID[name]), now=NOW)
    assert_declared(event_to_line(event))
    assert_declared(event_to_point(event).to_line())
    tags = event_to_point(event).tags
    assert set(tags) == set(measurement(event_to_point(event).measurement).tags)


def test_analytics_points_match_the_declaration() -> None:
    points = compute_two_stores().all_points()
    assert {p.measurement for p in points} >= {"kpi_hourly", "kpi_daily", "kpi_line_daily"}
    for point in points:
        assert_declared(point.to_line())
        assert set(point.tags) == set(measurement(point.measurement).tags)


def test_pos_and_deadletter_points_match_the_declaration() -> None:
    assert_declared(pos_transaction_point("s1", 10**18, "t-1", 12.5, 2).to_line())
    letter = DeadLetter(
        reason="wrong_type", detail="d", topic="t", component="ingest", received_at=NOW, size=3
    )
    assert_declared(deadletter_point(letter).to_line())


STRING_FIELDS = [(m.name, f) for m in measurements() for f, kind in m.fields.items() if kind == "str"]


@pytest.mark.parametrize(("name", "field"), STRING_FIELDS)
def test_every_string_field_is_escaped_on_every_path(name: str, field: str) -> None:
    declared = measurement(name)
    tags = dict.fromkeys(declared.tags, "t")
    point = Point(name, tags, {field: HOSTILE}, 1)
    for line in (point.to_line(), *_lines_from_columns(name, points_to_columns([point])[name])):
        assert parse_line(line)[2] == {field: HOSTILE}, line


def test_the_hot_path_escapes_the_event_id() -> None:
    event = parse_event(json.dumps(VALID["offset_and_escapes"]), now=NOW)
    assert parse_line(event_to_line(event))[2]["id"] == event.id


def test_format_field_writes_each_declared_type() -> None:
    assert [format_field(v) for v in (3, 2.5, True, "a")] == ["3i", "2.5", "true", '"a"']
    with pytest.raises(ValueError, match="cannot store"):
        format_field(float(np.inf))


# ---- the line formatters and point makers are generated from the declarations


@pytest.mark.parametrize("mapping", EVENT_MAPPINGS, ids=lambda m: m.measurement)
def test_each_event_type_writes_every_declared_tag_and_field_of_its_measurement(
    mapping: EventMapping,
) -> None:
    declared = measurement(mapping.measurement)
    full = [
        e for e in (parse_event(json.dumps(v), now=NOW) for v in VALID.values()) if type(e) is mapping.event
    ]
    assert full, f"no sample of {mapping.event.__name__}"
    written = [parse_line(event_to_line(e)) for e in full]
    assert {name for name, _, _ in written} == {declared.name}
    assert all(list(tags) == list(declared.tags) for _, tags, _ in written)
    # Every declared field is written by some sample (the optional ones by the fullest).
    assert set().union(*(fields for _, _, fields in written)) == set(declared.fields)


def test_the_formatter_follows_the_declaration_it_is_made_from() -> None:
    """A declaration that drops a field, reorders the rest and declares ``count`` a float: the
    generated formatter and point maker write exactly that, with no other change."""
    event = parse_event(json.dumps(VALID["crossing_full"]), now=NOW)
    mapping = next(m for m in EVENT_MAPPINGS if m.event is CrossingEvent)
    changed = Measurement(
        "crossing", ("device", "line", "store"), {"count": "float", "id": "str", "frame": "int"}
    )
    line = make_line_formatter(mapping, changed)(event, 5)
    assert line == 'crossing,device=cam-1,line=street,store=store-a count=3.0,id="e-1",frame=120i 5'
    point = make_point_maker(mapping, changed)(event, 5)
    assert point.to_line() == line


def test_a_declared_field_the_event_does_not_have_fails_when_the_formatter_is_made() -> None:
    mapping = next(m for m in EVENT_MAPPINGS if m.event is CrossingEvent)
    with pytest.raises(TypeError, match="CrossingEvent has no 'speed'"):
        make_line_formatter(mapping, Measurement("crossing", ("store",), {"id": "str", "speed": "float"}))


def test_a_computed_value_replaces_the_attribute() -> None:
    mapping = EventMapping(CrossingEvent, CROSSING, {"line": "e.line.upper()"})
    event = parse_event(json.dumps(VALID["crossing"]), now=NOW)
    assert ",line=DOOR," in make_line_formatter(mapping)(event, 1)
    assert make_point_maker(mapping)(event, 1).tags["line"] == "DOOR"


def test_a_failure_inside_a_generated_formatter_shows_its_code_in_the_traceback() -> None:
    """ingest logs an internal error with its traceback: the generated line must be readable there."""
    mapping = next(m for m in EVENT_MAPPINGS if m.event is CrossingEvent)
    with pytest.raises(AttributeError) as caught:
        make_line_formatter(mapping)(object(), 1)
    assert "_string_field(e.id)" in "".join(traceback.format_exception(caught.value))
