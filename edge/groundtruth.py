"""Ground-truth crossings from MOTChallenge annotations, by the counter's own geometric rule.

``gt/gt.txt`` rows are ``frame,id,x,y,w,h,conf,...`` (1-based frames, top-left boxes). Rows with
``conf == 0`` are "ignore" annotations and are skipped. MOT16, MOT17 and MOT20 files have nine
columns, the eighth a class (1 pedestrian, 2 person on a vehicle, 3 car, ... 7 static person, 8
distractor, 12 reflection): only pedestrians are the truth, as in the benchmark's own evaluation
(TrackEval), which also sets aside whatever the tracker boxes on a *distractor* (``distractors``:
neither a hit nor a false positive). MOT15 files have ten, world coordinates past ``conf``, and no
class.
Boxes are in the pixels of ``seqinfo.ini``'s ``imWidth``; when the video was re-encoded at
another size, they are scaled to it.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from footfall.contracts.config import CameraConfig
from footfall.edge.counting import Counter, Crossing, ZoneVisit, count_all
from footfall.edge.detector import Detections
from footfall.edge.evaluation import IdentityScore
from footfall.edge.geometry import iou_matrix
from footfall.edge.sources import IMAGE_SUFFIXES, Frame, open_source, sequence_info
from footfall.edge.tracking import assign

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")
# MOT16+ ground truth: frame, id, x, y, w, h, conf, class, visibility; class 1 is a pedestrian.
MOT16_COLUMNS, PEDESTRIAN = 9, 1
# TrackEval's distractor classes: person on a vehicle, static person, distractor, reflection; on
# MOT20 also non-motorised vehicle.
DISTRACTORS = (2, 7, 8, 12)
MOT20_DISTRACTORS = (*DISTRACTORS, 6)
# A tracked box is an annotated one's when their IoU is at least this (one-to-one: TrackEval's rule).
MATCH_IOU = 0.5

# One analysed frame of tracked people: frame index, time, person ids, boxes (x1, y1, x2, y2).
TrackedFrame = tuple[int, float, np.ndarray, np.ndarray]


class SequenceError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Sequence:
    root: Path
    media: Path  # a video file or a frame folder
    gt_file: Path
    fps: float | None  # from seqinfo.ini (a video's own rate wins)
    annotated_width: int | None
    name: str = ""  # seqinfo.ini's (MOT20-01, ...), else the folder's

    def annotation(self, media_width: int) -> np.ndarray:
        """``load_gt``'s rows in the pixels of the media as decoded, ``media_width`` wide (a video
        re-encoded at another size than seqinfo.ini's)."""
        return load_gt(self.gt_file, self._scale(media_width))

    def annotated(self, media_width: int) -> tuple[np.ndarray, np.ndarray]:
        """The pedestrians (``annotation``) and the distractors with the benchmark's classes
        (``load_annotation``), from one reading of gt.txt."""
        classes = MOT20_DISTRACTORS if self.name.upper().startswith("MOT20") else DISTRACTORS
        return load_annotation(self.gt_file, self._scale(media_width), classes)

    def _scale(self, media_width: int) -> float:
        return media_width / self.annotated_width if self.annotated_width else 1.0


def find_sequence(root: str | Path) -> Sequence:
    """A MOTChallenge sequence folder: ``gt/gt.txt`` plus ``img1/`` frames or one video file."""
    root = Path(root)
    gt_file = root / "gt" / "gt.txt"
    if not gt_file.is_file():
        raise SequenceError(f"{root}: no gt/gt.txt (MOTChallenge layout expected)")
    info = sequence_info(root)
    videos = sorted(p for p in root.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    img_dir = root / info.get("imdir", "img1")
    if videos:
        media = videos[0]
    elif img_dir.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in img_dir.iterdir()):
        media = img_dir
    else:
        raise SequenceError(f"{root}: neither a video file nor an {img_dir.name}/ frame folder")
    fps = float(info["framerate"]) if "framerate" in info else None
    width = int(info["imwidth"]) if "imwidth" in info else None
    return Sequence(root, media, gt_file, fps, width, info.get("name", root.name))


def load_gt(gt_file: Path, scale: float = 1.0) -> np.ndarray:
    """``(M, 6)`` rows ``frame (0-based), id, x, y, w, h`` in the media's pixels."""
    return _pedestrians(_read_gt(gt_file), scale)


def load_annotation(
    gt_file: Path, scale: float = 1.0, classes: tuple[int, ...] = DISTRACTORS
) -> tuple[np.ndarray, np.ndarray]:
    """From one reading of ``gt_file``: ``load_gt``'s rows, and the same rows for the distractors,
    the boxes of ``classes`` whatever their ``conf`` (TrackEval matches the tracker's boxes against
    every annotated box); no distractors in a file without classes (MOT15)."""
    raw = _read_gt(gt_file)
    return _pedestrians(raw, scale), _of_classes(raw, scale, classes)


