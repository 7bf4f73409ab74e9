"""People riding a bicycle or a motorbike are not pedestrians: found, and left out of the count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from footfall.contracts.config import ModelConfig
from footfall.edge.detector import PersonDetector, riders
from footfall.edge.geometry import iou_matrix
from footfall.edge.groundtruth import annotated_boxes, find_sequence, load_gt
from footfall.edge.inference import ModelInfo, decode_vehicles

PERSON = [100.0, 100.0, 140.0, 220.0]  # 40 x 120 px, feet on row 220

# Vehicle boxes around PERSON, and whether PERSON rides it.
CASES = [
    ("seated on a bicycle seen from the side", [70, 170, 170, 230], True),
    ("riding towards the camera: handlebars about as wide as the rider", [104, 150, 136, 226], True),
    ("stopped, one foot on the ground beside the bicycle", [85, 175, 160, 221], True),
    ("pushing a bicycle walking beside it", [132, 165, 230, 222], False),
    ("walking behind a parked bicycle, further off: feet above its wheels", [95, 215, 150, 260], False),
    ("walking in front of a parked bicycle: feet below it", [90, 150, 150, 205], False),
    ("a bicycle far behind, seen above the shoulder", [60, 80, 120, 130], False),
]


@pytest.mark.parametrize(("case", "vehicle", "rides"), CASES, ids=[c[0] for c in CASES])
def test_a_person_rides_a_vehicle_whose_box_holds_their_lower_body(
    case: str, vehicle: list[float], rides: bool
) -> None:
    found = riders(np.array([PERSON]), np.array([vehicle], dtype=np.float64))
    assert found.tolist() == [rides], case


def test_riders_with_no_vehicles_or_no_people() -> None:
    assert riders(np.array([PERSON]), np.zeros((0, 4))).tolist() == [False]
    assert riders(np.zeros((0, 4)), np.array([PERSON])).tolist() == []


def test_one_rider_among_pedestrians() -> None:
    people = np.array([PERSON, [300, 100, 340, 220], [500, 90, 545, 225]], dtype=np.float64)
    bicycle = np.array([[280, 170, 380, 232]], dtype=np.float64)
    assert riders(people, bicycle).tolist() == [False, True, False]


def test_decode_finds_the_bicycles_and_motorbikes_people_ride() -> None:
    names = {0: "person", 1: "bicycle", 2: "car", 3: "motorcycle"}
    info = ModelInfo(Path("m.onnx"), "detect", names, 32, None)
    rows = [
        [50, 50, 20, 40, 0.9, 0.1, 0.0, 0.0],  # a person
        [150, 60, 60, 30, 0.2, 0.8, 0.0, 0.1],  # a bicycle
        [151, 60, 60, 30, 0.1, 0.7, 0.0, 0.0],  # the same bicycle again: suppressed
        [250, 60, 80, 40, 0.0, 0.1, 0.3, 0.6],  # a motorbike
        [350, 60, 80, 40, 0.0, 0.3, 0.9, 0.0],  # a car: its best class is not a vehicle people ride
    ]
    xyxy, score = decode_vehicles(np.asarray(rows, np.float32).T, info, conf=0.25, iou=0.7)
    np.testing.assert_allclose(xyxy, [[120, 45, 180, 75], [210, 40, 290, 80]])
    np.testing.assert_allclose(score, [0.8, 0.6])
    pose = ModelInfo(Path("p.onnx"), "pose", {0: "person"}, 32, (17, 3))
    assert decode_vehicles(np.zeros((4 + 1 + 51, 8), np.float32), pose, 0.25, 0.7)[0].shape == (0, 4)


def _venice_frames(video_dir: Path, wanted: list[int]) -> dict[int, np.ndarray]:
    import cv2

    capture = cv2.VideoCapture(str(video_dir / "venice2" / "Venice-2.mp4"))
    frames: dict[int, np.ndarray] = {}
    for index in range(max(wanted) + 1):
        ok, image = capture.read()
        assert ok, index
        if index in wanted:
            frames[index] = image
    return frames


@pytest.mark.model
def test_the_cyclists_on_venice2_are_left_out_and_every_annotated_pedestrian_kept(
    detect_model_path: Path, video_dir: Path
) -> None:
    """Venice-2's frames 450-500: an adult and a child ride bicycles across the square. The
    annotation (MOT15) has no box for them. With the defaults their boxes are dropped; with
    ``count_riders`` they are found; every annotated pedestrian the model finds is kept."""
    from footfall.edge.inference import YoloModel

    model = YoloModel(detect_model_path)
    pedestrians_only = PersonDetector(ModelConfig(), (1920, 1080), imgsz=(608, 1088), model=model)
    everyone = PersonDetector(ModelConfig(count_riders=True), (1920, 1080), imgsz=(608, 1088), model=model)
    seq = find_sequence(video_dir / "venice2")
    truth = load_gt(seq.gt_file)
    dropped = 0
    for index, image in _venice_frames(video_dir, [450, 470, 500]).items():
        all_found, kept = everyone(image), pedestrians_only(image)
        confident = all_found.conf >= 0.25
        assert len(kept) < len(all_found)
        rows = truth[truth[:, 0] == index]
        boxes = annotated_boxes(rows)
        annotated = iou_matrix(all_found.xyxy, boxes).max(axis=1) >= 0.5
        still_there = iou_matrix(all_found.xyxy, kept.xyxy).max(axis=1, initial=0) > 0.99
        assert np.all(still_there[annotated & confident]), index
        left_out = confident & ~still_there
        dropped += int(left_out.sum())
        assert not np.any(annotated & left_out)
    assert dropped >= 3  # a cyclist on each of the three frames at least
