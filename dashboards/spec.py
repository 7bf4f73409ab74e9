"""The dashboards as plain data: panels, their InfluxQL, and the substitutions Grafana makes.

Keeping each query as a string with Grafana's macros (``$store``, ``$timeFilter``, ``$__interval``)
lets the tests run exactly the query Grafana would run, against a real InfluxDB.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

PanelKind = Literal["stat", "timeseries", "table", "barchart"]

DATASOURCE_UID = "footfall-influxdb"
DATASOURCE_TYPE = "influxdb"
DATASOURCE_NAME = "footfall InfluxDB"
DEFAULT_DATABASE = "footfall"


@dataclass(frozen=True)
class Query:
    """One InfluxQL target. ``ref`` is Grafana's refId; ``alias`` names the series in the legend."""

    ref: str
    influxql: str
    alias: str = ""
    result_format: Literal["time_series", "table"] = "time_series"


@dataclass(frozen=True)
class Panel:
    title: str
    kind: PanelKind
    queries: tuple[Query, ...]
    description: str = ""
    unit: str = "short"
    width: int = 8
    height: int = 6
    decimals: int | None = None
    # Panel-level relative time ("now/d" = today so far) and shift ("7d" = a week earlier).
    time_from: str | None = None
    time_shift: str | None = None
    # A Grafana server-side expression over the queries' results, e.g. "$A - $B".
    expression: str | None = None


@dataclass(frozen=True)
class Annotation:
    name: str
    influxql: str
    text_column: str
    tags_column: str
    color: str = "rgba(255, 152, 48, 1)"


@dataclass(frozen=True)
class StoreVariable:
    """The ``store`` template variable: a tag-values query with an optional exclusion regex."""

    query: str
    multi: bool = False
    include_all: bool = False
    regex: str = ""


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    store_variable: StoreVariable
    panels: tuple[Panel, ...]
    annotations: tuple[Annotation, ...] = ()
    time_from: str = "now-24h"
    tags: tuple[str, ...] = field(default=("footfall",))


@dataclass(frozen=True)
class PanelQuery:
    """A query as it appears in a dashboard, addressable by dashboard uid, panel title and refId."""

    dashboard_uid: str
    panel_title: str
    ref: str
    influxql: str


def store_regex(stores: str | list[str]) -> str:
    """What Grafana substitutes for ``$store`` inside ``/^$store$/`` (regex-escaped, ORed)."""
    values = [stores] if isinstance(stores, str) else stores
    escaped = [re.sub(r"([\\/^$.|?*+()\[\]{}-])", r"\\\1", v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def render_query(
    influxql: str, *, store: str | list[str], start_ms: int, end_ms: int, interval: str = "1h"
) -> str:
    """Substitute Grafana's macros exactly as its InfluxQL mode does (times in epoch ms)."""
    return (
        influxql.replace("$timeFilter", f"time >= {start_ms}ms and time <= {end_ms}ms")
        .replace("$__interval", interval)
        .replace("$store", store_regex(store))
    )