def _pedestrians(raw: np.ndarray, scale: float) -> np.ndarray:
    keep = np.ones(len(raw), dtype=bool)
    if raw.shape[1] >= 7:
        keep &= raw[:, 6] != 0
    if raw.shape[1] == MOT16_COLUMNS:
        keep &= raw[:, 7] == PEDESTRIAN
    return _rows(raw[keep], scale)


def _of_classes(raw: np.ndarray, scale: float, classes: tuple[int, ...]) -> np.ndarray:
    if raw.shape[1] != MOT16_COLUMNS:
        return np.zeros((0, 6))
    return _rows(raw[np.isin(raw[:, 7], classes)], scale)


def _read_gt(gt_file: Path) -> np.ndarray:
    raw = np.loadtxt(gt_file, delimiter=",", ndmin=2)
    if raw.shape[1] < 6:
        raise SequenceError(f"{gt_file}: expected at least 6 columns, got {raw.shape[1]}")
    return raw


def _rows(raw: np.ndarray, scale: float) -> np.ndarray:
    rows = raw[:, :6].copy()
    rows[:, 0] -= 1
    rows[:, 2:6] *= scale
    return rows


@dataclass(frozen=True, slots=True)
class AnnotatedClip:
    """A sequence ready to score against: its media, native rate and size, and its annotation in
    the media's pixels (``load_gt``'s rows)."""

    media: str
    native_fps: float
    size: tuple[int, int]
    rows: np.ndarray
    sequence: Sequence


def open_clip(root: str | Path) -> AnnotatedClip:
    """``find_sequence`` + ``load_gt``, with the boxes scaled to the media's own width."""
    seq = find_sequence(root)
    with open_source(str(seq.media)) as probe:  # every frame: its rate is the native one
        native, size = probe.fps, probe.size
    return AnnotatedClip(str(seq.media), native, size, seq.annotation(size[0]), seq)


