"""Accuracy audit: counted crossings and zone visits against ground truth.

Crossings are compared per (line, direction) and matched one-to-one (same line and direction,
nearest in time, within ``tolerance_s``). What stays unmatched is split into three kinds of error
that have different causes: a *miss* (a true crossing nobody counted: a detection or identity
failure), a *false count* (counted, never happened: a swap or a spurious track) and a *wrong
direction* (counted at the right line and time, the other way: an identity swap on the line).
Each is also listed (``CountError``: when, on which frame, whose), so that the frames behind an
error can be looked at rather than guessed.

Zone visits are compared by number (at least ``min_dwell_s`` long) and median dwell.

Where the annotation marks people it does not count (MOTChallenge's distractors: static people,
people on a vehicle, reflections), a crossing or visit counted by someone boxed on one of them is
*set aside* (``set_aside``), neither matched nor false, as the benchmark's own evaluation does
with the tracker's boxes on them.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypeVar

from footfall.contracts.config import LineConfig, ZoneConfig
from footfall.edge.counting import Crossing, ZoneVisit

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class LineScore:
    line: str
    direction: str
    truth: int
    counted: int
    matched: int = 0
    missed: int = 0  # true crossings of this row nobody counted
    false: int = 0  # counted in this row, matching no true crossing
    wrong_direction: int = 0  # true crossings of this row counted the other way

    @property
    def error(self) -> int:
        return self.counted - self.truth


@dataclass(frozen=True, slots=True)
class CountError:
    """One crossing the audit left unmatched. ``missed``: a true crossing nobody counted;
    ``false``: a counted one that matches none; ``wrong_direction``: a true one counted the other
    way. ``direction``, ``t`` and ``frame`` are the true crossing's (the counted one's for
    ``false``); ``person`` is the annotated person (none for ``false``), ``track`` footfall's person
    id that counted it (none for ``missed``)."""

    kind: Literal["missed", "false", "wrong_direction"]
    line: str
    direction: str
    t: float
    frame: int
    person: int | None
    track: int | None


@dataclass(frozen=True, slots=True)
class ZoneScore:
    zone: str
    truth_visits: int
    counted_visits: int
    truth_median_dwell_s: float | None
    counted_median_dwell_s: float | None

    @property
    def visit_error(self) -> float:
        """|counted - truth| / truth visits."""
        gap = abs(self.counted_visits - self.truth_visits)
        return gap / self.truth_visits if self.truth_visits else float(gap > 0)

    @property
    def dwell_error(self) -> float | None:
        """Relative error of the median dwell (None when either side has no visit)."""
        if not self.truth_median_dwell_s or self.counted_median_dwell_s is None:
            return None
        return abs(self.counted_median_dwell_s - self.truth_median_dwell_s) / self.truth_median_dwell_s


@dataclass(frozen=True, slots=True)
class IdentityScore:
    """How well person ids follow the annotated people: IDF1 (Ristani et al. 2016, TrackEval's
    Identity metric). Each annotated id is paired with at most one person id and each person id
    with at most one annotated id, so as to maximise the frames on which the pair's boxes overlap
    (IoU 0.5): those frames are the identity true positives (``idtp``). A person followed by two
    ids, or two people by one id, loses the frames of the id left unpaired."""

    idtp: int
    annotated: int  # annotated boxes on the frames analysed
    tracked: int  # tracked boxes on those frames (those on annotated distractors left out)
    # Where identities are lost: each annotated box matched one-to-one (IoU 0.5) to a tracked box
    # on its frame, under the person id paired with its person (``followed``), under an id paired
    # with another annotated person (``switched``: swaps, two people joined), or under an id paired
    # with nobody (``fragments``: a piece of the person not joined to the rest); ``unmatched``: none.
    followed: int = 0
    switched: int = 0
    fragments: int = 0

    @property
    def unmatched(self) -> int:
        return self.annotated - self.followed - self.switched - self.fragments

    @property
    def idf1(self) -> float:
        total = self.annotated + self.tracked
        return 2 * self.idtp / total if total else 1.0

    @property
    def idp(self) -> float:
        return self.idtp / self.tracked if self.tracked else 1.0

    @property
    def idr(self) -> float:
        return self.idtp / self.annotated if self.annotated else 1.0


@dataclass(frozen=True, slots=True)
class Report:
    rows: list[LineScore]
    matched: int
    truth_events: int
    counted_events: int
    zones: tuple[ZoneScore, ...] = ()
    # The recording's own rate and the rate it was analysed at (set by ``run_eval``).
    native_fps: float | None = None
    analysed_fps: float | None = None
    # Counted by people the annotation marks as distractors (``set_aside``), left out of the scores.
    set_aside_crossings: int = 0
    set_aside_visits: int = 0
    # Identities of the tracked people against the annotation (set by ``run_eval``).
    identity: IdentityScore | None = None
    # Every missed, false and wrong-way crossing, in time order.
    errors: tuple[CountError, ...] = ()

    @property
    def truth_total(self) -> int:
        return sum(r.truth for r in self.rows)

    @property
    def abs_error(self) -> int:
        return sum(abs(r.error) for r in self.rows)

    @property
    def relative_error(self) -> float:
        """Summed |counted - truth| over lines and directions, as a fraction of all true crossings."""
        return self.abs_error / self.truth_total if self.truth_total else float(self.abs_error > 0)

    @property
    def precision(self) -> float:
        return self.matched / self.counted_events if self.counted_events else 1.0

    @property
    def recall(self) -> float:
        return self.matched / self.truth_events if self.truth_events else 1.0

    def total(self, what: str) -> int:
        """Sum of one LineScore field (``missed``, ``false``, ``wrong_direction``, ...)."""
        return sum(getattr(r, what) for r in self.rows)

    def as_dict(self) -> dict[str, Any]:
        """The report for machines (``footfall eval --json``): every row, zone and total."""
        return {
            "truth": self.truth_total,
            "counted": self.counted_events,
            "matched": self.matched,
            "missed": self.total("missed"),
            "false": self.total("false"),
            "wrong_direction": self.total("wrong_direction"),
            "abs_error": self.abs_error,
            "relative_error": self.relative_error,
            "precision": self.precision,
            "recall": self.recall,
            "native_fps": self.native_fps,
            "analysed_fps": self.analysed_fps,
            "set_aside_crossings": self.set_aside_crossings,
            "set_aside_visits": self.set_aside_visits,
            "identity": None
            if self.identity is None
            else asdict(self.identity)
            | {"idf1": self.identity.idf1, "idp": self.identity.idp, "idr": self.identity.idr}
            | {"unmatched": self.identity.unmatched},
            "lines": [asdict(r) | {"error": r.error} for r in self.rows],
            "zones": [
                asdict(z) | {"visit_error": z.visit_error, "dwell_error": z.dwell_error} for z in self.zones
            ],
            "errors": [asdict(e) for e in self.errors],
        }


Pairs = list[tuple[Crossing, Crossing]]


def _pair(
    truth: list[Crossing], counted: list[Crossing], tolerance_s: float
) -> tuple[Pairs, list[Crossing], list[Crossing]]:
    """Greedy one-to-one matching by time: the (true, counted) pairs, and what is left on each side."""
    free = sorted(counted, key=lambda c: c.t)
    left: list[Crossing] = []
    pairs: Pairs = []
    for true in sorted(truth, key=lambda c: c.t):
        best = min(range(len(free)), key=lambda i: abs(free[i].t - true.t), default=None)
        if best is not None and abs(free[best].t - true.t) <= tolerance_s:
            pairs.append((true, free.pop(best)))
        else:
            left.append(true)
    return pairs, left, free


def _of(events: Sequence[Crossing], line: str, direction: str) -> list[Crossing]:
    return [c for c in events if c.line == line and c.direction == direction]


def _line_scores(
    line: str, truth: Sequence[Crossing], counted: Sequence[Crossing], tol: float
) -> tuple[list[LineScore], list[CountError]]:
    """Both directions of one line: matches, then leftovers paired across directions; the rows
    and the errors listed one by one."""
    true_of = {d: _of(truth, line, d) for d in ("in", "out")}
    counted_of = {d: _of(counted, line, d) for d in ("in", "out")}
    matched, missed, false = {}, {}, {}
    for d in ("in", "out"):
        matched[d], missed[d], false[d] = _pair(true_of[d], counted_of[d], tol)
    wrong = {}
    for d, other in (("in", "out"), ("out", "in")):
        # A true "in" left unmatched, near an unmatched counted "out": one wrong direction.
        wrong[d], missed[d], false[other] = _pair(missed[d], false[other], tol)
    rows = [
        LineScore(
            line,
            d,
            len(true_of[d]),
            len(counted_of[d]),
            len(matched[d]),
            len(missed[d]),
            len(false[d]),
            len(wrong[d]),
        )
        for d in ("in", "out")
    ]
    errors = [
        *(_error("missed", c, c.track_id, None) for d in ("in", "out") for c in missed[d]),
        *(_error("false", c, None, c.track_id) for d in ("in", "out") for c in false[d]),
        *(_error("wrong_direction", t, t.track_id, c.track_id) for d in ("in", "out") for t, c in wrong[d]),
    ]
    return rows, errors


def _error(
    kind: Literal["missed", "false", "wrong_direction"], c: Crossing, person: int | None, track: int | None
) -> CountError:
    return CountError(kind, c.line, c.direction, c.t, c.frame, person, track)


def set_aside(
    crossings: Sequence[Crossing],
    visits: Sequence[ZoneVisit],
    sightings: dict[int, list[tuple[float, bool]]],
    tolerance_s: float,
) -> tuple[tuple[list[Crossing], list[ZoneVisit]], tuple[list[Crossing], list[ZoneVisit]]]:
    """(the crossings and visits to score, those set aside): an event is set aside when its person
    was matched to an annotated distractor more often than to an annotated pedestrian around it
    (within ``tolerance_s`` of a crossing; during a visit). ``sightings`` is
    ``groundtruth.distractor_sightings``' answer."""

    def a_distractor(person: int, start: float, end: float) -> bool:
        looks = [d for t, d in sightings.get(person, ()) if start <= t <= end]
        return sum(looks) > len(looks) - sum(looks)

    kept_c, aside_c = _split(
        crossings, [a_distractor(c.track_id, c.t - tolerance_s, c.t + tolerance_s) for c in crossings]
    )
    kept_v, aside_v = _split(visits, [a_distractor(v.track_id, v.enter_t, v.exit_t) for v in visits])
    return (kept_c, kept_v), (aside_c, aside_v)


