"""Identity failures between the tracker and the counter: what the linker must repair.

Each test feeds what a tracker reports (its ids, feet, heights and clothing colours) through the
TrackletLinker and the Counter, as the pipeline does, and checks the crossings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from footfall.contracts.config import LineConfig, LinkingConfig
from footfall.edge.appearance import FEATURE_SIZE, appearance_distance
from footfall.edge.counting import Counter, Crossing
from footfall.edge.linking import (
    BOTTOM,
    LEFT,
    RIGHT,
    TOP,
    LinkedFrame,
    TrackletLinker,
    _position_velocity,
    touched_edges,
)
from footfall.edge.pipeline import NO_LINKING

# A horizontal door at y=200; "in" is up (smaller y). People are 100 px tall and walk 0.8 of
# their height a second, seen at 10 frames a second.
DOOR = LineConfig(name="door", start=(0, 200), end=(600, 200), inside=(300, 100))
HEIGHT, FPS, STEP = 100.0, 10.0, 8.0


def colour(bin_index: int) -> np.ndarray:
    feature = np.zeros(FEATURE_SIZE, np.float32)
    feature[bin_index] = 1.0
    return feature


RED, BLUE, GREEN = colour(0), colour(20), colour(40)
HIDDEN = np.zeros(FEATURE_SIZE, np.float32)  # occluded: no look


@dataclass(frozen=True)
class Seen:
    raw_id: int
    x: float
    y: float
    look: np.ndarray
    edges: int = 0  # the picture edges the box touches


def walk(x: float, y_from: float, y_to: float) -> list[tuple[float, float]]:
    n = round(abs(y_to - y_from) / STEP) + 1
    return [(x, float(y)) for y in np.linspace(y_from, y_to, n)]


def linked(frames: Sequence[Sequence[Seen]], linking: LinkingConfig | None = None) -> list[LinkedFrame]:
    """The frames through the linker, as it releases them (payload: index and rows)."""
    linker = TrackletLinker(linking or LinkingConfig())
    released: list[LinkedFrame] = []
    for index, rows in enumerate(frames):
        ids = np.array([r.raw_id for r in rows], dtype=np.int64)
        ground = np.array([(r.x, r.y) for r in rows], dtype=np.float64).reshape(-1, 2)
        looks = np.array([r.look for r in rows], dtype=np.float32).reshape(-1, FEATURE_SIZE)
        edges = np.array([r.edges for r in rows], dtype=np.int64)
        heights = np.full(len(rows), HEIGHT)
        released += linker.push((index, rows), index / FPS, ids, ground, heights, looks, edges)
    return released + linker.flush()


def run(frames: Sequence[Sequence[Seen]], linking: LinkingConfig | None = None) -> list[Crossing]:
    counter = Counter([DOOR])
    out: list[Crossing] = []
    for item in linked(frames, linking):
        index, rows = item.payload
        pts = [(r.x, r.y) for r in rows]
        out.extend(counter.update(index, item.t, item.person_ids, pts, [HEIGHT] * len(rows)).crossings)
    return out


def directions(crossings: list[Crossing]) -> list[str]:
    return sorted(c.direction for c in crossings)


def one_person(
    raw_ids: Sequence[int | None], path: list[tuple[float, float]], look: np.ndarray
) -> list[list[Seen]]:
    """One walker; ``raw_ids[i]`` is the tracker's id in frame i (None: not detected)."""
    return [[] if rid is None else [Seen(rid, x, y, look)] for rid, (x, y) in zip(raw_ids, path, strict=True)]


def test_two_people_swapping_ids_on_the_line() -> None:
    """They meet on the line; the tracker hands each id to the other person there."""
    up, down = walk(300, 300, 100), walk(310, 100, 300)
    meet = len(up) // 2
    frames = []
    for i, ((xa, ya), (xb, yb)) in enumerate(zip(up, down, strict=True)):
        close = abs(ya - yb) < HEIGHT / 2  # boxes overlap: neither look is usable
        look_a, look_b = (HIDDEN, HIDDEN) if close else (RED, BLUE)
        id_a, id_b = (1, 2) if i < meet else (2, 1)
        frames.append([Seen(id_a, xa, ya, look_a), Seen(id_b, xb, yb, look_b)])
    assert directions(run(frames)) == ["in", "out"]
    # Without linking the swapped ids each turn back at the line: neither crossing counts.
    assert directions(run(frames, NO_LINKING)) == []


