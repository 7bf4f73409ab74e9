"""The store KPIs, declared once: what ``kpi_hourly`` / ``kpi_daily`` hold and how each is made.

Every consumer reads this table: the analytics core (hourly, daily and ``store=all`` rollup
computations), the stored field lists and their types (``contracts.measurements``, the DuckDB
tables), the report and the dashboards. Adding a KPI is one ``Kpi(...)`` line here (a derived one
needs nothing else; a counted or measured one also needs the stage of ``analytics.core`` that
produces it).

How a KPI is made:
- ``Summed()``: a count a stage produces per hour; a day is the sum of its covered hours, the
  rollup the sum over stores.
- ``Measured(rollup)``: a stage produces it per hour and per day itself (an average, a maximum, a
  median, a count of distinct devices); ``rollup`` says how ``store=all`` gets it: ``"sum"``,
  ``"median"`` (pooled over the stores' samples) or ``None`` (no rollup value).
- ``Ratio(num, den)`` / ``Excess(a, b)``: derived from other KPIs at every level, the rollup from
  the summed parts of the stores that have the KPI's source (capture rate only over stores with
  passby lines).
- ``Elsewhere(module)``: written into the same measurement by another part of analytics.

``source`` keeps missing data a gap: a store without that input has no such KPI (absent, never 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Period = Literal["hourly", "daily"]
Source = Literal["camera", "passby", "wifi", "pos", "revenue", "history"]
FieldKind = Literal["int", "float"]
# What a value means, for the report's formatting and the dashboards' units.
Unit = Literal["people", "count", "ratio", "money", "seconds", "hours", "flag"]
RollupRule = Literal["sum", "median"] | None

HOURLY: tuple[Period, ...] = ("hourly", "daily")
DAILY_ONLY: tuple[Period, ...] = ("daily",)


@dataclass(frozen=True)
class Summed:
    """Counted per hour by a stage; days and the rollup are sums."""


@dataclass(frozen=True)
class Measured:
    """Produced per hour and per day by a stage; ``rollup`` says how ``store=all`` gets it."""

    rollup: RollupRule = "sum"


@dataclass(frozen=True)
class Ratio:
    num: str
    den: str


@dataclass(frozen=True)
class Excess:
    """max(a - b, 0)."""

    a: str
    b: str


@dataclass(frozen=True)
class Elsewhere:
    """Written into the measurement by another module of analytics (not by the KPI core)."""

    module: str


Making = Summed | Measured | Ratio | Excess | Elsewhere


@dataclass(frozen=True)
class Kpi:
    name: str
    kind: FieldKind
    made: Making
    source: Source
    unit: Unit
    label: str
    periods: tuple[Period, ...] = HOURLY
    description: str = ""
    in_report: bool = False  # a row of the report's KPI table (the latest day's value)

    @property
    def derived(self) -> bool:
        return isinstance(self.made, Ratio | Excess)


_EXPECTED = Elsewhere("analytics/expected.py")

# Field order = the order of the fields in a stored point.
KPIS: tuple[Kpi, ...] = (
    Kpi(
        "visitors",
        "int",
        Summed(),
        "camera",
        "people",
        "visitors",
        description="entrance crossings in, no staff",
        in_report=True,
    ),
    Kpi(
        "exits",
        "int",
        Summed(),
        "camera",
        "people",
        "exits",
        description="entrance crossings out, staff excluded",
    ),
    Kpi(
        "passersby",
        "int",
        Summed(),
        "passby",
        "people",
        "passers-by",
        description="passby-line crossings",
        in_report=True,
    ),
    Kpi("walkbys", "int", Excess("passersby", "visitors"), "passby", "people", "walk-bys"),
    Kpi(
        "capture_rate",
        "float",
        Ratio("visitors", "passersby"),
        "passby",
        "ratio",
        "capture rate",
        in_report=True,
    ),
    Kpi(
        "occupancy_avg",
        "float",
        Measured("sum"),
        "camera",
        "people",
        "average occupancy",
        description="people inside, from in/out, corrected to 0 at closing",
    ),
    Kpi("occupancy_max", "float", Measured(None), "camera", "people", "peak occupancy", in_report=True),
    Kpi(
        "wifi_visits",
        "int",
        Summed(),
        "wifi",
        "count",
        "Wi-Fi visits",
        description="Wi-Fi sessions classified as visits (signal and duration)",
    ),
    Kpi(
        "wifi_walkbys",
        "int",
        Summed(),
        "wifi",
        "count",
        "Wi-Fi walk-bys",
        description="Wi-Fi sessions classified as walk-bys",
    ),
    Kpi("visit_duration_median_s", "float", Measured("median"), "wifi", "seconds", "median visit duration"),
    Kpi(
        "wifi_visitors",
        "int",
        Measured("sum"),
        "wifi",
        "count",
        "Wi-Fi visitors",
        DAILY_ONLY,
        "distinct non-randomized visiting devices (repeat_rate denominator)",
    ),
    Kpi(
        "repeat_visitors",
        "int",
        Measured("sum"),
        "wifi",
        "count",
        "repeat visitors",
        DAILY_ONLY,
        "of those, seen on an earlier day within 30 days",
    ),
    Kpi(
        "repeat_rate",
        "float",
        Ratio("repeat_visitors", "wifi_visitors"),
        "wifi",
        "ratio",
        "repeat rate",
        DAILY_ONLY,
    ),
    Kpi("transactions", "int", Summed(), "pos", "count", "transactions", in_report=True),
    Kpi("revenue", "float", Summed(), "revenue", "money", "revenue", in_report=True),
    Kpi(
        "conversion", "float", Ratio("transactions", "visitors"), "pos", "ratio", "conversion", in_report=True
    ),
    Kpi(
        "sales_per_visitor",
        "float",
        Ratio("revenue", "visitors"),
        "revenue",
        "money",
        "sales per visitor",
        in_report=True,
    ),
    Kpi(
        "atv",
        "float",
        Ratio("revenue", "transactions"),
        "revenue",
        "money",
        "average transaction value",
        in_report=True,
    ),
    Kpi(
        "covered_hours",
        "int",
        Measured("sum"),
        "camera",
        "hours",
        "covered hours",
        DAILY_ONLY,
        "hours with heartbeats (daily sums cover only these hours)",
    ),
    # The traffic expected from the store's own history (analytics/expected.py), its interval, and
    # where the hour's visitors lie: -1 below, 0 inside, +1 above (absent until the hour is over).
    Kpi("visitors_expected", "float", _EXPECTED, "history", "people", "visitors expected", ("hourly",)),
    Kpi("visitors_expected_low", "float", _EXPECTED, "history", "people", "expected, low", ("hourly",)),
    Kpi("visitors_expected_high", "float", _EXPECTED, "history", "people", "expected, high", ("hourly",)),
    Kpi("traffic_anomaly", "int", _EXPECTED, "history", "flag", "traffic anomaly", ("hourly",)),
)


def kpis(period: Period | None = None) -> tuple[Kpi, ...]:
    """The table's KPIs (of one period), read at call time so a KPI added to ``KPIS`` is seen."""
    return tuple(k for k in KPIS if period is None or period in k.periods)


def kpi(name: str) -> Kpi:
    for k in KPIS:
        if k.name == name:
            return k
    raise KeyError(f"no KPI named {name!r}")


def core_kpis(period: Period) -> tuple[Kpi, ...]:
    """The KPIs of one period that the analytics core computes."""
    return tuple(k for k in kpis(period) if not isinstance(k.made, Elsewhere))
