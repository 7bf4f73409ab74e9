"""The geometry and the counting state machine: the failure modes users report in other counters."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from footfall.contracts.config import CountingConfig, LineConfig, ZoneConfig
from footfall.edge.counting import Counter, Crossing, ZoneVisit, count_all
from footfall.edge.geometry import crossing_parameter, line_orientation, points_in_polygon, signed_distances

# A horizontal door from x=100 to x=300 at y=200; "in" is up (smaller y).
DOOR = LineConfig(name="door", start=(100, 200), end=(300, 200), inside=(200, 100))
HEIGHT = 50.0  # person height in pixels -> hysteresis band 5 px with the defaults
FPS = 10.0
HALF_STEP = 0.5 / FPS  # a visit seen stepping in (out) starts (ends) half a frame step from the sighting

Path = Sequence[tuple[float, float] | None]  # None = the track was not seen in that frame


def vertical(x: float, y_from: float, y_to: float, step: float = 10.0) -> list[tuple[float, float]]:
    n = int(abs(y_to - y_from) / step) + 1
    return [(x, float(y)) for y in np.linspace(y_from, y_to, n)]


def run(
    tracks: dict[int, Path],
    lines: Sequence[LineConfig] = (DOOR,),
    params: CountingConfig | None = None,
    height: float = HEIGHT,
    end_stream: bool = False,
) -> list[Crossing]:
    """Feed per-track paths (aligned by frame index) through a Counter; return all crossings
    (with ``end_stream``, also those that the stream's end completes)."""
    counter = Counter(lines, params=params)
    n_frames = max(len(p) for p in tracks.values())
    out: list[Crossing] = []
    for frame in range(n_frames):
        seen = [(tid, p[frame]) for tid, p in tracks.items() if frame < len(p) and p[frame] is not None]
        ids = [tid for tid, _ in seen]
        pts = [pt for _, pt in seen]
        out += counter.update(frame, frame / FPS, ids, pts, [height] * len(ids)).crossings
    return out + (counter.flush().crossings if end_stream else [])


def summary(crossings: list[Crossing]) -> list[tuple[str, str]]:
    return [(c.line, c.direction) for c in crossings]


# -- geometry -----------------------------------------------------------------------------------


def test_signed_distance_is_positive_on_the_inside() -> None:
    orient = line_orientation([DOOR.start], [DOOR.end], [DOOR.inside])
    d = signed_distances([(200, 150), (200, 260), (50, 200)], [DOOR.start], [DOOR.end], orient)
    np.testing.assert_allclose(d[:, 0], [50, -60, 0])


@pytest.mark.parametrize(
    ("p0", "p1", "expected"),
    [
        ((200, 250), (200, 150), 0.5),
        ((100, 250), (100, 150), 0.0),
        ((300, 250), (300, 150), 1.0),
        ((350, 250), (350, 150), 1.25),
        ((0, 250), (0, 150), -0.5),
    ],
)
def test_crossing_parameter(p0: tuple[int, int], p1: tuple[int, int], expected: float) -> None:
    u = crossing_parameter([p0], [p1], [DOOR.start], [DOOR.end])
    assert u.shape == (1, 1)
    assert u[0, 0] == pytest.approx(expected)


def test_crossing_parameter_is_nan_for_a_parallel_path() -> None:
    assert np.isnan(crossing_parameter([(0, 210)], [(400, 210)], [DOOR.start], [DOOR.end])[0, 0])


def test_points_in_polygon_concave() -> None:
    # An L shape: the notch at the top right is outside.
    poly = [(0, 0), (10, 0), (10, 4), (4, 4), (4, 10), (0, 10)]
    inside = points_in_polygon([(2, 2), (8, 2), (2, 8), (8, 8), (-1, 5), (11, 1)], poly)
    assert inside.tolist() == [True, True, True, False, False, False]


# -- crossing rule ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (200, [("door", "in")]),  # the middle
        (100, [("door", "in")]),  # exactly at the start point
        (300, [("door", "in")]),  # exactly at the end point
        (101, [("door", "in")]),
        (99, []),  # just beyond the ends: the line's extension is not the line
        (301, []),
        (500, []),
    ],
)
def test_crossing_at_and_beyond_segment_ends(x: float, expected: list[tuple[str, str]]) -> None:
    assert summary(run({1: vertical(x, 260, 140)})) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (vertical(200, 260, 140), "in"),
        (vertical(200, 140, 260), "out"),
    ],
)
def test_direction_follows_the_inside_point(path: list[tuple[float, float]], expected: str) -> None:
    assert [c.direction for c in run({7: path})] == [expected]


