"""Counting in a denser crowd: a clip's second half pasted over its first, people and annotation.

The dev clips hold 5-20 people at a time; a station concourse holds far more, walking through each
other. This benchmark makes a denser scene out of annotated footage: on each frame of the clip's
first part, the annotated people of the same frame of the second part are pasted (their boxes'
pixels, the nearer ones last, so they hide whoever is behind them), and the two annotations are
merged. footfall runs on that picture with its defaults (the model, the planned input, the
tracker, the linker, the counter), and on each part alone. If crowding did not cost accuracy, the
pasted scene's errors would be those of its parts added up.

Pasted boxes carry their own background, so the picture has seams; the detector sees them too.

    .venv/bin/python bench/crowd_overlay.py              # Venice-2, at 15 fps and every frame
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from footfall.contracts.config import CameraConfig, load_config
from footfall.edge.evaluation import Report, evaluate, score_zones
from footfall.edge.groundtruth import gt_events, open_clip
from footfall.edge.pipeline import run_frames
from footfall.edge.sources import Frame, FrameSource, VideoFileSource

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Part:
    """Which frames of the clip a run sees: ``first`` (its own), and ``pasted`` on top (or None)."""

    name: str
    first: int  # the clip's frame shown as frame 0
    pasted: int | None  # the clip's frame pasted onto frame 0, or None


class PartSource(FrameSource):
    """``length`` frames of the clip from ``part.first``, each with ``part.pasted``'s people on it."""

    def __init__(self, video: str, rows: np.ndarray, part: Part, length: int, step: int) -> None:
        with VideoFileSource(Path(video)) as probe:
            self.native_fps, self.size = probe.native_fps, probe.size
        self.video, self.rows, self.part, self.length, self.step = video, rows, part, length, step
        self.fps = self.native_fps / step

    def _open_at(self, frame: int) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(self.video)
        for _ in range(frame):  # decoded, not sought: seeking lands on key frames only
            capture.grab()
        return capture

    def __iter__(self) -> Iterator[Frame]:
        own = self._open_at(self.part.first)
        other = self._open_at(self.part.pasted) if self.part.pasted is not None else None
        for index in range(self.length):
            _, image = own.read()
            pasted = other.read()[1] if other is not None else None
            if index % self.step:
                continue
            if pasted is not None and self.part.pasted is not None:
                image = self._paste(image, pasted, self.part.pasted + index)
            yield Frame(index, index / self.native_fps, image, 0.0)

    def _paste(self, image: np.ndarray, source: np.ndarray, frame: int) -> np.ndarray:
        out = image.copy()
        boxes = self.rows[self.rows[:, 0] == frame][:, 2:6]
        height, width = out.shape[:2]
        for x, y, w, h in boxes[np.argsort(boxes[:, 1] + boxes[:, 3])]:  # far first, near on top
            x1, y1 = max(int(x), 0), max(int(y), 0)
            x2, y2 = min(int(x + w), width), min(int(y + h), height)
            out[y1:y2, x1:x2] = source[y1:y2, x1:x2]
        return out


def part_truth(rows: np.ndarray, part: Part, length: int) -> np.ndarray:
    """The annotation of what a part shows, re-numbered from frame 0; pasted people get new ids."""
    own = rows[(rows[:, 0] >= part.first) & (rows[:, 0] < part.first + length)].copy()
    own[:, 0] -= part.first
    if part.pasted is None:
        return own
    pasted = rows[(rows[:, 0] >= part.pasted) & (rows[:, 0] < part.pasted + length)].copy()
    pasted[:, 0] -= part.pasted
    pasted[:, 1] += rows[:, 1].max() + 1
    merged = np.concatenate([own, pasted])
    return merged[np.argsort(merged[:, 0], kind="stable")]


def run_part(
    video: str, rows: np.ndarray, config: CameraConfig, part: Part, length: int, step: int, model: str
) -> tuple[Report, float]:
    """footfall's report on a part, and the annotated people per frame in it."""
    source = PartSource(video, rows, part, length, step)
    truth_rows = part_truth(rows, part, length)
    truth, truth_visits = gt_events(truth_rows, config, source.native_fps)
    crossings, visits = [], []
    for outcome in run_frames(source, config, weights=model):
        crossings += outcome.result.crossings
        visits += outcome.result.visits
    report = evaluate(
        config.lines, truth, crossings, 1.0, score_zones(config.zones, truth_visits, visits, 1.0)
    )
    return report, len(truth_rows) / length


def errors(report: Report) -> int:
    return report.total("missed") + report.total("false") + report.total("wrong_direction")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default=str(ROOT.parent / "shared/data/video/venice2"))
    parser.add_argument("--config", type=Path, default=ROOT / "edge/configs/venice2.yaml")
    parser.add_argument("--model", default=str(ROOT.parent / "shared/models/yolo11n.onnx"))
    parser.add_argument("--steps", type=int, nargs="+", default=[2, 1], help="analyse every k-th frame")
    args = parser.parse_args()
    config = load_config(args.config, CameraConfig)
    clip = open_clip(args.folder)
    video, rows = clip.media, clip.rows
    length = int(rows[:, 0].max() + 1) // 2
    parts = [Part("first half", 0, None), Part("second half", length, None), Part("pasted", 0, length)]
    print(f"{video}: two parts of {length} frames; the second's people pasted over the first")
    print("every  part         people/frame  truth  missed  false  wrong  error ", end="")
    print("  visits (truth)  dwell s (truth)")
    for step in args.steps:
        reports = []
        for part in parts:
            report, people = run_part(video, rows, config, part, length, step, args.model)
            reports.append(report)
            zone = report.zones[0] if report.zones else None
            visits = f"{zone.counted_visits:6d} ({zone.truth_visits})" if zone else "-"
            dwell = f"{zone.counted_median_dwell_s:5.1f} ({zone.truth_median_dwell_s:.1f})" if zone else "-"
            print(
                f"{step:5d}  {part.name:11s}  {people:12.1f}  {report.truth_total:5d}  "
                f"{report.total('missed'):6d}  {report.total('false'):5d}  "
                f"{report.total('wrong_direction'):5d}  {report.relative_error:6.1%}  "
                f"{visits:>14s}  {dwell:>15s}",
                flush=True,
            )
        alone = errors(reports[0]) + errors(reports[1])
        print(f"       pasted: {errors(reports[2])} wrong crossings; the two halves alone: {alone}")


if __name__ == "__main__":
    main()
