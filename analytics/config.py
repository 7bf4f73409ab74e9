"""Store metadata and campaign calendars: strict YAML (or CSV for campaigns) models.

A stores file::

    rollup_timezone: UTC            # calendar days of the store=all daily rollup
    stores:
      - id: store-a
        timezone: Europe/Berlin
        opening_hours:              # local wall time; a weekday not listed is closed
          mon-fri: "09:00-20:00"    # a key inside another overrides it on its days
          sat: "10:00-18:00"
        entrance_lines: [door]      # optional: otherwise the crossing's own `kind` tag decides
        passby_lines: [street]
        staff:
          lines: [staff-door]       # crossings of these lines are never visitors
          zones: [backroom]         # tracks that start in these zones are staff
          track_horizon_s: 43200    # how long after leaving the staff zone a track stays staff
          count_outside_hours: false  # crossings outside opening hours are not visitors
          wifi_min_hours_per_day: 6 # Wi-Fi devices seen in >= 6 distinct hours a day ...
          wifi_min_days: 3          # ... on >= 3 days are staff devices
        wifi:
          session_gap_s: 300
          visit_min_s: 120
          visit_min_rssi: -70
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, Field, field_validator, model_validator

from footfall.contracts.config import ConfigError, StrictModel, load_config, validate_config
from footfall.contracts.events import Name

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Berlin)") from None
    return value


TimeZoneName = Annotated[str, Field(min_length=1)]


class StaffRules(StrictModel):
    lines: list[Name] = Field(default_factory=list)
    zones: list[Name] = Field(default_factory=list)
    track_horizon_s: float = Field(default=12 * 3600, gt=0)
    count_outside_hours: bool = True
    wifi_min_hours_per_day: int | None = Field(default=None, ge=1, le=24)
    wifi_min_days: int = Field(default=1, ge=1)


class WifiRules(StrictModel):
    session_gap_s: float = Field(default=300, gt=0)
    visit_min_s: float = Field(default=120, ge=0)
    visit_min_rssi: int = Field(default=-70, ge=-120, le=0)


class StoreMeta(StrictModel):
    id: Name
    timezone: TimeZoneName = "UTC"
    # weekday (mon..sun) or range (mon-fri) -> "HH:MM-HH:MM"; no entry at all = always open.
    opening_hours: dict[str, str] = Field(default_factory=dict)
    entrance_lines: list[Name] | None = None
    passby_lines: list[Name] | None = None
    staff: StaffRules = Field(default_factory=StaffRules)
    wifi: WifiRules = Field(default_factory=WifiRules)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return _check_timezone(value)

    @field_validator("opening_hours")
    @classmethod
    def _check_hours(cls, value: dict[str, str]) -> dict[str, str]:
        for key, span in value.items():
            _weekdays_of(key)
            match = _SPAN.match(span)
            if not match:
                raise ValueError(f"{key}: expected HH:MM-HH:MM, got {span!r}")
            if (int(match[1]), int(match[2])) >= (int(match[3]), int(match[4])):
                raise ValueError(
                    f"{key}: {span!r} closes before it opens (overnight hours are not supported)"
                )
        _check_nested(value)
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def hours_on(self, day: date) -> tuple[int, int] | None:
        """Opening and closing local wall time on a date, in minutes after midnight (close <= 1440);
        None = closed. No ``opening_hours`` at all = open around the clock."""
        if not self.opening_hours:
            return 0, 1440
        weekday = WEEKDAYS[day.weekday()]
        keys = [key for key in self.opening_hours if weekday in _weekdays_of(key)]
        if not keys:
            return None
        # The keys naming this day nest (checked when loaded): the one with the fewest days wins,
        # so ``sun`` overrides ``daily`` whatever their order in the file.
        match = _SPAN.match(self.opening_hours[min(keys, key=lambda k: len(_weekdays_of(k)))])
        assert match
        return int(match[1]) * 60 + int(match[2]), int(match[3]) * 60 + int(match[4])

    def line_role(self, line: str, kind: str) -> int:
        """0 = entrance, 1 = passby, -1 = ignored (a staff line, or listed nowhere when lists exist)."""
        if line in self.staff.lines:
            return -1
        if self.entrance_lines is None and self.passby_lines is None:
            return 0 if kind == "entrance" else 1
        if line in (self.entrance_lines or []):
            return 0
        if line in (self.passby_lines or []):
            return 1
        return -1


def _weekdays_of(key: str) -> list[str]:
    key = key.strip().lower()
    if key in ("daily", "all", "mon-sun"):
        return list(WEEKDAYS)
    if "-" in key:
        first, _, last = key.partition("-")
        if first not in WEEKDAYS or last not in WEEKDAYS:
            raise ValueError(f"{key!r}: expected a weekday range like mon-fri")
        i, j = WEEKDAYS.index(first), WEEKDAYS.index(last)
        if i > j:
            raise ValueError(f"{key!r}: range runs backwards")
        return list(WEEKDAYS[i : j + 1])
    if key not in WEEKDAYS:
        raise ValueError(f"{key!r}: expected one of {', '.join(WEEKDAYS)} or a range like mon-fri")
    return [key]


def _check_nested(hours: dict[str, str]) -> None:
    """Two keys naming the same weekday must nest (``sun`` inside ``daily``, ``fri`` inside
    ``mon-fri``), so the smaller one can override the larger; the same days twice (``daily`` and
    ``mon-sun``) or a partial overlap (``mon-wed`` and ``tue-fri``) is ambiguous and rejected."""
    days = {key: set(_weekdays_of(key)) for key in hours}
    keys = list(days)
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            shared = days[a] & days[b]
            if shared and (days[a] == days[b] or shared not in (days[a], days[b])):
                named = ", ".join(d for d in WEEKDAYS if d in shared)
                raise ValueError(
                    f"{a!r} and {b!r} both set {named}: give those days one key, or nest the keys "
                    "(a day or a shorter range inside a longer one overrides it)"
                )


class StoresConfig(StrictModel):
    rollup_timezone: TimeZoneName = "UTC"
    stores: list[StoreMeta] = Field(default_factory=list)

    @field_validator("rollup_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return _check_timezone(value)

    @model_validator(mode="after")
    def _unique_ids(self) -> StoresConfig:
        ids = [s.id for s in self.stores]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"stores: duplicate ids {dupes}")
        return self

    def meta(self, store: str) -> StoreMeta | None:
        return next((s for s in self.stores if s.id == store), None)

    def with_stores(self, ids: Iterable[str]) -> StoresConfig:
        """This config plus, appended in the order given, the defaults (UTC, always open, line roles
        from the events' ``kind``) for each of ``ids`` it does not configure."""
        known = {s.id for s in self.stores}
        extra = [StoreMeta(id=i) for i in dict.fromkeys(ids) if i not in known]
        if not extra:
            return self
        return StoresConfig(rollup_timezone=self.rollup_timezone, stores=[*self.stores, *extra])


class Campaign(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=128)]
    stores: list[Name] = Field(min_length=1)
    start: AwareDatetime
    end: AwareDatetime
    channel: str = ""
    baseline_weeks: int = Field(default=4, ge=2, le=52)

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _order(self) -> Campaign:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class CampaignsConfig(StrictModel):
    campaigns: list[Campaign] = Field(default_factory=list)

    def get(self, name: str) -> Campaign:
        for campaign in self.campaigns:
            if campaign.name == name:
                return campaign
        known = ", ".join(c.name for c in self.campaigns) or "none"
        raise ConfigError(f"no campaign named {name!r} (known: {known})")


def load_stores(path: str | Path) -> StoresConfig:
    return load_config(path, StoresConfig)


def load_campaigns(path: str | Path) -> CampaignsConfig:
    """YAML (``campaigns: [{name, stores, start, end, channel}]``) or CSV with those columns
    (``stores`` separated by ``;`` or ``|``)."""
    path = Path(path)
    if path.suffix.lower() != ".csv":
        return load_config(path, CampaignsConfig)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    campaigns = []
    for row in rows:
        item: dict[str, object] = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        item["stores"] = [s.strip() for s in re.split(r"[;|]", str(item.get("stores", ""))) if s.strip()]
        if item.get("baseline_weeks", "") == "":
            item.pop("baseline_weeks", None)
        campaigns.append(item)
    return validate_config({"campaigns": campaigns}, CampaignsConfig, source=str(path))