def test_direction_of_a_diagonal_line() -> None:
    line = LineConfig(name="diag", start=(0, 0), end=(100, 100), inside=(100, 0))
    path = [(20.0 + 5 * i, 80.0 - 5 * i) for i in range(13)]  # from below-left to upper-right
    assert summary(run({1: path}, lines=[line])) == [("diag", "in")]


def test_path_round_the_end_of_the_line_does_not_count() -> None:
    # Down beside the line's end, then back across the extension: never through the segment.
    path = [(320.0, 260.0 - 10 * i) for i in range(13)] + [(320.0 - 10 * i, 140.0) for i in range(10)]
    assert run({1: path}) == []


def test_walking_parallel_to_the_line() -> None:
    along_band = [(110.0 + 10 * i, 200.0 + (2 if i % 2 else -2)) for i in range(20)]
    along_side = [(110.0 + 10 * i, 220.0) for i in range(20)]
    assert run({1: along_band, 2: along_side}) == []


@pytest.mark.parametrize("amplitude", [1.0, 4.0, 8.0, 15.0])
def test_jitter_on_the_line_never_counts(amplitude: float) -> None:
    # Alternating sides every frame: even beyond the band, never twice in a row on the new side.
    path = [(200.0, 200.0 + (amplitude if i % 2 else -amplitude)) for i in range(40)]
    assert run({1: path}) == []


def test_standing_on_the_line_then_walking_in_counts_once() -> None:
    path = vertical(200, 260, 200) + [(200.0, 201.0)] * 30 + vertical(200, 200, 130)
    assert summary(run({1: path})) == [("door", "in")]


def test_out_and_back_in_counts_each_time() -> None:
    path = vertical(200, 260, 140) + vertical(200, 140, 260) + vertical(200, 260, 140)
    assert summary(run({1: path})) == [("door", "in"), ("door", "out"), ("door", "in")]


def test_gap_in_a_track_still_counts_the_crossing() -> None:
    path: list[tuple[float, float] | None] = [
        *vertical(200, 260, 230),
        *([None] * 15),
        *vertical(200, 170, 140),
    ]
    crossings = run({1: path})
    assert summary(crossings) == [("door", "in")]
    assert crossings[0].frame == 4 + 15  # dated at the first sighting beyond the band


def test_gap_whose_straight_path_misses_the_segment_does_not_count() -> None:
    path: list[tuple[float, float] | None] = [
        (50.0, 260.0),
        (50.0, 250.0),
        None,
        None,
        (50.0, 150.0),
        (50.0, 140.0),
    ]
    assert run({1: path}) == []


def test_id_switch_never_double_counts() -> None:
    crossed = vertical(200, 260, 140)
    # Track 1 crosses and is counted, the tracker then switches the same person to id 2.
    after = [None] * len(crossed) + vertical(200, 140, 100)
    # Track 3 approaches, switches to track 4 in the middle of the band.
    approach = vertical(250, 260, 203)
    rest: list[tuple[float, float] | None] = [None] * len(approach) + vertical(250, 197, 140)
    crossings = run({1: crossed, 2: after, 3: approach, 4: rest})
    assert summary(crossings) == [("door", "in")]
    assert crossings[0].track_id == 1


