"""Feet of people whose legs are hidden behind someone nearer the camera (edge/feet.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from footfall.contracts.config import LineConfig, ModelConfig
from footfall.edge.counting import Counter
from footfall.edge.detector import Detections, ground_points
from footfall.edge.feet import HOLD_S, HiddenLegs
from footfall.edge.tracking import PersonTracker

FPS = 10.0
# The person: 200 px tall, head at row 360, feet at row 560.
FULL = np.array([260.0, 360.0, 340.0, 560.0])
UPPER = np.array([260.0, 360.0, 340.0, 460.0])  # the same person, legs hidden
NEARER = np.array([230.0, 420.0, 370.0, 700.0])  # someone in front, feet nearer the camera
FARTHER = np.array([230.0, 330.0, 370.0, 450.0])  # someone behind: ends above the person's box


def bottom_centre(box: np.ndarray) -> np.ndarray:
    return ground_points(box[None], None, 0.5)


@dataclass(frozen=True)
class Case:
    name: str
    later: np.ndarray  # the person's box on the later frame
    others: tuple[np.ndarray, ...]  # everyone else on that frame
    frames_later: int = 3
    ground: np.ndarray | None = None  # the ground point on the later frame (default: bottom-centre)
    expected_y: float = 460.0  # the feet row reported on the later frame


CASES = [
    Case("legs behind a nearer person: one full height below the head", UPPER, (NEARER,), expected_y=560.0),
    Case("a box cut short with nobody in front: the detector's own bottom", UPPER, ()),
    Case("the box in front belongs to someone farther away", UPPER, (FARTHER,)),
    Case(
        "the head went down too (sitting, bending): the box's bottom",
        UPPER + np.array([0, 70, 0, 70]),
        (NEARER,),
        expected_y=530.0,
    ),
    Case(
        "the last full view is older than the hold",
        UPPER,
        (NEARER,),
        frames_later=round(HOLD_S * FPS) + 1,
    ),
    Case(
        "a pose model saw the ankles: kept",
        UPPER,
        (NEARER,),
        ground=np.array([[300.0, 440.0]]),
        expected_y=440.0,
    ),
    Case(
        "a box only slightly shorter is a full view",
        UPPER + np.array([0, 0, 0, 70]),
        (NEARER,),
        expected_y=530.0,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_feet_of_a_box_cut_short(case: Case) -> None:
    legs = HiddenLegs(FPS)
    legs.feet([7], FULL[None], bottom_centre(FULL), 1, FULL[None])
    everyone = np.array([case.later, *case.others])
    ground = bottom_centre(case.later) if case.ground is None else case.ground
    feet = legs.feet([7], case.later[None], ground, 1 + case.frames_later, everyone)
    assert feet[0, 1] == pytest.approx(case.expected_y)
    assert feet[0, 0] == pytest.approx(ground[0, 0])


def test_hidden_legs_follow_the_last_full_view_and_forget_people_gone() -> None:
    legs = HiddenLegs(FPS)
    legs.feet([1], FULL[None], bottom_centre(FULL), 1, FULL[None])
    grown = FULL + np.array([0, 0, 0, 20])  # the person came nearer: 220 px tall now
    legs.feet([1], grown[None], bottom_centre(grown), 5, grown[None])
    everyone = np.array([UPPER, NEARER])
    assert legs.feet([1], UPPER[None], bottom_centre(UPPER), 6, everyone)[0, 1] == pytest.approx(580.0)

    many = HiddenLegs(FPS)
    boxes = np.array([FULL + np.array([10 * i, 0, 10 * i, 0]) for i in range(50)])
    many.feet(list(range(50)), boxes, ground_points(boxes, None, 0.5), 1, boxes)
    assert len(many) == 50
    many.feet([], np.zeros((0, 4)), np.zeros((0, 2)), 2 + round(HOLD_S * FPS), np.zeros((0, 4)))
    assert len(many) == 0


def test_a_person_crossing_with_the_legs_hidden_is_counted() -> None:
    """A vertical line whose segment ends at row 500; the person walks right with feet on row 560.
    While they cross it, someone standing nearer hides their legs: the boxes end on row 460,
    beside the segment. Their feet are still on row 560, so the crossing counts."""
    line = LineConfig(name="aisle", start=(300, 500), end=(300, 620), inside=(400, 560))
    tracker, counter = PersonTracker(ModelConfig(), FPS), Counter([line])
    crossings = []
    for frame, x in enumerate(np.arange(180.0, 420.0, 8.0)):
        legs_hidden = 240 <= x <= 360
        person = np.array([x - 40, 360, x + 40, 460 if legs_hidden else 560])
        boxes = np.array([person, NEARER])
        found = Detections(boxes, np.array([0.9, 0.9]), ground_points(boxes, None, 0.5))
        tracks = tracker.update(found)
        result = counter.update(frame, frame / FPS, tracks.ids, tracks.ground, tracks.heights)
        crossings += result.crossings
    crossings += counter.flush().crossings
    assert [(c.line, c.direction) for c in crossings] == [("aisle", "in")]
