"""Ingest's fast path: valid messages straight to line protocol, with a decoder derived from the contract.

Validating with the event models (pydantic) is most of ingest's CPU per event. msgspec decodes and
checks the same JSON into slotted structs several times faster. The structs are generated from the
models (names, types, defaults, constraints) when this module is imported, never written by hand.

This path only ever accepts. Whenever it does not take a message (a bad or unusual value, an event out
of place, a form the two decoders might read differently) it returns ``None``. The caller then asks
the contract (``parse_batch`` / ``parse_event``) for the verdict and the dead-letter reason. So what
it accepts, the contract must accept with the same line. tests/test_fastpath.py checks that for every
event type, every bad-input class and randomised mutations. Where the decoders differ, this side is
the stricter one:
- Patterns are checked with Python's ``re`` anchored by ``\\Z``. pydantic's Rust regex never lets
  ``$`` match before a final newline; Python's ``$`` would.
- For more than 6 fractional digits msgspec rounds the time and pydantic truncates it. A payload
  with such a number goes to the contract, and so does any payload with a ``\\u`` escape, which
  could spell such a fraction where a scan of the raw bytes would not see it.
- msgspec takes only JSON integers for ``int``; pydantic also takes ``5.0`` and ``"5"``. It refuses
  an out-of-range float where pydantic would make it infinite (and then reject it).
- A model whose validators or constraints this module cannot carry over fails at import, not quietly.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import msgspec
from pydantic import AwareDatetime, BaseModel
from pydantic.fields import FieldInfo

from footfall.contracts.events import (
    BATCH_TYPE,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_PAYLOAD_BYTES,
    CameraIssueEvent,
    CrossingEvent,
    HeartbeatEvent,
    OccupancyEvent,
    WifiEvent,
    ZoneVisitEvent,
    event_topic,
    is_batch_topic,
    split_topic,
    time_fields,
    ts_jitter_ns,
    ts_window,
)
from footfall.contracts.measurements import datetime_to_ns, line_formatter

# Validators of the models that only transform (``ts`` to UTC, which ``_line`` does too). Any other
# could reject what msgspec accepts, so the fast path refuses to exist beside it.
_TRANSFORMING_VALIDATORS = frozenset({"_to_utc"})
# Model settings whose effect the structs share or that can only make this path the stricter one: an
# unknown field is refused either way; msgspec never produces NaN or infinity from JSON. Any other
# setting (e.g. str_to_lower, strict, populate_by_name) could make the contract read a value otherwise.
_MIRRORED_CONFIG = frozenset({"extra", "frozen", "allow_inf_nan"})
# More than 6 fractional digits after a '.', anywhere in the payload (see the module docstring). A
# float field written that precisely is caught too: the message is then only slower, never wrong.
_LONG_FRACTION = re.compile(rb"\.[0-9]{7}")
# A JSON string can spell its '.' and digits as \u escapes ("11:59:00\u002e1234567Z"), which hide a
# long fraction from the byte scan above. Valid events need no such escape (every string field is
# printable ASCII, which JSON writers leave plain), so a payload with one is only slower on the contract.
_ESCAPE = b"\\u"


def _escapes(payload: bytes) -> bool:
    """Whether ``payload`` holds a \\u escape. A one-byte search runs at memchr speed, a two-byte one
    about 100 times slower, and most payloads hold no backslash at all."""
    return b"\\" in payload and _ESCAPE in payload


# Values remembered per pattern once they passed it (see ``_pattern_check``).
_PATTERN_CACHE_SIZE = 4096
# Fields a batch's topic names for all of its events.
_TOPIC_FIELDS = ("store", "device")


def _pattern_check(pattern: str) -> Callable[[str], bool]:
    """A pydantic ``pattern`` (Rust regex, ``^...$``) as the same test in Python. The first values
    that pass are remembered (names repeat all day); then the set stops growing, so unique values
    such as event ids cost one miss each and memory stays bounded."""
    if not (pattern.startswith("^") and pattern.endswith("$")) or pattern.endswith("\\$"):
        raise TypeError(f"fast path: pattern {pattern!r} is not anchored as ^...$")
    match = re.compile(pattern[:-1] + r"\Z").match
    passed: set[str] = set()

    def check(value: str) -> bool:
        if value in passed:
            return True
        if match(value) is None:
            return False
        if len(passed) < _PATTERN_CACHE_SIZE:
            passed.add(value)
        return True

    return check


@dataclass(frozen=True)
class _Kind:
    """One event type on the fast path."""

    tag: str
    format_line: Callable[[Any, int], str]
    patterns: tuple[tuple[str, Callable[[str], bool]], ...]  # (field, check): strings with a pattern
    # The same without store and device, which a batch's topic already names (checked once per batch).
    batch_patterns: tuple[tuple[str, Callable[[str], bool]], ...]
    # Its times besides ``ts`` (a zone visit's enter and exit), held to the same window.
    times: tuple[str, ...]


_checks: dict[str, Callable[[str], bool]] = {}
# annotated-types constraints msgspec.Meta takes as they are (the attribute and keyword share a name).
_BOUNDS: dict[type, str] = {
    annotated_types.Ge: "ge",
    annotated_types.Le: "le",
    annotated_types.Gt: "gt",
    annotated_types.Lt: "lt",
    annotated_types.MinLen: "min_length",
    annotated_types.MaxLen: "max_length",
}


def _convert(annotation: Any, metadata: list[Any], where: str) -> tuple[Any, str | None]:
    """A pydantic field type with its constraints -> (msgspec type, pattern checked after decoding)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extras = get_args(annotation)
        inner = list(metadata)
        for extra in extras:
            inner += extra.metadata if isinstance(extra, FieldInfo) else [extra]
        return _convert(base, inner, where)
    if origin in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) != 1 or len(get_args(annotation)) != 2:
            raise TypeError(f"fast path: {where}: only 'X | None' unions are supported")
        converted, pattern = _convert(members[0], metadata, where)
        return converted | None, pattern
    if origin is Literal or annotation is AwareDatetime:
        if metadata:
            raise TypeError(f"fast path: {where}: constraints {metadata} are not supported here")
        return (annotation if origin is Literal else Annotated[datetime, msgspec.Meta(tz=True)]), None
    if annotation not in (str, int, float, bool):
        raise TypeError(f"fast path: {where}: type {annotation!r} is not supported")
    bounds: dict[str, Any] = {}
    pattern = None
    for item in metadata:
        if (key := _BOUNDS.get(type(item))) is not None:
            bounds[key] = getattr(item, key)
        elif type(item).__name__ == "_PydanticGeneralMetadata" and set(vars(item)) == {"pattern"}:
            pattern = item.pattern
        else:
            raise TypeError(f"fast path: {where}: constraint {item!r} is not supported")
    if pattern is not None and annotation is not str:
        raise TypeError(f"fast path: {where}: a pattern on {annotation!r}")
    return (Annotated[annotation, msgspec.Meta(**bounds)] if bounds else annotation), pattern