# Walks in from below and is lost 3 px past the door (band 5 px): hidden behind a companion.
LOST_PAST = [*vertical(200, 260, 200), (200.0, 197.0)]
# Somebody else stays in view 2 s, long enough for the counter (forget_after_s 1 s) to drop it.
WITNESS = [(500.0, 500.0)] * int(2 * FPS)


def test_a_person_lost_just_past_the_line_counts_when_the_track_ends() -> None:
    crossings = run({1: LOST_PAST, 2: WITNESS}, params=CountingConfig(forget_after_s=1.0))
    assert summary(crossings) == [("door", "in")]
    # Reported when forgotten, dated at the last sighting.
    assert (crossings[0].track_id, crossings[0].frame) == (1, len(LOST_PAST) - 1)
    assert crossings[0].t == pytest.approx((len(LOST_PAST) - 1) / FPS)
    assert summary(run({1: LOST_PAST}, end_stream=True)) == [("door", "in")]  # or when the stream ends
    assert run({1: LOST_PAST}) == []  # nothing while the track may still come back


@pytest.mark.parametrize(("past", "counted"), [(1, 0), (2, 1)])
def test_at_30_fps_one_stray_last_box_past_the_line_does_not_count(past: int, counted: int) -> None:
    """A man stands 0.2 heights before the door, unseen for 0.7 s, then one box lands 0.3 heights
    past it (someone else's, taken for him) and he is not seen again. At 30 fps a person really
    lost a step past the line is seen there more than once: one box is not a crossing, two are."""
    path: list[tuple[float, float] | None] = [(200.0, 210.0)] * 30 + [None] * 20 + [(200.0, 185.0)] * past
    witness = [(500.0, 500.0)] * (len(path) + 45)  # keeps frames coming until he is forgotten
    counter = Counter([DOOR], params=CountingConfig(forget_after_s=1.0))
    crossings = []
    for f, other in enumerate(witness):
        pt = path[f] if f < len(path) else None
        ids, pts = ([1, 2], [pt, other]) if pt is not None else ([2], [other])
        crossings += counter.update(f, f / 30, ids, pts, [HEIGHT] * len(ids)).crossings
    assert len(crossings) == counted


def test_one_late_frame_does_not_change_the_rate_the_counter_goes_by() -> None:
    """The stray box above, with a live camera's hiccup: the frame that makes the counter forget
    the man comes 0.5 s late. The rate is still 30 fps and one box still does not count."""
    path: list[tuple[float, float] | None] = [(200.0, 210.0)] * 30 + [None] * 20 + [(200.0, 185.0)]
    counter = Counter([DOOR], params=CountingConfig(forget_after_s=1.0))
    crossings = []
    times = [f / 30 for f in range(len(path) + 29)]
    times.append(times[-1] + 0.5)  # forget_after_s has passed on this late frame
    for f, t in enumerate(times):
        pt = path[f] if f < len(path) else None
        ids, pts = ([1, 2], [pt, (500.0, 500.0)]) if pt is not None else ([2], [(500.0, 500.0)])
        crossings += counter.update(f, t, ids, pts, [HEIGHT] * len(ids)).crossings
    assert counter.tracked == 1  # the man is forgotten, his crossing decided
    assert crossings == []


def test_the_streams_end_cuts_a_track_short_at_any_rate() -> None:
    """Seen past the line on the stream's last frame only: the end, not a stray box, stopped it."""
    path = [(200.0, 210.0)] * 30 + [(200.0, 185.0)]
    counter = Counter([DOOR])
    for f, pt in enumerate(path):
        counter.update(f, f / 30, [1], [pt], [HEIGHT])
    assert summary(counter.flush().crossings) == [("door", "in")]


@pytest.mark.parametrize(
    "last",
    [
        (200.0, 199.0),  # on the line (less than half the band past it): standing, not crossing
        (200.0, 203.0),  # still on its own side
        (50.0, 197.0),  # past the line's extension, round its end
    ],
)
def test_a_track_ending_on_the_line_or_beside_it_does_not_count(last: tuple[float, float]) -> None:
    path = [*vertical(last[0], 260, 210), last]
    assert run({1: path}, end_stream=True) == []


