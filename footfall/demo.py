"""``footfall demo``: the whole pipeline offline on the bundled sample clip, with an embedded store.

1. The edge pipeline (``footfall.edge.pipeline``) counts the clip with the real model: crossings of
   the door lines, table-zone visits with dwell, heartbeats.
2. Those counted visits become a store's history: each open hour of several weeks replays a
   random number of the clip's visits (one person each: their in/out crossings and zone visit) at
   random times in the hour. The last week runs a campaign with more visitors. A street-side
   counter (passers-by), point-of-sale transactions and the campaign calendar are generated.
3. Everything is written to an embedded DuckDB store (no broker, no database server), the analytics
   job computes the KPIs, a table is printed and a self-contained HTML report is written.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from footfall.contracts.config import CameraConfig, ModelConfig, load_config
from footfall.contracts.events import CrossingEvent, Event, HeartbeatEvent, ZoneVisitEvent, stable_event_id
from footfall.contracts.measurements import (
    CAMERA_ISSUE,
    KPI_CAMPAIGN,
    KPI_DAILY,
    KPI_HOURLY,
    Point,
    datetime_to_ns,
)

if TYPE_CHECKING:
    import numpy as np

    from footfall.analytics import CampaignsConfig, JobResult, StoresConfig
    from footfall.report import ReportInput

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CLIP = REPO_ROOT / "samples" / "one-by-one-person-detection.mp4"
SAMPLE_CONFIG = REPO_ROOT / "samples" / "one-by-one-person-detection.yaml"

OPEN_HOUR, CLOSE_HOUR = 9, 20
# Visitors per hour on an ordinary day (a late-morning and an after-work peak).
HOURLY_DEMAND = (8, 12, 16, 18, 15, 13, 14, 17, 22, 20, 12)
WEEKDAY_FACTOR = (0.8, 0.85, 0.9, 1.0, 1.2, 1.5, 0.0)  # Monday .. Sunday (closed)
CAMPAIGN_UPLIFT = 0.25
PASSERSBY_PER_VISITOR = 4.0
PURCHASE_PROBABILITY = 0.35


@dataclass
class ClipRun:
    """What the edge pipeline made of the clip."""

    events: list[Event]
    frames: int
    seconds: float
    frame_png: bytes | None
    fps: float = 0.0
    latency_ms: float = 0.0

    def count(self, direction: str) -> int:
        return sum(1 for e in self.events if isinstance(e, CrossingEvent) and e.direction == direction)


@dataclass
class Visit:
    """One person's events in the clip, with times relative to their first event."""

    track_id: int
    events: list[tuple[timedelta, Event]] = field(default_factory=list)

    @property
    def span(self) -> timedelta:
        return max(offset for offset, _ in self.events)


@dataclass
class DemoData:
    events: list[Event]
    pos: list[Point]
    campaign_start: datetime
    campaign_end: datetime
    first_day: date
    last_day: date


def resolve_model(explicit: str | None, config: CameraConfig | None = None) -> str:
    """``--model``, else ``FOOTFALL_MODEL``, else the camera file's ``model.weights``, else
    footfall's default model (``footfall model fetch`` puts it in the cache; the project's machines
    also have it in ../shared): the edge's own chain, so the demo runs what ``footfall count`` runs.

    A model named explicitly (option or variable) must exist; the default is only looked for.
    """
    from footfall.edge.models import resolve_weights

    return str(resolve_weights(config.model if config else ModelConfig(), explicit))


def run_clip(source: str, config: CameraConfig, weights: str, start: datetime) -> ClipRun:
    """Count the clip with the edge pipeline; keep the busiest frame, annotated, as PNG."""
    import time

    import cv2

    from footfall.edge.pipeline import run_frames

    events: list[Event] = []
    best_score: tuple[int, int] = (-1, -1)
    best: tuple[Any, Any] | None = None
    frames = 0
    t0 = time.perf_counter()
    for outcome in run_frames(source, config, weights=weights, start=start, keep_images=True):
        frames += outcome.pictured
        events.extend(outcome.events)
        tracks = outcome.tracks
        in_zone = sum(
            1
            for zone in config.zones
            for x, y in tracks.ground
            if cv2.pointPolygonTest(_polygon(zone.polygon), (float(x), float(y)), False) >= 0
        )
        score = (len(tracks), in_zone)
        if score > best_score and outcome.frame.image is not None:
            best_score, best = score, (outcome.frame.image.copy(), tracks)
    seconds = time.perf_counter() - t0
    beats = [e for e in events if isinstance(e, HeartbeatEvent)]
    return ClipRun(
        events,
        frames,
        seconds,
        annotate(best[0], best[1], config) if best is not None else None,
        fps=sum(b.fps for b in beats) / len(beats) if beats else frames / max(seconds, 1e-9),
        latency_ms=sum(b.latency_ms for b in beats) / len(beats) if beats else 0.0,
    )


