"""Speed and memory of the whole ``footfall count`` process on a 1080p clip, against a baseline.

The issue's speed figure is for the whole process (decoding, detection, tracking, linking,
counting, writing events), so this runs ``footfall count`` as a child process, not the pipeline
in-process. Two camera files, run alternately ``--rounds`` times (a shared 2-core machine drifts
by 10 % within minutes, so only ratios within a round mean something):

* **default**: the camera file as given, i.e. footfall's defaults: the input planned from the
  people the camera shows (edge/scale.py), ``model.analysis_fps`` 15;
* **baseline**: the same file with ``model.imgsz: 640``, the whole picture at 640 px as before
  the planner (fast, but 1080p people shrink below what the nano model finds).

Per run: wall time, the clip's frames (all of them are decoded: the reader skips frames only
for analysis), the frames analysed (from the command's own summary line) and the child's peak
resident memory (``os.wait4``). Then the medians, and the default's speed and
memory as ratios of the baseline's.

    .venv/bin/python bench/count_speed.py [../shared/data/video/venice2/Venice-2.mp4] \\
        [--config edge/configs/venice2.yaml] [--rounds 3]

Needs ``../shared`` (footage and ``yolo11n.onnx``) beside the checkout.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import yaml

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
TARGET_FPS = 8.0
SUMMARY = re.compile(r"inference ran on (\d+) of \d+ frames")


@dataclass(frozen=True, slots=True)
class Run:
    wall_s: float
    clip_frames: int
    analysed: int
    peak_rss_mib: float

    @property
    def video_fps(self) -> float:
        return self.clip_frames / self.wall_s

    @property
    def analysed_fps(self) -> float:
        return self.analysed / self.wall_s


def baseline_config(config: Path, folder: Path) -> Path:
    """The camera file with ``model.imgsz: 640`` (and everything else as given)."""
    camera = yaml.safe_load(config.read_text(encoding="utf-8"))
    camera.setdefault("model", {})["imgsz"] = 640
    out = folder / f"{config.stem}-imgsz640.yaml"
    out.write_text(yaml.safe_dump(camera, sort_keys=False), encoding="utf-8")
    return out


def video_frames(source: Path) -> int:
    """Every frame of the clip: the reader decodes them all, whatever the analysis rate."""
    capture = cv2.VideoCapture(str(source))
    try:
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()


def count_once(source: Path, clip_frames: int, config: Path, model: Path, events: Path) -> Run:
    command = [sys.executable, "-m", "footfall", "count", str(source), "--config", str(config)]
    command += ["--model", str(model), "--out", str(events)]
    started = time.monotonic()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = child.stdout.read() if child.stdout else ""
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - started
    child.returncode = os.waitstatus_to_exitcode(status)  # wait4 reaped it: tell Popen
    found = SUMMARY.search(output)
    if child.returncode != 0 or found is None:
        raise SystemExit(f"{' '.join(command)} failed ({child.returncode}):\n{output[-2000:]}")
    return Run(wall, clip_frames, int(found[1]), usage.ru_maxrss / 1024)  # KiB on Linux


def median(runs: list[Run], field: str) -> float:
    return float(statistics.median(getattr(run, field) for run in runs))


def report(results: dict[str, list[Run]]) -> None:
    head = ("wall s", "video", "analysed", "video fps", "analysed fps", "peak MiB")
    print("\n{:9} {:>8} {:>5} {:>8} {:>9} {:>12} {:>9}".format("", *head))
    for name, runs in results.items():
        for run in runs:
            print(
                f"{name:9} {run.wall_s:8.1f} {run.clip_frames:5d} {run.analysed:8d} {run.video_fps:9.2f}"
                f" {run.analysed_fps:12.2f} {run.peak_rss_mib:9.0f}"
            )
    default, baseline = results["default"], results["baseline"]
    print("\nmedians, default against baseline (imgsz 640, the whole picture):")
    for field, unit in (("video_fps", "video frames/s"), ("analysed_fps", "analysed frames/s")):
        d, b = median(default, field), median(baseline, field)
        verdict = "meets" if d >= TARGET_FPS else "below"
        target = f"{verdict} the {TARGET_FPS:g} frames/s target"
        print(f"  {unit:18} {d:6.2f} vs {b:6.2f}  ({d / b:.2f}x; {target})")
    d, b = median(default, "peak_rss_mib"), median(baseline, "peak_rss_mib")
    print(f"  {'peak memory':18} {d:6.0f} vs {b:6.0f} MiB  ({d / b:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, nargs="?", default=SHARED / "data/video/venice2/Venice-2.mp4")
    parser.add_argument("--config", type=Path, default=ROOT / "edge/configs/venice2.yaml")
    parser.add_argument("--model", type=Path, default=SHARED / "models/yolo11n.onnx")
    parser.add_argument("--rounds", type=int, default=3, help="alternate the two this many times")
    args = parser.parse_args()
    results: dict[str, list[Run]] = {"default": [], "baseline": []}
    clip_frames = video_frames(args.source)
    with tempfile.TemporaryDirectory(prefix="footfall-count-speed-") as tmp:
        folder = Path(tmp)
        configs = {"default": args.config, "baseline": baseline_config(args.config, folder)}
        for round_ in range(args.rounds):
            for name, config in configs.items():
                run = count_once(args.source, clip_frames, config, args.model, folder / f"{name}.jsonl")
                results[name].append(run)
                done = f"{run.wall_s:.1f} s, {run.analysed} of {run.clip_frames} frames analysed"
                print(f"round {round_ + 1} {name}: {done}", flush=True)
    report(results)


if __name__ == "__main__":
    main()
