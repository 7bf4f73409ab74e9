"""Counting on lines footfall's authors did not draw: layouts of random lines where people walk.

The held-out footage is judged with its owners' lines, not ours, and a rule tuned (even unknowingly)
to the dev clips' own lines would not show on them. This benchmark draws, per layout, ``--lines``
counting lines across the paths the annotated people walk: each is centred on an annotated foot of
someone walking (at least 0.3 of their height a second), at right angles to their direction
within ±30°, 1 to 2.5 of their heights long, with "in" on one side at random. Only people at least
``--near`` of the clip's tall (90th percentile) annotated height are used, as far-off people
are not all annotated in the MOTChallenge clips (a count there is often a true person missing from
the truth). The truth for each layout comes from gt.txt with the counter's own rule, as in
``footfall eval``.

The model runs once, at the camera file's planned input (the lines are drawn inside its crop);
every layout then replays those detections through footfall's tracker, linker and counter
(decoding the clip again: the linker needs the colours). ``--oracle`` replays the annotated boxes
instead, which leaves only the tracker's and the counter's errors.

    .venv/bin/python bench/random_lines.py ../shared/data/video/venice2 \\
        --config edge/configs/venice2.yaml --fps 0 --layouts 12 --seed 3
"""

from __future__ import annotations

import argparse
import math
import random
from pathlib import Path
from typing import Any

import numpy as np

from footfall.contracts.config import CameraConfig, LineConfig, load_config
from footfall.edge.detector import Detections
from footfall.edge.evaluation import Report, evaluate
from footfall.edge.groundtruth import OracleDetector, find_sequence, gt_events, load_gt
from footfall.edge.pipeline import model_detector, run_frames
from footfall.edge.sources import Frame, VideoFileSource, open_source

ROOT = Path(__file__).resolve().parents[1]
WALKING_HEIGHTS_PER_S = 0.3
TURN_RAD = math.radians(30)


class Recorded:
    """The model's detections, recorded on the first pass and replayed on every later one (with
    the crop the planner chose, which the linker uses for the picture's edges)."""

    def __init__(self, config: CameraConfig) -> None:
        self.config = config
        self.frames: dict[int, tuple[Detections, tuple[int, int, int, int] | None]] = {}
        self.detector: Any = None
        self.replaying = False
        self.watched: tuple[int, int, int, int] | None = None

    def __call__(self, frame: Frame) -> Detections:
        if self.replaying:
            found, self.watched = self.frames[frame.index]
            return found
        assert frame.image is not None
        if self.detector is None:
            self.detector = model_detector(self.config, (frame.image.shape[1], frame.image.shape[0]), None)
        found = self.detector(frame)
        self.watched = self.detector.watched
        self.frames[frame.index] = (found, self.watched)
        return found


def walkers(rows: np.ndarray, fps: float, near: float) -> tuple[np.ndarray, np.ndarray]:
    """Feet ``(x, y, height)`` of annotated people walking, tall enough, and their directions."""
    feet = np.stack([rows[:, 2] + rows[:, 4] / 2, rows[:, 3] + rows[:, 5], rows[:, 5]], axis=1)
    where = {(int(i), int(f)): k for k, (f, i) in enumerate(rows[:, :2])}
    half = max(1, round(fps / 2))
    heading = np.zeros((len(rows), 2))
    for k, (f, i) in enumerate(rows[:, :2]):
        before, after = where.get((int(i), int(f) - half)), where.get((int(i), int(f) + half))
        if before is not None and after is not None:
            heading[k] = feet[after, :2] - feet[before, :2]  # pixels a second
    keep = np.hypot(*heading.T) >= WALKING_HEIGHTS_PER_S * feet[:, 2]
    keep &= feet[:, 2] >= near * np.percentile(feet[:, 2], 90)
    return feet[keep], heading[keep]


