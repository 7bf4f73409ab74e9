"""How much a clip's accuracy depends on the moment the stream started: the input plan's share.

Without ``model.imgsz`` the detector plans its crop and input size from the people it sees in its
first moments (edge/scale.py): a camera started a minute later sees other people and may plan a
different input. This script probes from several start frames of a clip, as a camera started
there would, then runs the whole clip from its first frame with each plan, and prints the plan and
the accuracy it gives (crossings against the annotation, the zones' visits and median dwell). The
spread is how far a dev-clip figure may move with nothing changed but the start: read the README's
cells with it.

    .venv/bin/python bench/plan_sensitivity.py ../shared/data/video/venice2 \\
        --config edge/configs/venice2.yaml --starts 0 40 200 360 480 --fps 15 0

Needs ``../shared`` (footage and the default model) beside the checkout.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2

from footfall.contracts.config import CameraConfig, load_config
from footfall.edge.cli import run_eval
from footfall.edge.evaluation import Report
from footfall.edge.groundtruth import open_clip
from footfall.edge.pipeline import load_model, model_detector
from footfall.edge.scale import InputPlan, LayoutDetector
from footfall.edge.sources import Frame, open_source


def probe_from(start: int, media: str, fps: float | None, detector: LayoutDetector) -> InputPlan | None:
    """The plan ``detector`` makes when the stream starts at frame ``start`` (None: it never did)."""
    first_t = None
    for frame in open_source(media, fps=fps):
        if frame.index < start or frame.image is None:
            continue
        first_t = frame.t if first_t is None else first_t
        detector(Frame(frame.index - start, frame.t - first_t, frame.image, frame.captured_at))
        if detector.plan is not None:
            return detector.plan
    return None


def spread_starts(media: str, count: int = 5) -> list[int]:
    """``count`` start frames spread over the clip's first 80 % (a camera needs time to plan)."""
    capture = cv2.VideoCapture(media)
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    return [round(k * 0.8 * frames / count) for k in range(count)]


def describe(report: Report) -> str:
    zone = report.zones[0] if report.zones else None
    visits = f"  visits {zone.counted_visits} ({zone.truth_visits})" if zone else ""
    dwell = (
        f", median dwell {zone.counted_median_dwell_s:.1f} s ({zone.truth_median_dwell_s:.1f})"
        if zone and zone.counted_median_dwell_s is not None and zone.truth_median_dwell_s is not None
        else ""
    )
    return (
        f"{report.relative_error:6.1%}  missed {report.total('missed')}, false {report.total('false')}, "
        f"wrong {report.total('wrong_direction')} of {report.truth_total}{visits}{dwell}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--starts", type=int, nargs="+", help="frames (default: 5 spread over the clip)")
    parser.add_argument(
        "--fps", type=float, nargs="+", default=[15.0, 0.0], help="analysed rates (0: every frame)"
    )
    args = parser.parse_args()
    camera = load_config(args.config, CameraConfig)
    clip = open_clip(args.folder)
    media, size, sequence = clip.media, clip.size, clip.sequence
    starts = args.starts or spread_starts(media)
    model = load_model(camera.model, None)
    for fps in args.fps:
        rate = fps or None
        rate_name = f"{fps:g} frames/s" if fps else "every frame"
        print(f"{media} at {rate_name}, from frame 0 with the plan a camera started at each frame makes:")
        for start in starts:
            plan = probe_from(start, media, rate, model_detector(camera, size, None, model=model))
            if plan is None:
                print(f"  frame {start:4d}: no plan (too few people)")
                continue
            detector = model_detector(camera, size, None, model=model)
            detector.adopt(plan)
            report = run_eval(sequence, camera, fps=fps, detector=detector)
            x1, y1, x2, y2 = plan.crop
            print(
                f"  frame {start:4d}: input {plan.imgsz[1]}x{plan.imgsz[0]} on ({x1},{y1})-({x2},{y2})  "
                f"{describe(report)}",
                flush=True,
            )


if __name__ == "__main__":
    main()
