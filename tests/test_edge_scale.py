"""The detector's input size and crop, planned from the people a camera shows (edge/scale.py)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from footfall.contracts.config import CameraConfig, validate_config
from footfall.edge.scale import MIN_INPUT, InputPlan, near_layout, plan_input, probe_imgsz
from tests.layout_support import scaled_layout


def config(**model: object) -> CameraConfig:
    data = {
        "store": "s",
        "camera": "c",
        "lines": [{"name": "door", "start": [800, 600], "end": [1200, 600], "inside": [1000, 500]}],
        "model": model,
    }
    return validate_config(data, CameraConfig, source="cam.yaml")


@pytest.mark.parametrize(
    ("frame", "people_px"),
    [
        ((1920, 1080), 30.0),  # 1080p: shrunk so that people stay ~64 px
        ((3840, 2160), 60.0),  # 4K: the same scene, twice the pixels
        ((1920, 1080), 100.0),  # large people: the input's floor
        ((640, 360), 30.0),  # a small camera: enlarged beyond its own pixels
    ],
)
def test_people_reach_the_target_height_at_the_input(frame: tuple[int, int], people_px: float) -> None:
    factor = frame[0] / 1920
    plan = plan_input(scaled_layout(config(), factor), frame, np.full(20, people_px))
    x1, y1, x2, y2 = plan.crop
    at_input = people_px * max(plan.imgsz) / max(x2 - x1, y2 - y1)
    assert at_input >= 64
    # Rounding to the stride only adds a little, unless the floor of the input size lifted it.
    assert at_input <= 64 * 1.2 or max(plan.imgsz) == MIN_INPUT
    assert all(side % 32 == 0 for side in plan.imgsz)
    # The crop holds the line and a person standing on it (head one height above the feet).
    assert x1 <= 800 * factor
    assert x2 >= 1200 * factor
    assert y1 <= 600 * factor - people_px


def test_the_crop_and_scale_follow_the_people_not_the_resolution() -> None:
    small = plan_input(config(), (1920, 1080), np.full(20, 30.0))
    large = plan_input(config(), (1920, 1080), np.full(20, 90.0))
    assert max(small.imgsz) > max(large.imgsz)  # small people: more input pixels
    assert (small.crop[2] - small.crop[0]) < (large.crop[2] - large.crop[0])  # margins in heights


def test_imgsz_cap_and_whole_picture_without_cropping() -> None:
    plan = plan_input(config(max_imgsz=640, crop_to_layout=False), (1920, 1080), np.full(20, 50.0))
    assert plan.crop == (0, 0, 1920, 1080)
    assert max(plan.imgsz) == 640
    assert "capped by model.max_imgsz" in plan.reason


def test_a_cap_that_leaves_people_too_small_is_a_warning_at_start_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An installer must hear when the CPU budget keeps far people well below what the model sees,
    and what to change; a plan within the budget, or just over it, warns of nothing."""
    from footfall.edge.detector import Detections
    from footfall.edge.scale import LayoutDetector

    capped = plan_input(config(max_imgsz=640, crop_to_layout=False), (1920, 1080), np.full(20, 50.0))
    assert capped.warning is not None
    assert "17 px at the model input, well under the 64 px" in capped.warning  # 50 px x 640 / 1920
    assert "model.max_imgsz 640" in capped.warning
    assert plan_input(config(), (1920, 1080), np.full(20, 50.0)).warning is None  # not capped
    # Capped a little (57 px for 64, 0.9 of the aim) costs little: said in the plan, not warned.
    slightly = plan_input(config(max_imgsz=640, crop_to_layout=False), (1920, 1080), np.full(20, 172.0))
    assert "capped by model.max_imgsz" in slightly.reason
    assert slightly.warning is None

    def make(imgsz: tuple[int, int]) -> Callable[[np.ndarray], Detections]:
        return lambda image: Detections(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 2)))

    detector = LayoutDetector(config(), (1920, 1080), make)
    with caplog.at_level("WARNING", logger="footfall.edge.scale"):
        detector.adopt(capped)
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "s/c: the smallest people near the layout are 17 px" in caplog.records[0].getMessage()


def test_probe_uses_the_largest_affordable_input() -> None:
    assert probe_imgsz(config(), (1920, 1080)) == (736, 1280)
    assert probe_imgsz(config(), (640, 480)) == (480, 640)  # never above the camera's own


