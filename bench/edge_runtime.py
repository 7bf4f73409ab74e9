"""The torch-free edge runtime (issue 11): speed against the torch pipeline, memory per process.

1. **Speed per camera.** The same decoded 1080p frames (in memory), the same tracker, linker and
   counter, the same model input size; only the detector differs: footfall's runtime on the
   exported ONNX model vs Ultralytics on torch with the ``.pt`` weights (the pipeline footfall
   ran before). Frames per second of the whole per-frame pipeline, and the counts of both.
2. **Memory.** Peak resident memory of fresh processes: ``footfall count`` on the clip, and
   ``run_store`` (what ``footfall edge run --config STORE.yaml`` runs) with 1, 2 and 4 cameras on
   the clip, events counted in memory (no broker). The ratio 2 cameras / 1 camera is what issue
   11 bounds (<= 1.5x); 4 cameras must stay <= 800 MB.
3. **A restart.** One camera started twice with its plans kept in a folder, as ``edge run``
   keeps them beside its queue (edge/plan_file.py): the first start probes at the largest input
   and plans, the second detects with the kept plan from its first frame. Peak memory and wall
   time of each, and whether both counted the same.

    .venv/bin/python bench/edge_runtime.py ../shared/data/video/venice2/Venice-2.mp4 \\
        --config edge/configs/venice2.yaml --pt ../shared/models/yolov8n.pt --frames 150

Needs the ``export`` extra (torch, Ultralytics) for the torch side and the ``.pt`` export.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from edge_throughput import MemorySource  # noqa: E402

from footfall.contracts.config import CameraConfig, load_config  # noqa: E402
from footfall.edge.detector import Detections, PersonDetector, ground_points  # noqa: E402
from footfall.edge.pipeline import run_frames  # noqa: E402


def read_frames(video: Path, count: int) -> tuple[list[np.ndarray], float]:
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    frames = []
    while len(frames) < count:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    return frames, fps


class TorchDetector:
    """Ultralytics on torch, as footfall's detector was before the runtime (same conf / iou)."""

    def __init__(self, camera: CameraConfig, weights: Path, imgsz: tuple[int, int]) -> None:
        from footfall.edge.detector import prepare_offline_ultralytics

        prepare_offline_ultralytics()
        from ultralytics import YOLO

        self.model, self.camera, self.imgsz = YOLO(str(weights)), camera, imgsz

    def __call__(self, frame: object) -> Detections:
        result = self.model.predict(
            frame.image,  # type: ignore[attr-defined]
            imgsz=list(self.imgsz),
            conf=min(self.camera.model.conf, 0.1),
            iou=self.camera.model.iou,
            classes=[0],
            verbose=False,
        )[0]
        xyxy = result.boxes.xyxy.numpy().astype(np.float64)
        keypoints = None if result.keypoints is None else result.keypoints.data.numpy().astype(np.float64)
        return Detections(
            xyxy, result.boxes.conf.numpy().astype(np.float64), ground_points(xyxy, keypoints, 0.5)
        )


class RuntimeDetector:
    def __init__(self, camera: CameraConfig, weights: Path, imgsz: tuple[int, int]) -> None:
        self.detect = PersonDetector(camera.model, (0, 0), weights=str(weights), imgsz=imgsz)

    def __call__(self, frame: object) -> Detections:
        return self.detect(frame.image)  # type: ignore[attr-defined]


def pipeline_fps(
    frames: list[np.ndarray], fps: float, camera: CameraConfig, detector: object
) -> tuple[float, int]:
    """Frames per second of detect + track + link + count once warm, and the crossings counted."""
    source = MemorySource(frames, fps)
    outcomes = run_frames(source, camera, detector=detector)  # type: ignore[arg-type]
    crossings = len(next(outcomes).result.crossings)  # warm-up (model compile, first frame)
    served, t0 = source.served, time.perf_counter()
    for outcome in outcomes:
        crossings += len(outcome.result.crossings)
    return (source.served - served) / (time.perf_counter() - t0), crossings


_STORE_RUN = """
import json, sys, yaml
from pathlib import Path
from footfall.contracts.config import StoreConfig, validate_config
from footfall.edge.detector import load_model
from footfall.edge.multicam import RunOptions, run_store
config = validate_config(yaml.safe_load(open(sys.argv[1])), StoreConfig, source=sys.argv[1])
plans = Path(sys.argv[3]) if len(sys.argv) > 3 else None
events = []
runs = run_store(config, load_model(config.model, sys.argv[2]), events.append,
                 RunOptions(None, lambda s, c: c.model.analysis_fps, lambda s: False, 10.0, lambda: False,
                            plans_in=plans))
assert all(r.error is None for r in runs), [r.error for r in runs]
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "ultralytics"))
crossings = sorted((e.line, e.direction, e.frame) for e in events if e.type == "crossing")
print(json.dumps({"events": len(events), "heavy": heavy, "crossings": crossings}))
"""


