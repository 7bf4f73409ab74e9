"""Rank tracker, linker and counter settings in seconds: the dev clips' detections recorded once, replayed.

``footfall eval`` runs the model on every analysed frame, so judging a change to the tracking
settings on the three dev clips at two rates takes minutes. The model's answer does not depend on
those settings, so ``record`` runs ``footfall eval`` once per clip and rate with the model and keeps
what the detector returned on each frame (boxes, scores, feet, the crop it watched); ``replay``
runs the same audit again on those detections, with settings changed by ``--set``, in seconds. Both
print each run's crossing errors, zone visits and identity score (IDF1) and the sums; a replay
without ``--set`` gives the recording's figures. IDF1 is the finer measure for the tracker and the
linker: the crossings of a clip move by one or two with a single join.

``--layouts`` also scores each run on ``bench/random_layouts.py``'s layouts (seeds 2-5: 48 layouts
of 6 lines and 4 zones, drawn inside the recorded crop): the model's figures that script gives
with ``--seed 2 3 4 5`` and ``--fps 0`` or half the native rate, from the recorded detections
instead of the model. They are layouts footfall's authors did not draw, where a rule fitted to
the clips' own lines would show.

    .venv/bin/python bench/tracking_replay.py record /tmp/detections        # the model: ~3 min
    .venv/bin/python bench/tracking_replay.py replay /tmp/detections --set linking.delay_s=2.5
    .venv/bin/python bench/tracking_replay.py replay /tmp/detections --layouts  # ~2 min

Needs ``../shared`` (footage, annotation and the default model) beside the checkout.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import ValidationError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import random_layouts
from footfall.contracts.config import CameraConfig, load_config
from footfall.edge.cli import run_eval
from footfall.edge.detector import Detections
from footfall.edge.evaluation import IdentityScore, Report
from footfall.edge.groundtruth import AnnotatedClip, open_clip
from footfall.edge.pipeline import FrameDetector, model_detector
from footfall.edge.sources import Frame

ROOT = Path(__file__).resolve().parent.parent
VIDEO = ROOT.parent / "shared" / "data" / "video"
CLIPS = ("venice2", "pets09_s2l1", "tud_campus")
RATES = ("native", "half")
LAYOUT_SEEDS = (2, 3, 4, 5)  # bench/random_layouts.py --seed 2 3 4 5, its defaults for the rest
NAME_WIDTH = 22  # the run's name column of every printed row
Crop = tuple[int, int, int, int]


@dataclass
class Recorder:
    """The default model as ``run_eval``'s detector, keeping each frame's answer."""

    camera: CameraConfig
    inner: Any = None
    frames: dict[int, tuple[Detections, Crop | None]] = field(default_factory=dict)

    @property
    def watched(self) -> Crop | None:
        return None if self.inner is None else self.inner.watched

    def __call__(self, frame: Frame) -> Detections:
        if self.inner is None:
            assert frame.image is not None
            height, width = frame.image.shape[:2]
            self.inner = model_detector(self.camera, (width, height), None)
        found = self.inner(frame)
        self.frames[frame.index] = (found, self.inner.watched)
        return found


@dataclass
class Replayer:
    """A recording's detections, frame by frame, with the crop the model watched."""

    frames: dict[int, tuple[Detections, Crop | None]]
    watched: Crop | None = None

    def __call__(self, frame: Frame) -> Detections:
        found, self.watched = self.frames[frame.index]
        return found


def save(path: Path, frames: dict[int, tuple[Detections, Crop | None]]) -> None:
    index = sorted(frames)
    found = [frames[i][0] for i in index]
    crops = [frames[i][1] or (-1, -1, -1, -1) for i in index]
    np.savez_compressed(
        path,
        index=np.array(index, dtype=np.int64),
        count=np.array([len(d) for d in found], dtype=np.int64),
        xyxy=np.concatenate([d.xyxy for d in found]).reshape(-1, 4),
        conf=np.concatenate([d.conf for d in found]),
        ground=np.concatenate([d.ground for d in found]).reshape(-1, 2),
        crop=np.array(crops, dtype=np.int64).reshape(-1, 4),
    )


def load(path: Path) -> dict[int, tuple[Detections, Crop | None]]:
    data = np.load(path)
    bounds = np.concatenate([[0], np.cumsum(data["count"])])
    frames: dict[int, tuple[Detections, Crop | None]] = {}
    for k, frame in enumerate(data["index"].tolist()):
        lo, hi = bounds[k], bounds[k + 1]
        crop = tuple(int(v) for v in data["crop"][k])
        found = Detections(data["xyxy"][lo:hi], data["conf"][lo:hi], data["ground"][lo:hi])
        frames[frame] = (found, None if crop[0] < 0 else (crop[0], crop[1], crop[2], crop[3]))
    return frames


def runs() -> Iterator[tuple[str, str, CameraConfig, AnnotatedClip, float]]:
    """Each dev clip at its native rate (``fps`` 0: every frame) and at half of it."""
    for clip in CLIPS:
        camera = load_config(ROOT / "edge" / "configs" / f"{clip}.yaml", CameraConfig)
        annotated = open_clip(VIDEO / clip)  # the media's own rate
        for rate in RATES:
            yield clip, rate, camera, annotated, 0.0 if rate == "native" else annotated.native_fps / 2