def test_only_people_near_the_layout_are_measured() -> None:
    ground = np.array([[1000.0, 610.0], [1000.0, 1000.0], [300.0, 600.0]])
    near = near_layout(config(), ground, np.full(3, 100.0))
    assert near.tolist() == [True, False, False]


def perspective_config() -> CameraConfig:
    data = {
        "store": "s",
        "camera": "c",
        "lines": [{"name": "aisle", "start": [960, 600], "end": [960, 1000], "inside": [1200, 800]}],
    }
    return validate_config(data, CameraConfig, source="cam.yaml")


def test_the_crop_margin_follows_the_height_of_people_at_each_edge() -> None:
    # A camera looking down a floor: people with their feet on row y are 0.5 * y - 100 px tall
    # (200 px at the line's far end, 400 px at its near end).
    feet_y = np.linspace(560, 1040, 24)
    heights = 0.5 * feet_y - 100
    plan = plan_input(perspective_config(), (1920, 1080), heights, feet_y)
    flat = plan_input(perspective_config(), (1920, 1080), heights)
    top_height = 0.5 * 600 - 100
    assert plan.crop[1] <= 600 - top_height  # a person standing on the far end fits, head and all
    assert plan.crop[1] >= 600 - 2 * top_height  # ... but the margin is theirs, not a near person's
    assert flat.crop[1] < plan.crop[1] - 100  # without rows, the tall tenth sets every margin
    assert "px at the layout's top" in plan.reason  # the start-up log says which heights it used


def test_rows_without_spread_keep_the_single_height() -> None:
    heights = np.linspace(90, 110, 20)
    same_row = plan_input(perspective_config(), (1920, 1080), heights, np.full(20, 800.0))
    assert same_row.crop == plan_input(perspective_config(), (1920, 1080), heights).crop


def test_the_watched_part_of_the_picture_is_the_planned_crop() -> None:
    """The linker treats a walk out of the crop as a walk out of the view (edge/linking.py)."""
    from footfall.edge.detector import Detections
    from footfall.edge.pipeline import _watched
    from footfall.edge.scale import LayoutDetector

    def nobody(image: np.ndarray) -> Detections:
        return Detections(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 2)))

    picture = np.zeros((1080, 1920, 3), np.uint8)
    probing = LayoutDetector(config(), (1920, 1080), lambda imgsz: nobody)
    assert probing.watched is None
    assert _watched(probing, picture) == (0, 0, 1920, 1080)
    plan = plan_input(config(), (1920, 1080), np.full(20, 60.0))
    assert plan.crop != (0, 0, 1920, 1080)
    probing.adopt(plan)
    assert _watched(probing, picture) == plan.crop
    assert _watched(nobody, picture) == (0, 0, 1920, 1080)  # a plain detector watches it all


def test_a_quiet_scene_is_planned_after_the_patience_with_few_people() -> None:
    """A camera that starts before the store opens sees one passer-by now and then: it plans
    after PROBE_PATIENCE_S from the few it saw, instead of probing at the largest input forever.
    (The stream's clock starts at 0.0, which once read as "not started".)"""
    from footfall.edge.detector import Detections
    from footfall.edge.scale import PROBE_MIN_SIGHTINGS, PROBE_PATIENCE_S, LayoutDetector
    from footfall.edge.sources import Frame

    calls = itertools.count()

    def one_in_three(image: np.ndarray) -> Detections:
        if next(calls) % 3:
            return Detections(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 2)))
        return Detections(
            np.array([[960.0, 500.0, 1000.0, 610.0]]), np.array([0.9]), np.array([[980.0, 610.0]])
        )

    detector = LayoutDetector(config(), (1920, 1080), lambda imgsz: one_in_three)
    picture = np.zeros((1080, 1920, 3), np.uint8)
    planned_at = None
    for second in range(int(PROBE_PATIENCE_S) + 3):
        detector(Frame(second, float(second), picture, 0.0))
        if detector.plan is not None and planned_at is None:
            planned_at = second
    assert (int(PROBE_PATIENCE_S) + 2) // 3 >= PROBE_MIN_SIGHTINGS  # enough people by then
    assert planned_at == PROBE_PATIENCE_S


