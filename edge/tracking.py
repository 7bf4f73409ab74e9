"""Multi-object tracking: ByteTrack (Zhang et al., 2022) in numpy, with no torch underneath.

ByteTrack associates confident detections with the tracks first (IoU weighted by the detection's
score), then gives the tracks left over a second chance with the weak detections (a person half
hidden behind another is often a weak detection), and starts new tracks only from confident
detections that nobody claimed. Boxes are compared widened by the distance a person may walk
between two frames, so low frame rates keep their tracks. A track that finds no detection is
kept, coasting on its Kalman motion, for ``LOST_KEPT_S`` before it is dropped: a person walking
behind others comes back to the same track.

Identity across longer gaps, and across a swap that ByteTrack cannot see, is the tracklet
linker's job (edge/linking.py), downstream.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from enum import Enum

import lap
import numpy as np
from numpy.typing import NDArray

from footfall.contracts.config import ModelConfig
from footfall.edge import kalman
from footfall.edge.detector import Detections
from footfall.edge.feet import HiddenLegs
from footfall.edge.geometry import iou_matrix

Array = NDArray[np.float64]

# Detections below this score are noise even for the second association.
LOW_SCORE = 0.1
# Association gates, as costs (1 - IoU, weighted by score in the first stage).
FIRST_MATCH_COST, SECOND_MATCH_COST, UNCONFIRMED_MATCH_COST = 0.8, 0.5, 0.7
# Two tracks on the same person (a lost one re-found and a new one): IoU above 0.85.
DUPLICATE_COST = 0.15
# How far a person may walk between two analysed frames, in their heights per second (a brisk
# walk). Boxes are widened by that distance before they are compared (buffered IoU, Yang et al.
# 2023): at a low frame rate a person moves further than their own width between frames, and plain
# IoU then finds no overlap, starts a new track each frame and never confirms it. At 30 fps this
# widens a box by 0.05 of its height; at 5 fps by 0.3.
WALK_HEIGHTS_PER_S = 1.5
# Observation-centric momentum (OC-SORT, Cao et al. 2023): in the first association a detection
# in the direction a track is walking scores up to HEADING_WEIGHT / 2 (OC-SORT's weight) more
# similarity, one behind it as much less. Two people crossing paths at a low frame rate otherwise
# trade identities when their widened boxes overlap both detections alike. The direction is taken
# from head to head (the box tops: a box of the upper body alone, or a box cut short by a person in
# front, keeps its top), and only where it means something: the track strides at least
# HEADING_MIN_STEP of its height from one analysed frame to the next, and the detection lies as
# far from its last observed head. Box tops jitter by a few hundredths of a height between frames,
# as much as a walker moves at 30 fps; there, in Venice-2's groups, the direction of fragments and
# of boxes holding two people misled more identities than it kept (replays, docs/edge.md).
HEADING_WEIGHT = 0.2
HEADING_MIN_STEP = 0.1
# A lost track is kept this long (at any frame rate): a person passing behind a group comes back.
LOST_KEPT_S = 2.0
MIN_LOST_KEPT_FRAMES = 10


@dataclass(frozen=True, slots=True)
class Tracks:
    ids: np.ndarray  # (N,) int
    xyxy: np.ndarray  # (N, 4)
    ground: np.ndarray  # (N, 2) the matched detection's ground point
    heights: np.ndarray  # (N,)

    def __len__(self) -> int:
        return len(self.ids)

    def select(self, keep: np.ndarray) -> Tracks:
        return Tracks(self.ids[keep], self.xyxy[keep], self.ground[keep], self.heights[keep])

    def feet_in_view(self, picture_height: int) -> Tracks:
        """Only the people whose box ends above the picture's bottom edge: a box cut off there
        shows no feet, so its ground point is a guess that must not decide a crossing or a visit.
        (Such people stay tracked; they count again once their feet are in view.)"""
        return self.select(self.xyxy[:, 3] < picture_height - 1)

    @classmethod
    def empty(cls) -> Tracks:
        return cls(np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros((0, 2)), np.zeros(0))


class State(Enum):
    TRACKED = 1
    LOST = 2
    REMOVED = 3


@dataclass(slots=True, eq=False)
class _Track:
    id: int
    mean: Array  # (8,) Kalman state
    covariance: Array  # (8, 8)
    score: float
    detection: int  # index of the matching detection in the current frame
    first_frame: int
    last_frame: int  # the last frame a detection matched
    state: State = State.TRACKED
    confirmed: bool = False
    # the state right after the last real observation, and that observation (xyah)
    observed: tuple[Array, Array, Array] | None = None

    @property
    def xyxy(self) -> Array:
        return np.asarray(kalman.xyah_to_xyxy(self.mean[None, :4])[0])

    @property
    def head(self) -> tuple[float, float]:
        """The top-centre of the last observed box (or of the state, before any)."""
        x, y, _, h = self.observed[2] if self.observed is not None else self.mean[:4]
        return float(x), float(y - h / 2)

    def found_again(self, frame: int) -> bool:
        """Was this track missed on the frames before ``frame``, with an observation to replay from?"""
        return frame - self.last_frame > 1 and self.observed is not None

    def observed_at(self, measured: Array, score: float, detection: int, frame: int) -> None:
        """Book the detection (xyah ``measured``) the state has just been corrected with."""
        self.observed = (self.mean.copy(), self.covariance.copy(), measured)
        self.score, self.detection, self.last_frame = score, detection, frame
        self.state, self.confirmed = State.TRACKED, True

    def replay_gap(self, measured: Array, frame: int) -> None:
        """Observation-centric re-update (OC-SORT): a track found again on ``frame`` after missed
        frames restarts from its last observation and is updated along the straight path to the new
        one, frame by frame. Coasting through an occlusion on a guessed velocity leaves that guess
        in the state; the real path between the two sightings replaces it."""
        assert self.observed is not None
        gap = frame - self.last_frame
        mean, cov, last = self.observed
        mean, cov = mean[None], cov[None]
        for k in range(1, gap + 1):
            mean, cov = kalman.predict(mean, cov)
            virtual = last + (measured - last) * (k / gap)
            mean, cov = kalman.update(mean, cov, virtual[None])
        self.mean, self.covariance = mean[0], cov[0]


@dataclass(slots=True)
class _Candidates:
    """This frame's detections of one confidence band, with their index in the frame."""

    xyxy: Array
    scores: Array
    index: NDArray[np.int64]

    def take(self, keep: NDArray[np.int64]) -> _Candidates:
        return _Candidates(self.xyxy[keep], self.scores[keep], self.index[keep])


