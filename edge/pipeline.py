"""Source -> detector -> tracker -> counter -> contract events: the edge's public API.

``iter_events`` is what the transport (``footfall edge run``) consumes; ``run_frames`` exposes the
per-frame detail (tracks, counts) that ``count --annotate``, ``eval`` and the benchmark need.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TypedDict

import numpy as np

from footfall.contracts.config import CameraConfig, LinkingConfig
from footfall.contracts.events import (
    CameraIssueEvent,
    CrossingEvent,
    Event,
    HeartbeatEvent,
    OccupancyEvent,
    ZoneVisitEvent,
    format_ts,
    stable_event_id,
)
from footfall.edge.appearance import colour_histograms, unoccluded
from footfall.edge.counting import Counter, Crossing, FrameResult, Sighting, ZoneVisit
from footfall.edge.detector import Detections, PeopleModel, PersonDetector, load_model
from footfall.edge.linking import LinkedFrame, TrackletLinker, touched_edges
from footfall.edge.motion import MotionGate
from footfall.edge.plan_file import PlanFile
from footfall.edge.scale import LayoutDetector
from footfall.edge.scene import IssueChange, SceneMonitor
from footfall.edge.sources import Frame, FrameSource, open_source
from footfall.edge.tracking import PersonTracker, Tracks

# linking.enabled = false: every tracklet is its own person, counted at once.
NO_LINKING = LinkingConfig(delay_s=0, max_gap_s=0, max_standing_gap_s=0)


class HeartbeatFigures(TypedDict):
    """What a heartbeat says about the camera's pipeline (queue_depth is the transport's)."""

    fps: float
    latency_ms: float
    dropped_frames: int
    frames: int
    uptime_s: float
    camera_issues: str | None
    detector_input: str | None
    person_px: float | None
    person_px_aim: int | None


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

    def camera_issue(self, c: IssueChange) -> CameraIssueEvent:
        ts = self.ts(c.t)  # media time of the frame on which the monitor decided
        return CameraIssueEvent(
            id=self._id("camera_issue", c.issue, c.state, format_ts(ts)),
            store=self.store,
            device=self.device,
            ts=ts,
            issue=c.issue,
            state=c.state,
            score=c.score,
        )

    def heartbeat(self, t: float, health: HeartbeatFigures) -> HeartbeatEvent:
        ts = self.ts(t)
        return HeartbeatEvent(
            id=self._id("heartbeat", format_ts(ts)), store=self.store, device=self.device, ts=ts, **health
        )


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
    tracks: Tracks  # ids are person ids (tracklets linked through occlusions)
    counted: Tracks  # those of them the counter took (feet in view): what a recount replays
    result: FrameResult
    events: list[Event]
    counter: Counter
    final: bool = False  # the end-of-stream flush (zone visits still open); no new frame
    analysed: bool = True  # False when the motion gate skipped inference on this frame
    tracklets_held: int = 0  # the linker's memory (bounded), for the benchmark
    pictured: bool = True  # False for a live source's picture-less tick (a stalled camera)

    @property
    def sighting(self) -> Sighting:
        """The counter's input for this frame, to replay it through another ``Counter``
        (``counting.count_all``)."""
        c = self.counted
        return (self.frame.index, self.frame.t, c.ids, c.ground, c.heights)


# A detector for the pipeline: a frame in, person detections in the frame's pixels out.
FrameDetector = Callable[[Frame], Detections]


def model_detector(
    config: CameraConfig,
    frame_size: tuple[int, int],
    weights: str | None,
    model: PeopleModel | None = None,
    plans: PlanFile | None = None,
) -> LayoutDetector:
    """The configured model, at the input size planned from the people it sees (edge/scale.py).
    ``model``: one already loaded (shared by several cameras); else it is loaded here, once.
    ``plans``: where the plan is kept between starts (edge/plan_file.py); a kept plan that fits
    the camera is used from the first frame, a new one is written there."""
    loaded = model if model is not None else load_model(config.model, weights)

    def make(imgsz: tuple[int, int]) -> Callable[[np.ndarray], Detections]:
        return PersonDetector(config.model, frame_size, imgsz=imgsz, model=loaded)

    detector = LayoutDetector(config, frame_size, make)
    if plans is None or config.model.imgsz is not None:  # a pinned input is never probed
        return detector
    kept = plans.load(config, frame_size)
    if kept is not None:
        detector.adopt(kept)
    # The probe's plan, or a later one when the people stay too small at the kept input.
    detector.on_plan = lambda plan: plans.save(config, frame_size, plan)
    return detector


@dataclass(slots=True)
class _Stage:
    """What the linker holds back with a frame until its identities are decided."""

    frame: Frame
    tracks: Tracks
    analysed: bool
    pictured: bool


class _Pipeline:
    """The per-frame steps, so that ``run_frames`` reads as a loop."""

    def __init__(
        self,
        config: CameraConfig,
        fps: float,
        factory: EventFactory,
        detector: FrameDetector | None,
        make_detector: Callable[[tuple[int, int]], FrameDetector],
        keep_images: bool,
    ) -> None:
        self.tracker = PersonTracker(config.model, fps)
        self.counter = Counter(config.lines, config.zones, config.counting)
        self.linker = TrackletLinker(config.linking if config.linking.enabled else NO_LINKING)
        self.factory = factory
        self.detector, self.make_detector = detector, make_detector
        self.gate = MotionGate(enabled=config.model.motion_gating and detector is None)
        self.keep_images = keep_images
        self.tracks = Tracks.empty()  # the tracker's latest output (raw ids), for the gate
        self.picture_height: int | None = None
        self.pending_events: list[Event] = []  # heartbeats waiting for the next released frame

    def track(self, frame: Frame) -> list[_Stage]:
        """Detect and track one frame; return the frames the linker releases."""
        analysed = frame.image is not None and self.gate.should_detect(
            frame.image, frame.t, tracking=len(self.tracks) > 0
        )
        appearance, edges = None, None
        if analysed:
            assert frame.image is not None
            self.picture_height = frame.image.shape[0]
            if self.detector is None:
                self.detector = self.make_detector((frame.image.shape[1], frame.image.shape[0]))
            self.tracks = self.tracker.update(self.detector(frame), frame.image)
            appearance = colour_histograms(frame.image, self.tracks.xyxy)
            appearance[~unoccluded(self.tracks.xyxy)] = 0  # an occluded box shows someone else
            edges = touched_edges(self.tracks.xyxy, self.tracks.heights, _watched(self.detector, frame.image))
        elif frame.image is None:
            # A stalled live source: nobody seen, but time moves on (forgetting, heartbeats).
            # (The gate only skips while nobody is tracked, so `tracks` is already empty then.)
            self.tracks = Tracks.empty()
        kept = frame if self.keep_images else replace(frame, image=None)
        stage = _Stage(kept, self.tracks, analysed, frame.image is not None)
        t = self.tracks
        released = self.linker.push(stage, frame.t, t.ids, t.ground, t.heights, appearance, edges)
        return [self._relabelled(r) for r in released]

    def flush(self) -> list[_Stage]:
        return [self._relabelled(r) for r in self.linker.flush()]

    @staticmethod
    def _relabelled(linked: LinkedFrame) -> _Stage:
        stage = linked.payload
        assert isinstance(stage, _Stage)
        t = stage.tracks
        stage.tracks = Tracks(linked.person_ids, t.xyxy, t.ground, t.heights)
        return stage

    def count(self, stage: _Stage) -> FrameOutcome:
        frame, factory = stage.frame, self.factory
        tracks = stage.tracks
        if self.picture_height is not None:
            tracks = tracks.feet_in_view(self.picture_height)
        result = self.counter.update(frame.index, frame.t, tracks.ids, tracks.ground, tracks.heights)
        events: list[Event] = [factory.crossing(c) for c in result.crossings]
        events += [factory.zone_visit(v) for v in result.visits]
        events += [factory.occupancy(z, n, frame.index, frame.t) for z, n in result.occupancy_changes.items()]
        events += self.pending_events
        self.pending_events = []
        return FrameOutcome(
            frame,
            stage.tracks,
            tracks,
            result,
            events,
            self.counter,
            analysed=stage.analysed,
            tracklets_held=self.linker.held,
            pictured=stage.pictured,
        )


def _watched(detector: FrameDetector, image: np.ndarray) -> tuple[int, int, int, int]:
    """The part of the picture the detector looks in: a ``LayoutDetector``'s crop (someone leaving
    it has left the view), else the whole picture."""
    region = getattr(detector, "watched", None)
    return region if region is not None else (0, 0, image.shape[1], image.shape[0])


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
    detector: FrameDetector | None = None,
    keep_images: bool = False,
    model: PeopleModel | None = None,
    plans: PlanFile | None = None,
) -> Iterator[FrameOutcome]:
    """Process a source frame by frame; the last outcome's events include the end-of-stream flush.

    Outcomes come ``config.linking.delay_s`` after their frame (identities are decided first);
    only those made with ``keep_images`` carry the picture. ``detector`` replaces the model (the
    audit's oracle feeds annotated boxes); ``model``: a loaded model (cameras share one); ``plans``
    keeps the planned input between starts. ``stop`` is asked before each frame (a live source
    ticks at least once a second): True ends the stream there, as a file's end, closing visits.
    """
    frames = open_source(source, fps=fps, realtime=realtime) if isinstance(source, str) else source
    try:
        if detector is None and model is None:
            model = load_model(config.model, weights)  # a missing or unsupported model fails at once
        # The model is built on the first picture: a live camera that is down at start has no size yet.
        steps = _Pipeline(
            config,
            frames.fps,
            EventFactory(config, (start or datetime.now(UTC)).astimezone(UTC)),
            detector,
            lambda size: model_detector(config, size, weights, model, plans),
            keep_images,
        )
        health = _Health()
        scene = SceneMonitor(config.scene.hold_s, config.scene.learn_s) if config.scene.enabled else None
        last: Frame | None = None
        for frame in frames:
            if stop is not None and stop():
                break
            if scene is not None and frame.image is not None:  # camera issues leave with the next frame
                steps.pending_events += map(steps.factory.camera_issue, scene.update(frame.image, frame.t))
            released = steps.track(frame)
            if frame.image is not None:
                health.add(frame)
            beat = _heartbeat(health, steps, frame, frames.dropped, heartbeat_every_s, scene)
            if beat is not None:
                steps.pending_events.append(beat)
            last = frame
            for stage in released:
                yield steps.count(stage)
        for stage in steps.flush():
            yield steps.count(stage)
        closing = _closing(steps, last) if last is not None else None
        if closing is not None:
            yield closing
    finally:
        frames.close()


def _closing(steps: _Pipeline, last: Frame) -> FrameOutcome | None:
    """The end of the stream: every track ends (the crossings that completes and the open zone
    visits, edge/counting.py) and the events not yet sent go out, on a picture-less copy of the
    last frame; None when there is nothing."""
    flushed = steps.counter.flush()
    closing: list[Event] = [steps.factory.crossing(c) for c in flushed.crossings]
    closing += [steps.factory.zone_visit(v) for v in flushed.visits]
    closing += steps.pending_events
    if not closing:
        return None
    return FrameOutcome(
        replace(last, image=None),
        Tracks.empty(),
        Tracks.empty(),
        flushed,
        closing,
        steps.counter,
        final=True,
        analysed=False,
        pictured=False,
    )


def _heartbeat(
    health: _Health,
    steps: _Pipeline,
    frame: Frame,
    dropped: int,
    every_s: float,
    scene: SceneMonitor | None = None,
) -> HeartbeatEvent | None:
    if health.last_beat_t is None:
        health.last_beat_t = frame.t
        return None
    if frame.t - health.last_beat_t < every_s:
        return None
    health.last_beat_t = frame.t
    beat_fps, latency_ms = health.take()
    # Only the model's detector plans an input (the audit's oracle has none; neither has a camera
    # that has shown no picture yet).
    seen = steps.detector.report() if isinstance(steps.detector, LayoutDetector) else None
    return steps.factory.heartbeat(
        frame.t,
        HeartbeatFigures(
            fps=round(beat_fps, 2),
            latency_ms=round(latency_ms, 1),
            dropped_frames=dropped,
            frames=health.frames,
            uptime_s=round(time.monotonic() - health.started, 1),
            camera_issues=None if scene is None else ",".join(scene.issues),
            detector_input=None if seen is None else seen.detector_input,
            person_px=None if seen is None else seen.person_px,
            person_px_aim=None if seen is None else seen.person_px_aim,
        ),
    )


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
    model: PeopleModel | None = None,
    plans: PlanFile | None = None,
) -> Iterator[Event]:
    """Validated contract events from a file, URL, USB index (``"0"``) or MOT frame folder.

    A generator: a live source streams events as they happen. ``weights`` overrides
    ``config.model.weights`` (``--model`` / ``FOOTFALL_MODEL``); ``start`` is the media-time origin
    for files (default: now); heartbeats leave ``queue_depth`` at 0 for the transport to fill.
    ``stop``, ``model``, ``plans``: see ``run_frames``.
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
        model=model,
        plans=plans,
    ):
        yield from outcome.events