@pytest.mark.parametrize(
    ("model", "problem"),
    [
        ({"crop": [400, 10, 300, 500], "imgsz": [512, 1088]}, "crop: expected"),  # x2 before x1
        ({"crop": [-1, 10, 300, 500], "imgsz": [512, 1088]}, "crop: expected"),
        ({"crop": [10, 10, 300, 500]}, "crop: set imgsz as well"),
    ],
)
def test_a_pinned_crop_is_checked_where_it_is_written(model: dict[str, object], problem: str) -> None:
    from footfall.contracts.config import ConfigError

    with pytest.raises(ConfigError, match=rf"cam\.yaml: model: .*{problem}"):
        config(**model)


def test_the_logged_plan_pinned_in_the_camera_file_is_used_from_the_first_frame() -> None:
    """The plan depends on who is in view at start; the start-up log says how to keep it, and a
    camera file with those two keys detects on that crop at that input without probing."""
    from footfall.contracts.config import ConfigError
    from footfall.edge.detector import Detections
    from footfall.edge.scale import LayoutDetector
    from footfall.edge.sources import Frame

    planned = plan_input(config(), (1920, 1080), np.full(20, 60.0))
    assert "model: {imgsz: [" in planned.describe((1920, 1080))
    shapes: list[tuple[int, ...]] = []
    inputs: list[tuple[int, int]] = []

    def make(imgsz: tuple[int, int]) -> Callable[[np.ndarray], Detections]:
        inputs.append(imgsz)

        def detect(image: np.ndarray) -> Detections:
            shapes.append(image.shape)
            return Detections(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 2)))

        return detect

    pinned = LayoutDetector(config(**planned.pinned()), (1920, 1080), make)
    assert pinned.plan is not None
    assert (pinned.plan.crop, pinned.plan.imgsz) == (planned.crop, planned.imgsz)
    pinned(Frame(0, 0.0, np.zeros((1080, 1920, 3), np.uint8), 0.0))
    x1, y1, x2, y2 = planned.crop
    assert inputs == [planned.imgsz]  # never the probe's input
    assert shapes == [(y2 - y1, x2 - x1, 3)]  # the crop, from the first frame
    with pytest.raises(ConfigError, match=r"cam\.yaml: model\.crop: .* beyond the 640x360 picture"):
        LayoutDetector(config(**planned.pinned()), (640, 360), make)


def test_the_report_tells_the_input_and_how_tall_the_people_near_the_layout_are_at_it() -> None:
    """What a heartbeat carries (ops dashboard: people too small for the detector): the input,
    and the 10th percentile of the confident people near the lines since the last report, at it."""
    from footfall.edge.detector import Detections
    from footfall.edge.scale import InputReport, LayoutDetector
    from footfall.edge.sources import Frame

    near_heights = np.array([80.0, 90.0, 100.0, 110.0, 120.0])  # five: too few to plan at once
    x = np.linspace(850, 1150, len(near_heights))
    boxes = np.stack([x - 20, 600 - near_heights, x + 20, np.full(len(x), 600.0)], axis=1)
    far = [100.0, 970.0, 130.0, 1000.0]  # small and far from the door line: not near it
    weak = [990.0, 580.0, 1000.0, 600.0]  # near, but under model.conf
    xyxy = np.vstack([boxes, far, weak])
    conf = np.array([0.9] * len(boxes) + [0.9, 0.1])

    def people(image: np.ndarray) -> Detections:  # in the pixels of the part it is shown
        x0, y0 = detector.plan.crop[:2] if detector.plan is not None else (0, 0)
        seen = xyxy - [x0, y0, x0, y0]
        return Detections(seen, conf, np.stack([(seen[:, 0] + seen[:, 2]) / 2, seen[:, 3]], axis=1))

    detector = LayoutDetector(config(), (1920, 1080), lambda imgsz: people)
    picture = np.zeros((1080, 1920, 3), np.uint8)
    assert detector.report() == InputReport("probing", None, 64)  # nobody seen yet

    detector(Frame(0, 0.0, picture, 0.0))
    probe_h, probe_w = probe_imgsz(config(), (1920, 1080))
    small = float(np.percentile(near_heights, 10))
    at_probe = round(small * min(probe_w / 1920, probe_h / 1080), 1)
    assert detector.plan is None
    assert detector.report() == InputReport("probing", at_probe, 64)
    assert detector.report().person_px is None  # each report starts its sightings afresh

    plan = plan_input(config(), (1920, 1080), near_heights)
    detector.adopt(plan)
    detector(Frame(1, 0.1, picture, 0.0))
    detector(Frame(2, 0.2, picture, 0.0))
    (height, width), (x1, y1, x2, y2) = plan.imgsz, plan.crop
    small = float(np.percentile(np.tile(near_heights, 2), 10))  # both frames' sightings
    at_plan = round(small * min(width / (x2 - x1), height / (y2 - y1)), 1)
    assert at_plan != at_probe
    assert detector.report() == InputReport(f"{width}x{height}", at_plan, 64)
    assert detector.report().person_px is None