def test_a_confirmed_crossing_is_not_counted_again_when_the_track_ends() -> None:
    path = vertical(200, 260, 150)
    assert summary(run({1: path}, end_stream=True)) == [("door", "in")]
    # In, then back out, lost 3 px past the door (over half the 5 px band): counted when it ends.
    back = [*vertical(200, 260, 150), *vertical(200, 160, 200), (200.0, 203.0)]
    assert summary(run({1: back}, end_stream=True)) == [("door", "in"), ("door", "out")]


@pytest.mark.parametrize(("observations", "counted"), [(2, 0), (3, 1)])
def test_unconfirmed_tracks_do_not_count(observations: int, counted: int) -> None:
    path = [(200.0, 260.0), (200.0, 150.0), (200.0, 140.0)][:observations]
    assert len(run({1: path})) == counted


@pytest.mark.parametrize(
    ("beside", "short", "twin_s", "counted"),
    [
        (0.0, 30.0, 1.0, 1),  # one person boxed twice, whole and upper body: the same head
        (0.0, 30.0, 0.0, 2),  # the guard off (the audit's truth, one box per person): both count
        (15.0, 30.0, 1.0, 2),  # a child beside a parent: heads 0.3 heights apart
        (0.0, 45.0, 1.0, 2),  # a box not clearly shorter: two people of a height, one behind
    ],
)
def test_one_person_boxed_twice_counts_once(beside: float, short: float, twin_s: float, counted: int) -> None:
    """Two tracks walk through the door together, the second's box top where the first's is (or
    beside it) and ``short`` tall (the first is HEIGHT): the second box's bottom reaches the line
    first, and its crossing is the one counted."""
    counter = Counter([DOOR], params=CountingConfig(twin_s=twin_s))
    found = []
    for f, (x, y) in enumerate(vertical(200.0, 260.0, 120.0)):
        head = y - HEIGHT
        points = [(x, y), (x + beside, head + short)]
        found += counter.update(f, f / FPS, [1, 2], points, [HEIGHT, short]).crossings
    found += counter.flush().crossings
    assert summary(found) == [("door", "in")] * counted
    assert found[0].track_id == 2


@pytest.mark.parametrize(("twin_s", "counted"), [(1.0, 1), (0.0, 2)])
def test_twin_boxes_crossing_on_the_same_frame(twin_s: float, counted: int) -> None:
    """Walking across a vertical line, a person's two boxes (same head, same centre) cross it on
    the same frame: once with the guard, twice with it off (twin_s 0 really is off)."""
    gate = LineConfig(name="gate", start=(200, 0), end=(200, 400), inside=(300, 200))
    counter = Counter([gate], params=CountingConfig(twin_s=twin_s))
    found = []
    for f, x in enumerate(range(140, 270, 10)):
        points = [(float(x), 250.0), (float(x), 230.0)]  # heads both at y = 200
        found += counter.update(f, f / FPS, [1, 2], points, [HEIGHT, 30.0]).crossings
    found += counter.flush().crossings
    assert summary(found) == [("gate", "in")] * counted


def _at_30_fps(path: list[tuple[float, float]], params: CountingConfig | None = None) -> list[Crossing]:
    counter = Counter([DOOR], params=params)
    found = [c for f, pt in enumerate(path) for c in counter.update(f, f / 30, [1], [pt], [HEIGHT]).crossings]
    return found + counter.flush().crossings


def test_a_ground_point_past_the_line_for_a_moment_does_not_count() -> None:
    """At 30 fps a box bottom jumps past the band for three frames (a bag, a leg, a box cut short)
    while the person stands 0.2 heights before the door: confirm_s (0.1 s) holds it back, as two
    observations alone would not."""
    jumps = ([(200.0, 210.0)] * 10 + [(200.0, 190.0)] * 3) * 5 + [(200.0, 210.0)] * 10
    assert _at_30_fps(jumps) == []
    assert len(_at_30_fps(jumps, CountingConfig(confirm_s=0.0))) == 10