def _polygon(points: Sequence[tuple[float, float]]) -> np.ndarray:
    import numpy as np

    return np.array(points, dtype=np.float32).reshape(-1, 1, 2)


def annotate(image: np.ndarray, tracks: Any, config: CameraConfig) -> bytes:
    """Counting lines, zones and tracked people drawn with OpenCV (no font download)."""
    import cv2

    canvas = image.copy()
    for zone in config.zones:
        cv2.polylines(canvas, [_polygon(zone.polygon).astype("int32")], True, (48, 152, 255), 2)
        x, y = (int(v) for v in zone.polygon[0])
        cv2.putText(canvas, zone.name, (x + 4, y + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (48, 152, 255), 2)
    for line in config.lines:
        start, end = tuple(int(v) for v in line.start), tuple(int(v) for v in line.end)
        cv2.line(canvas, start, end, (0, 200, 0), 3)
        cv2.putText(
            canvas, line.name, (start[0] + 4, start[1] - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 200, 0), 2
        )
    for track_id, box, ground in zip(tracks.ids, tracks.xyxy, tracks.ground, strict=True):
        x1, y1, x2, y2 = (int(v) for v in box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), (217, 116, 50), 2)
        cv2.circle(canvas, (int(ground[0]), int(ground[1])), 5, (0, 0, 255), -1)
        cv2.putText(
            canvas, f"#{int(track_id)}", (x1 + 4, y1 + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (217, 116, 50), 2
        )
    ok, png = cv2.imencode(".png", canvas)
    if not ok:
        raise RuntimeError("could not encode the annotated frame")
    return png.tobytes()


def visits_of(events: Sequence[Event]) -> list[Visit]:
    """Group the clip's crossings and zone visits by person (track)."""
    by_track: dict[int, list[Event]] = defaultdict(list)
    for event in events:
        if isinstance(event, CrossingEvent | ZoneVisitEvent) and event.track_id is not None:
            by_track[event.track_id].append(event)
    visits = []
    for track_id, evs in sorted(by_track.items()):
        if not any(isinstance(e, CrossingEvent) and e.direction == "in" for e in evs):
            continue  # only people who came in make a visit
        first = min(_first_ts(e) for e in evs)
        visits.append(Visit(track_id, [(e.ts - first, e) for e in evs]))
    return visits


def _first_ts(event: Event) -> datetime:
    return event.enter_ts if isinstance(event, ZoneVisitEvent) else event.ts


def _shift(event: Event, to: datetime, key: str) -> Event:
    delta = to - event.ts
    update: dict[str, Any] = {"id": stable_event_id("demo", key, event.id), "ts": to}
    if isinstance(event, ZoneVisitEvent):
        update |= {"enter_ts": event.enter_ts + delta, "exit_ts": event.exit_ts + delta}
    return event.model_copy(update=update)


def build_history(
    clip: ClipRun, config: CameraConfig, *, last_day: date, weeks: int, tz: ZoneInfo, seed: int
) -> DemoData:
    """Weeks of store traffic made of the clip's real visits, plus generated passers-by and POS."""
    visits = visits_of(clip.events)
    if not visits:
        raise RuntimeError("the edge pipeline counted nobody coming in on the sample clip")
    rng = random.Random(seed)
    first_day = last_day - timedelta(days=7 * weeks - 1)
    campaign_first = last_day - timedelta(days=6)
    events: list[Event] = []
    pos: list[Point] = []
    day = first_day
    while day <= last_day:
        factor = WEEKDAY_FACTOR[day.weekday()] * (1 + CAMPAIGN_UPLIFT if day >= campaign_first else 1)
        if factor > 0:
            for hour, demand in zip(range(OPEN_HOUR, CLOSE_HOUR), HOURLY_DEMAND, strict=True):
                hour_start = datetime(day.year, day.month, day.day, hour, tzinfo=tz).astimezone(UTC)
                events += _hour_of_traffic(rng, visits, config, hour_start, demand * factor, pos)
        day += timedelta(days=1)
    campaign_start = datetime(
        campaign_first.year, campaign_first.month, campaign_first.day, OPEN_HOUR, tzinfo=tz
    )
    campaign_end = datetime(last_day.year, last_day.month, last_day.day, CLOSE_HOUR, tzinfo=tz)
    return DemoData(events, pos, campaign_start, campaign_end, first_day, last_day)


def _hour_of_traffic(
    rng: random.Random,
    visits: list[Visit],
    config: CameraConfig,
    hour_start: datetime,
    expected_visitors: float,
    pos: list[Point],
) -> list[Event]:
    from footfall.contracts.measurements import pos_transaction_point  # added with analytics' POS import

    events: list[Event] = []
    n_visitors = _poisson(rng, expected_visitors)
    for k in range(n_visitors):
        visit = rng.choice(visits)
        arrival = hour_start + timedelta(seconds=rng.uniform(0, 3600 - visit.span.total_seconds() - 1))
        key = f"{hour_start.isoformat()}|{k}"
        for offset, event in visit.events:
            events.append(_shift(event, arrival + offset, key))
        if rng.random() < PURCHASE_PROBABILITY:
            paid_at = datetime_to_ns(arrival + visit.span)
            amount = round(rng.lognormvariate(3.2, 0.5), 2)
            pos.append(pos_transaction_point(config.store, paid_at, f"demo-{key}", amount))
    # A street-side beam counter reports passers-by every 15 minutes (generated).
    for quarter in range(4):
        passers = _poisson(rng, expected_visitors * PASSERSBY_PER_VISITOR / 4)
        if passers:
            ts = hour_start + timedelta(minutes=15 * (quarter + 1)) - timedelta(seconds=1)
            events.append(
                CrossingEvent(
                    id=stable_event_id("demo", config.store, "street", ts.isoformat()),
                    store=config.store,
                    device="street-counter",
                    ts=ts,
                    line="street",
                    kind="passby",
                    direction="in",
                    count=passers,
                    source="beam",
                )
            )
    # The camera's heartbeat every minute: the hour is covered (analytics leaves gaps as gaps).
    for minute in range(60):
        ts = hour_start + timedelta(minutes=minute)
        events.append(
            HeartbeatEvent(
                id=stable_event_id("demo", config.store, config.camera, "hb", ts.isoformat()),
                store=config.store,
                device=config.camera,
                ts=ts,
                fps=10.0,
                latency_ms=25.0,
                dropped_frames=0,
            )
        )
    return events


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: enough for the small means here, and deterministic with the seed."""
    import math

    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _demo_configs(
    store_id: str, history: DemoData, timezone: str, weeks: int
) -> tuple[StoresConfig, CampaignsConfig]:
    """The demo store (open Monday to Saturday) and its generated campaign."""
    from footfall.analytics import Campaign, CampaignsConfig, StoreMeta, StoresConfig

    stores = StoresConfig(
        rollup_timezone=timezone,
        stores=[
            StoreMeta(
                id=store_id,
                timezone=timezone,
                opening_hours={"mon-sat": f"{OPEN_HOUR:02d}:00-{CLOSE_HOUR:02d}:00"},
            )
        ],
    )
    campaigns = CampaignsConfig(
        campaigns=[
            Campaign(
                name="window-display",
                stores=[store_id],
                start=history.campaign_start,
                end=history.campaign_end,
                channel="window display (generated)",
                baseline_weeks=min(4, weeks - 1),
            )
        ]
    )
    return stores, campaigns


def run_demo(
    out_dir: Path,
    *,
    model: str | None = None,
    source: Path = SAMPLE_CLIP,
    config_path: Path = SAMPLE_CONFIG,
    weeks: int = 5,
    last_day: date | None = None,
    timezone: str = "Europe/Berlin",
    seed: int = 7,
) -> dict[str, Any]:
    """Run everything; returns what was made (paths, counts, the KPI rows) for the CLI and tests."""
    from footfall.report import kpi_table, write_report

    config = load_config(config_path, CameraConfig)
    weights = resolve_model(model, config)
    tz = ZoneInfo(timezone)
    last_day = last_day or (datetime.now(tz).date() - timedelta(days=1))
    clip_start = datetime(last_day.year, last_day.month, last_day.day, OPEN_HOUR, tzinfo=tz)
    clip = run_clip(str(source), config, weights, clip_start)
    history = build_history(clip, config, last_day=last_day, weeks=weeks, tz=tz, seed=seed)

    out_dir.mkdir(parents=True, exist_ok=True)
    db_path = out_dir / "footfall-demo.duckdb"
    stores, campaigns = _demo_configs(config.store, history, timezone, weeks)
    result, kpis = _compute_kpis(db_path, clip, history, stores, campaigns)
    (out_dir / "frame.png").write_bytes(clip.frame_png or b"")
    notes = [
        f"The model ({Path(weights).name}) counted {clip.count('in')} in and {clip.count('out')} out "
        f"on the sample clip ({clip.frames} frames in {clip.seconds:.1f} s). The store's {weeks}-week "
        f"history replays those {len(visits_of(clip.events))} counted visits at random times of each "
        "open hour; passers-by, point-of-sale transactions and the campaign "
        f"(+{CAMPAIGN_UPLIFT:.0%} visitors in the last week) are generated (seed {seed}).",
        "Sample clip: Intel IoT DevKit sample-videos, © Intel Corporation, CC BY 4.0 "
        "(see samples/ATTRIBUTION.md).",
    ]
    report_input = _report_input(config.store, clip, history, kpis, timezone, notes)
    report = write_report(report_input, out_dir / "report.html")
    return {
        "report": report,
        "database": db_path,
        "model": Path(weights),
        "clip": clip,
        "events": len(history.events),
        "transactions": len(history.pos),
        "rows": kpi_table(report_input),
        "uplifts": result.uplifts,
        "campaigns": campaigns,
        "job_seconds": result.seconds,
    }


def _compute_kpis(
    db_path: Path, clip: ClipRun, history: DemoData, stores: StoresConfig, campaigns: CampaignsConfig
) -> tuple[JobResult, dict[str, list[Point]]]:
    """The history written to a fresh embedded database and the analytics job run over it: its
    result, and the KPI points by measurement (with the clip's camera issues, if any)."""
    from footfall.analytics import DuckDBStore, run_job
    from footfall.contracts.measurements import event_to_point

    db_path.unlink(missing_ok=True)
    # What the clip's scene monitor reported (the sample run's camera issues, if any).
    issues = [event_to_point(e) for e in clip.events if e.type == "camera_issue"]
    with DuckDBStore(db_path) as store:
        store.write_points([event_to_point(e) for e in history.events] + history.pos + issues)
        result = run_job(store, history.first_day, history.last_day, stores, campaigns)
    kpis = {
        KPI_HOURLY: result.kpis.hourly,
        KPI_DAILY: result.kpis.daily,
        KPI_CAMPAIGN: result.kpis.campaign,
        CAMERA_ISSUE: issues,
    }
    return result, kpis


def _report_input(
    store: str,
    clip: ClipRun,
    history: DemoData,
    kpis: dict[str, list[Point]],
    timezone: str,
    notes: list[str],
) -> ReportInput:
    from footfall.report import ReportInput

    dwell: dict[str, list[float]] = defaultdict(list)
    for event in history.events:
        if isinstance(event, ZoneVisitEvent):
            dwell[event.zone].append(event.dwell_s)
    return ReportInput(
        store=store,
        kpis=kpis,
        dwell_s=dwell,
        frame_png=clip.frame_png,
        timezone=timezone,
        title="footfall demo: one store, offline",
        notes=notes,
    )


def print_summary(made: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from footfall.analytics import format_uplift_table

    console = Console()
    clip: ClipRun = made["clip"]
    console.print(
        f"edge ({made['model'].name}): {clip.frames} frames in {clip.seconds:.1f} s "
        f"({clip.frames / max(clip.seconds, 1e-9):.1f} fps), "
        f"counted {clip.count('in')} in / {clip.count('out')} out"
    )
    console.print(
        f"store: {made['events']} events and {made['transactions']} POS transactions in {made['database']}"
    )
    table = Table(title="KPIs (last day)")
    table.add_column("KPI")
    table.add_column("value", justify="right")
    for label, value in made["rows"]:
        table.add_row(label, value)
    console.print(table)
    for campaign in made["campaigns"].campaigns:
        console.print(format_uplift_table(campaign, made["uplifts"].get(campaign.name, [])))
    console.print(f"report: {made['report']}")