@pytest.mark.parametrize("gap_s", [1.0, 1.5, 2.0])
def test_a_track_broken_while_crossing_counts_once(gap_s: float) -> None:
    path = walk(300, 400, 0)
    start = next(i for i, (_, y) in enumerate(path) if y < 230)  # lost just before the line
    lost = range(start, start + round(gap_s * FPS))
    ids = [None if i in lost else (1 if i < start else 2) for i in range(len(path))]
    assert directions(run(one_person(ids, path, RED))) == ["in"]


def test_a_new_person_far_away_is_not_joined_to_one_who_left() -> None:
    """One walker leaves by the door; a second appears on the other side, far along the line, just
    after: two people, so the second (born beyond the line) cannot complete the first's crossing."""
    first = one_person([1] * 20, walk(100, 400, 250), RED)
    second = one_person([2] * 20, walk(550, 150, 0), RED)
    assert directions(run(first + second)) == []


def test_a_group_of_three_crossing_side_by_side() -> None:
    """Shoulder to shoulder (boxes overlap, so no looks while close); the outer two swap ids
    half-way, as trackers do in groups, and the middle one is lost for a second."""
    xs, paths = (280.0, 310.0, 340.0), [walk(x, 350, 50) for x in (280.0, 310.0, 340.0)]
    looks = (RED, BLUE, GREEN)
    frames = []
    for i in range(len(paths[0])):
        row = []
        for who in range(3):
            x, y = paths[who][i]
            raw = who + 1
            if i >= len(paths[0]) // 2 and who != 1:
                raw = 3 if who == 0 else 1  # swapped
            if who == 1 and 15 <= i < 25:
                continue  # hidden behind the others
            if who == 1 and i >= 25:
                raw = 7  # re-detected under a new id
            look = looks[who] if i % 3 == 0 else HIDDEN  # mostly occluded
            row.append(Seen(raw, x, y, look))
        frames.append(row)
    assert len(xs) == 3
    assert directions(run(frames)) == ["in", "in", "in"]


def test_standing_on_the_line_with_broken_ids_never_counts() -> None:
    rng = np.random.default_rng(7)
    approach = walk(300, 320, 200)
    standing = [(300.0 + rng.normal(0, 2), 200.0 + rng.normal(0, 4)) for _ in range(60)]
    back = walk(300, 200, 320)
    path = approach + standing + back
    ids = [1] * len(approach) + [2] * 20 + [None] * 5 + [3] * 35 + [4] * len(back)
    assert directions(run(one_person(ids, path, RED))) == []


def test_standing_on_the_line_then_walking_in_counts_once() -> None:
    path = walk(300, 320, 200) + [(300.0, 201.0)] * 40 + walk(300, 200, 60)
    ids = [1] * 30 + [None] * 8 + [2] * (len(path) - 38)
    assert directions(run(one_person(ids, path, RED))) == ["in"]


def test_out_and_back_in_counts_twice_even_across_a_break() -> None:
    path = walk(300, 320, 80) + walk(300, 80, 320) + walk(300, 320, 80)
    turn = len(walk(300, 320, 80))
    ids = [1] * turn + [None] * 5 + [2] * (len(path) - turn - 5)
    assert directions(run(one_person(ids, path, RED))) == ["in", "in", "out"]


@pytest.mark.parametrize(("standing_gap_s", "bound"), [(2.0, 10), (10.0, 15)])
def test_the_linker_holds_frames_for_the_delay_and_its_memory_stays_bounded(
    standing_gap_s: float, bound: int
) -> None:
    """A new person every 2 s: what the linker holds is about two per 2 s of its horizon (their
    tracklet and their person), delay_s + the longer of the two gaps, and does not grow."""
    linker = TrackletLinker(LinkingConfig(delay_s=1.5, max_gap_s=2.0, max_standing_gap_s=standing_gap_s))
    held, released = [], 0
    for frame in range(3000):  # 5 minutes at 10 fps, a new person every 2 s
        raw = frame // 20
        x = 10.0 * (frame % 20)
        out = linker.push(frame, frame / FPS, np.array([raw]), np.array([[x, 300.0]]), np.array([HEIGHT]))
        released += len(out)
        assert all(frame / FPS - item.t >= 1.5 - 1e-9 for item in out)
        held.append(linker.held)
    released += len(linker.flush())
    assert released == 3000
    assert max(held[-1000:]) <= max(held[:1000]) <= bound