def test_a_walker_at_30_fps_counts_once_dated_where_they_passed_the_band() -> None:
    walk = vertical(200, 260, 140, step=2.0)  # 60 px a second: 1.2 heights a second
    crossings = _at_30_fps(walk)
    assert summary(crossings) == [("door", "in")]
    first_beyond = next(f for f, (_, y) in enumerate(walk) if y < 200 - 0.1 * HEIGHT)
    assert (crossings[0].frame, crossings[0].t) == (first_beyond, pytest.approx(first_beyond / 30))


def test_confirmation_frames_are_configurable() -> None:
    path = vertical(200, 260, 190) + [(200.0, 180.0)] * 2
    assert len(run({1: path}, params=CountingConfig(confirm_frames=3))) == 1
    assert len(run({1: path}, params=CountingConfig(confirm_frames=4))) == 0


def test_hysteresis_scales_with_the_person() -> None:
    # A 400 px tall person (1080p, close to the camera) swaying 15 px around the line.
    path = [(200.0, 200.0 + (15 if (i // 3) % 2 else -15)) for i in range(60)]
    assert run({1: path}, height=400) == []
    assert len(run({1: path}, height=50)) > 0  # the same sway is a real step for a small person


def test_several_people_and_lines_in_one_frame() -> None:
    side = LineConfig(name="side", kind="passby", start=(400, 0), end=(400, 400), inside=(500, 200))
    tracks: dict[int, Path] = {
        1: vertical(150, 260, 140),
        2: vertical(250, 140, 260),
        3: [(350.0 + 10 * i, 100.0) for i in range(12)],
    }
    got = sorted((c.line, c.direction, c.track_id) for c in run(tracks, lines=[DOOR, side]))
    assert got == [("door", "in", 1), ("door", "out", 2), ("side", "in", 3)]
    assert next(c.kind for c in run(tracks, lines=[DOOR, side]) if c.line == "side") == "passby"


def test_memory_is_bounded_over_a_long_run() -> None:
    counter = Counter([DOOR], params=CountingConfig(forget_after_s=2.0))
    peak = 0
    counted = 0
    # 5,000 people, each crossing in 13 frames, a new one every 4 frames: ids never repeat.
    for frame in range(20_000 + 13):
        active = [
            t for t in range(max(0, frame // 4 - 3), min(5000, frame // 4 + 1)) if 0 <= frame - 4 * t < 13
        ]
        pts = [(200.0, 260.0 - 10 * (frame - 4 * tid)) for tid in active]
        counted += len(counter.update(frame, frame / FPS, active, pts, [HEIGHT] * len(active)).crossings)
        peak = max(peak, counter.tracked)
    assert counted == 5000
    assert peak <= 2.0 * FPS / 4 + 5  # people seen within forget_after_s, not everyone ever seen


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(100, 300), st.floats(100, 300)), min_size=1, max_size=60))
def test_any_path_through_the_door_alternates_directions(path: list[tuple[float, float]]) -> None:
    # Every change of sides passes through the segment here, so in and out must alternate
    # (round the end of a line they need not: out round the end and in through the door is in, in).
    directions = [c.direction for c in run({1: path})]
    assert all(a != b for a, b in itertools.pairwise(directions))


# -- zones --------------------------------------------------------------------------------------

ZONE = ZoneConfig(name="till", polygon=[(0, 0), (100, 0), (100, 100), (0, 100)])


def test_zone_visit_dwell_and_occupancy() -> None:
    counter = Counter([], [ZONE])
    visits: list[ZoneVisit] = []
    occupancy: list[dict[str | None, int]] = []
    # Outside long enough (25 frames = 2.5 s) for the visit to be final (zone_rejoin_s = 2 s).
    path = [(150.0, 50.0)] * 3 + [(50.0, 50.0)] * 30 + [(150.0, 50.0)] * 25
    for frame, pt in enumerate(path):
        result = counter.update(frame, frame / FPS, [9], [pt], [HEIGHT])
        visits += result.visits
        occupancy.append(result.occupancy_changes)
    assert len(visits) == 1
    assert visits[0].zone == "till"
    # Inside on frames 3-32: entered half a frame step before the first, left half a step after the last.
    assert visits[0].enter_t == pytest.approx(0.3 - HALF_STEP)
    assert visits[0].exit_t == pytest.approx(3.2 + HALF_STEP)
    assert visits[0].dwell_s == pytest.approx(30 / FPS)
    zone_counts = [c["till"] for c in occupancy if "till" in c]
    assert zone_counts == [1, 0]


@pytest.mark.parametrize(("outside_s", "visits"), [(1.0, 1), (1.9, 1), (3.0, 2)])
def test_a_step_out_and_back_within_the_rejoin_time_is_one_visit(outside_s: float, visits: int) -> None:
    """zone_rejoin_s (2 s): out for 1 or 1.9 s and back continues the visit; 3 s out is a new one."""
    counter = Counter([], [ZONE])
    outside = round(outside_s * FPS)
    path = [(50.0, 50.0)] * 20 + [(150.0, 50.0)] * outside + [(50.0, 50.0)] * 20 + [(150.0, 50.0)] * 30
    found = [v for f, pt in enumerate(path) for v in counter.update(f, f / FPS, [1], [pt], [HEIGHT]).visits]
    assert len(found) == visits
    assert found[0].enter_t == pytest.approx(0.0)  # the stream's first frame: no frame step known yet
    assert found[-1].exit_t == pytest.approx((40 + outside - 1) / FPS + HALF_STEP)


def test_zone_visit_closed_when_the_track_vanishes_or_the_stream_ends() -> None:
    counter = Counter([], [ZONE], CountingConfig(forget_after_s=1.0))
    for frame in range(10):
        counter.update(frame, frame / FPS, [1, 2], [(50.0, 50.0), (60.0, 60.0)], [HEIGHT, HEIGHT])
    vanished = []
    for frame in range(10, 30):  # track 1 gone, track 2 stays
        vanished += counter.update(frame, frame / FPS, [2], [(60.0, 60.0)], [HEIGHT]).visits
    assert [(v.track_id, v.exit_t) for v in vanished] == [(1, pytest.approx(0.9))]
    remaining = counter.flush().visits
    assert [(v.track_id, v.exit_t) for v in remaining] == [(2, pytest.approx(2.9))]
    assert counter.tracked == 0


@pytest.mark.parametrize("fps", [30.0, 15.0, 5.0, 2.5])
def test_a_dwell_does_not_depend_on_the_rate_analysed(fps: float) -> None:
    """Someone inside from 0.8 s to 2.8 s: 2.0 s at every frame rate. Measured from the first to the
    last sighting inside, the dwell lost a frame step: 1.97 s at 30 fps, 1.8 s at 5 fps, 1.6 s
    at 2.5 fps, so a 2 s visit fell below a 1.9 s threshold at a low rate only."""
    times = np.arange(0.0, 5.0, 1 / fps)
    path = [(50.0, 50.0) if 0.8 - 1e-9 <= t < 2.8 - 1e-9 else (150.0, 50.0) for t in times]
    counter = Counter([], [ZONE])
    found = [v for f, t in enumerate(times) for v in counter.update(f, t, [1], [path[f]], [HEIGHT]).visits]
    found += counter.flush().visits
    assert [round(v.dwell_s, 6) for v in found] == [2.0]
    assert found[0].enter_t == pytest.approx(0.8 - 0.5 / fps)


def test_a_track_born_and_lost_inside_a_zone_keeps_its_sightings() -> None:
    """A track that starts inside (after an occlusion) and vanishes there was not seen stepping in
    or out: its visit runs from its first to its last sighting, with no half steps."""
    counter = Counter([], [ZONE], CountingConfig(forget_after_s=1.0))
    visits = []
    for frame in range(80):  # someone else, outside, sets the frame step; track 5 is inside for 2-5 s
        ids, points = [1], [(150.0, 50.0)]
        if 20 <= frame < 50:
            ids, points = [1, 5], [(150.0, 50.0), (50.0, 50.0)]
        visits += counter.update(frame, frame / FPS, ids, points, [HEIGHT] * len(ids)).visits
    found = [(v.track_id, v.enter_t, v.exit_t) for v in visits]
    assert found == [(5, pytest.approx(2.0), pytest.approx(4.9))]


def test_zone_flicker_does_not_split_a_visit() -> None:
    counter = Counter([], [ZONE])
    path = [(50.0, 50.0)] * 10 + [(105.0, 50.0)] + [(50.0, 50.0)] * 10 + [(150.0, 50.0)] * 3
    visits = [v for f, pt in enumerate(path) for v in counter.update(f, f / FPS, [1], [pt], [HEIGHT]).visits]
    visits += counter.flush().visits
    assert len(visits) == 1


@pytest.mark.parametrize(("frames_inside", "visits"), [(3, 0), (4, 1)])
def test_at_30_fps_a_zone_is_entered_after_confirm_s(frames_inside: int, visits: int) -> None:
    """A passer-by's ground point dips over the zone's edge for three frames at 30 fps (0.07 s
    between the first and the last): no visit. Four frames span confirm_s (0.1 s): a visit,
    dated from half a frame step before the first frame inside."""
    counter = Counter([], [ZONE])
    path = [(150.0, 50.0)] * 10 + [(95.0, 50.0)] * frames_inside + [(150.0, 50.0)] * 90
    found = [v for f, pt in enumerate(path) for v in counter.update(f, f / 30, [1], [pt], [HEIGHT]).visits]
    found += counter.flush().visits
    assert len(found) == visits
    if found:
        assert found[0].enter_t == pytest.approx(10 / 30 - 0.5 / 30)


def test_count_all_replays_a_recording_and_closes_it_at_its_end() -> None:
    """A recorded run counted again (bench/random_layouts.py replays one per layout): a walker in
    through the door who then waits in the zone till the end has one crossing and one visit, which
    only the end of the recording closes."""
    path = vertical(200.0, 260.0, 120.0) + [(50.0, 50.0)] * 15
    frames = [(f, f / FPS, [4], [pt], [HEIGHT]) for f, pt in enumerate(path)]
    crossings, visits = count_all(Counter([DOOR], [ZONE]), frames)
    assert summary(crossings) == [("door", "in")]
    assert [(v.track_id, v.enter_t, v.exit_t) for v in visits] == [
        (4, pytest.approx(15 / FPS - HALF_STEP), pytest.approx((len(path) - 1) / FPS))
    ]


def test_a_track_whose_ground_point_jumps_needs_a_wider_band() -> None:
    """A person standing at the door whose box bottom jumps 0.14 heights to either side six times a
    second (legs stepping in place, a bag swinging), at 30 fps: each jump is past the 0.1-height
    band for 5 frames (0.17 s), but the track's own noise widens its band beyond the jumps
    (jitter_sigmas, up to max_hysteresis): only the first jump counts, as a step, before the track
    has shown any noise. With a plain band nearly every jump did."""
    jump = 0.14 * HEIGHT
    path = [(200.0, 200.0 + (jump if (f // 5) % 2 else -jump)) for f in range(300)]
    assert [c.frame for c in _at_30_fps(path)] == [5]
    assert len(_at_30_fps(path, CountingConfig(jitter_sigmas=0.0))) >= 50
    # A walker at a steady pace has no noise to speak of: the same door counts them at once.
    walker = _at_30_fps(vertical(200, 260, 140, step=2.0))
    assert [(c.direction, c.frame) for c in walker] == [("in", 33)]