@dataclass(slots=True)
class _Matches:
    pairs: list[tuple[int, int]]
    tracks_left: list[int]
    detections_left: list[int]


def assign(cost: Array, limit: float) -> _Matches:
    """Minimum-cost one-to-one assignment; pairs costing ``limit`` or more are not made."""
    rows, cols = cost.shape
    if rows == 0 or cols == 0:
        return _Matches([], list(range(rows)), list(range(cols)))
    _, x, y = lap.lapjv(cost, extend_cost=True, cost_limit=limit)
    pairs = [(int(i), int(j)) for i, j in enumerate(x) if j >= 0]
    return _Matches(pairs, [i for i in range(rows) if x[i] < 0], [j for j in range(cols) if y[j] < 0])


def _boxes(tracks: list[_Track]) -> Array:
    if not tracks:
        return np.zeros((0, 4))
    return kalman.xyah_to_xyxy(np.stack([t.mean[:4] for t in tracks]))


def _widened(boxes: Array, reach: float) -> Array:
    """Boxes grown by half of ``reach`` (in heights) of their own height on every side."""
    pad = (boxes[:, 3] - boxes[:, 1]) * (reach / 2)
    return boxes + np.outer(pad, [-1.0, -1.0, 1.0, 1.0])


def _heading_bonus(tracks: list[_Track], found: _Candidates) -> Array:
    """(tracks, detections): the similarity a detection gains (or loses) by lying in the direction
    its track walks (above, HEADING_WEIGHT)."""
    mean = np.stack([t.mean for t in tracks])
    velocity, height = mean[:, 4:6], mean[:, 3]  # velocity: pixels per analysed frame
    speed = np.hypot(velocity[:, 0], velocity[:, 1])
    striding = speed >= HEADING_MIN_STEP * height
    if not striding.any():  # at 30 fps, nearly always: nothing to weigh
        return np.zeros((len(tracks), len(found.scores)))
    head = np.array([t.head for t in tracks])
    tops = np.stack([(found.xyxy[:, 0] + found.xyxy[:, 2]) / 2, found.xyxy[:, 1]], axis=1)
    step = tops[None, :, :] - head[:, None, :]
    step_length = np.hypot(step[..., 0], step[..., 1])
    cosine = (step @ velocity[:, :, None])[..., 0] / np.maximum(step_length * speed[:, None], 1e-9)
    bonus = HEADING_WEIGHT * (0.5 - np.arccos(np.clip(cosine, -1.0, 1.0)) / np.pi) * found.scores[None, :]
    meaningful = striding[:, None] & (step_length >= HEADING_MIN_STEP * height[:, None])
    return np.asarray(np.where(meaningful, bonus, 0.0))


