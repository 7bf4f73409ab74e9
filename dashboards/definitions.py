"""The three footfall dashboards: store manager, marketing and ops (InfluxQL, ``store`` variable).

Every query reads the measurements named in ``footfall.contracts.measurements``. Store-level
queries select with ``"store" =~ /^$store$/`` so single- and multi-value variables both work.
"""

from __future__ import annotations

from footfall.contracts.config import PERSON_PX_WARN_SHARE
from footfall.contracts.kpis import kpi
from footfall.contracts.measurements import (
    ALL_STORES,
    CAMERA_ISSUE,
    CROSSING,
    DEADLETTER,
    HEARTBEAT,
    KPI_CAMPAIGN,
    KPI_DAILY,
    KPI_FORECAST_HOURLY,
    KPI_HOURLY,
    KPI_LINE_DAILY,
    KPI_ZONE_HOURLY,
    OCCUPANCY,
    VIEW_ZONE,
    ZONE_VISIT,
)
from footfall.dashboards.spec import Annotation, Dashboard, Panel, PanelQuery, Query, StoreVariable


def _label(name: str) -> str:
    """A KPI's name in panels, as the KPI table (contracts.kpis) gives it."""
    return kpi(name).label


STORE = '"store" =~ /^$store$/'
# How tall the small people near a camera's lines and zones were at its detector's input, as a share
# of the height it was planned for: the median of the heartbeats' sizes (the ops table and its alert).
PEOPLE_SIZE_SHARE = 'median("person_px") / last("person_px_aim")'
# A device counts as online when it sent a heartbeat within this window (edges beat every 10 s by
# default, `--heartbeat-every`).
ONLINE_WINDOW = "5m"
# Devices with a heartbeat in the time range / in the online window (one row per store and device).
DEVICES_REPORTING = (
    f'SELECT count("last") FROM (SELECT last("fps") FROM "{HEARTBEAT}" WHERE {STORE} AND $timeFilter '
    'GROUP BY "store", "device")'
)
DEVICES_ONLINE = (
    f'SELECT count("last") FROM (SELECT last("fps") FROM "{HEARTBEAT}" WHERE {STORE} '
    f'AND time > now() - {ONLINE_WINDOW} GROUP BY "store", "device")'
)