def store_peak(
    clip: Path, config: Path, cameras: int, model: Path, work: Path, plans: Path | None = None
) -> dict[str, object]:
    import yaml

    data = yaml.safe_load(config.read_text())
    entry = {k: v for k, v in data.items() if k not in ("store", "camera", "model")}
    store = {
        "store": data["store"],
        "cameras": [{"camera": f"cam-{k}", "source": str(clip), **entry} for k in range(cameras)],
    }
    path = work / f"store-{cameras}.yaml"
    path.write_text(yaml.safe_dump(store))
    # GNU time reports the child's own peak; the child's ru_maxrss would include this process's
    # (Linux keeps the high-water mark across fork and exec).
    command = ["/usr/bin/time", "-f", "%M", sys.executable, "-c", _STORE_RUN, str(path), str(model)]
    started = time.perf_counter()
    command += [str(plans)] if plans else []
    run = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(run.stdout.strip().splitlines()[-1])
    result["peak_mib"] = int(run.stderr.strip().splitlines()[-1]) / 1024
    result["wall_s"] = time.perf_counter() - started
    return result


def restart(clip: Path, config: Path, model: Path, work: Path) -> None:
    """One camera started twice with its plan kept in between (part 3 of the docstring)."""
    plans = work / "plans"
    first = store_peak(clip, config, 1, model, work, plans)
    kept_files = list(plans.glob("plan-*.json"))
    if not kept_files:
        raise SystemExit(f"the first start kept no plan in {plans}: too few frames with people to plan")
    kept = json.loads(kept_files[0].read_text())
    second = store_peak(clip, config, 1, model, work, plans)
    print(f"restart with the kept plan ({kept['imgsz'][1]}x{kept['imgsz'][0]} on {kept['crop']}):")
    for name, got in (("first start (probes, plans)", first), ("second start (kept plan)", second)):
        mib, wall = f"{got['peak_mib']:.0f}", f"{got['wall_s']:.1f}"
        print(f"  {name:28s} peak RSS {mib} MiB, {wall} s, {got['events']} events")
    print(f"  same crossings: {first['crossings'] == second['crossings']}")


def count_peak(clip: Path, config: Path, model: Path, work: Path) -> float:
    """Peak RSS (MiB) of a whole ``footfall count`` process (GNU time's maximum resident size)."""
    out = work / "count.jsonl"
    cmd = ["/usr/bin/time", "-f", "%M", str(REPO / ".venv" / "bin" / "footfall"), "count", str(clip)]
    run = subprocess.run(
        [*cmd, "--config", str(config), "--model", str(model), "--out", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(run.stderr.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clip", type=Path, help="a 1080p recording")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--pt", type=Path, required=True, help=".pt weights for the torch side")
    parser.add_argument("--onnx", type=Path, default=REPO.parent / "shared" / "models" / "yolo11n.onnx")
    parser.add_argument("--frames", type=int, default=150, help="frames for the speed and memory runs")
    parser.add_argument("--imgsz", type=int, nargs=2, default=(608, 1088), help="model input (h w)")
    parser.add_argument("--memory-only", action="store_true", help="skip the speed comparison")
    args = parser.parse_args()
    camera = load_config(args.config, CameraConfig)
    frames, fps = read_frames(args.clip, args.frames)
    imgsz = tuple(args.imgsz)
    from footfall.edge.models import runtime_model

    exported = runtime_model(args.pt, camera.model)  # the .pt as the runtime loads it (cached)
    print(
        f"{len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]}, model input {imgsz[1]}x{imgsz[0]}"
    )
    sides = (("torch (Ultralytics, .pt)", TorchDetector), ("runtime (ONNX)", RuntimeDetector))
    for name, make in () if args.memory_only else sides:
        weights = args.pt if make is TorchDetector else exported
        rate, crossings = pipeline_fps(frames, fps, camera, make(camera, weights, imgsz))
        print(f"  {name:26s} {rate:6.2f} frames/s per camera, {crossings} crossings")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clip = work / "clip.mp4"
        writer = cv2.VideoWriter(
            str(clip), cv2.VideoWriter_fourcc(*"mp4v"), fps, (frames[0].shape[1], frames[0].shape[0])
        )
        for image in frames:
            writer.write(image)
        writer.release()
        count_mib = count_peak(clip, args.config, args.onnx, work)
        print(f"peak RSS, footfall count ({args.onnx.name}): {count_mib:.0f} MiB")
        peaks = {n: store_peak(clip, args.config, n, args.onnx, work) for n in (1, 2, 4)}
        for n, got in peaks.items():
            print(f"peak RSS, run_store with {n} camera(s): {got['peak_mib']:.0f} MiB, ", end="")
            print(f"{got['events']} events, torch/ultralytics modules loaded: {got['heavy']}")
        mib = {n: float(str(got["peak_mib"])) for n, got in peaks.items()}
        print(f"2 cameras / 1 camera: {mib[2] / mib[1]:.2f}x; 4 cameras: {mib[4]:.0f} MiB")
        restart(clip, args.config, args.onnx, work)


if __name__ == "__main__":
    main()
