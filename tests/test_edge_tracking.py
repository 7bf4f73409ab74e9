"""The tracker at the frame rates a CPU box samples a camera at (edge/tracking.py)."""

from __future__ import annotations

import numpy as np
import pytest

from footfall.contracts.config import ModelConfig
from footfall.edge.detector import Detections, ground_points
from footfall.edge.tracking import PersonTracker

HEIGHT, WIDTH = 100.0, 40.0


def box(x: float, feet_y: float) -> np.ndarray:
    return np.array([x - WIDTH / 2, feet_y - HEIGHT, x + WIDTH / 2, feet_y])


def track_ids(frames: list[list[np.ndarray]], fps: float) -> list[list[int]]:
    """The tracker's ids for each frame's boxes, in the order given (-1: not reported)."""
    tracker, out = PersonTracker(ModelConfig(), fps), []
    for boxes in frames:
        xyxy = np.array(boxes).reshape(-1, 4)
        found = Detections(xyxy, np.full(len(xyxy), 0.9), ground_points(xyxy, None, 0.5))
        tracks = tracker.update(found)
        ids = []
        for b in xyxy:
            near = np.flatnonzero(np.abs(tracks.ground[:, 0] - (b[0] + b[2]) / 2) < 1.0)
            ids.append(int(tracks.ids[near[0]]) if len(near) else -1)
        out.append(ids)
    return out


@pytest.mark.parametrize("fps", [30.0, 10.0, 5.0, 3.0])
@pytest.mark.parametrize("heights_per_s", [0.8, 1.4])
def test_a_walker_keeps_one_track_at_low_frame_rates(fps: float, heights_per_s: float) -> None:
    """At 3 fps a brisk walker moves 0.47 of their height (1.2 of their width) between frames:
    their boxes no longer overlap, yet it is one person."""
    step = heights_per_s * HEIGHT / fps
    frames = [[box(100 + k * step, 400)] for k in range(12)]
    ids = [i for (i,) in track_ids(frames, fps)]
    assert ids[0] != -1  # the first frame's people are confirmed at once
    assert ids == [ids[0]] * len(ids)


@pytest.mark.parametrize("fps", [15.0, 5.0, 3.0])
def test_two_people_passing_each_other_at_a_low_frame_rate_keep_their_ids(fps: float) -> None:
    """One walks right on row 400, the other left one height nearer the camera."""
    step = 1.2 * HEIGHT / fps
    frames = [[box(100 + k * step, 400), box(700 - k * step, 500)] for k in range(round(3 * fps))]
    ids = [pair for pair in track_ids(frames, fps) if -1 not in pair]
    assert len(ids) >= len(frames) - 2
    assert {tuple(pair) for pair in ids} == {tuple(ids[0])}
    assert ids[0][0] != ids[0][1]


@pytest.mark.parametrize("ahead_first", [True, False])
def test_of_two_boxes_that_fit_a_walker_alike_the_one_ahead_continues_them(ahead_first: bool) -> None:
    """At 5 fps a walker's track predicts their next box; two boxes overlap that prediction
    alike, 16 px before and after it. The one in the direction they walk continues the walker
    (OC-SORT's momentum), whichever way the detector lists them; the other starts a track."""
    fps = 5.0
    step = 1.2 * HEIGHT / fps
    tracker = PersonTracker(ModelConfig(), fps)
    for k in range(6):
        xyxy = box(100 + k * step, 400)[None]
        walker = tracker.update(Detections(xyxy, np.array([0.9]), ground_points(xyxy, None, 0.5)))
    (track,) = tracker._tracker.tracks
    predicted = float(track.mean[0] + track.mean[4])  # the Kalman prediction's centre, next frame
    ahead, behind = box(predicted + 16, 400), box(predicted - 16, 400)
    xyxy = np.stack([ahead, behind] if ahead_first else [behind, ahead])
    tracks = tracker.update(Detections(xyxy, np.full(2, 0.9), ground_points(xyxy, None, 0.5)))
    continued = np.flatnonzero(tracks.ids == walker.ids[0])
    assert len(continued) == 1
    assert tracks.ground[continued[0], 0] == pytest.approx(predicted + 16)