STORE_MANAGER = Dashboard(
    uid="footfall-store",
    title="footfall · Store manager",
    description="Today's visitors, traffic, occupancy, conversion, capture rate and dwell for one store.",
    store_variable=StoreVariable(f'SHOW TAG VALUES FROM "{CROSSING}" WITH KEY = "store"'),
    time_from="now/d",
    panels=(
        Panel(
            "Visitors today",
            "stat",
            (Query("A", f'SELECT sum("visitors") FROM "{KPI_HOURLY}" WHERE {STORE} AND $timeFilter'),),
            description="Entrance crossings inward, staff excluded, since midnight.",
            time_from="now/d",
            width=6,
            height=4,
        ),
        Panel(
            "Same weekday last week",
            "stat",
            (Query("A", f'SELECT sum("visitors") FROM "{KPI_HOURLY}" WHERE {STORE} AND $timeFilter'),),
            description="Visitors on the same weekday a week ago, up to the same time of day.",
            time_from="now/d",
            time_shift="7d",
            width=6,
            height=4,
        ),
        Panel(
            "Occupancy now",
            "stat",
            (
                Query(
                    "A",
                    'SELECT sum("last") FROM (SELECT last("count") FROM '
                    f'"{OCCUPANCY}" WHERE {STORE} AND "zone" = \'{VIEW_ZONE}\' AND $timeFilter '
                    'GROUP BY "device")',
                ),
            ),
            description="People in view now: the latest occupancy of each camera, summed.",
            time_from="15m",
            width=6,
            height=4,
        ),
        Panel(
            "Conversion today",
            "stat",
            (
                Query(
                    "A",
                    f'SELECT sum("transactions") / sum("visitors") FROM "{KPI_HOURLY}" '
                    f"WHERE {STORE} AND $timeFilter",
                ),
            ),
            description="POS transactions per visitor since midnight.",
            unit="percentunit",
            decimals=1,
            time_from="now/d",
            width=6,
            height=4,
        ),
        Panel(
            "Hourly traffic",
            "barchart",
            (
                Query(
                    "A",
                    f'SELECT sum("visitors") AS "{_label("visitors")}", '
                    f'sum("walkbys") AS "{_label("walkbys")}" '
                    f'FROM "{KPI_HOURLY}" '
                    f"WHERE {STORE} AND $timeFilter GROUP BY time(1h) fill(none)",
                ),
            ),
            width=12,
            height=8,
        ),
        Panel(
            "Conversion and capture rate",
            "timeseries",
            (
                Query(
                    "A",
                    f'SELECT mean("conversion") AS "{_label("conversion")}", '
                    f'mean("capture_rate") AS "{_label("capture_rate")}" '
                    f'FROM "{KPI_HOURLY}" WHERE {STORE} AND $timeFilter GROUP BY time(1h) fill(none)',
                ),
            ),
            description="Conversion = transactions / visitors; capture rate = visitors / passers-by.",
            unit="percentunit",
            width=12,
            height=8,
        ),
        Panel(
            "Dwell by zone",
            "table",
            (
                Query(
                    "A",
                    f'SELECT count("dwell_s") AS "visits", median("dwell_s") AS "median dwell", '
                    f'percentile("dwell_s", 90) AS "p90 dwell" FROM "{ZONE_VISIT}" '
                    f'WHERE {STORE} AND $timeFilter GROUP BY "zone"',
                    result_format="table",
                ),
            ),
            description="Completed zone visits in the time range; dwell in seconds.",
            unit="s",
            width=12,
            height=8,
        ),
        Panel(
            "Sales per visitor",
            "timeseries",
            (
                Query(
                    "A",
                    f'SELECT last("sales_per_visitor") AS "{_label("sales_per_visitor")}" '
                    f'FROM "{KPI_DAILY}" '
                    f"WHERE {STORE} AND $timeFilter GROUP BY time(1d) fill(none)",
                ),
            ),
            description="Daily revenue / visitors.",
            unit="currencyEUR",
            time_from="30d",
            width=12,
            height=8,
        ),
        Panel(
            "Zone visits per hour",
            "timeseries",
            (
                Query(
                    "A",
                    f'SELECT sum("visits") FROM "{KPI_ZONE_HOURLY}" WHERE {STORE} AND $timeFilter '
                    'GROUP BY time(1h), "zone" fill(none)',
                    alias="$tag_zone",
                ),
            ),
            width=24,
            height=7,
        ),
        Panel(
            "Today against expected",
            "timeseries",
            (
                Query(
                    "A",
                    f'SELECT sum("visitors") AS "visitors", sum("visitors_expected") AS "expected", '
                    f'sum("visitors_expected_low") AS "expected low", sum("visitors_expected_high") AS '
                    f'"expected high", sum("traffic_anomaly") AS "anomaly" FROM "{KPI_HOURLY}" '
                    f"WHERE {STORE} AND $timeFilter GROUP BY time(1h) fill(none)",
                ),
            ),
            description="Visitors per hour against the traffic expected from the same weekday and hour "
            "of the weeks before (campaigns and broken days left out) and its 95 % interval; anomaly "
            "-1 / +1 marks an hour below / above it.",
            time_from="now/d",
            width=12,
            height=8,
        ),
        Panel(
            "Next week's forecast",
            "barchart",
            (
                Query(
                    "A",
                    # The coming week whatever the dashboard's range: the forecast lies in the future.
                    f'SELECT sum("visitors_expected") AS "expected", sum("visitors_expected_low") AS "low", '
                    f'sum("visitors_expected_high") AS "high" FROM "{KPI_FORECAST_HOURLY}" WHERE {STORE} '
                    "AND time >= now() - 1h AND time < now() + 7d GROUP BY time(1h) fill(none)",
                ),
            ),
            description="Expected visitors per open hour of the next seven days (staffing), with the "
            "95 % interval; refreshed daily by the analytics job.",
            width=12,
            height=8,
        ),
    ),
)