def _correct(tracks: list[_Track], found: _Candidates, frame: int) -> None:
    """Correct each track with its detection (row for row): one Kalman update for all the tracks
    seen on the frame before (a crowd has hundreds), the gap replayed for those found again."""
    measured = kalman.xyxy_to_xyah(found.xyxy)
    again = [t.found_again(frame) for t in tracks]
    steady = [k for k, gap in enumerate(again) if not gap]
    if steady:
        mean = np.stack([tracks[k].mean for k in steady])
        cov = np.stack([tracks[k].covariance for k in steady])
        mean, cov = kalman.update(mean, cov, measured[steady])
        for k, m, c in zip(steady, mean, cov, strict=True):
            tracks[k].mean, tracks[k].covariance = m, c
    for k, track in enumerate(tracks):
        if again[k]:
            track.replay_gap(measured[k], frame)
        track.observed_at(measured[k], float(found.scores[k]), int(found.index[k]), frame)


def _predict(tracks: list[_Track]) -> None:
    if not tracks:
        return
    mean = np.stack([t.mean for t in tracks])
    cov = np.stack([t.covariance for t in tracks])
    lost = np.array([t.state is not State.TRACKED for t in tracks])
    mean[lost, 7] = 0  # a lost track keeps its pace but stops growing or shrinking
    mean, cov = kalman.predict(mean, cov)
    for t, m, c in zip(tracks, mean, cov, strict=True):
        t.mean, t.covariance = m, c