def planned_detector(
    heights: list[float], imgsz: tuple[int, int] | None = None, y2: float = 600.0
) -> tuple[Any, InputPlan]:
    """A detector planned on the door line that finds people of ``heights`` (feet at row ``y2``,
    clipped to its crop as the letterbox clips them), built at ``imgsz`` (a model exported at a
    fixed input) or at the plan's size."""
    from footfall.edge.detector import Detections
    from footfall.edge.scale import LayoutDetector

    plan = plan_input(config(), (1920, 1080), np.full(20, 150.0))  # a crop 225 px above the line
    (cx1, cy1, cx2, cy2), tall = plan.crop, np.asarray(heights)
    x = np.linspace(850, 1150, len(tall))
    boxes = np.stack([x - 20, y2 - tall, x + 20, np.full(len(x), y2)], axis=1)
    boxes = np.clip(boxes - [cx1, cy1, cx1, cy1], 0, [cx2 - cx1, cy2 - cy1] * 2)

    class Model:
        def __init__(self, size: tuple[int, int]) -> None:
            self.imgsz = imgsz or size

        def __call__(self, image: np.ndarray) -> Detections:
            ground = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3]], axis=1)
            return Detections(boxes, np.full(len(boxes), 0.9), ground)

    detector = LayoutDetector(config(), (1920, 1080), Model)
    detector.adopt(plan)
    return detector, plan


def at_input(heights: list[float], size: tuple[int, int], crop: tuple[int, int, int, int]) -> float:
    scale = min(size[1] / (crop[2] - crop[0]), size[0] / (crop[3] - crop[1]))
    return round(float(np.percentile(heights, 10)) * scale, 1)


def test_the_report_names_the_input_the_model_runs_at() -> None:
    """A model exported at a fixed input (``footfall model export --fixed``) ignores the plan."""
    from footfall.edge.sources import Frame

    detector, plan = planned_detector([70.0, 80.0, 90.0], imgsz=(640, 640))
    detector(Frame(0, 0.0, np.zeros((1080, 1920, 3), np.uint8), 0.0))
    report = detector.report()
    assert plan.imgsz != (640, 640)
    assert (report.detector_input, report.person_px) == (
        "640x640",
        at_input([70, 80, 90], (640, 640), plan.crop),
    )


