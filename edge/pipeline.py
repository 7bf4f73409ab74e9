"""Source -> detector -> tracker -> counter -> contract events: the edge's public API.

``iter_events`` is what the transport (``footfall edge run``) consumes; ``run_frames`` exposes the
per-frame detail (tracks, counts) that ``count --annotate``, ``eval`` and the benchmark need.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from footfall.contracts.config import CameraConfig
from footfall.contracts.events import (
    CrossingEvent,
    Event,
    HeartbeatEvent,
    OccupancyEvent,
    ZoneVisitEvent,
    format_ts,
    stable_event_id,
)
from footfall.edge.counting import Counter, Crossing, FrameResult, ZoneVisit
from footfall.edge.detector import PersonDetector, prepare_offline_ultralytics, resolve_weights
from footfall.edge.motion import MotionGate
from footfall.edge.sources import Frame, FrameSource, open_source
from footfall.edge.tracking import PersonTracker, Tracks


class EventFactory:
    """Turns counter output into validated contract events with stable ids.

    Ids derive from the natural key including the timestamp, so a rerun of the same file with the
    same ``--start`` reproduces them, and a restarted live device (track ids restart) does not.
    """

    def __init__(self, config: CameraConfig, start: datetime) -> None:
        self.store, self.device = config.store, config.camera
        self.start = start

    def ts(self, t: float) -> datetime:
        return self.start + timedelta(seconds=t)

    def _id(self, *parts: object) -> str:
        return stable_event_id(self.store, self.device, *parts)

    def crossing(self, c: Crossing) -> CrossingEvent:
        ts = self.ts(c.t)
        return CrossingEvent(
            id=self._id("crossing", c.line, c.direction, c.track_id, c.frame, format_ts(ts)),
            store=self.store,
            device=self.device,
            ts=ts,
            line=c.line,
            kind=c.kind,
            direction=c.direction,
            track_id=c.track_id,
            frame=c.frame,
        )

    def zone_visit(self, v: ZoneVisit) -> ZoneVisitEvent:
        enter, exit_ = self.ts(v.enter_t), self.ts(v.exit_t)
        return ZoneVisitEvent(
            id=self._id("zone_visit", v.zone, v.track_id, format_ts(enter)),
            store=self.store,
            device=self.device,
            ts=exit_,
            zone=v.zone,
            track_id=v.track_id,
            enter_ts=enter,
            exit_ts=exit_,
            dwell_s=round(v.dwell_s, 3),
        )

    def occupancy(self, zone: str | None, count: int, frame: int, t: float) -> OccupancyEvent:
        ts = self.ts(t)
        return OccupancyEvent(
            id=self._id("occupancy", zone or "_view", frame, format_ts(ts)),
            store=self.store,
            device=self.device,
            ts=ts,
            zone=zone,
            count=count,
        )

    def heartbeat(self, t: float, **fields: float) -> HeartbeatEvent:
        ts = self.ts(t)
        return HeartbeatEvent(
            id=self._id("heartbeat", format_ts(ts)), store=self.store, device=self.device, ts=ts, **fields
        )  # type: ignore[arg-type]


@dataclass(slots=True)
class _Health:
    """Rolling figures for heartbeats: wall-clock throughput and capture-to-result latency."""

    started: float = field(default_factory=time.monotonic)
    frames: int = 0
    window_frames: int = 0
    window_started: float = field(default_factory=time.monotonic)
    window_latency_s: float = 0.0
    last_beat_t: float | None = None

    def add(self, frame: Frame) -> None:
        self.frames += 1
        self.window_frames += 1
        self.window_latency_s += time.monotonic() - frame.captured_at

    def take(self) -> tuple[float, float]:
        now = time.monotonic()
        elapsed = max(now - self.window_started, 1e-9)
        fps = self.window_frames / elapsed
        latency_ms = 1000 * self.window_latency_s / max(self.window_frames, 1)
        self.window_frames, self.window_latency_s, self.window_started = 0, 0.0, now
        return fps, latency_ms


@dataclass(frozen=True, slots=True)
class FrameOutcome:
    frame: Frame
    tracks: Tracks
    result: FrameResult
    events: list[Event]
    counter: Counter
    final: bool = False  # the end-of-stream flush (zone visits still open); no new frame
    analysed: bool = True  # False when the motion gate skipped inference on this frame


def run_frames(
    source: str | FrameSource,
    config: CameraConfig,
    *,
    weights: str | None = None,
    start: datetime | None = None,
    fps: float | None = None,
    realtime: bool = False,
    heartbeat_every_s: float = 10.0,
    stop: Callable[[], bool] | None = None,
) -> Iterator[FrameOutcome]:
    """Process a source frame by frame; the last outcome's events include the end-of-stream flush.

    ``stop`` is asked before each frame (a live source ticks at least once a second): when it
    returns True the stream ends there as at the end of a file, so open zone visits are closed.
    """
    prepare_offline_ultralytics()  # before anything imports ultralytics
    frames = open_source(source, fps=fps, realtime=realtime) if isinstance(source, str) else source
    try:
        # Built on the first picture: a live camera that is down at start has no known size yet.
        detector: PersonDetector | None = None
        resolve_weights(config.model, weights)  # but a missing model fails at once
        tracker = PersonTracker(config.model, frames.fps)
        counter = Counter(config.lines, config.zones, config.counting)
        factory = EventFactory(config, (start or datetime.now(UTC)).astimezone(UTC))
        health = _Health()
        gate = MotionGate(enabled=config.model.motion_gating)
        last: Frame | None = None
        tracks = Tracks.empty()
        for frame in frames:
            if stop is not None and stop():
                break
            analysed = frame.image is not None and gate.should_detect(
                frame.image, frame.t, tracking=len(tracks) > 0
            )
            if analysed:
                assert frame.image is not None
                if detector is None:
                    size = (frame.image.shape[1], frame.image.shape[0])
                    detector = PersonDetector(config.model, size, weights=weights)
                tracks = tracker.update(detector(frame.image), frame.image)
            elif frame.image is None:
                # A stalled live source: nobody seen, but time moves on (forgetting, heartbeats).
                # (The gate only skips while nobody is tracked, so `tracks` is already empty then.)
                tracks = Tracks.empty()
            result = counter.update(frame.index, frame.t, tracks.ids, tracks.ground, tracks.heights)
            events: list[Event] = [factory.crossing(c) for c in result.crossings]
            events += [factory.zone_visit(v) for v in result.visits]
            events += [
                factory.occupancy(z, n, frame.index, frame.t) for z, n in result.occupancy_changes.items()
            ]
            if frame.image is not None:
                health.add(frame)
            if health.last_beat_t is None:
                health.last_beat_t = frame.t
            elif frame.t - health.last_beat_t >= heartbeat_every_s:
                health.last_beat_t = frame.t
                beat_fps, latency_ms = health.take()
                events.append(
                    factory.heartbeat(
                        frame.t,
                        fps=round(beat_fps, 2),
                        latency_ms=round(latency_ms, 1),
                        dropped_frames=frames.dropped,
                        frames=health.frames,
                        uptime_s=round(time.monotonic() - health.started, 1),
                    )
                )
            last = frame
            yield FrameOutcome(frame, tracks, result, events, counter, analysed=analysed)
        if last is not None:
            closing = [factory.zone_visit(v) for v in counter.flush()]
            if closing:
                empty = FrameResult([], [], {})
                yield FrameOutcome(last, Tracks.empty(), empty, closing, counter, final=True, analysed=False)
    finally:
        frames.close()


def iter_events(
    source: str,
    config: CameraConfig,
    *,
    weights: str | None = None,
    start: datetime | None = None,
    fps: float | None = None,
    realtime: bool = False,
    heartbeat_every_s: float = 10.0,
    stop: Callable[[], bool] | None = None,
) -> Iterator[Event]:
    """Validated contract events from a file, URL, USB index (``"0"``) or MOT frame folder.

    A generator: a live source streams events as they happen. ``weights`` overrides
    ``config.model.weights`` (``--model`` / ``FOOTFALL_MODEL``); ``start`` is the media-time origin
    for files (default: now); heartbeats leave ``queue_depth`` at 0 for the transport to fill.
    ``stop``: see ``run_frames``.
    """
    for outcome in run_frames(
        source,
        config,
        weights=weights,
        start=start,
        fps=fps,
        realtime=realtime,
        heartbeat_every_s=heartbeat_every_s,
        stop=stop,
    ):
        yield from outcome.events
