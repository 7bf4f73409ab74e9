"""Tracking, linking and counting hold no constant in pixels.

footfall is judged on cameras it has never seen, at 540p, 1080p or 4K: every threshold of the
tracker, the linker, the hidden-legs rule and the counter is meant to be relative to the person's
height, the frame rate or time. Here Venice-2's annotated people, made imperfect the way a detector
is (jittered boxes, gaps of half a second, weak scores, legs cut off), are fed to the pipeline at the
clip's own size and at the same scene scaled down and up: picture, layout and boxes together. The
crossings and visits must be the same. The pictures are plain grey: the colour cue is the one thing
that needs pixels (``edge.appearance.MIN_BOX_HEIGHT_PX``), and it is left out on purpose.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from footfall.contracts.config import CameraConfig, load_config
from footfall.edge.counting import Counter, Crossing, ZoneVisit, count_all
from footfall.edge.detector import Detections, ground_points
from footfall.edge.groundtruth import annotated_boxes, find_sequence
from footfall.edge.pipeline import FrameOutcome, run_frames
from footfall.edge.sources import Frame, FrameSource
from tests.layout_support import scaled_layout

CONFIG = Path(__file__).resolve().parent.parent / "edge" / "configs" / "venice2.yaml"
NATIVE_FPS, SIZE, STEP = 30.0, (1920, 1080), 2  # analysed at 15 fps, footfall's default


class GreyPictures(FrameSource):
    """Every ``STEP``-th frame of the clip, as a grey picture of the scaled size."""

    def __init__(self, frames: int, scale: float) -> None:
        self.fps = NATIVE_FPS / STEP
        self.size = (round(SIZE[0] * scale), round(SIZE[1] * scale))
        self._frames = frames
        self._image = np.full((self.size[1], self.size[0], 3), 128, np.uint8)

    def __iter__(self) -> Iterator[Frame]:
        for index in range(0, self._frames, STEP):
            yield Frame(index, index / NATIVE_FPS, self._image, 0.0)


def imperfect_detections(rows: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per frame, the annotated boxes as a detector gives them, in units of each person's height:
    edges jittered, people missing for half-second stretches, weak scores, legs cut off."""
    rng = np.random.default_rng(10)
    frame, person = rows[:, 0].astype(int), rows[:, 1].astype(int)
    xyxy = annotated_boxes(rows)
    height = rows[:, 5:6]
    xyxy += rng.normal(0.0, 0.03, xyxy.shape) * height

    def by_stretch(frames: int, share: float) -> np.ndarray:  # the same draw for a person's stretch
        key = person * 1000 + frame // frames
        draws = {k: rng.random() for k in np.unique(key)}
        return np.array([draws[k] for k in key]) < share

    seen = ~by_stretch(15, 0.15)
    conf = np.where(by_stretch(10, 0.2), 0.3, 0.9)
    cut = by_stretch(30, 0.1)
    xyxy[cut, 3] -= 0.4 * height[cut, 0]
    return {f: (xyxy[(frame == f) & seen], conf[(frame == f) & seen]) for f in np.unique(frame)}


def outcomes_at_scale(rows: np.ndarray, camera: CameraConfig, k: float) -> Iterator[FrameOutcome]:
    detections = imperfect_detections(rows)
    empty = (np.zeros((0, 4)), np.zeros(0))

    def detector(frame: Frame) -> Detections:
        xyxy, conf = detections.get(frame.index, empty)
        return Detections(xyxy * k, conf, ground_points(xyxy * k, None, 0.0))

    frames = int(rows[:, 0].max()) + 1
    return run_frames(GreyPictures(frames, k), scaled_layout(camera, k), detector=detector)


def events(crossings: list[Crossing], visits: list[ZoneVisit]) -> tuple[list[tuple], list[tuple]]:
    return (
        sorted((c.line, c.direction, c.frame) for c in crossings),
        sorted((v.zone, round(v.enter_t, 6), round(v.exit_t, 6)) for v in visits),
    )


def events_at_scale(rows: np.ndarray, camera: CameraConfig, k: float) -> tuple[list[tuple], list[tuple]]:
    crossings: list[Crossing] = []
    visits: list[ZoneVisit] = []
    for outcome in outcomes_at_scale(rows, camera, k):
        crossings += outcome.result.crossings
        visits += outcome.result.visits
    return events(crossings, visits)


@pytest.fixture(scope="module")
def venice(video_dir: Path) -> tuple[np.ndarray, CameraConfig, tuple[list[tuple], list[tuple]]]:
    """Venice-2's annotated people, its layout, and their events at the clip's own size."""
    seq = find_sequence(video_dir / "venice2")
    rows = seq.annotation(SIZE[0])
    camera = load_config(CONFIG, CameraConfig)
    return rows, camera, events_at_scale(rows, camera, 1.0)


def test_the_imperfect_scene_still_has_people_to_count(venice: tuple) -> None:
    crossings, visits = venice[2]
    assert len(crossings) >= 15
    assert len(visits) >= 8


@pytest.mark.parametrize("k", [0.5, 2.5])
def test_the_same_scene_at_another_resolution_counts_the_same(k: float, venice: tuple) -> None:
    rows, camera, native = venice
    assert events_at_scale(rows, camera, k) == native


def test_a_recount_of_what_the_counter_took_gives_the_same_events(venice: tuple) -> None:
    """bench/random_layouts.py tracks once and recounts each layout from ``outcome.counted``: that
    must be exactly what the pipeline's own counter was fed."""
    rows, camera, native = venice
    counted = [o.sighting for o in outcomes_at_scale(rows, camera, 1.0) if not o.final]
    assert events(*count_all(Counter(camera.lines, camera.zones, camera.counting), counted)) == native
