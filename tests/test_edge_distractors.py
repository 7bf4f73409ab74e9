"""The audit sets aside what is counted on people the annotation marks as not to be counted.

MOT16/17/20 annotations box static people, people on vehicles, reflections and other distractors
with their own classes; the truth is the pedestrians alone, and the benchmark's own evaluation
(TrackEval) neither rewards nor penalises a tracker's box on a distractor. ``footfall eval`` does
the same with the crossings and visits of such people. No model: boxes in, boxes out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from footfall.contracts.config import CameraConfig
from footfall.edge.cli import run_eval
from footfall.edge.counting import Crossing, ZoneVisit
from footfall.edge.evaluation import set_aside
from footfall.edge.groundtruth import (
    OracleDetector,
    distractor_sightings,
    find_sequence,
    load_annotation,
    load_gt,
    match_tracked,
)

# frame, id, x, y, w, h, consider, class, visibility
MOT17_ROWS = [
    "1,1,10,20,10,40,1,1,1",  # pedestrian
    "1,2,50,20,10,40,1,7,1",  # static person
    "1,3,90,20,10,40,0,7,0.1",  # static person not to be considered: still a distractor for matching
    "1,4,130,20,20,20,1,3,1",  # car: neither
    "1,5,170,20,10,40,1,12,1",  # reflection
    "1,6,210,20,10,40,1,6,1",  # non-motorised vehicle: a distractor on MOT20 only
]


def write_sequence(root: Path, rows: list[str], name: str = "MOT17-02", frames: int = 1) -> Path:
    import cv2

    (root / "img1").mkdir(parents=True)
    for i in range(frames):
        cv2.imwrite(str(root / "img1" / f"{i + 1:06d}.jpg"), np.zeros((240, 320, 3), np.uint8))
    (root / "seqinfo.ini").write_text(f"[Sequence]\nname={name}\nframeRate=10\nimWidth=320\nimHeight=240\n")
    (root / "gt").mkdir()
    (root / "gt" / "gt.txt").write_text("\n".join(rows) + "\n")
    return root


def test_distractors_are_the_benchmarks_classes_whatever_their_flag(tmp_path: Path) -> None:
    seq = find_sequence(write_sequence(tmp_path / "a", MOT17_ROWS))
    assert load_gt(seq.gt_file)[:, 1].tolist() == [1]
    assert seq.annotated(320)[1][:, 1].tolist() == [2, 3, 5]
    assert seq.annotated(160)[1][0, 2:].tolist() == [25, 10, 5, 20]  # scaled like the truth
    mot20 = find_sequence(write_sequence(tmp_path / "b", MOT17_ROWS, name="MOT20-01"))
    assert mot20.annotated(320)[1][:, 1].tolist() == [2, 3, 5, 6]


def test_a_file_without_classes_has_no_distractors(tmp_path: Path) -> None:
    mot15 = tmp_path / "gt.txt"
    mot15.write_text("1,9,499,158,31,75,1,-1,-1,-1\n")
    assert load_annotation(mot15)[1].shape == (0, 6)


def _rows(*boxes: tuple[int, int, float, float, float, float]) -> np.ndarray:
    return np.array(boxes, dtype=np.float64).reshape(-1, 6)


PEDESTRIAN = _rows(*[(f, 1, 10.0, 20.0, 10.0, 40.0) for f in range(10)])
STATIC = _rows(*[(f, 2, 50.0, 20.0, 10.0, 40.0) for f in range(10)])


def _tracked(person: int, x: float) -> list[tuple[int, float, np.ndarray, np.ndarray]]:
    """``person`` boxed at ``x`` (the annotated boxes' size) on frames 0-9, 0.1 s apart."""
    return [(f, f / 10, np.array([person]), np.array([[x, 20.0, x + 10.0, 60.0]])) for f in range(10)]


@pytest.mark.parametrize(
    ("where", "set_apart"),
    [
        (50.0, True),  # boxed on the static person
        (52.0, True),  # close enough (IoU >= 0.5)
        (10.0, False),  # on the pedestrian
        (300.0, False),  # on nobody: an ordinary false count, scored as one
    ],
)
def test_events_of_a_person_boxed_on_a_distractor_are_set_aside(where: float, set_apart: bool) -> None:
    sightings = distractor_sightings(match_tracked(_tracked(7, where), PEDESTRIAN, STATIC))
    crossing = Crossing("door", "entrance", "in", 7, 5, 0.5)
    visit = ZoneVisit("shelf", 7, 0.2, 0.8)
    (kept_c, kept_v), (aside_c, aside_v) = set_aside([crossing], [visit], sightings, tolerance_s=1.0)
    assert (aside_c, aside_v) == (([crossing], [visit]) if set_apart else ([], []))
    assert (kept_c, kept_v) == (([], []) if set_apart else ([crossing], [visit]))


def test_a_box_over_a_pedestrian_and_a_distractor_goes_to_the_better_match() -> None:
    """One-to-one, as TrackEval matches: two tracked people standing where a pedestrian and a
    static person overlap; only the one on the static person is set aside."""
    static = _rows(*[(f, 2, 14.0, 20.0, 10.0, 40.0) for f in range(10)])
    tracked = [
        (f, f / 10, np.array([7, 8]), np.array([[10.0, 20.0, 20.0, 60.0], [14.0, 20.0, 24.0, 60.0]]))
        for f in range(10)
    ]
    sightings = distractor_sightings(match_tracked(tracked, PEDESTRIAN, static))
    crossings = [Crossing("door", "entrance", "in", p, 5, 0.5) for p in (7, 8)]
    (kept, _), (aside, _) = set_aside(crossings, [], sightings, tolerance_s=1.0)
    assert [c.track_id for c in kept] == [7]
    assert [c.track_id for c in aside] == [8]


def test_only_the_moments_around_an_event_decide() -> None:
    """A track that is a static person's early on and a pedestrian's later (an id handed over)
    keeps the crossing it makes later, and its early visit is set aside."""
    tracked = _tracked(7, 50.0)[:5] + [
        (f, f / 10, np.array([7]), np.array([[10.0, 20.0, 20.0, 60.0]])) for f in range(5, 10)
    ]
    sightings = distractor_sightings(match_tracked(tracked, PEDESTRIAN, STATIC))
    late = Crossing("door", "entrance", "in", 7, 9, 0.9)
    early = ZoneVisit("shelf", 7, 0.0, 0.4)
    (kept_c, kept_v), _ = set_aside([late], [early], sightings, tolerance_s=0.1)
    assert kept_c == [late]
    assert kept_v == []


def test_eval_sets_aside_a_cyclists_crossing_and_scores_the_rest(tmp_path: Path) -> None:
    """A pedestrian walks in through a door line while a cyclist (class 2) rides out through it:
    the truth has one crossing; the detector sees both. The eval matches the pedestrian's, sets the
    cyclist's aside, and reports it; the rider annotated with a class that is no distractor is one
    false count."""
    frames = 30
    walker = [f"{f + 1},1,{40 + 8 * f},160,20,60,1,1,1" for f in range(frames)]
    cyclist = [f"{f + 1},2,{280 - 8 * f},100,24,50,1,2,1" for f in range(frames)]
    camera = CameraConfig.model_validate(
        {
            "store": "s",
            "camera": "c",
            "lines": [{"name": "door", "start": [160, 60], "end": [160, 239], "inside": [300, 170]}],
        }
    )
    seq = find_sequence(write_sequence(tmp_path / "seq", walker + cyclist, frames=frames))
    # A perfect detector that also finds the people the truth leaves out (the cyclist).
    all_boxes = np.concatenate(seq.annotated(320))
    report = run_eval(seq, camera, fps=0, detector=OracleDetector(all_boxes))
    assert (report.truth_total, report.matched, report.total("false"), report.set_aside_crossings) == (
        1,
        1,
        0,
        1,
    )
    assert report.as_dict()["set_aside_crossings"] == 1
    # Identities: the walker under one person id; the rider's boxes, on a distractor, left out.
    ident = report.identity
    assert ident is not None
    assert ident.idtp == ident.tracked > 20
    assert ident.annotated == frames
    assert report.as_dict()["identity"]["idf1"] == pytest.approx(ident.idf1)
    assert ident.idf1 > 0.9

    # The same rider annotated as class 9 (an occluder): not a distractor, so nothing is set aside.
    as_occluder = [row.replace(",1,2,1", ",1,9,1") for row in cyclist]
    unknown = find_sequence(write_sequence(tmp_path / "seq9", walker + as_occluder, frames=frames))
    report = run_eval(unknown, camera, fps=0, detector=OracleDetector(all_boxes))
    assert (report.matched, report.total("false"), report.set_aside_crossings) == (1, 1, 0)
    assert report.identity is not None
    assert report.identity.tracked > 40  # the rider's boxes count now
