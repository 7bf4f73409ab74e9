"""``footfall eval``'s identity score (IDF1, as TrackEval's Identity metric): the best one-to-one
pairing of annotated people with person ids, frames counted where the pair's boxes overlap at
IoU 0.5. No model: boxes in, a score out."""

from __future__ import annotations

import numpy as np
import pytest

from footfall.edge.groundtruth import TrackedFrame, match_tracked, score_identity

FRAMES = 10
NONE = np.zeros((0, 9))


def annotated(*people: tuple[int, float]) -> np.ndarray:
    """MOT rows (frame, id, x, y, w, h, ...) of each (id, x) standing 20x40 px at y 20, every frame."""
    return np.array([[f, pid, x, 20.0, 20.0, 40.0, 1, 1, 1] for f in range(FRAMES) for pid, x in people])


def tracked(ids_at: dict[float, list[int]], frames: range = range(FRAMES)) -> list[TrackedFrame]:
    """Per frame, a box exactly on each x of ``ids_at`` with the person id that frame's list gives."""
    out = []
    for f in frames:
        xs = list(ids_at)
        boxes = np.array([[x, 20.0, x + 20.0, 60.0] for x in xs]).reshape(-1, 4)
        out.append((f, f / 10, np.array([ids_at[x][f] for x in xs], dtype=np.int64), boxes))
    return out


TWO = annotated((1, 10.0), (2, 100.0))
CASES = {
    # name: (truth, tracked, idtp, annotated boxes, tracked boxes, (followed, switched, fragments))
    "followed throughout": (TWO, tracked({10.0: [7] * 10, 100.0: [8] * 10}), 20, 20, 20, (20, 0, 0)),
    "ids swapped halfway": (
        TWO,
        tracked({10.0: [7] * 5 + [8] * 5, 100.0: [8] * 5 + [7] * 5}),
        10,
        20,
        20,
        (10, 10, 0),
    ),
    "one person under two ids": (
        annotated((1, 10.0)),
        tracked({10.0: [7] * 6 + [9] * 4}),
        6,
        10,
        10,
        (6, 0, 4),
    ),
    "two people under one id, in turn": (
        TWO,
        [
            (
                f,
                f / 10,
                np.array([7]),
                np.array([[10.0 if f < 5 else 100.0, 20, 30.0 if f < 5 else 120.0, 60]]),
            )
            for f in range(FRAMES)
        ],
        5,
        20,
        10,
        (5, 5, 0),
    ),
    "a box on nobody": (
        annotated((1, 10.0)),
        tracked({10.0: [7] * 10, 200.0: [8] * 10}),
        10,
        10,
        20,
        (10, 0, 0),
    ),
    "half the frames analysed": (
        TWO,
        tracked({10.0: [7] * 10, 100.0: [8] * 10}, range(0, FRAMES, 2)),
        10,
        10,
        10,
        (10, 0, 0),
    ),
    "nobody annotated, nobody tracked": (NONE, tracked({}), 0, 0, 0, (0, 0, 0)),
}


@pytest.mark.parametrize("name", CASES)
def test_identity_score(name: str) -> None:
    truth, frames, idtp, n_annotated, n_tracked, where = CASES[name]
    score = score_identity(match_tracked(frames, truth, NONE))
    assert (score.idtp, score.annotated, score.tracked) == (idtp, n_annotated, n_tracked)
    assert (score.followed, score.switched, score.fragments) == where
    assert score.unmatched == n_annotated - sum(where)
    total = n_annotated + n_tracked
    assert score.idf1 == pytest.approx(2 * idtp / total if total else 1.0)


def test_a_box_that_overlaps_nobody_enough_is_no_match() -> None:
    step = np.array([12.0, 0.0, 12.0, 0.0])
    shifted = [(f, t, ids, boxes + step) for f, t, ids, boxes in tracked({10.0: [7] * 10})]
    score = score_identity(match_tracked(shifted, annotated((1, 10.0)), NONE))  # IoU 8/32 = 0.25
    assert (score.idtp, score.idf1) == (0, 0.0)
    assert (score.followed, score.unmatched) == (0, 10)  # nobody's box at IoU 0.5


def test_boxes_on_distractors_are_left_out() -> None:
    """A tracked box matched to an annotated distractor (a static person) counts neither way; one
    on the pedestrian beside it stays the pedestrian's (one-to-one)."""
    static = annotated((5, 100.0))
    frames = tracked({10.0: [7] * 10, 100.0: [8] * 10})
    score = score_identity(match_tracked(frames, annotated((1, 10.0)), static))
    assert (score.idtp, score.annotated, score.tracked, score.idf1) == (10, 10, 10, 1.0)
    without = score_identity(match_tracked(frames, annotated((1, 10.0)), NONE))
    assert without.tracked == 20


def test_an_id_that_followed_two_people_in_turn_is_paired_with_the_longer() -> None:
    """Id 7 follows person 1 for ten frames, then person 2 (who appears later) for five; id 8 is a
    second, slightly shifted box on person 1 for three frames. The pairing (1: 7) leaves person 2
    with no person id of their own: their frames under 7 count as switched, none as followed."""
    person_1 = [[f, 1, 10.0, 20.0, 20.0, 40.0, 1, 1, 1] for f in range(10)]
    person_2 = [[f, 2, 100.0, 20.0, 20.0, 40.0, 1, 1, 1] for f in range(10, 15)]
    truth = np.array(person_1 + person_2)
    on_1, on_2 = np.array([10.0, 20.0, 30.0, 60.0]), np.array([100.0, 20.0, 120.0, 60.0])
    frames: list[TrackedFrame] = []
    for f in range(15):
        if f < 3:
            ids, boxes = np.array([7, 8]), np.stack([on_1, on_1 + np.array([3.0, 0.0, 3.0, 0.0])])
        else:
            ids, boxes = np.array([7]), np.stack([on_1 if f < 10 else on_2])
        frames.append((f, f / 10, ids, boxes))
    score = score_identity(match_tracked(frames, truth, NONE))
    assert (score.idtp, score.annotated, score.tracked) == (10, 15, 18)
    assert (score.followed, score.switched, score.fragments, score.unmatched) == (10, 5, 0, 0)