def by_frame(rows: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``load_gt``'s rows grouped by frame, in frame order."""
    if not len(rows):
        return []
    rows = rows[np.argsort(rows[:, 0], kind="stable")]
    frames, starts = np.unique(rows[:, 0], return_index=True)
    bounds = [*starts[1:], len(rows)]
    return [(int(f), rows[lo:hi]) for f, lo, hi in zip(frames, starts, bounds, strict=True)]


def annotated_boxes(chunk: np.ndarray) -> np.ndarray:
    """``(N, 4)``: each annotated box as x1, y1, x2, y2."""
    return np.stack([chunk[:, 2], chunk[:, 3], chunk[:, 2] + chunk[:, 4], chunk[:, 3] + chunk[:, 5]], axis=1)


def annotated_feet(chunk: np.ndarray) -> np.ndarray:
    """``(N, 2)``: the bottom-centre of each annotated box, the ground point the counter uses."""
    return np.stack([chunk[:, 2] + chunk[:, 4] / 2, chunk[:, 3] + chunk[:, 5]], axis=1)


def gt_events(rows: np.ndarray, config: CameraConfig, fps: float) -> tuple[list[Crossing], list[ZoneVisit]]:
    """Run the annotated tracks (feet = bottom-centre of the box) through the same ``Counter``
    the pipeline uses: the true crossings and zone visits. Annotations box each person once, so
    the counter's guard against a person boxed twice (counting.twin_s) is off: it would drop the
    crossings of people in line of sight of an eye-level camera."""
    counter = Counter(config.lines, config.zones, config.counting.model_copy(update={"twin_s": 0.0}))
    frames = by_frame(rows)
    return count_all(
        counter,
        ((f, f / fps, chunk[:, 1].astype(int), annotated_feet(chunk), chunk[:, 5]) for f, chunk in frames),
    )


@dataclass(frozen=True, slots=True)
class MatchedFrame:
    """One analysed frame's tracked people beside its annotation: the pedestrians' rows, the IoU
    of each tracked box with each of theirs and, for a frame with distractors annotated, each
    tracked box matched one-to-one (``_matched``) as (row, whether its match is a distractor)."""

    frame: int
    t: float
    ids: np.ndarray
    people: np.ndarray  # the frame's annotated pedestrians (``load_gt``'s rows)
    iou: np.ndarray  # tracked boxes x pedestrians, computed once for both uses
    matches: list[tuple[int, bool]]


def match_tracked(
    tracked: Iterable[TrackedFrame], truth: np.ndarray, distractors: np.ndarray
) -> list[MatchedFrame]:
    """Each analysed frame's tracked boxes matched once to its annotated pedestrians and
    distractors, for both ``distractor_sightings`` and ``score_identity``. Only frames with a
    distractor annotated are matched: elsewhere there is nothing to set aside."""
    people = dict(by_frame(truth))
    others = _boxes_by_frame(distractors)
    out = []
    for frame, t, ids, xyxy in tracked:
        chunk = people.get(frame, np.zeros((0, truth.shape[1])))
        ids, xyxy = np.asarray(ids), np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        iou = iou_matrix(xyxy, annotated_boxes(chunk))
        matches = _matched(xyxy, iou, others[frame]) if frame in others and len(ids) else []
        out.append(MatchedFrame(frame, t, ids, chunk, iou, matches))
    return out


def distractor_sightings(matched: Iterable[MatchedFrame]) -> dict[int, list[tuple[float, bool]]]:
    """Per person id, each sighting whose box is an annotated person's (``MATCH_IOU``, matched
    one-to-one against the frame's pedestrians and distractors together, so a box on a pedestrian
    stays one): its time and whether that annotated box is a distractor's. (TrackEval's matching
    also holds the other annotated objects, cars and occluders, which a person's box seldom fits.)"""
    seen: dict[int, list[tuple[float, bool]]] = {}
    for m in matched:
        for row, on_distractor in m.matches:
            seen.setdefault(int(m.ids[row]), []).append((m.t, on_distractor))
    return seen


def _boxes_by_frame(rows: np.ndarray) -> dict[int, np.ndarray]:
    return {f: annotated_boxes(chunk) for f, chunk in by_frame(rows)}


def _matched(xyxy: np.ndarray, people_iou: np.ndarray, others: np.ndarray) -> list[tuple[int, bool]]:
    """Tracked boxes ``xyxy`` matched one-to-one (``MATCH_IOU``) to a frame's annotated pedestrians
    (their IoU with them, ``people_iou``) and distractors together, TrackEval's rule: (row,
    whether its match is a distractor)."""
    iou = np.hstack([people_iou, iou_matrix(xyxy, others)])
    return [(row, col >= people_iou.shape[1]) for row, col in _one_to_one(iou)]


def _one_to_one(iou: np.ndarray) -> list[tuple[int, int]]:
    """The (row, column) pairs of the best one-to-one matching with IoU at least ``MATCH_IOU``."""
    return assign(1.0 - iou, 1.0 - MATCH_IOU + 1e-9).pairs


def score_identity(matched: Iterable[MatchedFrame]) -> IdentityScore:
    """IDF1 of the person ids on every analysed frame in ``matched`` against the annotated
    pedestrians of those frames. As TrackEval does, a tracked box matched one-to-one (IoU 0.5) to
    an annotated distractor is left out, and every pedestrian-person pair whose boxes overlap by
    IoU 0.5 on a frame counts that frame for the pair. Each annotated box is also matched
    one-to-one to a tracked box on its frame, to tell where the identities are lost."""
    overlaps: Tally[tuple[int, int]] = Tally()
    one_to_one: Tally[tuple[int, int]] = Tally()
    annotated = kept = 0
    for m in matched:
        keep = np.ones(len(m.ids), dtype=bool)
        keep[[row for row, on_distractor in m.matches if on_distractor]] = False
        ids, iou = m.ids[keep], m.iou[keep].T  # pedestrians x kept tracked boxes
        annotated += len(m.people)
        kept += len(ids)
        if not iou.size:
            continue
        for row, col in zip(*np.nonzero(iou >= MATCH_IOU), strict=True):
            overlaps[(int(m.people[row, 1]), int(ids[col]))] += 1
        for row, col in _one_to_one(iou):
            one_to_one[(int(m.people[row, 1]), int(ids[col]))] += 1
    pairing = _best_pairing(overlaps)
    paired_persons = set(pairing.values())
    followed = sum(n for (g, p), n in one_to_one.items() if pairing.get(g) == p)
    fragments = sum(n for (_, p), n in one_to_one.items() if p not in paired_persons)
    switched = sum(one_to_one.values()) - followed - fragments
    idtp = sum(overlaps[(g, p)] for g, p in pairing.items())
    return IdentityScore(idtp, annotated, kept, followed, switched, fragments)


def _best_pairing(overlaps: Tally[tuple[int, int]]) -> dict[int, int]:
    """The one-to-one pairing of annotated ids with person ids (annotated id -> person id) with
    the largest sum of frames."""
    if not overlaps:
        return {}
    people = sorted({g for g, _ in overlaps})
    persons = sorted({p for _, p in overlaps})
    row, col = {g: i for i, g in enumerate(people)}, {p: j for j, p in enumerate(persons)}
    frames = np.zeros((len(people), len(persons)))
    for (g, p), n in overlaps.items():
        frames[row[g], col[p]] = n
    pairs = assign(frames.max() - frames, frames.max()).pairs
    # The solver may fill the pairing with pairs that share no frame: they are no pairs.
    return {people[i]: persons[j] for i, j in pairs if frames[i, j] > 0}


def gt_crossings(rows: np.ndarray, config: CameraConfig, fps: float) -> list[Crossing]:
    return gt_events(rows, config.model_copy(update={"zones": []}), fps)[0]


class OracleDetector:
    """The annotated boxes of each frame as detections (confidence 1): the audit's oracle mode,
    which leaves only the tracker's and the counter's errors."""

    def __init__(self, rows: np.ndarray) -> None:
        self._frames = dict(by_frame(rows))

    def __call__(self, frame: Frame) -> Detections:
        chunk = self._frames.get(frame.index)
        if chunk is None:
            return Detections(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 2)))
        return Detections(annotated_boxes(chunk), np.ones(len(chunk)), annotated_feet(chunk))
