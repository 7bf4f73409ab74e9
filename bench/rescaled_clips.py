"""The dev clips as other cameras would show them: accuracy when only the resolution changes.

footfall is judged on cameras it has not seen. A camera with fewer or more pixels shows the same
scene with smaller or larger people; nothing in the counting logic is in pixels (see
``tests/test_edge_scale_free.py``), so what changes is what the detector sees. This script writes a
resized copy of each clip (video re-encoded with OpenCV's mp4v, the annotation kept: ``footfall eval``
scales it from ``seqinfo.ini``), the camera file with its lines and zones scaled alike, and runs
``footfall eval`` on it with footfall's defaults, printing each report's (``--json``) summary.

A clip can also be mirrored left to right (``venice2:1:mirror``): the same people, a camera on
the other side, so nothing in the logic may favour a direction or a side of the picture. Its
unmirrored twin at factor 1 (``venice2:1``) is re-encoded the same way, which alone moves some
boxes: compare the two with each other, not with the original.

Or cropped to another shape before it is resized (``venice2:0.6375:crop=0,500,1920,1080``, the
rectangle in the clip's video pixels): a wide street camera of 1224x370, say. The annotation is
shifted with it (a box cut by the new edge keeps its full extent, as MOTChallenge's do at the
picture's edges), and so are the lines and zones, which must lie inside the rectangle.

    .venv/bin/python bench/rescaled_clips.py [--out /tmp/footfall-rescaled] \\
        [--clip venice2:0.5 --clip venice2:0.6667 --clip pets09_s2l1:4 --clip tud_campus:3]
    .venv/bin/python bench/rescaled_clips.py --clip venice2:1 --clip venice2:1:mirror
    .venv/bin/python bench/rescaled_clips.py --clip venice2:0.6375:crop=0,500,1920,1080

Needs ``../shared`` (footage and ``yolo11n.onnx``) beside the checkout.
"""

from __future__ import annotations

import argparse
import configparser
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import cv2
import yaml

from footfall.edge.sources import sequence_info

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
DEFAULT_CLIPS = ["venice2:0.5", "venice2:0.6667", "pets09_s2l1:4", "tud_campus:3"]

Crop = tuple[int, int, int, int]  # x1, y1, x2, y2 in the clip's video pixels