def test_appearance_distance_is_zero_for_the_same_look_and_one_for_disjoint() -> None:
    assert appearance_distance(RED, RED) == pytest.approx(0.0, abs=1e-6)
    assert appearance_distance(RED, BLUE) == pytest.approx(1.0)
    assert appearance_distance(RED, HIDDEN) == 0.0  # unknown never vetoes


def person_ids(frames: Sequence[Sequence[Seen]]) -> list[int]:
    """The person id of the one walker in each frame."""
    return [int(i) for item in linked(frames) for i in item.person_ids]


@pytest.mark.parametrize("odd_frames", [1, 2, 3])  # 0.1-0.3 s at 10 fps: the last spans 0.2 s
def test_a_moment_of_another_look_does_not_split_a_person(odd_frames: int) -> None:
    """A shadow, a bag swung round, a blurred frame: the look is back before CHANGED_LOOK_S."""
    path = walk(300, 400, 0)
    frames = one_person([1] * len(path), path, RED)
    for i in range(20, 20 + odd_frames):
        frames[i] = [Seen(1, *path[i], BLUE)]
    assert set(person_ids(frames)) == {1}


def test_a_lasting_change_of_look_is_a_swap_cut_back_to_the_last_good_look() -> None:
    """The tracker's id moved onto someone dressed differently: from the first look unlike the
    settled one, the frames belong to another person."""
    path = walk(300, 400, 0)
    frames = one_person([1] * len(path), path, RED)
    for i in range(20, len(path)):
        frames[i] = [Seen(1, *path[i], BLUE)]
    ids = person_ids(frames)
    assert len(set(ids[:20])) == 1
    assert len(set(ids[20:])) == 1
    assert ids[19] != ids[20]


@pytest.mark.parametrize(
    ("left_by", "back_by", "one"),
    [
        (BOTTOM, 0, False),  # walked out of the picture; someone else appears inside it
        (BOTTOM, BOTTOM, True),  # walked out and came back in through the same edge
        (0, 0, True),  # hidden before the edge (behind someone): the same walker reappears
    ],
)
def test_someone_who_walked_out_of_the_picture_is_continued_only_through_that_edge(
    left_by: int, back_by: int, one: bool
) -> None:
    """A walks down to the picture's bottom edge (y 400) and out; 1 s later a walker of the same
    look is seen heading back up. Carried back over the gap, their path meets A's end."""
    a = [[Seen(1, x, y, RED, left_by if y >= 380 else 0)] for x, y in walk(300, 250, 390)]
    gap: list[list[Seen]] = [[] for _ in range(round(FPS))]
    start = 390 if back_by else 270
    b = [[Seen(2, x, y, RED, back_by if y >= 380 else 0)] for x, y in walk(300, start, start - 120)]
    ids = person_ids(a + gap + b)
    assert (ids[0] == ids[-1]) is one


@pytest.mark.parametrize(("away", "one"), [(1.2, False), (0.3, True)])
def test_a_glimpse_is_continued_only_near_where_it_was_seen(away: float, one: bool) -> None:
    """A is seen for 0.1 s (two boxes) below the door, then nobody for 2 s; then a walker of the
    same look appears ``away`` heights further up and walks on. A glimpse says nothing of where
    A went: only a walker who appears where A stood is A. Someone 1.2 heights off is another
    person, born beyond the door, and the door counts nothing (joined, it would count an "in")."""
    glimpse = [[Seen(1, 300, 260, RED)] for _ in range(2)]
    gap: list[list[Seen]] = [[] for _ in range(round(2 * FPS))]
    start = 260 - away * HEIGHT
    later = [[Seen(2, x, y, RED)] for x, y in walk(300, start, start - 100)]
    ids = person_ids(glimpse + gap + later)
    assert (ids[0] == ids[-1]) is one
    if not one:
        assert directions(run(glimpse + gap + later)) == []


