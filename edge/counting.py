"""The counting state machine: tracked ground points in, line crossings and zone visits out.

Pure Python + numpy and time-agnostic (``t`` is seconds on any monotonic clock), so the same rule
runs on detector tracks (the pipeline) and on annotated ground-truth tracks (``eval``).

The crossing rule, per track and line:

* a track has a *committed side* of each line, set the first time its ground point is clearly
  (more than the hysteresis band) on one side; that first sighting never counts; the band is a
  share of the person's height, wider for a track whose ground point jumps (``_Jitter``);
* a crossing is confirmed when the point has been beyond the band on the other side for
  ``confirm_frames`` observations spanning at least ``confirm_s`` (it is dated at the first of
  them), the track has at least ``min_track_hits`` observations, and the last time the path
  changed sides it passed through the segment itself (walking round the end of a line, or
  crossing the line's extension, only updates the committed side);
* standing on the line or jittering within the band never confirms anything; coming back
  (out and in again) is two confirmed crossings;
* a track that ends (is forgotten, or the stream ends) just past a line it walked through, at
  least half the band beyond it but before its crossing was confirmed, has crossed: a person lost
  behind a companion one step after the line is counted, with the time of their last sighting
  (seen there twice in a row where frames come faster than ``confirm_s``: a single last box
  past the line is as often someone else's, taken for this person after a gap);
* direction is ``in`` when the new side is the side of the line's ``inside`` point;
* a crossing made together with another track of the same frame, the same person boxed twice
  (the same box top, one box clearly shorter; within ``twin_s``), counts once (``TWIN_*``);
* state of a track unseen for ``forget_after_s`` is dropped, so memory is bounded by the number
  of people in view, not by the length of the run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from footfall.contracts.config import CountingConfig, LineConfig, ZoneConfig
from footfall.contracts.events import Direction, LineKind
from footfall.edge.geometry import as_points, line_orientation, points_in_polygon, signed_distances


@dataclass(frozen=True, slots=True)
class Crossing:
    line: str
    kind: LineKind
    direction: Direction
    track_id: int
    frame: int
    t: float


@dataclass(frozen=True, slots=True)
class ZoneVisit:
    zone: str
    track_id: int
    enter_t: float
    exit_t: float

    @property
    def dwell_s(self) -> float:
        return max(0.0, self.exit_t - self.enter_t)


@dataclass(frozen=True, slots=True)
class FrameResult:
    crossings: list[Crossing]
    visits: list[ZoneVisit]
    # Zone name (None = the whole view) -> people now, only for values that changed this frame.
    occupancy_changes: dict[str | None, int]


# Times closer than this are equal (frame times are sums of floats: 0.1 s apart at 10 fps may
# come out as 0.0999...).
_SAME_TIME_S = 1e-6
# A track that ends past a line, this share of the hysteresis band beyond it, has crossed it ...
ENDED_PAST_BAND = 0.5
# ... if it was seen there this many times in a row, where frames come faster than confirm_s: one
# box alone is what a track's last, stray sighting looks like (a box of someone else nearby, taken
# for this person after a gap); at confirm_s a frame or slower, one sighting is all that a person
# lost a step past the line leaves.
ENDED_SIGHTINGS = 2
# The time between frames is followed as a moving average, each new step weighing this much.
FRAME_STEP_WEIGHT = 0.1
# counting.twin_s: a second crossing of the same line the same way by a track seen on the same
# frame with its head (box top: the ground point raised by the height) within TWIN_HEAD of the
# taller's height, one box at most TWIN_SHORT as tall as the other, is one person boxed twice. On
# Venice-2's random lines at 30 fps 85 of 95 such crossings were; the rest were people in line of
# sight of an eye-level camera, a farther head where a nearer one is, so the truth keeps them.
TWIN_HEAD, TWIN_SHORT = 0.05, 0.8
# A track's ground-point noise is an exponentially weighted mean whose weights halve every
# JITTER_HALF_LIFE_S, trusted once the weights add up to JITTER_MIN_WEIGHT residuals: never at 3.3
# sightings a second or fewer, where a walker's own turns between sightings would pass for noise.
JITTER_HALF_LIFE_S = 0.5
JITTER_MIN_WEIGHT = 3.0


@dataclass(slots=True)
class _Jitter:
    """How unpredictably a track's ground point moves: each sighting's distance from the straight
    path through the two before it (a detector's box bottom jumping with a leg, a bag or someone
    in front; a track picked up again after a gap somewhere else than where it was heading)."""

    before: NDArray[np.float64] | None = None
    before_t: float = 0.0
    last: NDArray[np.float64] | None = None
    last_t: float = 0.0
    squares: float = 0.0  # weighted sum of squared residuals
    weight: float = 0.0

    def add(self, point: NDArray[np.float64], t: float) -> float:
        """Take a sighting; return the noise (pixels, per coordinate), 0 while not yet known."""
        if self.before is not None and self.last is not None and self.last_t > self.before_t:
            heading = (self.last - self.before) / (self.last_t - self.before_t)
            residual = point - (self.last + heading * (t - self.last_t))
            fade = 0.5 ** ((t - self.last_t) / JITTER_HALF_LIFE_S)
            self.squares = self.squares * fade + float(residual @ residual)
            self.weight = self.weight * fade + 1.0
        # A copy: the caller's array of points may be reused for the next frame.
        self.before, self.before_t, self.last, self.last_t = self.last, self.last_t, point.copy(), t
        if self.weight < JITTER_MIN_WEIGHT:
            return 0.0
        # Extrapolating from two noisy points adds their noise: a residual carries 1 + 2² + 1 = 6
        # times the variance of one sighting's, over 2 coordinates.
        return math.sqrt(self.squares / self.weight / 12.0)


@dataclass(slots=True)
class _TrackState:
    hits: int
    last_t: float
    last_frame: int
    last_margin: float  # the hysteresis band at the last sighting, pixels
    jitter: _Jitter
    # Per line.
    side: NDArray[np.int8]  # committed side: -1, +1, or 0 = not yet known
    pending: NDArray[np.int16]  # observations beyond the band on the other side
    pending_since: NDArray[np.float64]  # when the first of them was made
    pending_frame: NDArray[np.int64]  # ... and on which frame
    ref_sign: NDArray[np.int8]  # sign of the last observation not exactly on the line
    ref_point: NDArray[np.float64]  # (L, 2) where that observation was
    transit_on_segment: NDArray[np.bool_]  # did the last change of sides pass through the segment?
    last_distance: NDArray[np.float64]  # signed distance of the last sighting
    past_ended: NDArray[np.int16]  # sightings in a row ENDED_PAST_BAND of the band past it (capped)
    crossed_t: NDArray[np.float64]  # when it last crossed (nan: never) ...
    crossed_in: NDArray[np.bool_]  # ... and whether inwards
    # Per zone.
    in_zone: NDArray[np.bool_]
    zone_streak: NDArray[np.int16]  # observations in a row on the other side of the zone's edge
    zone_streak_since: NDArray[np.float64]  # ... since when
    zone_enter_t: NDArray[np.float64]
    zone_last_inside_t: NDArray[np.float64]
    # A visit whose exit is confirmed but may still be rejoined (nan: none): enter and exit times.
    left_enter_t: NDArray[np.float64]
    left_exit_t: NDArray[np.float64]


# One frame of tracked people as the counter takes them: frame index, time, track ids, ground points,
# heights.
Sighting = tuple[int, float, ArrayLike, ArrayLike, ArrayLike]


def count_all(counter: Counter, frames: Iterable[Sighting]) -> tuple[list[Crossing], list[ZoneVisit]]:
    """Every crossing and zone visit of a recorded run: each frame fed in turn, then its end."""
    crossings: list[Crossing] = []
    visits: list[ZoneVisit] = []
    for frame in frames:
        result = counter.update(*frame)
        crossings += result.crossings
        visits += result.visits
    ended = counter.flush()
    return crossings + ended.crossings, visits + ended.visits


class Counter:
    """Feed it one frame of tracks at a time with ``update``; call ``flush`` at the end."""

    def __init__(
        self,
        lines: Sequence[LineConfig],
        zones: Sequence[ZoneConfig] = (),
        params: CountingConfig | None = None,
    ) -> None:
        self.lines = list(lines)
        self.zones = list(zones)
        self.params = params or CountingConfig()
        self._starts = as_points([ln.start for ln in self.lines]) if self.lines else np.zeros((0, 2))
        self._ends = as_points([ln.end for ln in self.lines]) if self.lines else np.zeros((0, 2))
        self._orientation = (
            line_orientation(self._starts, self._ends, [ln.inside for ln in self.lines])
            if self.lines
            else np.zeros(0)
        )
        self._polygons = [as_points(z.polygon) for z in self.zones]
        self._tracks: dict[int, _TrackState] = {}
        # The time between frames (a moving average): the rate analysed, which decides ENDED_SIGHTINGS.
        self._last_frame_t: float | None = None
        self._frame_step_s = np.inf
        self._occupancy: dict[str | None, int] = {None: 0, **{z.name: 0 for z in self.zones}}

    @property
    def tracked(self) -> int:
        """How many tracks the counter holds state for (bounded by people recently in view)."""
        return len(self._tracks)

    @property
    def occupancy(self) -> dict[str | None, int]:
        return dict(self._occupancy)

    def update(
        self,
        frame: int,
        t: float,
        track_ids: ArrayLike,
        points: ArrayLike,
        heights: ArrayLike,
    ) -> FrameResult:
        ids = np.asarray(track_ids, dtype=np.int64).reshape(-1)
        pts = as_points(points)
        hts = np.asarray(heights, dtype=np.float64).reshape(-1)
        if not (len(ids) == len(pts) == len(hts)):
            raise ValueError("track_ids, points and heights must have the same length")
        self._note_frame_time(t)
        n_lines, n_zones = len(self.lines), len(self.zones)
        dist = (
            signed_distances(pts, self._starts, self._ends, self._orientation)
            if n_lines
            else np.zeros((len(ids), 0))
        )
        inside = (
            np.stack([points_in_polygon(pts, poly) for poly in self._polygons], axis=1)
            if n_zones
            else np.zeros((len(ids), 0), dtype=bool)
        )
        states = [self._state(track_id, t) for track_id in ids.tolist()]
        noise = np.array([st.jitter.add(pts[row], t) for row, st in enumerate(states)])
        margins = self._bands(hts, noise)

        crossings: list[Crossing] = []
        visits: list[ZoneVisit] = []
        for row, (track_id, state) in enumerate(zip(ids.tolist(), states, strict=True)):
            state.hits += 1
            state.last_t, state.last_frame, state.last_margin = t, frame, float(margins[row])
            for li in range(n_lines):
                crossing = self._step_line(state, li, dist[row, li], margins[row], pts[row], track_id, frame)
                if crossing is None:
                    continue
                state.crossed_t[li], state.crossed_in[li] = t, crossing.direction == "in"
                if not self._twin_crossed(row, li, states, pts, hts):
                    crossings.append(crossing)
            for zi in range(n_zones):
                visit = self._step_zone(state, zi, bool(inside[row, zi]), track_id, t)
                if visit is not None:
                    visits.append(visit)

        visits.extend(self._settled_visits(t))
        stale = [tid for tid, st in self._tracks.items() if t - st.last_t > self.params.forget_after_s]
        ended_crossings, ended_visits = self._end_tracks(stale)
        return FrameResult(crossings + ended_crossings, visits + ended_visits, self._update_occupancy(t))

    def _twin_crossed(
        self,
        row: int,
        li: int,
        states: list[_TrackState],
        points: NDArray[np.float64],
        heights: NDArray[np.float64],
    ) -> bool:
        """Has another track of this frame, the same person boxed twice (TWIN_HEAD), crossed line
        ``li`` the way ``row`` just did, within counting.twin_s? (Asked only when a crossing is
        confirmed, so the heads are worked out here, not on every frame.)"""
        now, inwards = states[row].crossed_t[li], states[row].crossed_in[li]
        for other, state in enumerate(states):
            if other == row or not now - state.crossed_t[li] < self.params.twin_s:  # 0: never
                continue
            tall, short = max(heights[row], heights[other]), min(heights[row], heights[other])
            # the box tops: each ground point raised by its height
            dx = points[row, 0] - points[other, 0]
            dy = (points[row, 1] - heights[row]) - (points[other, 1] - heights[other])
            head_gap = float(np.hypot(dx, dy))
            if (
                state.crossed_in[li] == inwards
                and short <= TWIN_SHORT * tall
                and head_gap <= TWIN_HEAD * tall
            ):
                return True
        return False

    def _note_frame_time(self, t: float) -> None:
        """Follow the time between frames, smoothed: a live camera's frames come irregularly."""
        if self._last_frame_t is not None and t > self._last_frame_t:
            step = t - self._last_frame_t
            if math.isfinite(self._frame_step_s):
                step = self._frame_step_s + FRAME_STEP_WEIGHT * (step - self._frame_step_s)
            self._frame_step_s = step
        self._last_frame_t = t

    def _under_confirm_s(self, span_s: float) -> bool:
        """Is ``span_s`` shorter than confirm_s (the span that confirms a crossing, a zone's entry
        or exit, and above which rate a track's end needs ENDED_SIGHTINGS)?"""
        return span_s < self.params.confirm_s - _SAME_TIME_S

    def _state(self, track_id: int, t: float) -> _TrackState:
        state = self._tracks.get(track_id)
        if state is None:
            state = self._tracks[track_id] = self._new_state(t)
        return state

    def _bands(self, heights: NDArray[np.float64], noise: NDArray[np.float64]) -> NDArray[np.float64]:
        """The hysteresis band of each sighting: ``hysteresis`` of the person's height, widened to
        ``jitter_sigmas`` times their track's own noise, up to ``max_hysteresis`` of the height."""
        p = self.params
        noisy = np.minimum(p.jitter_sigmas * noise, p.max_hysteresis * heights)
        return np.maximum(p.min_hysteresis_px, np.maximum(p.hysteresis * heights, noisy))

    def flush(self) -> FrameResult:
        """End of stream: every track ends. Crossings they complete (see the module's rules) and
        every open zone visit, closed at the track's last sighting; then all is forgotten."""
        crossings, visits = self._end_tracks(list(self._tracks), stream_ended=True)
        return FrameResult(crossings, visits, {})

    # -- lines ---------------------------------------------------------------------------------

    def _step_line(
        self,
        st: _TrackState,
        li: int,
        d: float,
        margin: float,
        point: NDArray[np.float64],
        track_id: int,
        frame: int,
    ) -> Crossing | None:
        sign = 1 if d > 0 else -1 if d < 0 else 0
        st.last_distance[li] = d
        if sign != 0:
            if st.ref_sign[li] != 0 and sign != st.ref_sign[li]:
                st.transit_on_segment[li] = self._on_segment(li, st.ref_point[li], point)
            st.ref_sign[li] = sign
            st.ref_point[li] = point
        beyond = abs(d) > margin
        committed = int(st.side[li])
        past = committed != 0 and -committed * d >= ENDED_PAST_BAND * margin
        st.past_ended[li] = min(st.past_ended[li] + 1, ENDED_SIGHTINGS) if past else 0  # no overflow
        if committed == 0:
            if beyond:
                st.side[li] = sign
            return None
        if sign == committed:
            st.pending[li] = 0
            return None
        if not beyond:
            return None  # in the band on the other side: neither confirms nor resets
        st.pending[li] += 1
        if st.pending[li] == 1:
            st.pending_since[li], st.pending_frame[li] = st.last_t, frame
        if st.pending[li] < self.params.confirm_frames or st.hits < self.params.min_track_hits:
            return None
        if self._under_confirm_s(st.last_t - st.pending_since[li]):
            return None  # a box bottom jumping past the band for a frame or two at 25-30 fps
        st.side[li] = sign
        st.pending[li] = 0
        if not st.transit_on_segment[li]:
            return None  # went round the end of the segment
        # Timed from the first sighting beyond the band: the confirmation only made it certain.
        line = self.lines[li]
        direction: Direction = "in" if sign > 0 else "out"
        return Crossing(
            line.name, line.kind, direction, track_id, int(st.pending_frame[li]), float(st.pending_since[li])
        )

    def _on_segment(self, li: int, p0: NDArray[np.float64], p1: NDArray[np.float64]) -> bool:
        a, b = self._starts[li], self._ends[li]
        seg, path = b - a, p1 - p0
        denom = seg[0] * path[1] - seg[1] * path[0]
        if denom == 0:
            return False
        off = p0 - a
        u = (off[0] * path[1] - off[1] * path[0]) / denom
        return bool(0.0 <= u <= 1.0)

    def _ended_crossings(self, track_id: int, st: _TrackState, stream_ended: bool) -> list[Crossing]:
        """The crossings a track completes by ending: last seen at least ENDED_PAST_BAND of the
        band beyond a line it walked through (on the segment), not yet confirmed there; seen so
        ENDED_SIGHTINGS times in a row where frames come faster than confirm_s, unless the
        stream's end cut the track short (seen on its last frame)."""
        if st.hits < self.params.min_track_hits:
            return []
        fast = self._under_confirm_s(self._frame_step_s)
        cut_short = stream_ended and st.last_t >= (self._last_frame_t or 0.0) - _SAME_TIME_S
        sightings = ENDED_SIGHTINGS if fast and not cut_short else 1
        ended = []
        for li, line in enumerate(self.lines):
            committed = int(st.side[li])
            past = -committed * float(st.last_distance[li])
            if committed == 0 or past < ENDED_PAST_BAND * st.last_margin or not st.transit_on_segment[li]:
                continue
            if st.past_ended[li] < sightings:
                continue
            direction: Direction = "in" if committed < 0 else "out"
            ended.append(Crossing(line.name, line.kind, direction, track_id, st.last_frame, st.last_t))
        return ended

    # -- zones ---------------------------------------------------------------------------------

    def _step_zone(self, st: _TrackState, zi: int, inside: bool, track_id: int, t: float) -> ZoneVisit | None:
        if inside:
            st.zone_last_inside_t[zi] = t
        if inside == bool(st.in_zone[zi]):
            st.zone_streak[zi] = 0
            return None
        st.zone_streak[zi] += 1
        if st.zone_streak[zi] == 1:
            st.zone_streak_since[zi] = t
            # Someone seen outside, then inside, stepped in, on average, half a frame step before
            # the first sighting inside; seen inside, then outside, they stepped out half a step
            # after the last. Dated from the sightings alone a visit was one frame step short
            # (0.07 s at 15 fps, 0.2 s at 5 fps), so its dwell, and whether it lasted min_dwell_s,
            # depended on the rate analysed. A track that starts or ends inside (born there after
            # an occlusion, or at the picture's edge) shows no step: its visit keeps its sightings.
            half_step = self._frame_step_s / 2 if math.isfinite(self._frame_step_s) else 0.0
            if not inside:
                st.zone_last_inside_t[zi] += half_step
            else:
                st.zone_enter_t[zi] = t - (half_step if st.hits > 1 else 0.0)
        if st.zone_streak[zi] < self.params.zone_confirm_frames or st.hits < self.params.min_track_hits:
            return None
        if self._under_confirm_s(t - st.zone_streak_since[zi]):
            return None  # a ground point over the zone's edge for a frame or two at 25-30 fps
        st.zone_streak[zi] = 0
        st.in_zone[zi] = inside
        if not inside:
            # Held for zone_rejoin_s: a step out and back (or a ground point wobbling over the
            # zone's edge) continues the visit instead of splitting it.
            st.left_enter_t[zi], st.left_exit_t[zi] = st.zone_enter_t[zi], st.zone_last_inside_t[zi]
            return None
        if np.isnan(st.left_exit_t[zi]):
            return None
        if st.zone_enter_t[zi] - st.left_exit_t[zi] <= self.params.zone_rejoin_s:
            st.zone_enter_t[zi] = st.left_enter_t[zi]  # the same visit goes on
            st.left_exit_t[zi] = np.nan
            return None
        return self._take_left_visit(st, zi, track_id)

    def _take_left_visit(self, st: _TrackState, zi: int, track_id: int) -> ZoneVisit:
        visit = ZoneVisit(
            self.zones[zi].name, track_id, float(st.left_enter_t[zi]), float(st.left_exit_t[zi])
        )
        st.left_enter_t[zi] = st.left_exit_t[zi] = np.nan
        return visit

    def _settled_visits(self, t: float) -> list[ZoneVisit]:
        """Visits whose exit is older than zone_rejoin_s: nobody came back, they are final."""
        visits = []
        for track_id, st in self._tracks.items():
            for zi in np.flatnonzero(t - st.left_exit_t > self.params.zone_rejoin_s):
                visits.append(self._take_left_visit(st, int(zi), track_id))
        return visits

    def _close_visits(self, track_id: int, st: _TrackState) -> list[ZoneVisit]:
        left = np.flatnonzero(~np.isnan(st.left_exit_t))
        held = [self._take_left_visit(st, int(zi), track_id) for zi in left]
        return held + [
            ZoneVisit(z.name, track_id, float(st.zone_enter_t[zi]), float(st.zone_last_inside_t[zi]))
            for zi, z in enumerate(self.zones)
            if st.in_zone[zi]
        ]

    # -- bookkeeping ---------------------------------------------------------------------------

    def _new_state(self, t: float) -> _TrackState:
        n_lines, n_zones = len(self.lines), len(self.zones)
        return _TrackState(
            hits=0,
            last_t=t,
            last_frame=0,
            last_margin=0.0,
            jitter=_Jitter(),
            side=np.zeros(n_lines, np.int8),
            pending=np.zeros(n_lines, np.int16),
            pending_since=np.zeros(n_lines),
            pending_frame=np.zeros(n_lines, np.int64),
            ref_sign=np.zeros(n_lines, np.int8),
            ref_point=np.zeros((n_lines, 2)),
            transit_on_segment=np.zeros(n_lines, bool),
            last_distance=np.zeros(n_lines),
            past_ended=np.zeros(n_lines, np.int16),
            crossed_t=np.full(n_lines, np.nan),
            crossed_in=np.zeros(n_lines, bool),
            in_zone=np.zeros(n_zones, bool),
            zone_streak=np.zeros(n_zones, np.int16),
            zone_streak_since=np.zeros(n_zones),
            zone_enter_t=np.zeros(n_zones),
            zone_last_inside_t=np.zeros(n_zones),
            left_enter_t=np.full(n_zones, np.nan),
            left_exit_t=np.full(n_zones, np.nan),
        )

    def _end_tracks(
        self, track_ids: list[int], stream_ended: bool = False
    ) -> tuple[list[Crossing], list[ZoneVisit]]:
        """Forget these tracks (unseen for forget_after_s, or the stream ended): the crossings their
        end completes and their zone visits, closed at their last sighting."""
        crossings: list[Crossing] = []
        visits: list[ZoneVisit] = []
        for tid in track_ids:
            state = self._tracks.pop(tid)
            crossings += self._ended_crossings(tid, state, stream_ended)
            visits += self._close_visits(tid, state)
        return crossings, visits

    def _update_occupancy(self, t: float) -> dict[str | None, int]:
        recent = [
            st
            for st in self._tracks.values()
            if st.hits >= self.params.min_track_hits and t - st.last_t <= self.params.occupancy_grace_s
        ]
        now: dict[str | None, int] = {None: len(recent)}
        for zi, zone in enumerate(self.zones):
            now[zone.name] = sum(1 for st in recent if st.in_zone[zi])
        changed = {k: v for k, v in now.items() if self._occupancy.get(k) != v}
        self._occupancy = now
        return changed
