"""Tracklet linking with a short decision delay: one identity per person through occlusions.

A tracker loses a person who walks behind others and starts a new track when they reappear;
counted as it is, the second piece never crosses the line it was born beyond, and a zone visit
splits in two. The linker sits between the tracker and the counter and holds every frame back for
``delay_s`` seconds. When a new tracklet has been seen for that long (enough to know where it is
heading and what it looks like) it is joined to a person whose tracklet ended shortly before,
if position, motion, size and clothing colour agree, and the earlier one did not walk out of the
picture (a mere glimpse is continued only near where it was seen; someone who stood still may
be hidden longer, and is continued where they stood); otherwise it becomes a new person. Frames
leave the linker with person ids, ``delay_s`` late, so the counter decides crossings and visits on
linked identities. KPIs are 15-minute figures: the delay costs nothing but a live occupancy that
lags by the same seconds.

Every threshold is relative to the person's height, to time, or a colour distance.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import count

import numpy as np
from numpy.typing import NDArray

from footfall.contracts.config import LinkingConfig
from footfall.edge.appearance import appearance_distance

# Nobody walks faster than this many of their own heights per second (~ 5 m/s): a velocity
# estimated from a few noisy boxes is clipped to it before it is extrapolated over a gap.
MAX_SPEED_HEIGHTS_PER_S = 3.0
# A ground point this many heights (plus walking speed times the time step) away from where the
# tracklet's own motion puts it is a jump to another person: the tracker swapped identities.
JUMP_HEIGHTS = 0.4
# Looks a tracklet needs before a change of clothing colour may split it.
SETTLED_LOOKS = 3
# How long a changed look must last before it splits a tracklet. One odd look is noise (shade, a
# bag swung round, compression on a blurred picture: on PETS enlarged 4x, 1 % of a person's looks
# differ from their settled one by more than the split distance); a swap lasts.
CHANGED_LOOK_S = 0.3
# How far back a tracklet's motion is estimated from at its start and end.
MOTION_WINDOW_S = 1.0
# A box this close to an edge of the watched picture (a share of the person's height) touches it.
EDGE_HEIGHTS = 0.05
# A tracklet that ends touching an edge while walking towards it at this many heights per second
# or more (a slow walk, within ~70 degrees of straight out) has left the view through that edge.
OUTWARD_HEIGHTS_PER_S = 0.25

# A tracklet seen for less than this (a glimpse: a few boxes) shows neither where its person was
# heading nor, mostly, what they look like, so nothing says where they went while hidden: it is
# continued only near where it was seen (reach_heights), with no allowance for the time gone. On
# Venice-2 at 540p a 0.07 s glimpse was joined to someone 1.6 heights away 2.3 s later, across a line.
GLIMPSE_S = 0.15

# A tracklet that ended slower than this (heights per second; a slow walk is ~0.5) was standing:
# after a gap longer than max_gap_s it is still continued, by a tracklet starting where it stood.
STANDING_HEIGHTS_PER_S = 0.5

# Edges of the watched picture, as bits: a box may touch several (a corner).
LEFT, TOP, RIGHT, BOTTOM = 1, 2, 4, 8


def touched_edges(
    xyxy: NDArray[np.float64], heights: NDArray[np.float64], region: tuple[float, float, float, float]
) -> NDArray[np.int64]:
    """Per box, the edges of ``region`` (x1, y1, x2, y2: what the detector watches) it touches."""
    return edges_within(xyxy, region, EDGE_HEIGHTS * heights)


def edges_within(
    xyxy: NDArray[np.float64], region: tuple[float, float, float, float], margin: NDArray[np.float64] | float
) -> NDArray[np.int64]:
    """Per box, the edges of ``region`` it comes within ``margin`` pixels of (one for all, or per box)."""
    x1, y1, x2, y2 = region
    edges = np.zeros(len(xyxy), dtype=np.int64)
    edges |= np.where(xyxy[:, 0] <= x1 + margin, LEFT, 0)
    edges |= np.where(xyxy[:, 1] <= y1 + margin, TOP, 0)
    edges |= np.where(xyxy[:, 2] >= x2 - margin, RIGHT, 0)
    edges |= np.where(xyxy[:, 3] >= y2 - margin, BOTTOM, 0)
    return edges


@dataclass(slots=True, eq=False)  # identity: the same run, not equal values
class _Tracklet:
    """One tracker id's run: where it started and ended, how it moved, what it looked like."""

    first_t: float
    last_t: float
    path: deque[tuple[float, float, float, float]]  # (t, x, y, height), bounded by MOTION_WINDOW_S
    head: list[tuple[float, float, float, float]]  # the first observations, within MOTION_WINDOW_S
    appearance: NDArray[np.float32] | None = None
    looks: int = 0  # unoccluded appearance samples in ``appearance``
    last_look_t: float = -np.inf  # when the last unoccluded look like the settled one was taken
    odd_since_t: float | None = None  # since when the looks differ from the settled one
    first_edges: int = 0  # the picture edges its first and last boxes touched
    last_edges: int = 0
    person: int | None = None  # decided after delay_s
    # ``height``, ``end`` and ``start``, kept until the path changes: every frame the linker weighs
    # each tracklet that ended lately against each new one, and a crowd has hundreds of pairs.
    _height: float | None = None
    _end: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None
    _start: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None

    def observe(self, t: float, x: float, y: float, h: float, feature: NDArray[np.float32] | None) -> None:
        self.moved()
        self.last_t = t
        self.path.append((t, x, y, h))
        while self.path and t - self.path[0][0] > MOTION_WINDOW_S:
            self.path.popleft()
        if t - self.first_t <= MOTION_WINDOW_S:
            self.head.append((t, x, y, h))
        if feature is not None and feature.any() and self.odd_since_t is None:
            self.looks += 1
            self.last_look_t = t
            self.appearance = (
                feature.copy() if self.appearance is None else 0.8 * self.appearance + 0.2 * feature
            )

    def changes_look(self, t: float, feature: NDArray[np.float32] | None, limit: float) -> bool:
        """Have the unoccluded looks differed from this tracklet's settled one by more than
        ``limit`` for CHANGED_LOOK_S? Then the tracker has swapped the id onto someone else (two
        people meeting on a line, side by side): the same remedy as a jump. Odd looks are kept
        out of the settled one while they last; a look like it again ends them."""
        if feature is None or not feature.any() or self.appearance is None or self.looks < SETTLED_LOOKS:
            return False
        if appearance_distance(self.appearance, feature) <= limit:
            self.odd_since_t = None
            return False
        if self.odd_since_t is None:
            self.odd_since_t = t
        return t - self.odd_since_t >= CHANGED_LOOK_S

    def jumps_to(self, t: float, x: float, y: float) -> bool:
        """Would (x, y) at t be a leap no walker makes? Then the tracker has swapped this id onto
        someone else (typically within a group): the caller starts a new tracklet there, and
        linking joins each piece to the person it belongs to."""
        if not self.path:
            return False
        last_t, last_x, last_y, height = self.path[-1]
        _, velocity = self.end()
        dt = t - last_t
        expected = np.array([last_x, last_y]) + velocity * dt
        miss = float(np.hypot(x - expected[0], y - expected[1]))
        return miss > (JUMP_HEIGHTS + MAX_SPEED_HEIGHTS_PER_S * dt) * height

    def moved(self) -> None:
        """Forget ``height``, ``end`` and ``start``: ``path`` or ``head`` is about to change."""
        self._height = self._end = self._start = None

    @property
    def height(self) -> float:
        if self._height is None:
            self._height = float(np.median([p[3] for p in self.path]))
        return self._height

    def end(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Last position and velocity (pixels/s)."""
        if self._end is None:
            self._end = _position_velocity(list(self.path), last=True)
        return self._end

    def start(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """First position and velocity (pixels/s)."""
        if self._start is None:
            self._start = _position_velocity(self.head, last=False)
        return self._start

    def exits(self) -> int:
        """The edges this tracklet walked out through: its last box touched them and it was
        heading out. Nobody continues it but someone coming back in through one of them."""
        if not self.last_edges:
            return 0
        _, velocity = self.end()
        vx, vy = velocity / (OUTWARD_HEIGHTS_PER_S * self.height)
        outward = (LEFT if vx <= -1 else 0) | (RIGHT if vx >= 1 else 0)
        outward |= (TOP if vy <= -1 else 0) | (BOTTOM if vy >= 1 else 0)
        return self.last_edges & outward


def _position_velocity(
    points: list[tuple[float, float, float, float]], *, last: bool
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    # Plain floats: asked of every tracklet on every frame, a few points each.
    (t0, x0, y0, _), (t1, x1, y1, _) = points[0], points[-1]
    position = np.array([x1, y1] if last else [x0, y0])
    dt = t1 - t0
    if len(points) < 2 or dt <= 0:
        return position, np.zeros(2)
    velocity = np.array([(x1 - x0) / dt, (y1 - y0) / dt])
    limit = MAX_SPEED_HEIGHTS_PER_S * statistics.median(p[3] for p in points)
    speed = float(np.hypot(*velocity))
    return position, velocity * min(1.0, limit / speed) if speed > 0 else velocity


def _unlikely(miss_in_reaches: float, widening: float) -> float:
    """How unlikely a join's miss is: where someone went while hidden is spread over a disc
    ``widening`` times the reach of the shortest gap, so a short gap and a long one that miss by as
    much are not alike (a Gaussian's negative log-likelihood: half the squared miss in reaches, plus
    the log of the disc's area). Without the area, a 2 s gap whose path, carried back, passed
    anywhere near won over the 0.8 s gap of the person's own earlier tracklet (Venice-2, lines drawn
    at random)."""
    return 0.5 * miss_in_reaches**2 + 2.0 * math.log(widening)


@dataclass(frozen=True, slots=True)
class LinkedFrame:
    """A frame as it leaves the linker: ``person_ids`` replace the tracker's ids, row for row."""

    payload: object  # whatever the caller pushed with the frame (index, t, tracks, ...)
    t: float
    person_ids: NDArray[np.int64]


@dataclass(slots=True)
class _Pending:
    payload: object
    t: float
    tracklets: list[_Tracklet]  # row for row; their person is read when the frame leaves
    observations: list[tuple[float, float, float, float]]  # row for row: (t, x, y, height)
    edges: list[int]  # row for row: the picture edges the box touched


@dataclass(slots=True)
class TrackletLinker:
    """``push`` a frame of tracker ids and ground points; get back the frames that are
    ``delay_s`` old, labelled with person ids. ``flush`` at the end of the stream."""

    params: LinkingConfig = field(default_factory=LinkingConfig)
    _frames: deque[_Pending] = field(default_factory=deque)
    _current: dict[int, _Tracklet] = field(default_factory=dict)  # tracker id -> its latest tracklet
    _undecided: list[_Tracklet] = field(default_factory=list)
    # person id -> its latest tracklet (the one a successor would continue)
    _latest: dict[int, _Tracklet] = field(default_factory=dict)
    _next_person: Iterator[int] = field(default_factory=lambda: count(1))

    def push(
        self,
        payload: object,
        t: float,
        raw_ids: NDArray[np.int64],
        ground: NDArray[np.float64],
        heights: NDArray[np.float64],
        appearance: NDArray[np.float32] | None = None,
        edges: NDArray[np.int64] | None = None,
    ) -> list[LinkedFrame]:
        """``edges``: per row, the edges of the watched picture its box touches (``touched_edges``)."""
        rows: list[_Tracklet] = []
        touched = [0] * len(raw_ids) if edges is None else edges.tolist()
        observations = [(t, float(p[0]), float(p[1]), float(h)) for p, h in zip(ground, heights, strict=True)]
        for row, raw in enumerate(raw_ids.tolist()):
            feature = None if appearance is None else appearance[row]
            _, x, y, height = observations[row]
            tracklet = self._current.get(raw)
            swapped_look = tracklet is not None and tracklet.changes_look(
                t, feature, self.params.split_appearance_distance
            )
            jumped = tracklet is not None and tracklet.jumps_to(t, x, y)
            if tracklet is None or swapped_look or jumped or self._superseded(tracklet):
                old, tracklet = tracklet, _Tracklet(t, t, deque(), [])
                self._current[raw] = tracklet
                self._undecided.append(tracklet)
                tracklet.first_edges = touched[row]
                if old is not None and swapped_look:
                    self._split_back(old, tracklet)
            tracklet.observe(t, x, y, height, feature)
            tracklet.last_edges = touched[row]
            rows.append(tracklet)
        self._frames.append(_Pending(payload, t, rows, observations, touched))
        self._decide(now=t, final=False)
        released = self._release(t - self.params.delay_s)
        self._forget(t)
        return released

    def _split_back(self, old: _Tracklet, new: _Tracklet) -> None:
        """A changed look shows the swap happened after ``old``'s last good look, while the two
        people were too close to see: the frames since then (still held back) go to ``new``."""
        moved: list[tuple[float, float, float, float]] = []
        edges_at_last_look = old.last_edges  # kept if that frame has already left the linker
        for frame in reversed(self._frames):
            if frame.t <= old.last_look_t:
                rows = (row for row, tracklet in enumerate(frame.tracklets) if tracklet is old)
                edges_at_last_look = next((frame.edges[row] for row in rows), edges_at_last_look)
                break
            for row, tracklet in enumerate(frame.tracklets):
                if tracklet is old:
                    frame.tracklets[row] = new
                    moved.append(frame.observations[row])
                    new.first_edges = frame.edges[row]
        if not moved:
            return
        kept = [p for p in old.path if p[0] <= old.last_look_t]
        if not kept:  # old's recent path all lies after its last look: too little to cut, keep it
            for frame in self._frames:
                frame.tracklets[:] = [old if tr is new else tr for tr in frame.tracklets]
            return
        old.moved()
        old.path = deque(kept)
        old.head = [p for p in old.head if p[0] <= old.last_look_t]
        old.last_t = kept[-1][0]
        old.last_edges = edges_at_last_look
        for t, x, y, h in reversed(moved):
            if new.first_t > t:
                new.first_t = t
            new.observe(t, x, y, h, None)

    def _superseded(self, tracklet: _Tracklet) -> bool:
        """The tracker revived an id whose person has meanwhile been continued by another
        tracklet: the revived one starts afresh (one person is never in two places)."""
        person = tracklet.person
        return person is not None and self._latest.get(person) is not tracklet

    def flush(self) -> list[LinkedFrame]:
        now = self._frames[-1].t if self._frames else 0.0
        self._decide(now=now, final=True)
        return self._release(np.inf)

    # -- decisions -----------------------------------------------------------------------------

    def _decide(self, now: float, final: bool) -> None:
        """Join every tracklet that has been seen for delay_s (or has ended) to a person."""
        delay = self.params.delay_s
        due = [tr for tr in self._undecided if final or now - tr.first_t >= delay or tr.last_t < now]
        if not due:
            return
        self._undecided = [tr for tr in self._undecided if tr.person is None and tr not in due]
        due.sort(key=lambda tr: tr.first_t)
        pairs = [
            (cost, i, person)
            for i, new in enumerate(due)
            for person, old in self._latest.items()
            if (cost := self._link_cost(old, new)) is not None
        ]
        pairs.sort()
        taken_new: set[int] = set()
        taken_person: set[int] = set()
        for _, i, person in pairs:
            if i in taken_new or person in taken_person:
                continue
            taken_new.add(i)
            taken_person.add(person)
            self._assign(due[i], person)
        for i, new in enumerate(due):
            if i not in taken_new:
                self._assign(new, next(self._next_person))

    def _assign(self, tracklet: _Tracklet, person: int) -> None:
        tracklet.person = person
        self._latest[person] = tracklet

    def _link_cost(self, old: _Tracklet, new: _Tracklet) -> float | None:
        """How well ``new`` continues ``old`` (lower is better), or None when it cannot."""
        p = self.params
        gap = new.first_t - old.last_t
        if gap <= 0 or gap > p.longest_gap_s:
            return None  # overlapping in time: two people
        h_old, h_new = old.height, new.height
        if max(h_old, h_new) > p.max_height_ratio * min(h_old, h_new):
            return None
        exits = old.exits()
        if exits and not exits & new.first_edges:
            return None  # old walked out of the picture; new appeared elsewhere
        height = 0.5 * (h_old + h_new)
        if gap <= p.max_gap_s:
            joined = self._walked_on(old, new, gap, height)
        else:
            joined = self._stood_hidden(old, new, height)
        if joined is None:
            return None
        colour = 0.0
        if old.appearance is not None and new.appearance is not None:
            colour = appearance_distance(old.appearance, new.appearance)
            if colour > p.max_appearance_distance:
                return None
        return joined + colour / p.max_appearance_distance

    def _walked_on(self, old: _Tracklet, new: _Tracklet, gap: float, height: float) -> float | None:
        """How far (a share of the reach) ``new`` starts from where ``old``'s walk leads, or None."""
        p = self.params
        end, v_end = old.end()
        start, v_start = new.start()
        # Old's path carried forward over the whole gap, or new's carried back: the better of the
        # two. One velocity is often poor (a tracklet's first or last moments are a partial view);
        # requiring both to agree (meeting in the middle) lost true joins on TUD and PETS in replays.
        forward = end + v_end * gap
        backward = start - v_start * gap
        miss = min(float(np.hypot(*(forward - start))), float(np.hypot(*(backward - end))))
        reach = p.reach_after(gap)
        if miss > reach * height:
            return None
        if old.last_t - old.first_t < GLIMPSE_S and np.hypot(*(start - end)) > p.reach_heights * height:
            return None  # a glimpse is continued only where it was seen
        return _unlikely(miss / (reach * height), reach / p.reach_heights)

    def _stood_hidden(self, old: _Tracklet, new: _Tracklet, height: float) -> float | None:
        """After a long gap: did ``old`` stand still and does ``new`` start where it stood? The cost
        is 1 more than a join after a walk hidden for max_gap_s that misses by as much, so those
        mostly come first (a colour difference can still put a close standing join ahead of a
        poor short one)."""
        end, v_end = old.end()
        start, _ = new.start()
        if np.hypot(*v_end) > STANDING_HEIGHTS_PER_S * old.height:
            return None
        p = self.params
        miss = float(np.hypot(*(start - end)))
        if miss > p.reach_heights * height:
            return None
        longest_walk = p.reach_after(p.max_gap_s) / p.reach_heights
        return 1.0 + _unlikely(miss / (p.reach_heights * height), longest_walk)

    # -- release and memory --------------------------------------------------------------------

    def _release(self, until: float) -> list[LinkedFrame]:
        out = []
        while self._frames and self._frames[0].t <= until:
            frame = self._frames.popleft()
            persons = [tracklet.person for tracklet in frame.tracklets]
            out.append(LinkedFrame(frame.payload, frame.t, np.asarray(persons, dtype=np.int64)))
        return out

    def _forget(self, now: float) -> None:
        """Drop what can no longer be continued: memory stays bounded by the people seen in the
        last delay_s + the longer gap seconds (pending frames keep their own references)."""
        horizon = self.params.delay_s + self.params.longest_gap_s
        for raw in [raw for raw, tr in self._current.items() if now - tr.last_t > horizon]:
            del self._current[raw]
        for person in [p for p, tr in self._latest.items() if now - tr.last_t > horizon]:
            del self._latest[person]

    @property
    def held(self) -> int:
        """Tracklets and people in memory (bounded: see ``_forget``)."""
        return len(self._current) + len(self._latest)