def frame_size(media: Path) -> tuple[int, int]:
    capture = cv2.VideoCapture(str(media))
    size = round(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), round(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    capture.release()
    return size


def rescale_video(media: Path, factor: float, out: Path, area: Crop, mirror: bool = False) -> tuple[int, int]:
    """Writes the clip's ``area`` resized by ``factor`` (and flipped left to right if ``mirror``);
    its size."""
    capture = cv2.VideoCapture(str(media))
    fps = capture.get(cv2.CAP_PROP_FPS)
    x1, y1, x2, y2 = area
    size = (round((x2 - x1) * factor), round((y2 - y1) * factor))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    while True:
        ok, image = capture.read()
        if not ok:
            break
        image = cv2.resize(image[y1:y2, x1:x2], size, interpolation=interpolation)
        writer.write(cv2.flip(image, 1) if mirror else image)
    writer.release()
    capture.release()
    return size


def rescale_camera(
    camera_file: Path,
    factor: float,
    out: Path,
    mirror_width: float | None = None,
    origin: tuple[float, float] = (0.0, 0.0),
) -> None:
    """Lines and zones moved by ``-origin`` (a crop's corner) and scaled by ``factor``; mirrored
    in a picture ``mirror_width`` wide if given."""
    camera = yaml.safe_load(camera_file.read_text(encoding="utf-8"))

    def times(point: list[float]) -> list[float]:
        x, y = (point[0] - origin[0]) * factor, (point[1] - origin[1]) * factor
        return [round(x if mirror_width is None else mirror_width - x, 1), round(y, 1)]

    for line in camera.get("lines") or []:
        for key in ("start", "end", "inside"):
            line[key] = times(line[key])
    for zone in camera.get("zones") or []:
        zone["polygon"] = [times(p) for p in zone["polygon"]]
    out.write_text(yaml.safe_dump(camera, sort_keys=False), encoding="utf-8")


def crop_annotation(folder: Path, crop: Crop, annotated_per_video_px: float) -> None:
    """The annotation in ``folder`` (gt.txt and seqinfo.ini, in its own pixels, which are
    ``annotated_per_video_px`` video pixels each) shifted to the crop's corner; seqinfo's size
    becomes the crop's, so ``footfall eval`` scales it to the written video as before."""
    x1, y1, x2, y2 = (v * annotated_per_video_px for v in crop)

    def shifted(row: list[str]) -> None:
        row[2], row[3] = f"{float(row[2]) - x1:g}", f"{float(row[3]) - y1:g}"

    edit_gt(folder / "gt" / "gt.txt", shifted)
    info = configparser.ConfigParser()
    info.optionxform = str  # type: ignore[assignment,method-assign]  # keep MOTChallenge's key case
    info.read(folder / "seqinfo.ini")
    info["Sequence"]["imWidth"], info["Sequence"]["imHeight"] = str(round(x2 - x1)), str(round(y2 - y1))
    with (folder / "seqinfo.ini").open("w", encoding="utf-8") as fh:
        info.write(fh, space_around_delimiters=False)


def edit_gt(gt_file: Path, edit: Callable[[list[str]], None]) -> None:
    """Each MOTChallenge row of ``gt_file`` (frame, id, left, top, width, height, ...) edited in place."""
    rows = [line.split(",") for line in gt_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows:
        edit(row)
    gt_file.write_text("".join(",".join(row) + "\n" for row in rows), encoding="utf-8")


def mirror_gt(gt_file: Path, annotated_width: float) -> None:
    """MOTChallenge boxes (1-based left, top, width, height in columns 3-6) mirrored left to right."""

    def mirrored(row: list[str]) -> None:
        left, width = float(row[2]), float(row[4])
        row[2] = f"{annotated_width + 2 - left - width:g}"

    edit_gt(gt_file, mirrored)


def make_clip(
    clip: str, factor: float, out_dir: Path, mirror: bool = False, crop: Crop | None = None
) -> Path:
    source = SHARED / "data" / "video" / clip
    cropped = "" if crop is None else "-crop" + "_".join(map(str, crop))
    folder = out_dir / f"{clip}-x{factor:g}{cropped}{'-mirror' if mirror else ''}"
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(source / "gt", folder / "gt")
    shutil.copy(source / "seqinfo.ini", folder / "seqinfo.ini")
    media = next(p for p in source.iterdir() if p.suffix in {".mp4", ".avi", ".mkv"})
    source_width, source_height = frame_size(media)
    if crop is not None and not (
        0 <= crop[0] < crop[2] <= source_width and 0 <= crop[1] < crop[3] <= source_height
    ):
        raise SystemExit(
            f"{clip}: crop {list(crop)} is not inside its {source_width}x{source_height} picture"
        )
    area = crop or (0, 0, source_width, source_height)
    width, _ = rescale_video(media, factor, folder / "clip.mp4", area, mirror)
    if crop is not None:  # the annotation has its own pixels (PETS: 768 wide against a 480-pixel video)
        crop_annotation(folder, crop, float(sequence_info(source)["imwidth"]) / source_width)
    if mirror:
        mirror_gt(folder / "gt" / "gt.txt", float(sequence_info(folder)["imwidth"]))
    camera = folder / "camera.yaml"
    origin = (0.0, 0.0) if crop is None else (float(crop[0]), float(crop[1]))
    rescale_camera(
        ROOT / "edge" / "configs" / f"{clip}.yaml", factor, camera, width if mirror else None, origin
    )
    return folder


def evaluate(folder: Path, extra: list[str]) -> str:
    report_file = folder / ("report-oracle.json" if "--oracle" in extra else "report.json")
    command = [
        str(ROOT / ".venv" / "bin" / "footfall"),
        "eval",
        str(folder),
        "--config",
        str(folder / "camera.yaml"),
    ]
    command += ["--model", str(SHARED / "models" / "yolo11n.onnx"), "--max-error", "1", *extra]
    done = subprocess.run([*command, "--json", str(report_file)], capture_output=True, text=True, check=False)
    if done.returncode != 0 or not report_file.exists():
        failed = f"no result (exit {done.returncode})"
        return "\n    ".join([" ".join(command[1:]), failed, done.stderr[-2000:]])
    report = json.loads(report_file.read_text())
    plan = next((ln.split(": ", 1)[-1] for ln in done.stderr.splitlines() if "detector input" in ln), "")
    summary = (
        f"error {report['relative_error']:.1%}: missed {report['missed']}, false {report['false']}, "
        f"wrong direction {report['wrong_direction']} of {report['truth']}"
    )
    zones = [
        f"zone {z['zone']}: visits {z['counted_visits']}/{z['truth_visits']}, median dwell "
        f"{_seconds(z['counted_median_dwell_s'])} vs {_seconds(z['truth_median_dwell_s'])} s"
        f" ({_share(z['dwell_error'])} off)"
        for z in report["zones"]
    ]
    return "\n    ".join([" ".join(command[1:]), summary, *zones, plan])


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _crop(text: str) -> Crop:
    x1, y1, x2, y2 = (int(v) for v in text.split(","))
    return x1, y1, x2, y2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/footfall-rescaled"))
    parser.add_argument(
        "--clip",
        action="append",
        help="name:factor[:mirror][:crop=x1,y1,x2,y2], e.g. venice2:0.5 (repeatable)",
    )
    args = parser.parse_args()
    for spec in args.clip or DEFAULT_CLIPS:
        clip, factor, *flags = spec.split(":")
        crops = [f.removeprefix("crop=") for f in flags if f.startswith("crop=")]
        unknown = [f for f in flags if f != "mirror" and not f.startswith("crop=")]
        if unknown or len(crops) > 1 or (crops and len(crops[0].split(",")) != 4):
            parser.error(f"--clip {spec}: expected name:factor[:mirror][:crop=x1,y1,x2,y2]")
        crop = _crop(crops[0]) if crops else None
        folder = make_clip(clip, float(factor), args.out, mirror="mirror" in flags, crop=crop)
        print(evaluate(folder, []), flush=True)
        print(evaluate(folder, ["--oracle"]), flush=True)


if __name__ == "__main__":
    main()