@dataclass(slots=True)
class ByteTracker:
    """Detections in, confirmed tracks of this frame out (``update``)."""

    high_score: float  # detections this confident are matched first
    new_track_score: float  # ... and start a track only this confident
    lost_kept_frames: int
    reach: float = 0.0  # how far a person may walk between two frames, in heights
    frame: int = 0
    tracks: list[_Track] = field(default_factory=list)  # tracked and lost
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def update(self, xyxy: Array, scores: Array) -> list[_Track]:
        self.frame += 1
        strong = scores >= self.high_score
        weak = (scores > LOW_SCORE) & ~strong
        everything = _Candidates(xyxy, scores, np.arange(len(scores)))
        high = everything.take(np.flatnonzero(strong))
        low = everything.take(np.flatnonzero(weak))
        pool = [t for t in self.tracks if t.confirmed]
        unconfirmed = [t for t in self.tracks if not t.confirmed]  # seen once: no motion yet
        _predict(pool)
        first = self._match(pool, high, FIRST_MATCH_COST, weighted=True, reach=self.reach, heading=True)
        retry = [pool[i] for i in first.tracks_left if pool[i].state is State.TRACKED]
        # Not widened: a half-hidden neighbour's weak box would claim the track.
        second = self._match(retry, low, SECOND_MATCH_COST, weighted=False)
        for i in second.tracks_left:
            retry[i].state = State.LOST
        rest = high.take(np.asarray(first.detections_left, dtype=np.int64))
        third = self._match(unconfirmed, rest, UNCONFIRMED_MATCH_COST, weighted=True, reach=self.reach)
        for i in third.tracks_left:
            unconfirmed[i].state = State.REMOVED
        self._start(rest.take(np.asarray(third.detections_left, dtype=np.int64)))
        self._forget()
        seen = [t for t in self.tracks if t.state is State.TRACKED and t.last_frame == self.frame]
        return [t for t in seen if t.confirmed]

    def _match(
        self,
        tracks: list[_Track],
        found: _Candidates,
        limit: float,
        *,
        weighted: bool,
        reach: float = 0.0,
        heading: bool = False,
    ) -> _Matches:
        similarity = iou_matrix(_widened(_boxes(tracks), reach), _widened(found.xyxy, reach))
        if weighted:
            similarity = similarity * found.scores[None, :]
        cost = 1.0 - similarity
        if heading and len(tracks) and len(found.scores):
            # The direction ranks the pairs the boxes allow; it never makes a pair they do not.
            cost = np.where(cost < limit, cost - _heading_bonus(tracks, found), limit + 1.0)
        matches = assign(cost, limit)
        if matches.pairs:
            rows, cols = (list(side) for side in zip(*matches.pairs, strict=True))
            _correct([tracks[i] for i in rows], found.take(np.asarray(cols, dtype=np.int64)), self.frame)
        return matches

    def _start(self, found: _Candidates) -> None:
        keep = np.flatnonzero(found.scores >= self.new_track_score)
        if len(keep) == 0:
            return
        measured = kalman.xyxy_to_xyah(found.xyxy[keep])
        mean, cov = kalman.initiate(measured)
        for k, m, c, z in zip(keep, mean, cov, measured, strict=True):
            self.tracks.append(
                _Track(
                    next(self._ids),
                    m,
                    c,
                    float(found.scores[k]),
                    int(found.index[k]),
                    self.frame,
                    self.frame,
                    confirmed=self.frame == 1,  # the first frame's people are there for sure
                    observed=(m.copy(), c.copy(), z),
                )
            )

    def _forget(self) -> None:
        for t in self.tracks:
            if t.state is State.LOST and self.frame - t.last_frame > self.lost_kept_frames:
                t.state = State.REMOVED
        self.tracks = [t for t in self.tracks if t.state is not State.REMOVED]
        self._drop_duplicates()

    def _drop_duplicates(self) -> None:
        """A lost track and a tracked one on the same box: keep whichever has the longer history."""
        tracked = [t for t in self.tracks if t.state is State.TRACKED]
        lost = [t for t in self.tracks if t.state is State.LOST]
        close = np.argwhere(1.0 - iou_matrix(_boxes(tracked), _boxes(lost)) < DUPLICATE_COST)
        drop: set[int] = set()
        for p, q in close:
            a, b = tracked[p], lost[q]
            drop.add(b.id if a.last_frame - a.first_frame > b.last_frame - b.first_frame else a.id)
        self.tracks = [t for t in self.tracks if t.id not in drop]


class PersonTracker:
    """ByteTrack on person detections, at any frame rate: ``update`` returns this frame's people."""

    def __init__(self, config: ModelConfig, fps: float) -> None:
        self._tracker = ByteTracker(
            high_score=config.conf,
            new_track_score=max(config.conf, config.track_new_conf),
            lost_kept_frames=max(MIN_LOST_KEPT_FRAMES, round(LOST_KEPT_S * fps)),
            reach=WALK_HEIGHTS_PER_S / fps,
        )
        self.hidden_legs = HiddenLegs(fps)

    def update(self, detections: Detections, image: np.ndarray | None = None) -> Tracks:
        people = self._tracker.update(detections.xyxy, detections.conf)
        if not people:
            return Tracks.empty()
        xyxy = _boxes(people)
        # The tracker's box is Kalman-smoothed; the ground point is the matched detection's own
        # (ankles when the model has them), which follows the feet more closely, unless the
        # person's legs are hidden behind someone (edge/feet.py).
        index = [t.detection for t in people]
        ids = np.array([t.id for t in people], dtype=np.int64)
        frame, boxes = self._tracker.frame, detections.xyxy
        ground = self.hidden_legs.feet(ids.tolist(), boxes[index], detections.ground[index], frame, boxes)
        return Tracks(ids, xyxy, ground, xyxy[:, 3] - xyxy[:, 1])