def _split(items: Sequence[T], aside: list[bool]) -> tuple[list[T], list[T]]:
    """(the items not set aside, those set aside), each in order."""
    kept = [item for item, out in zip(items, aside, strict=True) if not out]
    return kept, [item for item, out in zip(items, aside, strict=True) if out]


def score_zones(
    zones: Iterable[ZoneConfig], truth: Sequence[ZoneVisit], counted: Sequence[ZoneVisit], min_dwell_s: float
) -> tuple[ZoneScore, ...]:
    def dwell(visits: Sequence[ZoneVisit], zone: str) -> list[float]:
        return [v.dwell_s for v in visits if v.zone == zone and v.dwell_s >= min_dwell_s]

    scores = []
    for zone in zones:
        t, c = dwell(truth, zone.name), dwell(counted, zone.name)
        median_t = statistics.median(t) if t else None
        median_c = statistics.median(c) if c else None
        scores.append(ZoneScore(zone.name, len(t), len(c), median_t, median_c))
    return tuple(scores)


def evaluate(
    lines: Iterable[LineConfig],
    truth: Sequence[Crossing],
    counted: Sequence[Crossing],
    tolerance_s: float = 1.0,
    zones: tuple[ZoneScore, ...] = (),
) -> Report:
    rows: list[LineScore] = []
    errors: list[CountError] = []
    for line in lines:
        line_rows, line_errors = _line_scores(line.name, truth, counted, tolerance_s)
        rows += line_rows
        errors += line_errors
    ordered = tuple(sorted(errors, key=lambda e: (e.t, e.line, e.kind)))
    return Report(rows, sum(r.matched for r in rows), len(truth), len(counted), zones, errors=ordered)