def with_settings(camera: CameraConfig, settings: list[str]) -> CameraConfig:
    """``camera`` with each ``section.key=value`` applied (YAML values, validated as a file's are)."""
    data = camera.model_dump()
    for setting in settings:
        key, _, value = setting.partition("=")
        section, _, name = key.partition(".")
        if not name or section not in data or not isinstance(data[section], dict):
            raise SystemExit(f"--set {setting!r}: expected section.key=value, e.g. linking.delay_s=2.5")
        data[section][name] = yaml.safe_load(value)
    try:
        return CameraConfig.model_validate(data)
    except ValidationError as exc:
        raise SystemExit(f"--set {' '.join(settings)}: {exc}") from None


def line(name: str, report: Report) -> str:
    zones = sum(z.counted_visits for z in report.zones), sum(z.truth_visits for z in report.zones)
    ident = report.identity
    idf1 = (
        f"IDF1 {ident.idf1:6.1%} (boxes {ident.followed} followed, {ident.switched} switched, "
        f"{ident.fragments} in pieces, {ident.unmatched} untracked)"
        if ident is not None
        else ""
    )
    return (
        f"{name:{NAME_WIDTH}s} crossings missed {report.total('missed'):2d} false {report.total('false'):2d} "
        f"wrong {report.total('wrong_direction'):2d} of {report.truth_total:3d}  "
        f"visits {zones[0]:3d} ({zones[1]:3d})  {idf1}"
    )


def layout_score(
    camera: CameraConfig, clip: AnnotatedClip, fps: float, detector: FrameDetector
) -> random_layouts.Score:
    """The run scored on ``random_layouts``' layouts of ``LAYOUT_SEEDS``, and its row printed. The
    tracker and linker run again on the detections (``run_eval`` returns its report, not the
    people it tracked), then the counter once per layout."""
    recording = random_layouts.record(clip.media, camera, fps or None, detector, clip.rows)
    crop = recording.crop or (0, 0, *clip.size)
    people_there = random_layouts.people(clip.rows, clip.native_fps, random_layouts.NEAR)
    total = random_layouts.Score()
    for seed in LAYOUT_SEEDS:
        layouts = random_layouts.draw_layouts(seed, people_there, crop)
        for layout, truth in random_layouts.with_truth(camera, layouts, clip.rows, clip.native_fps):
            total += random_layouts.score(layout, recording, truth)
    print(f"{'':{NAME_WIDTH}s} random layouts: {total.summary()}", flush=True)
    return total


def audit(
    folder: Path,
    detector_for: Callable[[str, str, CameraConfig], Recorder | Replayer],
    settings: list[str],
    *,
    layouts: bool = False,
) -> None:
    """Each run audited and printed (and scored on the random layouts with ``layouts``), then the
    sums. A ``Recorder``'s detections are saved in ``folder``, one .npz a run."""
    reports: list[Report] = []
    on_layouts = random_layouts.Score()
    for clip, rate, camera, annotated, fps in runs():
        camera = with_settings(camera, settings)
        detector = detector_for(clip, rate, camera)
        report = run_eval(annotated.sequence, camera, fps=fps, detector=detector)
        if isinstance(detector, Recorder):
            save(folder / f"{clip}-{rate}.npz", detector.frames)
        print(line(f"{clip} {rate}", report), flush=True)
        reports.append(report)
        if layouts:
            on_layouts += layout_score(camera, annotated, fps, detector)
    print_sums(reports, on_layouts if layouts else None)


def print_sums(reports: list[Report], on_layouts: random_layouts.Score | None) -> None:
    errors, truth = sum(r.abs_error for r in reports), sum(r.truth_total for r in reports)
    scores = [r.identity for r in reports if r.identity is not None]
    pooled = IdentityScore(
        sum(s.idtp for s in scores), sum(s.annotated for s in scores), sum(s.tracked for s in scores)
    )
    print(f"all: summed |error| {errors} of {truth} crossings; IDF1 {pooled.idf1:.1%} (pooled)")
    if on_layouts is not None:
        # The counts docs/accuracy.md's tables compare, beside the rates summary() gives.
        print(
            f"all random layouts: crossings {on_layouts.abs_error} of {on_layouts.crossings} wrong, "
            f"zone visits {on_layouts.visit_gap} of {on_layouts.visits}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("record", "replay"))
    parser.add_argument("folder", type=Path, help="where the recorded detections are (one .npz a run)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument(
        "--layouts", action="store_true", help="replay: also score random_layouts.py's layouts"
    )
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    if args.mode == "record":
        if args.layouts:
            parser.error("--layouts scores a replay: record first, then replay --layouts")
        audit(args.folder, lambda clip, rate, camera: Recorder(camera), args.settings)
    else:
        audit(
            args.folder,
            lambda clip, rate, camera: Replayer(load(args.folder / f"{clip}-{rate}.npz")),
            args.settings,
            layouts=args.layouts,
        )


if __name__ == "__main__":
    main()
