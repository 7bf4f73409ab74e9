"""Crowd scaling: what tracking, linking and counting cost per frame as a scene fills with people.

A station concourse shows ten times the people of the dev clips. The model's cost depends on the
input size only; everything after it (ByteTrack, the hidden-legs rule, the tracklet linker, the
counter, the colour samples) runs per person, and a pair-wise step (the linker weighs every new
tracklet against every recently ended one) grows faster. This benchmark measures that part.

The model runs once over the clip at the analysis rate; its detections are kept. Then the clip is
replayed ``n x n`` times at once: each copy's boxes shrunk to 1/n and moved into its own tile,
each a different moment of the clip, so the picture holds n^2 times the people, walking, meeting
and hiding as in the clip. The camera's lines and zones go into the first tile, so a camera file's
usual few lines see a crowd of n^2 scenes. The frames are the clip's own (colours are sampled
where the tiled boxes lie: the same work, meaningless colours), and the time spent decoding them
is left out. Counts of tiled runs are no accuracy figure; they are printed to show the replays ran.

    .venv/bin/python bench/crowd_scaling.py            # Venice-2, 1 to 4 tiles a side
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from footfall.contracts.config import CameraConfig, load_config
from footfall.edge.detector import Detections
from footfall.edge.groundtruth import find_sequence
from footfall.edge.pipeline import model_detector, run_frames
from footfall.edge.sources import Frame, FrameSource, open_source

ROOT = Path(__file__).resolve().parents[1]


class TimedSource(FrameSource):
    """A source whose own time (decoding) is added up, to be taken out of the pipeline's."""

    def __init__(self, inner: FrameSource) -> None:
        self.inner, self.fps, self.size = inner, inner.fps, inner.size
        self.seconds = 0.0

    def __iter__(self) -> Iterator[Frame]:
        frames = iter(self.inner)
        while True:
            start = time.perf_counter()
            frame = next(frames, None)
            self.seconds += time.perf_counter() - start
            if frame is None:
                return
            yield frame


def detect_once(video: str, config: CameraConfig, model: str, fps: float) -> dict[int, Detections]:
    """The model's detections on every analysed frame, in picture pixels."""
    source = open_source(video, fps=fps)
    detector = model_detector(config, source.size, model)
    found: dict[int, Detections] = {}

    def keep(frame: Frame) -> Detections:
        found[frame.index] = detector(frame)
        return found[frame.index]

    for _ in run_frames(source, config, detector=keep):
        pass
    return found


def tiled(found: dict[int, Detections], size: tuple[int, int], n: int) -> Callable[[Frame], Detections]:
    """A detector showing n x n copies of the clip at 1/n size, each a share of the clip later."""
    width, height = size
    order = sorted(found)  # the analysed frames' indices
    position = {index: p for p, index in enumerate(order)}
    shifts = [(k % n * width / n, k // n * height / n, k * len(order) // (n * n)) for k in range(n * n)]

    def detect(frame: Frame) -> Detections:
        p = position[frame.index]
        parts = [(found[order[(p + lag) % len(order)]], dx, dy) for dx, dy, lag in shifts]
        return Detections(
            np.concatenate([d.xyxy / n + [dx, dy, dx, dy] for d, dx, dy in parts]),
            np.concatenate([d.conf for d, _, _ in parts]),
            np.concatenate([d.ground / n + [dx, dy] for d, dx, dy in parts]),
        )

    return detect


def first_tile_layout(config: CameraConfig, n: int) -> CameraConfig:
    """The camera's lines and zones shrunk into the first tile."""

    def at(point: tuple[float, float] | list[float]) -> list[float]:
        return [point[0] / n, point[1] / n]

    lines = [
        ln.model_copy(update={"start": at(ln.start), "end": at(ln.end), "inside": at(ln.inside)})
        for ln in config.lines
    ]
    zones = [z.model_copy(update={"polygon": [at(p) for p in z.polygon]}) for z in config.zones]
    return config.model_copy(update={"lines": lines, "zones": zones})


def replay(
    video: str, config: CameraConfig, fps: float, detect: Callable[[Frame], Detections]
) -> tuple[int, float, float, int]:
    """Frames, people per frame, seconds of everything but decoding, crossings."""
    source = TimedSource(open_source(video, fps=fps))
    frames = people = crossings = 0
    start = time.perf_counter()
    for outcome in run_frames(source, config, detector=detect):
        frames += 1
        people += len(outcome.tracks.ids)
        crossings += len(outcome.result.crossings)
    seconds = time.perf_counter() - start - source.seconds
    return frames, people / max(frames, 1), seconds, crossings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default=str(ROOT.parent / "shared/data/video/venice2"))
    parser.add_argument("--config", type=Path, default=ROOT / "edge/configs/venice2.yaml")
    parser.add_argument("--model", default=str(ROOT.parent / "shared/models/yolo11n.onnx"))
    parser.add_argument("--tiles", type=int, nargs="+", default=[1, 2, 3, 4], help="tiles a side")
    args = parser.parse_args()
    config = load_config(args.config, CameraConfig)
    video = str(find_sequence(args.folder).media)
    with open_source(video, fps=config.model.analysis_fps or None) as probe:  # the rate analysed
        fps, size = probe.fps, probe.size
    found = detect_once(video, config, args.model, fps)
    print(
        f"{video}: {len(found)} frames analysed at {fps:g} fps, "
        f"{len(config.lines)} lines, {len(config.zones)} zones"
    )
    print("tiles  people/frame  ms/frame  ms/person  x per person (1 tile = 1)  crossings")
    base = None
    for n in args.tiles:
        detect = tiled(found, size, n)
        count, people, seconds, crossings = replay(video, first_tile_layout(config, n), fps, detect)
        per_frame = 1000 * seconds / count
        per_person = per_frame / max(people, 1e-9)
        base = base or per_person
        print(
            f"{n}x{n}  {people:12.1f}  {per_frame:8.1f}  {per_person:9.3f}  "
            f"{per_person / base:24.2f}  {crossings:9d}"
        )


if __name__ == "__main__":
    main()