def test_the_report_leaves_out_people_the_crop_cuts_and_keeps_the_latest_sightings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Someone walking out through the crop's bottom edge is boxed short: not their size. The
    sightings between two reports are bounded (a crowd), the latest kept."""
    from footfall.edge import scale
    from footfall.edge.sources import Frame

    picture = np.zeros((1080, 1920, 3), np.uint8)
    plan = planned_detector([70.0])[1]
    assert plan.crop[3] < 1080  # the crop's bottom edge is inside the picture
    below = plan.crop[3] + 40.0  # feet beyond it: the box ends at the crop's edge
    walking_out, _ = planned_detector([200.0, 200.0, 200.0], y2=below)
    walking_out(Frame(0, 0.0, picture, 0.0))
    assert walking_out.report().person_px is None

    monkeypatch.setattr(scale, "REPORT_SIGHTINGS", 4)
    first, _ = planned_detector([40.0, 40.0, 40.0, 40.0])
    first(Frame(0, 0.0, picture, 0.0))
    later = planned_detector([90.0, 100.0, 110.0, 120.0])[0]._detect
    first._detect = later  # the same camera, larger people on the next frame
    first(Frame(1, 0.1, picture, 0.0))
    size = first._detect.imgsz  # type: ignore[union-attr]
    assert first.report().person_px == at_input([90, 100, 110, 120], size, plan.crop)


def watching(height: float, seen_every: int = 1, **model: object) -> tuple[Any, list[InputPlan], Any]:
    """A camera whose input was planned from people 150 px tall on the door line, and which
    then sees 12 people ``height`` px tall there on every ``seen_every``-th frame; ``run(n)``
    runs n frames 10 s apart, each followed by a heartbeat's report, and gives the reports' people
    sizes. The plans it makes later are listed."""
    from footfall.edge.detector import Detections
    from footfall.edge.scale import LayoutDetector
    from footfall.edge.sources import Frame

    x = np.linspace(850, 1150, 12)
    boxes = np.stack([x - 20, np.full(12, 600.0 - height), x + 20, np.full(12, 600.0)], axis=1)
    made: list[InputPlan] = []
    shown = [0]

    def make(imgsz: tuple[int, int]) -> Callable[[np.ndarray], Detections]:
        def people(image: np.ndarray) -> Detections:  # in the pixels of the crop it is shown
            x0, y0 = detector.plan.crop[:2] if detector.plan is not None else (0, 0)
            seen = (boxes - [x0, y0, x0, y0])[: 12 if shown[0] % seen_every == 0 else 0]
            return Detections(seen, np.full(len(seen), 0.9), np.stack([seen[:, :3:2].mean(1), seen[:, 3]], 1))

        return people

    camera = config(**model)
    detector = LayoutDetector(camera, (1920, 1080), make, on_plan=made.append)
    if detector.plan is None:
        detector.adopt(plan_input(camera, (1920, 1080), np.full(20, 150.0)))
    picture = np.zeros((1080, 1920, 3), np.uint8)

    def run(n: int) -> list[float | None]:
        sizes = []
        for _ in range(n):
            detector(Frame(shown[0], 10.0 * shown[0], picture, 0.0))
            sizes.append(detector.report().person_px)
            shown[0] += 1
        return sizes

    return detector, made, run


@pytest.mark.parametrize(
    ("height", "seen_every", "model", "replanned_at_s"),
    [
        (50.0, 1, {}, 3600),  # small all along: planned again after model.replan_after_s
        (50.0, 1, {"replan_after_s": 600}, 600),
        (50.0, 1, {"replan_after_s": 0}, None),  # never
        (50.0, 1, {"imgsz": 640}, None),  # a pinned input is never planned
        (50.0, 36, {}, None),  # 11 beats an hour see someone: too quiet to judge
        (50.0, 32, {}, 3840),  # 12 (PEOPLE_SIZE_MIN_BEATS) do; judged at the next beat sized
        (150.0, 1, {}, None),  # the people it was planned for: large enough
    ],
)
def test_people_too_small_at_the_input_for_an_hour_plan_it_again(
    height: float,
    seen_every: int,
    model: dict[str, object],
    replanned_at_s: int | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A plan made from the first people a camera showed (or before it was turned) can leave its
    usual people under the size the nano model needs: the ops alert's evidence, judged on the
    edge, makes a new plan from the people seen lately, which brings them to the aim."""
    import logging

    from footfall.contracts.config import PERSON_PX_WARN_SHARE

    detector, made, run = watching(height, seen_every, **model)
    first = detector.plan
    with caplog.at_level(logging.WARNING, logger="footfall.edge.scale"):
        sizes = run(7201 // 10)  # two hours of heartbeats
    shares = np.array([np.nan if px is None else px / 64 for px in sizes])
    if replanned_at_s is None:
        assert made == []
        assert detector.plan == first
        return
    assert made == [detector.plan]
    assert detector.plan != first
    assert f"for {model.get('replan_after_s', 3600)} s (the median" in caplog.text
    assert "planning the input again from the latest" in caplog.text
    beat = replanned_at_s // 10  # the report that judged it still tells the old size
    assert np.nanmax(shares[: beat + 1]) < PERSON_PX_WARN_SHARE <= np.nanmin(shares[beat + 1 :])


def test_a_new_plan_the_cap_keeps_small_is_made_once_and_then_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """People 20 px tall on a camera capped at model.max_imgsz 640: the first new plan crops
    tighter round them, but they stay small; an hour later the same plan would be made again,
    so it is kept, and the log says what caps it."""
    import logging

    detector, made, run = watching(20.0, max_imgsz=640)
    with caplog.at_level(logging.WARNING, logger="footfall.edge.scale"):
        run(4 * 3600 // 10)
    assert made == [detector.plan]
    assert detector.plan.warning is not None
    stays = [r.getMessage() for r in caplog.records if "the input stays" in r.getMessage()]
    assert len(stays) == 2  # an hour after the new plan, and an hour after that
    assert stays[0].endswith(detector.plan.warning)
