"""Grafana alert rules as code: one InfluxQL query per rule, reduced to one number per series and
compared with a threshold (Grafana's server-side "reduce" and "threshold" expressions).

The rules are provisioned from ``dashboards/provisioning/alerting/footfall.yaml`` (written by
``footfall dashboards build``), beside the dashboards, against the same datasource. Contact points
and notification policies are the deployer's (docs/dashboards.md): Grafana routes firing alerts to
its default policy until one is configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from footfall.contracts.config import PEOPLE_SIZE_MIN_BEATS, PEOPLE_SIZE_WINDOW_S, PERSON_PX_WARN_SHARE
from footfall.contracts.measurements import (
    ALL_STORES,
    DEADLETTER,
    HEARTBEAT,
    KPI_HOURLY,
    KPI_LINE_DAILY,
)
from footfall.dashboards.definitions import PEOPLE_SIZE_SHARE
from footfall.dashboards.spec import DATASOURCE_UID

Reducer = Literal["last", "max", "min", "sum", "mean"]
Comparison = Literal["gt", "lt"]
GROUP = "footfall"
FOLDER = "footfall"
# How often Grafana evaluates the group.
EVALUATE_EVERY = "1m"


@dataclass(frozen=True)
class AlertRule:
    uid: str
    title: str
    # InfluxQL with Grafana's $timeFilter: the rule's window is [now - window_s, now - until_s].
    query: str
    window_s: int
    reducer: Reducer  # one number per series (label set)
    comparison: Comparison
    threshold: float
    summary: str
    description: str
    severity: Literal["critical", "warning"] = "warning"
    pending: str = "0s"  # how long the condition must hold before the alert fires
    no_data: Literal["OK", "NoData", "Alerting"] = "OK"
    until_s: int = 0


RULES: tuple[AlertRule, ...] = (
    AlertRule(
        uid="footfall-edge-offline",
        title="Edge device offline",
        # Heartbeats per minute, averaged over the last five one-minute buckets (the newest one partial),
        # per device that sent any in the last day; 0 = silent for the last 4-5 minutes, and the rule
        # waits one more minute before it fires: no heartbeat for 5 minutes.
        query=f'SELECT moving_average(count("fps"), 5) FROM "{HEARTBEAT}" WHERE $timeFilter '
        'GROUP BY time(1m), "store", "device" fill(0)',
        window_s=24 * 3600,
        reducer="last",
        comparison="lt",
        threshold=0.01,
        pending="1m",
        no_data="NoData",
        severity="critical",
        summary="{{ $labels.store }}/{{ $labels.device }} sent no heartbeat for 5 minutes",
        description="The edge container, its mini-PC or the store's network is down (events stay "
        "queued on the device and arrive when it is back).",
    ),
    AlertRule(
        uid="footfall-camera-issue",
        title="Camera issue",
        # Heartbeats (every ~10 s) in the last 15 minutes that named an issue in force.
        query=f'SELECT count("camera_issues") FROM "{HEARTBEAT}" WHERE "camera_issues" =~ /./ '
        'AND $timeFilter GROUP BY "store", "device"',
        window_s=15 * 60,
        reducer="last",
        comparison="gt",
        threshold=0,
        summary="{{ $labels.store }}/{{ $labels.device }} reports a camera issue (dark, covered, moved, "
        "frozen or blurred)",
        description="Its counts are not to be trusted until the issue clears; see the ops dashboard's "
        "camera issues.",
    ),
    AlertRule(
        uid="footfall-people-too-small",
        title="People too small for the detector",
        # The median over the last hour's heartbeats of how tall the small people near the camera's
        # lines and zones were at the detector's input, as a share of the height it aims for. Beats
        # that saw nobody near them carry no size; an hour with fewer than PEOPLE_SIZE_MIN_BEATS sized
        # beats is too quiet to judge (one or two beats would decide) and has no data.
        query=f'SELECT "share" FROM (SELECT {PEOPLE_SIZE_SHARE} AS "share", count("person_px") AS "sized" '
        f'FROM "{HEARTBEAT}" WHERE $timeFilter GROUP BY "store", "device") '
        f'WHERE "sized" >= {PEOPLE_SIZE_MIN_BEATS} GROUP BY "store", "device"',
        window_s=PEOPLE_SIZE_WINDOW_S,
        reducer="last",
        comparison="lt",
        threshold=PERSON_PX_WARN_SHARE,
        summary="{{ $labels.store }}/{{ $labels.device }}: people near the lines are too small at the "
        "detector's input",
        description="The camera undercounts. After an hour of this the edge plans its input again from "
        "the people it saw lately (model.replan_after_s; not when model.imgsz pins it), and logs it. "
        "If the alert stays, the plan is capped: raise model.max_imgsz (CPU time) or draw the lines "
        "where people look larger. See the ops dashboard's people size at the detector's input.",
    ),
    AlertRule(
        uid="footfall-traffic-below-expected",
        title="Traffic below expectation for 2 hours",
        # The anomaly flags (-1 below the interval) of the hours that began in the last 3 hours: the
        # last two complete ones (the hour in progress has no flag yet).
        query=f'SELECT sum("traffic_anomaly") FROM "{KPI_HOURLY}" WHERE "store" != \'{ALL_STORES}\' '
        'AND $timeFilter GROUP BY "store"',
        window_s=3 * 3600,
        reducer="last",
        comparison="lt",
        threshold=-1.5,
        summary="{{ $labels.store }}: visitors below the expected interval for two hours",
        description="A counter that stopped counting, a closed door, or a really quiet day; compare "
        "with the store-manager dashboard's expected traffic.",
    ),
    AlertRule(
        uid="footfall-line-imbalance",
        title="In/out imbalance",
        # The flag of each entrance line's last complete day: the day whose point (its local midnight)
        # lies between 48 and 24 hours ago has ended, whichever day is in progress.
        query=f'SELECT last("balance_flag") FROM "{KPI_LINE_DAILY}" WHERE $timeFilter '
        'GROUP BY "store", "device", "line"',
        window_s=48 * 3600,
        until_s=24 * 3600,
        reducer="last",
        comparison="gt",
        threshold=0.5,
        summary="{{ $labels.store }}/{{ $labels.device }} line {{ $labels.line }}: exits / entries off 1 "
        "by more than 10 % yesterday",
        description="The line probably miscounts one direction (placement, occlusion, a second door).",
    ),
    AlertRule(
        uid="footfall-deadletters",
        title="Dead-letter rate",
        query=f'SELECT sum("count") FROM "{DEADLETTER}" WHERE $timeFilter',
        window_s=10 * 60,
        reducer="last",
        comparison="gt",
        threshold=10,
        summary="More than 10 messages dead-lettered by ingest in 10 minutes",
        description="A device or bridge sends what the contract refuses (firmware, clock, ACL); "
        "see the ops dashboard's dead letters by reason.",
    ),
)


def _expression_source() -> dict[str, Any]:
    """A fresh dict each time, so that the YAML has no anchors."""
    return {"datasource": {"type": "__expr__", "uid": "__expr__"}}


def rule_payload(rule: AlertRule) -> dict[str, Any]:
    """One rule in Grafana's alerting file-provisioning format: query A, reduce B, threshold C."""
    query = {
        "refId": "A",
        "datasource": {"type": "influxdb", "uid": DATASOURCE_UID},
        "query": rule.query,
        "rawQuery": True,
        "resultFormat": "time_series",
        "intervalMs": 60_000,
        "maxDataPoints": 43_200,
    }
    reduce: dict[str, Any] = {"refId": "B", "type": "reduce", "expression": "A", "reducer": rule.reducer}
    reduce["settings"] = {"mode": "dropNN"}  # empty buckets and nulls never decide
    threshold: dict[str, Any] = {"refId": "C", "type": "threshold", "expression": "B"}
    threshold["conditions"] = [{"evaluator": {"type": rule.comparison, "params": [rule.threshold]}}]
    return {
        "uid": rule.uid,
        "title": rule.title,
        "condition": "C",
        "data": [
            {
                "refId": "A",
                "relativeTimeRange": {"from": rule.window_s, "to": rule.until_s},
                "datasourceUid": DATASOURCE_UID,
                "model": query,
            },
            {"refId": "B", "datasourceUid": "__expr__", "model": reduce | _expression_source()},
            {"refId": "C", "datasourceUid": "__expr__", "model": threshold | _expression_source()},
        ],
        "noDataState": rule.no_data,
        "execErrState": "Error",
        "for": rule.pending,
        "annotations": {"summary": rule.summary, "description": rule.description},
        "labels": {"team": "footfall", "severity": rule.severity},
        "isPaused": False,
    }


def alerting_provisioning() -> dict[str, Any]:
    """The alert rules file: one group, evaluated every minute, in the dashboards' folder."""
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": GROUP,
                "folder": FOLDER,
                "interval": EVALUATE_EVERY,
                "rules": [rule_payload(rule) for rule in RULES],
            }
        ],
    }