def _struct_for(model: type[BaseModel]) -> tuple[type[msgspec.Struct], _Kind]:
    """The msgspec struct mirroring one event model, and how to check and format it."""
    decorators = model.__pydantic_decorators__
    validators = {
        *decorators.validators,
        *decorators.field_validators,
        *decorators.root_validators,
        *decorators.model_validators,
    }
    if unknown := validators - _TRANSFORMING_VALIDATORS:
        raise TypeError(f"fast path: {model.__name__} has validators {sorted(unknown)} it cannot mirror")
    if settings := set(model.model_config) - _MIRRORED_CONFIG:
        raise TypeError(f"fast path: {model.__name__} sets {sorted(settings)}, which it cannot mirror")
    tag_annotation = model.model_fields["type"].annotation
    (tag,) = get_args(tag_annotation)
    fields: list[tuple[Any, ...]] = []
    patterns: list[tuple[str, Callable[[str], bool]]] = []
    for name, info in model.model_fields.items():
        if name == "type":  # the union's tag, carried by msgspec's tag_field
            continue
        if info.default_factory is not None or info.alias or info.validation_alias:
            raise TypeError(
                f"fast path: {model.__name__}.{name}: default factories and aliases are not supported"
            )
        converted, pattern = _convert(info.annotation, list(info.metadata), f"{model.__name__}.{name}")
        fields.append((name, converted) if info.is_required() else (name, converted, info.default))
        if pattern is not None:
            if pattern not in _checks:
                _checks[pattern] = _pattern_check(pattern)
            patterns.append((name, _checks[pattern]))
    struct = msgspec.defstruct(
        f"Fast{model.__name__}",
        fields,
        tag_field="type",
        tag=tag,
        forbid_unknown_fields=True,
        kw_only=True,
        frozen=True,
    )
    in_batch = tuple((name, check) for name, check in patterns if name not in _TOPIC_FIELDS)
    times = tuple(name for name in time_fields(model) if name != "ts")
    return struct, _Kind(tag, line_formatter(model), tuple(patterns), in_batch, times)


