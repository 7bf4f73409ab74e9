"""Venice-2 through a worse camera: one that moves, one in dim light, one that compresses hard.

footfall's cameras are fixed, but a camera on a pole sways and a handheld test recording pans;
shops are dim at dusk and cheap cameras stream at a low bit rate. This script writes Venice-2 as
such a camera would show it, with its annotation and layout, and runs ``footfall eval`` on each
copy at footfall's default rate and at every frame, with the model and with the annotated boxes
(``--oracle``), printing each report's summary (``bench/rescaled_clips.py``'s ``evaluate``).

Moving: a 1600x900 window whose corner follows ``x = 160 + AX sin(2 pi t / PX)`` and ``y = 155 +
AY sin(2 pi t / PY)`` (pixels, seconds), its annotation shifted frame by frame; the lines and the
zone stay where they are in the window (a line is drawn on the picture), so people also cross
them as the camera moves, and the truth counts that too. The lines end at row 1020 of the clip in
every copy, ``still`` included, so that no line leaves the window at its lowest.

    still   the window without motion: what the moving copies are compared with
    pan     AX 150 px, PX 8 s: a slow pan back and forth
    bob     the pan with AY 25 px, PY 1 s: a camera carried by someone walking
    shake   AX 60 px, PX 2 s, AY 25 px, PY 0.7 s: a camera on a pole in the wind

The whole picture, 1920x1080:

    copy    re-encoded as it is (the others are re-encoded the same way)
    jpeg    every frame through JPEG at quality 20 first: a low bit rate's blocks
    dim     grey levels through a 2.2 power times 0.6 (the median grey 68 -> 5), noise of 5
            grey levels, then JPEG at quality 20: a dim scene whose shadows are crushed

``--light`` instead measures the detector alone (its input 1088x512, the model's boxes at 0.25
and at 0.4, IoU 0.5 with the annotated ones) on 20 frames of each dev clip, every grey level
multiplied by a factor (a camera's exposure) with a noise of 2 levels: the share of annotated
people found as the light falls, beside the picture's median and 95th percentile grey levels
(a camera reports ``dark`` below 40 at the 95th: docs/edge.md, "Camera health").

    .venv/bin/python bench/camera_conditions.py [--out /tmp/footfall-cameras] [--copy still pan]
    .venv/bin/python bench/camera_conditions.py --light

Needs ``../shared`` (footage and ``yolo11n.onnx``) beside the checkout.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rescaled_clips import SHARED, crop_annotation, edit_gt, evaluate, frame_size, rescale_camera
from footfall.edge.geometry import iou_matrix
from footfall.edge.groundtruth import load_gt
from footfall.edge.inference import YoloModel
from footfall.edge.sources import sequence_info

ROOT = Path(__file__).resolve().parents[1]
VENICE = SHARED / "data" / "video" / "venice2"
VENICE_CAMERA = ROOT / "edge" / "configs" / "venice2.yaml"
FPS = 30.0
WINDOW = (1600, 900)
CORNER = (160, 155)
LINE_BOTTOM = 1020
MOVES = {"still": (0, 0, 0, 0), "pan": (150, 8, 0, 0), "bob": (150, 8, 25, 1), "shake": (60, 2, 25, 0.7)}
FILTERS = ("copy", "jpeg", "dim")
RUNS = (["--fps", "0"], [], ["--oracle", "--fps", "0"], ["--oracle"])
Image = np.ndarray


def corner_at(move: tuple[float, float, float, float]) -> Callable[[int], tuple[int, int]]:
    """The window's top-left corner on a (0-based) frame."""
    ax, px, ay, py = move

    def corner(frame: int) -> tuple[int, int]:
        t = frame / FPS
        x = CORNER[0] + (ax * math.sin(2 * math.pi * t / px) if px else 0.0)
        y = CORNER[1] + (ay * math.sin(2 * math.pi * t / py) if py else 0.0)
        return round(x), round(y)

    return corner


def jpeg(image: Image, quality: int = 20) -> Image:
    return np.asarray(cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], 1))


def dim_filter() -> Callable[[Image], Image]:
    lut = (255 * (np.arange(256) / 255) ** 2.2 * 0.6).astype(np.uint8)
    rng = np.random.default_rng(0)

    def dim(image: Image) -> Image:
        noisy = cv2.LUT(image, lut).astype(np.float32) + rng.normal(0, 5, image.shape).astype(np.float32)
        return jpeg(np.clip(noisy, 0, 255).astype(np.uint8))

    return dim