def test_a_new_tracklet_continues_who_was_lost_just_before_not_long_before() -> None:
    """Two walkers side by side, no looks (too crowded): A is lost 1.9 s and C 0.8 s before B
    appears. Carried forward over its gap, each one's path misses B's start by the same 0.4
    heights, but over 1.9 s A could be anywhere in a disc four times as large: B is C. (Measuring
    the miss in each gap's own reach alone picked A: Venice-2, lines drawn at random.)"""
    b_first, speed = 40, 0.8 * HEIGHT / FPS  # B's first frame; walking up, pixels a frame
    frames: list[list[Seen]] = [[] for _ in range(b_first + 20)]
    for person, x, last in ((1, 380.0, b_first - 19), (2, 300.0, b_first - 8)):  # A, C
        for f in range(last + 1):
            frames[f].append(Seen(person, x, 236 + speed * (b_first - f), HIDDEN))
    for f in range(b_first, len(frames)):
        frames[f].append(Seen(3, 340.0, 236 - speed * (f - b_first), HIDDEN))
    out = linked(frames)
    a, c = (int(i) for i in out[0].person_ids)  # rows in the order pushed: A, C
    assert int(out[-1].person_ids[0]) == c != a


@pytest.mark.parametrize(
    ("speed", "away", "one"),
    [
        (0.0, 0.2, True),  # stood at a shelf, hidden 6 s by passers-by, seen again where they stood
        (0.0, 1.0, False),  # someone else, a height away
        (0.8, 0.2, False),  # a walker: 6 s later they are far off; whoever stands there is not them
    ],
)
def test_someone_who_stood_still_is_continued_after_a_long_gap(speed: float, away: float, one: bool) -> None:
    """A is seen for 3 s moving at ``speed`` heights/s, then hidden for 6 s (beyond max_gap_s, within
    max_standing_gap_s); then a walker of the same look stands ``away`` heights from A's last spot."""
    a = [[Seen(1, 300 + speed * HEIGHT * i / FPS, 150, RED)] for i in range(round(3 * FPS))]
    gap: list[list[Seen]] = [[] for _ in range(round(6 * FPS))]
    spot = a[-1][0].x + away * HEIGHT
    later = [[Seen(2, spot, 150, RED)] for _ in range(round(3 * FPS))]
    ids = person_ids(a + gap + later)
    assert (ids[0] == ids[-1]) is one


@pytest.mark.parametrize(
    ("box", "edges"),
    [
        ((300, 300, 340, 400), 0),
        ((102, 300, 142, 400), LEFT),  # 2 px from the edge: within 5 % of the height
        ((110, 300, 150, 400), 0),  # 10 px: not touching
        ((860, 0, 900, 100), TOP | RIGHT),
        ((500, 497, 540, 597), BOTTOM),  # a person cut off by the bottom edge (600)
    ],
)
def test_touched_edges_are_measured_in_the_persons_height(box: tuple[float, ...], edges: int) -> None:
    xyxy = np.array([box], dtype=np.float64)
    heights = xyxy[:, 3] - xyxy[:, 1]
    assert touched_edges(xyxy, heights, (100, 0, 900, 600)).tolist() == [edges]


def test_a_tracklets_kept_height_and_ends_always_describe_its_path() -> None:
    """The linker keeps each tracklet's height, start and end between observations (a crowd has
    hundreds of pairs to weigh a frame). After every frame, including the one where a lasting
    change of look cuts a tracklet back, they must equal what its path says now."""
    path = walk(300, 400, 0)
    linker = TrackletLinker(LinkingConfig())
    every: set[object] = set()
    for index, (x, y) in enumerate(path):
        look = RED if index < 20 else BLUE  # a swap: the frames from 20 on go to a new tracklet
        height = HEIGHT * (1.0 + 0.2 * np.sin(index))  # a box that grows and shrinks: the median moves
        linker.push(index, index / FPS, np.array([1]), np.array([[x, y]]), np.array([height]), look[None])
        tracklets = {*linker._current.values(), *linker._latest.values(), *linker._undecided}
        tracklets |= {tr for frame in linker._frames for tr in frame.tracklets}
        for tracklet in tracklets:
            assert tracklet.height == np.median([p[3] for p in tracklet.path])
            for kept, fresh in (
                (tracklet.end(), _position_velocity(list(tracklet.path), last=True)),
                (tracklet.start(), _position_velocity(tracklet.head, last=False)),
            ):
                assert np.array_equal(kept[0], fresh[0])
                assert np.array_equal(kept[1], fresh[1])
        every |= tracklets
    assert len(every) == 2  # the swap did cut the tracklet