def draw_line(
    name: str, rng: random.Random, feet: np.ndarray, heading: np.ndarray, crop: tuple[int, ...]
) -> LineConfig:
    """A line across one walker's path, inside ``crop`` (half a height below its top)."""
    x1, y1, x2, y2 = crop
    for _ in range(10_000):
        k = rng.randrange(len(feet))
        (cx, cy, height), (hx, hy) = feet[k], heading[k]
        angle = math.atan2(hy, hx) + math.pi / 2 + rng.uniform(-TURN_RAD, TURN_RAD)
        along = np.array([math.cos(angle), math.sin(angle)]) * rng.uniform(0.5, 1.25) * height
        a, b = np.array([cx, cy]) - along, np.array([cx, cy]) + along
        if all(x1 <= p[0] <= x2 and y1 + height / 2 <= p[1] <= y2 for p in (a, b)):
            side = rng.choice((-1.0, 1.0)) * height / np.hypot(*along)
            inside = (cx - along[1] * side, cy + along[0] * side)
            start, end, side_point = (tuple(round(float(v)) for v in p) for p in (a, b, inside))
            return LineConfig(name=name, start=start, end=end, inside=side_point)
    raise SystemExit("no walker's path fits inside the planned crop")


def count(media: str, config: CameraConfig, fps: float | None, detector: Any, truth: list[Any]) -> Report:
    crossings = []
    for outcome in run_frames(open_source(media, fps=fps), config, detector=detector):
        crossings += outcome.result.crossings
    return evaluate(config.lines, truth, crossings, 1.0, ())


def errors(report: Report) -> tuple[int, int, int, int]:
    return (report.total("missed"), report.total("false"), report.total("wrong_direction"), report.abs_error)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default=str(ROOT.parent / "shared/data/video/venice2"))
    parser.add_argument("--config", type=Path, default=ROOT / "edge/configs/venice2.yaml")
    parser.add_argument("--fps", type=float, default=None, help="analysed rate (0: every frame)")
    parser.add_argument("--layouts", type=int, default=12)
    parser.add_argument("--lines", type=int, default=6, help="lines a layout")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--near", type=float, default=0.5, help="walkers this share of the tall height")
    args = parser.parse_args()
    camera = load_config(args.config, CameraConfig)
    seq = find_sequence(args.folder)
    media = str(seq.media)
    with VideoFileSource(Path(media)) as probe:
        native, width = probe.native_fps, probe.size[0]
    rows = load_gt(seq.gt_file, width / seq.annotated_width if seq.annotated_width else 1.0)
    fps = camera.model.analysis_fps if args.fps is None else args.fps
    recorded = Recorded(camera)
    for _ in run_frames(open_source(media, fps=fps or None), camera, detector=recorded):
        pass
    recorded.replaying = True
    crop = recorded.watched or (0, 0, width, int(rows[:, 3].max()))
    feet, heading = walkers(rows, native, args.near)
    rng = random.Random(args.seed)
    print(f"{media} at {fps or native:g} frames/s; lines inside the planned crop {crop}")
    print("layout  truth   model: missed false wrong |error|   oracle: missed false wrong |error|")
    totals = np.zeros(9, dtype=np.int64)
    for layout in range(args.layouts):
        lines = [draw_line(f"r{k}", rng, feet, heading, crop) for k in range(args.lines)]
        config = camera.model_copy(update={"lines": lines, "zones": []})
        truth, _ = gt_events(rows, config, native)
        model = errors(count(media, config, fps or None, recorded, truth))
        oracle = errors(count(media, config, fps or None, OracleDetector(rows), truth))
        totals += (len(truth), *model, *oracle)
        print(
            f"{layout:6d}  {len(truth):5d}   {model[0]:13d} {model[1]:5d} {model[2]:5d} {model[3]:7d}"
            f"   {oracle[0]:14d} {oracle[1]:5d} {oracle[2]:5d} {oracle[3]:7d}",
            flush=True,
        )
    truth_total = max(1, int(totals[0]))
    print(
        f"total   {totals[0]:5d}   {totals[1]:13d} {totals[2]:5d} {totals[3]:5d} {totals[4]:7d}"
        f"   {totals[5]:14d} {totals[6]:5d} {totals[7]:5d} {totals[8]:7d}"
    )
    model_share, oracle_share = totals[4] / truth_total, totals[8] / truth_total
    print(f"summed |error| / truth: model {model_share:.1%}, oracle {oracle_share:.1%}")


if __name__ == "__main__":
    main()