MARKETING = Dashboard(
    uid="footfall-marketing",
    title="footfall · Marketing",
    description="Campaign uplift against its baseline, traffic by store and channel, chain rollup.",
    store_variable=StoreVariable(
        f'SHOW TAG VALUES FROM "{KPI_DAILY}" WITH KEY = "store"',
        multi=True,
        include_all=True,
        regex=f"/^(?!{ALL_STORES}$).*/",
    ),
    time_from="now-30d",
    annotations=(
        Annotation(
            "Campaigns",
            f'SELECT "uplift_pct", "campaign" FROM "{KPI_CAMPAIGN}" WHERE {STORE} AND $timeFilter',
            text_column="campaign",
            tags_column="campaign",
        ),
    ),
    panels=(
        Panel(
            "Campaign visitors against baseline",
            "barchart",
            (
                Query(
                    "A",
                    # Analytics writes one point per campaign and store (at the campaign's start);
                    # ci_low/ci_high bound the uplift, so visitors - CI bounds the baseline.
                    f'SELECT last("visitors") AS "visitors", last("baseline") AS "baseline", '
                    f'last("visitors") - last("ci_high") AS "baseline low", '
                    f'last("visitors") - last("ci_low") AS "baseline high" '
                    f'FROM "{KPI_CAMPAIGN}" WHERE {STORE} AND $timeFilter GROUP BY "campaign", "store"',
                    result_format="table",
                ),
            ),
            description="Visitors in the campaign's hours against the same weekday-hours of the baseline "
            "weeks; baseline low/high: the band implied by the uplift's 95 % confidence interval.",
            width=16,
            height=8,
        ),
        Panel(
            "Campaign uplift",
            "table",
            (
                Query(
                    "A",
                    f'SELECT last("visitors") AS "visitors", last("baseline") AS "baseline", '
                    f'last("uplift") AS "uplift", last("uplift_pct") AS "uplift %", '
                    f'last("ci_low") AS "CI low", last("ci_high") AS "CI high" FROM "{KPI_CAMPAIGN}" '
                    f'WHERE {STORE} AND $timeFilter GROUP BY "campaign", "store"',
                    result_format="table",
                ),
            ),
            width=8,
            height=8,
        ),
        Panel(
            "Visitors by store",
            "timeseries",
            (
                Query(
                    "A",
                    f'SELECT sum("visitors") FROM "{KPI_DAILY}" WHERE {STORE} AND $timeFilter '
                    'GROUP BY time(1d), "store" fill(none)',
                    alias="$tag_store",
                ),
            ),
            width=12,
            height=8,
        ),
        Panel(
            "Entrances by store and channel",
            "timeseries",
            (
                Query(
                    "A",
                    f'SELECT sum("count") FROM "{CROSSING}" WHERE {STORE} AND "kind" = \'entrance\' '
                    "AND \"direction\" = 'in' AND $timeFilter "
                    'GROUP BY time($__interval), "store", "source" fill(none)',
                    alias="$tag_store $tag_source",
                ),
            ),
            description="Raw inward entrance crossings by counting channel (camera, beam counter).",
            width=12,
            height=8,
        ),
        Panel(
            "Chain rollup",
            "timeseries",
            (
                Query(
                    "A",
                    f'SELECT last("visitors") AS "visitors", last("transactions") AS "transactions" '
                    f'FROM "{KPI_DAILY}" WHERE "store" = \'{ALL_STORES}\' AND $timeFilter '
                    "GROUP BY time(1d) fill(none)",
                ),
            ),
            width=12,
            height=8,
        ),
        Panel(
            "Stores compared",
            "table",
            (
                Query(
                    "A",
                    f'SELECT sum("visitors") AS "visitors", sum("revenue") AS "revenue", '
                    f'sum("transactions") / sum("visitors") AS "conversion" FROM "{KPI_DAILY}" '
                    f'WHERE {STORE} AND $timeFilter GROUP BY "store"',
                    result_format="table",
                ),
            ),
            width=12,
            height=8,
        ),
    ),
)