def write_copy(name: str, out_dir: Path) -> Path:
    """Venice-2 as the camera ``name`` shows it: video, annotation, seqinfo.ini and camera.yaml."""
    folder = out_dir / name
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(VENICE / "gt", folder / "gt")
    shutil.copy(VENICE / "seqinfo.ini", folder / "seqinfo.ini")
    if name in MOVES:
        corner = corner_at(MOVES[name])
        write_moving_layout(folder, corner)
        size = WINDOW
    else:
        shutil.copy(VENICE_CAMERA, folder / "camera.yaml")
        corner, size = (lambda _: (0, 0)), frame_size(VENICE / "Venice-2.mp4")
    picture = {"jpeg": jpeg, "dim": dim_filter()}.get(name, lambda image: image)
    capture = cv2.VideoCapture(str(VENICE / "Venice-2.mp4"))
    writer = cv2.VideoWriter(str(folder / "clip.mp4"), cv2.VideoWriter.fourcc(*"mp4v"), FPS, size)
    frame = 0
    while (read := capture.read())[0]:
        x, y = corner(frame)
        writer.write(picture(read[1][y : y + size[1], x : x + size[0]]))
        frame += 1
    writer.release()
    capture.release()
    return folder


def write_moving_layout(folder: Path, corner: Callable[[int], tuple[int, int]]) -> None:
    """The annotation and layout of ``folder`` moved into the window: to its resting corner as a
    crop (``bench/rescaled_clips.py``), then each frame's annotation by its own offset from it;
    the lines cut at ``LINE_BOTTOM``."""
    x0, y0 = CORNER
    crop_annotation(folder, (x0, y0, x0 + WINDOW[0], y0 + WINDOW[1]), 1.0)

    def moved(row: list[str]) -> None:  # MOTChallenge frames are 1-based
        x, y = corner(int(row[0]) - 1)
        row[2], row[3] = f"{float(row[2]) - (x - x0):g}", f"{float(row[3]) - (y - y0):g}"

    edit_gt(folder / "gt" / "gt.txt", moved)
    rescale_camera(VENICE_CAMERA, 1.0, folder / "camera.yaml", origin=(x0, y0))
    camera = yaml.safe_load((folder / "camera.yaml").read_text(encoding="utf-8"))
    for line in camera["lines"]:
        for key in ("start", "end"):
            line[key][1] = min(line[key][1], LINE_BOTTOM - y0)
    (folder / "camera.yaml").write_text(yaml.safe_dump(camera, sort_keys=False), encoding="utf-8")


def light_recall() -> None:
    """The detector's recall on 20 frames of each dev clip as every grey level is scaled down."""
    model = YoloModel(SHARED / "models" / "yolo11n.onnx")
    rng = np.random.default_rng(0)
    for clip in ("venice2", "pets09_s2l1", "tud_campus"):
        folder = SHARED / "data" / "video" / clip
        media = next(p for p in folder.iterdir() if p.suffix == ".mp4")
        width, height = frame_size(media)
        annotation = load_gt(folder / "gt" / "gt.txt", width / float(sequence_info(folder)["imwidth"]))
        imgsz = (512, 1088) if width > height * 1.5 else (480, 640)
        frames = sampled_frames(media, 20)
        for factor in (1, 0.7, 0.5, 0.35, 0.25, 0.18, 0.12):
            found, greys, people = np.zeros(2), [], 0
            for index, image in frames:
                noise = rng.normal(0, 2, image.shape)
                dark = np.clip(image * factor + noise, 0, 255).astype(np.uint8)
                greys.append(np.percentile(cv2.cvtColor(dark, cv2.COLOR_BGR2GRAY), [50, 95]))
                boxes = annotation[annotation[:, 0] == index][:, 2:6]
                people += len(boxes)
                found += people_found(model, dark, imgsz, np.c_[boxes[:, :2], boxes[:, :2] + boxes[:, 2:]])
            median, p95 = np.median(greys, axis=0)
            print(
                f"{clip:12s} light x{factor:<5g} grey median {median:5.1f}, 95th pct {p95:5.1f}  "
                f"found at 0.25: {found[0] / people:.2f}, at 0.4: {found[1] / people:.2f} (of {people})",
                flush=True,
            )


def sampled_frames(media: Path, count: int) -> list[tuple[int, Image]]:
    capture = cv2.VideoCapture(str(media))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    frames = []
    for index in np.linspace(0, total - 1, count).astype(int):
        capture.set(cv2.CAP_PROP_POS_FRAMES, int(index))
        frames.append((int(index), capture.read()[1]))
    capture.release()
    return frames


def people_found(model: YoloModel, image: Image, imgsz: tuple[int, int], truth: np.ndarray) -> np.ndarray:
    """How many of the annotated boxes ``truth`` a detection matches (IoU 0.5) at 0.25 and at 0.4."""
    people = model([image], imgsz, 0.25, 0.7)[0]
    if not len(truth) or not len(people.xyxy):
        return np.zeros(2)
    matched = iou_matrix(truth, people.xyxy) >= 0.5
    return np.array([matched.any(1).sum(), matched[:, people.conf >= 0.4].any(1).sum()], dtype=float)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/footfall-cameras"))
    parser.add_argument("--copy", nargs="+", choices=[*MOVES, *FILTERS], default=[*MOVES, *FILTERS])
    parser.add_argument("--light", action="store_true", help="the detector's recall as the light falls")
    args = parser.parse_args()
    if args.light:
        light_recall()
        return
    for name in args.copy:
        folder = write_copy(name, args.out)
        for extra in RUNS:
            print(evaluate(folder, extra), flush=True)


if __name__ == "__main__":
    main()
