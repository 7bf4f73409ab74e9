"""Edge throughput: footfall's pipeline vs Ultralytics' ``solutions.ObjectCounter``, one process.

Both run on the same decoded frames (held in memory, so decoding is not timed), with the same
weights and the same counting line; both counts are compared with the ground truth derived from
the sequence's gt.txt. footfall plans its own input (a crop around the line, scaled to the people
it sees: edge/scale.py); ObjectCounter gets the whole picture at the size that shows people as
large as footfall's input does. Then footfall's pipeline runs over the clip ``--loops`` times as
one long stream, printing resident memory and the counter's and linker's state per loop: all
must stay flat.

    .venv/bin/python bench/edge_throughput.py ../shared/data/video/venice2 \\
        --config edge/configs/venice2.yaml --line centre --model ../shared/models/yolo11n.onnx
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil

from footfall.contracts.config import CameraConfig, LineConfig, load_config
from footfall.edge.detector import STRIDE, prepare_offline_ultralytics, resolve_imgsz
from footfall.edge.groundtruth import find_sequence, gt_crossings
from footfall.edge.pipeline import FrameOutcome, model_detector, run_frames
from footfall.edge.scale import InputPlan
from footfall.edge.sources import Frame, FrameSource, open_source


class MemorySource(FrameSource):
    """Pre-decoded frames, replayed ``loops`` times as one continuous stream."""

    def __init__(self, images: list[np.ndarray], fps: float, loops: int = 1) -> None:
        self.images, self.fps, self.loops = images, fps, loops
        self.size = (images[0].shape[1], images[0].shape[0])
        self.on_loop_end: list = []
        self.served = 0  # frames handed out so far (the pipeline holds some back in the linker)

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        for loop in range(self.loops):
            for image in self.images:
                self.served += 1
                yield Frame(index, index / self.fps, image, time.monotonic())
                index += 1
            for callback in self.on_loop_end:
                callback(loop)


def oc_directions(line: LineConfig) -> tuple[str, str]:
    """ObjectCounter calls rightward (vertical line) or downward (horizontal line) motion IN."""
    (x1, y1), (x2, y2) = line.start, line.end
    vertical = abs(x1 - x2) < abs(y1 - y2)
    mid = ((x1 + x2) / 2, (y1 + y2) / 2)
    positive_is_inside = (line.inside[0] > mid[0]) if vertical else (line.inside[1] > mid[1])
    return ("in", "out") if positive_is_inside else ("out", "in")


def run_footfall(
    images: list[np.ndarray], fps: float, camera: CameraConfig, model: str, size: tuple[int, int]
) -> tuple[float, dict[str, int], InputPlan | None]:
    """footfall's fps (frames processed per second once the model is loaded and the first frame
    has left the linker), its in/out counts and its input plan."""
    detector = model_detector(camera, size, model)
    source = MemorySource(images, fps)
    outcomes = run_frames(source, camera, weights=model, detector=detector)
    counted = list(next(outcomes).result.crossings)  # model load, conversion, probe: not timed
    served, t0 = source.served, time.perf_counter()
    for outcome in outcomes:
        counted += outcome.result.crossings
    ff_fps = (source.served - served) / (time.perf_counter() - t0)
    ours = {"in": 0, "out": 0}
    for c in counted:
        ours[c.direction] += 1
    return ff_fps, ours, detector.plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "sequence", type=Path, help="MOTChallenge sequence folder (video or img1/ + gt/gt.txt)"
    )
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--line", help="line to compare (default: the config's first)")
    parser.add_argument("--model", required=True, help="weights both use (.pt or .onnx)")
    parser.add_argument("--frames", type=int, default=0, help="only the first N frames (0 = all)")
    parser.add_argument("--loops", type=int, default=3, help="memory run: replay the clip this many times")
    args = parser.parse_args()

    prepare_offline_ultralytics()
    camera = load_config(args.config, CameraConfig)
    line = next((ln for ln in camera.lines if ln.name == args.line), camera.lines[0])
    one_line = camera.model_copy(update={"lines": [line], "zones": []})
    seq = find_sequence(args.sequence)
    with open_source(str(seq.media), fps=seq.fps if seq.media.is_dir() else None) as source:
        images = [f.image for f in source]
        fps, size = source.fps, source.size
    if args.frames:
        images = images[: args.frames]
    rows = seq.annotation(size[0])
    truth = gt_crossings(rows[rows[:, 0] < len(images)], one_line, fps)
    truth_in = sum(c.direction == "in" for c in truth)
    truth_out = len(truth) - truth_in
    print(
        f"{seq.root.name}: {len(images)} frames {size[0]}x{size[1]} @ {fps:g} fps, line {line.name!r}, "
        f"truth in {truth_in} out {truth_out}, cpus {os.cpu_count()}"
    )

    # footfall first: its input-size plan sets the size ObjectCounter gets
    ff_fps, ours, plan = run_footfall(images, fps, one_line, args.model, size)
    if plan is not None:
        print(f"footfall: {plan.describe(size)}")
    oc_imgsz = object_counter_imgsz(plan, camera, size)
    print(f"ObjectCounter: the whole picture at imgsz {oc_imgsz} (people as large as footfall sees them)")
    oc_fps, oc = run_object_counter(images, line, args.model, oc_imgsz)

    ff_error = abs(ours["in"] - truth_in) + abs(ours["out"] - truth_out)
    oc_error = abs(oc["in"] - truth_in) + abs(oc["out"] - truth_out)
    print(f"{'':24}{'fps':>8}{'in':>6}{'out':>6}{'|error|':>9}")
    print(f"{'truth':24}{'':>8}{truth_in:>6}{truth_out:>6}")
    print(f"{'ultralytics ObjectCounter':24}{oc_fps:>8.2f}{oc['in']:>6}{oc['out']:>6}{oc_error:>9}")
    print(f"{'footfall':24}{ff_fps:>8.2f}{ours['in']:>6}{ours['out']:>6}{ff_error:>9}")
    print(
        f"ratio footfall / ObjectCounter: {ff_fps / oc_fps:.2f}x fps; "
        f"count error {ff_error} vs {oc_error} of {truth_in + truth_out}"
    )
    if args.loops > 0:
        memory_run(images, fps, camera, args.model, args.loops)


def object_counter_imgsz(plan: InputPlan | None, camera: CameraConfig, size: tuple[int, int]) -> int:
    """ObjectCounter's input size: the whole picture at the scale footfall's plan gives people."""
    if plan is None:
        return max(resolve_imgsz(camera.model, size))
    x1, y1, x2, y2 = plan.crop
    people_scale = max(plan.imgsz) / max(x2 - x1, y2 - y1)  # input pixels per picture pixel
    return max(STRIDE, round(people_scale * max(size) / STRIDE) * STRIDE)


def run_object_counter(
    images: list[np.ndarray], line: LineConfig, model: str, imgsz: int
) -> tuple[float, dict[str, int]]:
    """Ultralytics ObjectCounter, its defaults except the shared model, line, class and size: its
    frames per second (after a warm-up frame) and its counts in footfall's directions."""
    from ultralytics import solutions

    counter = solutions.ObjectCounter(
        model=model, region=[line.start, line.end], classes=[0], imgsz=imgsz, show=False, verbose=False
    )
    # ObjectCounter draws its annotations into the frame it is given: hand it copies.
    copies = [image.copy() for image in images]
    counter.process(copies[0])  # warm-up (model load) is not timed
    t0 = time.perf_counter()
    for image in copies[1:]:
        counter.process(image)
    oc_fps = (len(images) - 1) / (time.perf_counter() - t0)
    in_name, out_name = oc_directions(line)
    return oc_fps, {in_name: counter.in_count, out_name: counter.out_count}


def memory_run(images: list[np.ndarray], fps: float, camera: CameraConfig, model: str, loops: int) -> None:
    """The whole camera configuration over the clip ``loops`` times in a row: the process's memory
    and what the counter and the linker hold after each loop, then the peak."""
    process = psutil.Process()
    source = MemorySource(images, fps, loops=loops)
    latest: list[FrameOutcome] = []

    def report(loop: int) -> None:
        held = f"{latest[-1].counter.tracked} tracks, linker {latest[-1].tracklets_held}" if latest else "?"
        print(
            f"memory: after loop {loop + 1}/{loops} ({(loop + 1) * len(images)} frames): "
            f"rss {process.memory_info().rss / 2**20:.0f} MiB, counter state {held} tracklets and people"
        )

    source.on_loop_end.append(report)
    for outcome in run_frames(source, camera, weights=model):
        latest[:] = [outcome]
    peak = process.memory_info().rss
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    except ImportError:
        pass
    print(
        f"peak rss {peak / 2**20:.0f} MiB (includes the decoded frames: "
        f"{sum(i.nbytes for i in images) / 2**20:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
