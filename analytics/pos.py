"""Point-of-sale import: CSV or JSON files -> ``pos_transaction`` points, idempotently.

Native schema (one row or object per transaction, or per line item):

    store, ts, transaction_id, amount[, items]

``ts`` is ISO 8601; with no UTC offset, ``timezone`` (mapping) says which local time it is. Rows
sharing (store, transaction_id) are one transaction: amounts and item counts are summed, the
earliest time kept. ``items`` is a whole number, a list of ``{qty}`` objects (JSON), or any other
text that is not a number (an item name: one item per row); a number that is not whole is an error.

A *mapping* adapts other files, e.g. the BreadBasket bakery sample::

    store_value=bakery ts=Date+Time ts_format=%d-%m-%Y %H:%M:%S timezone=Europe/London
    transaction_id=Transaction amount= items=Item

keys: ``store`` (column) or ``store_value`` (constant), ``ts`` (column, or columns joined with
``+``), ``ts_format`` (strptime), ``timezone`` (IANA), ``transaction_id``, ``amount`` (empty =
the file has no amounts: revenue stays absent), ``items``.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import field_validator

from footfall.contracts.config import ConfigError, StrictModel, load_config, validate_config
from footfall.contracts.events import Name
from footfall.contracts.measurements import Point, datetime_to_ns, pos_transaction_point

_MAX_ERRORS_SHOWN = 10
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")  # the contracts' Name rule
# ``items`` text: a count ("3", "-1" for a return, "3.0"); any other number ("2.5", "1e3") is an
# error; text that is no number at all is an item name.
_WHOLE = re.compile(r"[+-]?\d+(?:\.0*)?")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
# A larger count in one row is a misread column (an id, a barcode), and sums must fit an int field.
_MAX_ITEMS = 1_000_000


class PosMapping(StrictModel):
    store: str = "store"
    store_value: Name | None = None
    ts: str = "ts"
    ts_format: str | None = None
    timezone: str | None = None
    transaction_id: str = "transaction_id"
    amount: str = "amount"
    items: str | None = "items"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ValueError, KeyError):
                raise ValueError(f"unknown time zone {value!r}") from None
        return value


def parse_mapping(spec: Iterable[str] | str | Path | None) -> PosMapping:
    """A mapping from a YAML file path, or from ``key=value`` items (one per ``--mapping``)."""
    if spec is None:
        return PosMapping()
    if isinstance(spec, str | Path):
        spec = [str(spec)]
    items = list(spec)
    if len(items) == 1 and "=" not in items[0]:
        return load_config(items[0], PosMapping)
    data: dict[str, str | None] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--mapping: expected key=value, got {item!r}")
        data[key.strip()] = value.strip() or (None if key.strip() == "items" else "")
    return validate_config(data, PosMapping, source="--mapping")


@dataclass(frozen=True)
class PosTransaction:
    store: str
    ts_ns: int
    transaction_id: str
    amount: float | None
    items: int | None

    def to_point(self) -> Point:
        return pos_transaction_point(self.store, self.ts_ns, self.transaction_id, self.amount, self.items)


class PosError(ValueError):
    """A POS file that cannot be imported; nothing is written. The message names rows and columns."""


def read_pos_file(path: str | Path, fmt: str, mapping: PosMapping | None = None) -> list[PosTransaction]:
    path = Path(path)
    mapping = mapping or PosMapping()
    try:
        if fmt == "csv":
            with path.open(newline="", encoding="utf-8-sig") as fh:
                rows: list[Mapping[str, Any]] = list(csv.DictReader(fh))
        elif fmt == "json":
            text = path.read_text(encoding="utf-8")
            try:
                loaded = json.loads(text)
            except json.JSONDecodeError:
                loaded = [json.loads(line) for line in text.splitlines() if line.strip()]
            rows = loaded if isinstance(loaded, list) else [loaded]
        else:
            raise PosError(f"{path}: unknown format {fmt!r} (csv or json)")
    except OSError as exc:
        raise PosError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, csv.Error) as exc:
        raise PosError(f"{path}: not valid {fmt}: {exc}") from None
    # CSV data rows start on line 2; JSON records are counted from 1.
    return parse_pos_rows(rows, mapping, source=str(path), first_line=2 if fmt == "csv" else None)


def parse_pos_rows(
    rows: Iterable[object],  # JSON records may be anything: each is checked
    mapping: PosMapping,
    *,
    source: str = "input",
    first_line: int | None = None,
) -> list[PosTransaction]:
    """Validate every row first (raising ``PosError`` naming rows and columns), then merge rows
    of the same (store, transaction_id)."""
    tz = ZoneInfo(mapping.timezone) if mapping.timezone else None
    ts_cols = mapping.ts.split("+")
    merged: dict[tuple[str, str], list[Any]] = {}
    errors: list[str] = []
    for n, row in enumerate(rows, start=1):
        where = f"line {n + first_line - 1}" if first_line else f"record {n}"
        if not isinstance(row, Mapping):
            errors.append(f"{source}: {where}: not an object")
            continue
        try:
            store = mapping.store_value or _required(row, mapping.store)
            tx_id = _required(row, mapping.transaction_id)
            ts_ns = _parse_ts(" ".join(_required(row, c) for c in ts_cols), mapping.ts_format, tz)
            amount = _parse_amount(row, mapping.amount)
            items = _parse_items(row.get(mapping.items), mapping.items) if mapping.items else None
            if not _valid_name(store):
                raise ValueError(f"store {store!r} is not a valid name (A-Z a-z 0-9 _ . : -)")
        except ValueError as exc:
            errors.append(f"{source}: {where}: {exc}")
            continue
        key = (store, tx_id)
        if key in merged:
            m = merged[key]
            m[0] = min(m[0], ts_ns)
            m[1] = None if m[1] is None or amount is None else m[1] + amount
            m[2] = None if m[2] is None or items is None else m[2] + items
        else:
            merged[key] = [ts_ns, amount, items]
    if errors:
        more = f"\n... and {len(errors) - _MAX_ERRORS_SHOWN} more" if len(errors) > _MAX_ERRORS_SHOWN else ""
        raise PosError("\n".join(errors[:_MAX_ERRORS_SHOWN]) + more + "\nnothing was imported")
    return [
        PosTransaction(store, ts, tx, float(amount) if amount is not None else None, items)
        for (store, tx), (ts, amount, items) in merged.items()
    ]


def _valid_name(value: str) -> bool:
    return bool(_NAME.fullmatch(value))


def _required(row: Mapping[str, Any], column: str) -> str:
    if column not in row:
        raise ValueError(f"missing column {column!r}")
    value = row[column]
    if value is None or str(value).strip() == "":
        raise ValueError(f"empty {column!r}")
    return str(value).strip()


def _parse_ts(text: str, fmt: str | None, tz: ZoneInfo | None) -> int:
    try:
        ts = datetime.strptime(text, fmt) if fmt else datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"time {text!r} does not match {fmt or 'ISO 8601'}") from None
    if ts.tzinfo is None:
        if tz is None:
            raise ValueError(f"time {text!r} has no UTC offset: give the mapping a timezone")
        ts = ts.replace(tzinfo=tz)
    return datetime_to_ns(ts)


def _parse_amount(row: Mapping[str, Any], column: str) -> Decimal | None:
    if not column:
        return None
    raw = _required(row, column)
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"amount {raw!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"amount {raw!r} is not finite")
    return value


def _parse_items(value: Any, column: str) -> int | None:
    """A quantity, a JSON list (a ``{qty}`` object counts its quantity, any other entry one item),
    or other text: an item name, one item. A number that is not a whole count is an error."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, list):
        return sum(
            _quantity(x["qty"], f"{column}[{i}].qty") if isinstance(x, dict) and "qty" in x else 1
            for i, x in enumerate(value)
        )
    if isinstance(value, str) and not _NUMBER.fullmatch(value.strip()):
        return 1  # an item name, words like "Nan" (bread) or "Inf" included: one item per row
    return _quantity(value, column)


def _quantity(value: Any, where: str) -> int:
    """A whole number of items: an integer, a whole JSON number (2.0) or such text ("2", "2.0", as
    spreadsheets write integers). "2.5", "1e3", NaN, null or true are errors, not a guess."""
    if isinstance(value, int) and not isinstance(value, bool):
        n = value
    elif isinstance(value, float) and value.is_integer():
        n = int(value)
    elif isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        n = int(Decimal(value.strip()))
    else:
        raise ValueError(f"{where} {_shown(value)} is not a whole number of items")
    if abs(n) > _MAX_ITEMS:
        raise ValueError(f"{where} {_shown(value)} is out of range (at most {_MAX_ITEMS:,} items a row)")
    return n


def _shown(value: Any) -> str:
    """A value as the file wrote it: text quoted, JSON values as JSON (null, not None)."""
    return repr(value) if isinstance(value, str) else json.dumps(value, default=repr)


def pos_points(transactions: Iterable[PosTransaction]) -> list[Point]:
    return [t.to_point() for t in transactions]