_KINDS: dict[type, _Kind] = {}
for _model in (CrossingEvent, ZoneVisitEvent, OccupancyEvent, HeartbeatEvent, WifiEvent, CameraIssueEvent):
    _struct, _kind = _struct_for(_model)
    _KINDS[_struct] = _kind
STRUCTS: tuple[type[msgspec.Struct], ...] = tuple(_KINDS)
# The pattern checks of store and device, which a batch message passes once for all its events.
_TOPIC_CHECKS = {
    (name, check) for kind in _KINDS.values() for name, check in kind.patterns if name in _TOPIC_FIELDS
}
# The structs exist only at run time, so to a type checker what the decoders return is Any.
_AnyStruct: Any = Union[STRUCTS]  # noqa: UP007 - a Union of a runtime tuple; `|` cannot be spread
_EVENT_DECODER = msgspec.json.Decoder(_AnyStruct)
_BATCH_DECODER = msgspec.json.Decoder(list[_AnyStruct])


def message_lines(payload: bytes, *, topic: str, now: datetime) -> list[str] | None:
    """The lines of a message on ``topic`` (a batch or a single event) whose every event the contract
    accepts; ``None`` when this path does not take it (ask ``parse_batch`` / ``parse_event``)."""
    if is_batch_topic(topic):
        return batch_lines(payload, topic=topic, now=now)
    line = event_line(payload, topic=topic, now=now)
    return None if line is None else [line]


def batch_lines(payload: bytes, *, topic: str, now: datetime) -> list[str] | None:
    """The line protocol of a batch message (``.../{store}/{device}/batch``) whose every event the
    contract accepts, in order; ``None`` when this path does not take it (ask ``parse_batch``)."""
    if len(payload) > MAX_BATCH_BYTES or _escapes(payload) or _LONG_FRACTION.search(payload):
        return None
    parts = split_topic(topic)
    if parts is None or parts[2] != BATCH_TYPE:
        return None
    store, device, _ = parts
    names = {"store": store, "device": device}
    if not all(check(names[name]) for name, check in _TOPIC_CHECKS):
        return None
    try:
        events = _BATCH_DECODER.decode(payload)
    except (msgspec.MsgspecError, ValueError):  # ValueError: invalid UTF-8 inside a string
        return None
    if not 1 <= len(events) <= MAX_BATCH_EVENTS:
        return None
    low, high = ts_window(now)
    lines = []
    for event in events:
        kind = _KINDS[type(event)]
        if event.store != store or event.device != device:
            return None
        line = _line(event, kind, kind.batch_patterns, low, high)
        if line is None:
            return None
        lines.append(line)
    return lines


def event_line(payload: bytes, *, topic: str, now: datetime) -> str | None:
    """The line of a single-event message the contract accepts on ``topic``; ``None`` when this path
    does not take it (ask ``parse_event``)."""
    if len(payload) > MAX_PAYLOAD_BYTES or _escapes(payload) or _LONG_FRACTION.search(payload):
        return None
    try:
        event = _EVENT_DECODER.decode(payload)
    except (msgspec.MsgspecError, ValueError):  # ValueError: invalid UTF-8 inside a string
        return None
    kind = _KINDS[type(event)]
    if topic != event_topic(event.store, event.device, kind.tag):
        return None
    return _line(event, kind, kind.patterns, *ts_window(now))


def _line(
    event: Any,
    kind: _Kind,
    patterns: tuple[tuple[str, Callable[[str], bool]], ...],
    low: datetime,
    high: datetime,
) -> str | None:
    for name, matches in patterns:
        value = getattr(event, name)
        if value is not None and not matches(value):
            return None
    ts = event.ts
    if ts.tzinfo is not UTC:
        try:
            ts = ts.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01 with a positive offset: far out of range anyway
            return None
    if not low <= ts <= high:
        return None
    for name in kind.times:  # aware datetimes compare by instant whatever their offset
        if not low <= getattr(event, name) <= high:
            return None
    return kind.format_line(event, datetime_to_ns(ts) + ts_jitter_ns(event.id))