OPS = Dashboard(
    uid="footfall-ops",
    title="footfall · Ops",
    description="Edge device health, store-and-forward backlog, offline devices and dead letters.",
    store_variable=StoreVariable(
        f'SHOW TAG VALUES FROM "{HEARTBEAT}" WITH KEY = "store"', multi=True, include_all=True
    ),
    time_from="now-6h",
    panels=(
        Panel(
            "Devices reporting",
            "stat",
            (Query("A", DEVICES_REPORTING),),
            description="Devices with at least one heartbeat in the time range.",
            width=8,
            height=4,
        ),
        Panel(
            "Devices online",
            "stat",
            (Query("A", DEVICES_ONLINE),),
            description=f"Devices with a heartbeat in the last {ONLINE_WINDOW}.",
            width=8,
            height=4,
        ),
        Panel(
            "Devices offline",
            "stat",
            (
                Query("A", DEVICES_REPORTING),
                Query("B", DEVICES_ONLINE),
            ),
            description=f"Reporting in the time range but silent for {ONLINE_WINDOW}.",
            expression="$A - $B",
            width=8,
            height=4,
        ),
        Panel(
            "Last heartbeat per device",
            "table",
            (
                Query(
                    "A",
                    # One selector plus plain fields: every value, and the time, of the last heartbeat.
                    f'SELECT last("fps") AS "fps", "latency_ms" AS "latency ms", "dropped_frames" AS '
                    f'"dropped frames", "queue_depth" AS "backlog", "uptime_s" AS "uptime s" '
                    f'FROM "{HEARTBEAT}" WHERE {STORE} AND $timeFilter '
                    'GROUP BY "store", "device"',
                    result_format="table",
                ),
            ),
            description="Time = the device's last heartbeat.",
            width=24,
            height=7,
        ),
        Panel(
            "Frames per second",
            "timeseries",
            (
                Query(
                    "A",
                    f'SELECT mean("fps") FROM "{HEARTBEAT}" WHERE {STORE} AND $timeFilter '
                    'GROUP BY time($__interval), "device" fill(none)',
                    alias="$tag_device",
                ),
            ),
            width=12,
            height=7,
        ),
        Panel(
            "Latency",
            "timeseries",
            (
                Query(
                    "A",
                    f'SELECT max("latency_ms") FROM "{HEARTBEAT}" WHERE {STORE} AND $timeFilter '
                    'GROUP BY time($__interval), "device" fill(none)',
                    alias="$tag_device",
                ),
            ),
            unit="ms",
            width=12,
            height=7,
        ),
        Panel(
            "Dropped frames",
            "timeseries",
            (
                Query(
                    "A",
                    f'SELECT max("dropped_frames") FROM "{HEARTBEAT}" WHERE {STORE} AND $timeFilter '
                    'GROUP BY time($__interval), "device" fill(none)',
                    alias="$tag_device",
                ),
            ),
            width=12,
            height=7,
        ),
        Panel(
            "Store-and-forward backlog",
            "timeseries",
            (
                Query(
                    "A",
                    f'SELECT max("queue_depth") FROM "{HEARTBEAT}" WHERE {STORE} AND $timeFilter '
                    'GROUP BY time($__interval), "device" fill(none)',
                    alias="$tag_device",
                ),
            ),
            description="Events waiting in the edge's on-disk queue.",
            width=12,
            height=7,
        ),
        Panel(
            "Camera issues now",
            "table",
            (
                Query(
                    "A",
                    f'SELECT last("camera_issues") AS "issues" FROM "{HEARTBEAT}" WHERE {STORE} '
                    'AND $timeFilter GROUP BY "store", "device"',
                    result_format="table",
                ),
            ),
            description="The issues in force by each camera's latest heartbeat (dark, covered, moved, "
            "frozen, blurred; empty: none): its counts are not to be trusted meanwhile.",
            time_from="15m",
            width=8,
            height=7,
        ),
        Panel(
            "Camera issue history",
            "table",
            (
                Query(
                    "A",
                    f'SELECT "state", "score", "issue" FROM "{CAMERA_ISSUE}" WHERE {STORE} AND $timeFilter '
                    'GROUP BY "store", "device"',
                    result_format="table",
                ),
            ),
            description="Each issue's start and end, at the media time of the frame the edge decided on.",
            time_from="30d",
            width=16,
            height=7,
        ),
        Panel(
            "People size at the detector's input",
            "table",
            (
                Query(
                    "A",
                    f'SELECT last("detector_input") AS "input", median("person_px") AS "people px", '
                    f'last("person_px_aim") AS "aim px", {PEOPLE_SIZE_SHARE} AS "share of aim" '
                    f'FROM "{HEARTBEAT}" WHERE {STORE} AND $timeFilter '
                    'GROUP BY "store", "device"',
                    result_format="table",
                ),
            ),
            description='Each camera\'s detector input ("probing" while it plans it) and how tall the '
            "small people near its lines and zones were at that input (the median of its heartbeats' "
            "10th percentiles) against the height it was planned for (model.person_px). Under "
            f"{PERSON_PX_WARN_SHARE:.0%} of it the nano model misses people and the camera undercounts; "
            "after an hour of it the edge plans its input again (model.replan_after_s), and the input "
            "shown changes. If it does not, the plan is capped: raise model.max_imgsz or draw the lines "
            "where people look larger. The last hour, as the alert judges it.",
            time_from="1h",
            width=24,
            height=6,
        ),
        Panel(
            "In/out balance per line",
            "timeseries",
            (
                Query(
                    "A",
                    f'SELECT "balance" FROM "{KPI_LINE_DAILY}" WHERE {STORE} AND $timeFilter '
                    'GROUP BY "store", "device", "line"',
                    alias="$tag_store $tag_device $tag_line",
                ),
            ),
            description="Exits / entries per entrance line and day (1 = every visitor counted out again); "
            "more than 10 % off is flagged and alerts.",
            unit="percentunit",
            time_from="14d",
            width=24,
            height=7,
        ),
        Panel(
            "Dead letters by reason",
            "timeseries",
            (
                Query(
                    "A",
                    f'SELECT sum("count") FROM "{DEADLETTER}" WHERE $timeFilter '
                    'GROUP BY time($__interval), "reason" fill(none)',
                    alias="$tag_reason",
                ),
            ),
            description="Messages ingest rejected, by reason (all stores: a bad message may name none).",
            width=24,
            height=7,
        ),
    ),
)

DASHBOARDS: tuple[Dashboard, ...] = (STORE_MANAGER, MARKETING, OPS)


def panel_queries() -> list[PanelQuery]:
    """Every InfluxQL query in every panel (and variable/annotation), with Grafana's macros in place."""
    found: list[PanelQuery] = []
    for dash in DASHBOARDS:
        found.append(PanelQuery(dash.uid, "$store variable", "var", dash.store_variable.query))
        found.extend(
            PanelQuery(dash.uid, f"annotation {a.name}", "ann", a.influxql) for a in dash.annotations
        )
        for panel in dash.panels:
            found.extend(PanelQuery(dash.uid, panel.title, q.ref, q.influxql) for q in panel.queries)
    return found


def find_query(dashboard_uid: str, panel_title: str, ref: str = "A") -> str:
    for q in panel_queries():
        if (q.dashboard_uid, q.panel_title, q.ref) == (dashboard_uid, panel_title, ref):
            return q.influxql
    raise KeyError(f"{dashboard_uid}: no query {ref} in panel {panel_title!r}")
