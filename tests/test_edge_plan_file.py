"""A camera's planned input kept between starts (edge/plan_file.py), through ``model_detector``
as ``footfall edge run`` builds it: a stand-in model that records the input it is asked for."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from footfall.contracts.config import CameraConfig, validate_config
from footfall.edge import plan_file
from footfall.edge.detector import Detections
from footfall.edge.inference import People
from footfall.edge.pipeline import model_detector
from footfall.edge.plan_file import PlanFile
from footfall.edge.scale import LayoutDetector, probe_imgsz
from footfall.edge.sources import Frame

FRAME = (1920, 1080)


class Walkers:
    """A model that finds 14 people 100 px tall along the door line wherever it looks, and
    remembers each input size it was run at."""

    def __init__(self, people: int = 14) -> None:
        self.people = people
        self.inputs: list[tuple[int, int]] = []

    def __call__(
        self, images: list[np.ndarray], imgsz: tuple[int, int], conf: float, iou: float
    ) -> list[People]:
        self.inputs.append(imgsz)
        x = np.linspace(820, 1180, self.people)
        xyxy = np.stack([x - 20, np.full(self.people, 500.0), x + 20, np.full(self.people, 600.0)], axis=1)
        return [People(xyxy, np.full(self.people, 0.9), None) for _ in images]

    def input_size(self, wanted: tuple[int, int]) -> tuple[int, int]:
        return wanted


def camera(line_y: float = 600, zone: bool = False, **model: object) -> CameraConfig:
    data = {
        "store": "s",
        "camera": "c",
        "lines": [{"name": "door", "start": [800, line_y], "end": [1200, line_y], "inside": [1000, 400]}],
        "zones": [{"name": "till", "polygon": [[900, 650], [1100, 650], [1100, 800]]}] if zone else [],
        "model": model,
    }
    return validate_config(data, CameraConfig, source="cam.yaml")


def start(
    plans: PlanFile, config: CameraConfig | None = None, frame: tuple[int, int] = FRAME, people: int = 14
) -> tuple[LayoutDetector, Walkers]:
    """A camera starting: its detector, run on one picture."""
    model = Walkers(people)
    detector = model_detector(config or camera(), frame, None, model, plans)
    detector(Frame(0, 0.0, np.zeros((frame[1], frame[0], 3), np.uint8), 0.0))
    return detector, model


def test_a_restart_detects_with_the_plan_the_first_start_made(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plans = PlanFile.beside(tmp_path, "s", "c")
    first, model = start(plans)
    assert model.inputs == [probe_imgsz(camera(), FRAME)]  # probed on the whole picture...
    assert first.plan is not None  # ... and planned from its 14 people
    assert plans.path == tmp_path / "plan-s-c.json"
    kept = json.loads(plans.path.read_text())
    assert (kept["crop"], kept["imgsz"]) == (list(first.plan.crop), list(first.plan.imgsz))

    with caplog.at_level(logging.INFO, logger="footfall.edge.scale"):
        again, model = start(plans)
    assert again.plan is not None
    assert (again.plan.crop, again.plan.imgsz) == (first.plan.crop, first.plan.imgsz)
    assert model.inputs == [first.plan.imgsz]  # no probe: the first picture already at the plan
    assert f"kept from {kept['planned_at']} in {plans.path}: {first.plan.reason}" in caplog.text
    assert json.loads(plans.path.read_text()) == kept  # used, not rewritten


@pytest.mark.parametrize(
    ("changed", "frame", "said"),
    [
        (camera(line_y=650), FRAME, "planned for a different lines; planning again"),
        (camera(zone=True), FRAME, "planned for a different zones; planning again"),
        (camera(person_px=80), FRAME, "planned for a different model.person_px; planning again"),
        (camera(max_imgsz=960), FRAME, "planned for a different model.max_imgsz; planning again"),
        (camera(crop_to_layout=False), FRAME, "planned for a different model.crop_to_layout; planning"),
        (camera(conf=0.3), FRAME, "planned for a different model.conf; planning again"),
        (camera(), (2560, 1440), "planned for a different picture size; planning again"),
        (camera(line_y=650, person_px=80), FRAME, "planned for a different lines and model.person_px;"),
    ],
)
def test_a_changed_camera_plans_again_and_keeps_the_new_plan(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    changed: CameraConfig,
    frame: tuple[int, int],
    said: str,
) -> None:
    plans = PlanFile.beside(tmp_path, "s", "c")
    start(plans)
    with caplog.at_level(logging.INFO, logger="footfall.edge.plan_file"):
        replanned, model = start(plans, changed, frame)
    assert said in caplog.text
    assert model.inputs == [probe_imgsz(changed, frame)]
    assert replanned.plan is not None
    kept = json.loads(plans.path.read_text())
    assert kept["planned_from"]["frame_size"] == list(frame)
    assert kept["crop"] == list(replanned.plan.crop)
    _, model = start(plans, changed, frame)  # and the next start keeps that one
    assert model.inputs == [replanned.plan.imgsz]


def test_replan_probes_afresh_and_replaces_the_kept_plan(tmp_path: Path) -> None:
    plans = PlanFile.beside(tmp_path, "s", "c")
    start(plans)
    kept = json.loads(plans.path.read_text())
    kept["crop"], kept["imgsz"] = [0, 0, 640, 480], [480, 640]  # as if planned when others were in view
    plans.path.write_text(json.dumps(kept))
    assert start(plans)[1].inputs == [(480, 640)]
    replanned, model = start(PlanFile.beside(tmp_path, "s", "c", replan=True))
    assert model.inputs == [probe_imgsz(camera(), FRAME)]
    assert replanned.plan is not None
    assert json.loads(plans.path.read_text())["crop"] == list(replanned.plan.crop) != [0, 0, 640, 480]


def test_replan_deletes_the_kept_plan_even_if_it_ends_before_planning_anew(tmp_path: Path) -> None:
    """A camera turned at night and started with --replan before anyone walks by must not go
    back to the old plan at the following start."""
    plans = PlanFile.beside(tmp_path, "s", "c")
    start(plans)
    nobody, _ = start(PlanFile.beside(tmp_path, "s", "c", replan=True), people=0)
    assert nobody.plan is None
    assert not plans.path.exists()
    assert start(plans)[1].inputs == [probe_imgsz(camera(), FRAME)]


def test_an_update_that_plans_differently_plans_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    plans = PlanFile.beside(tmp_path, "s", "c")
    start(plans)
    monkeypatch.setattr(plan_file, "PLANNER_VERSION", plan_file.PLANNER_VERSION + 1)
    with caplog.at_level(logging.INFO, logger="footfall.edge.plan_file"):
        _, model = start(plans)
    assert "planned for a different planning rule; planning again" in caplog.text
    assert model.inputs == [probe_imgsz(camera(), FRAME)]


def kept_plan_edited(tmp_path: Path, **changes: object) -> str:
    """What a first start keeps, with ``changes`` made to it by hand."""
    plans = PlanFile.beside(tmp_path / "first", "s", "c")
    start(plans)
    return json.dumps({**json.loads(plans.path.read_text()), **changes})


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (lambda _: "{not json", "(Expecting property name"),
        (lambda _: "[" * 100_000 + "]" * 100_000, "(maximum recursion depth"),
        (lambda _: "[]", "(not a plan of format 1)"),
        (lambda path: kept_plan_edited(path, format=99), "(not a plan of format 1)"),
        (lambda path: kept_plan_edited(path, crop=[1, 2]), "([1, 2] is not 4 whole numbers)"),
        (lambda path: kept_plan_edited(path, crop="1234"), "('1234' is not 4 whole numbers)"),
        (lambda path: kept_plan_edited(path, imgsz=["a", 640]), "is not 2 whole numbers"),
        (lambda path: kept_plan_edited(path, imgsz=[512.9, 1088]), "is not 2 whole numbers"),
        (lambda path: kept_plan_edited(path, crop=[0, 0, float("inf"), 1]), "is not 4 whole numbers"),
        (lambda path: kept_plan_edited(path, crop=[500, 0, 400, 300]), "is not a box"),
        (lambda path: kept_plan_edited(path, warning=5), "(warning 5 is not text)"),
        (lambda path: kept_plan_edited(path, crop=[0, 0, 1920, 1200]), "beyond the 1920x1080 picture"),
        (lambda path: kept_plan_edited(path, imgsz=[20000, 40000]), "steps of 32 up to model.max_imgsz"),
        (lambda path: kept_plan_edited(path, imgsz=[500, 1000]), "steps of 32 up to model.max_imgsz"),
        (lambda path: kept_plan_edited(path, planned_from=[]), "(planned_from is not a mapping)"),
        (lambda path: json.dumps({"format": 1, "crop": [0, 0, 9, 9], "imgsz": [32, 32]}), "'planned_at'"),
    ],
)
def test_an_unreadable_plan_file_is_said_and_planned_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, edit: Callable[[Path], str], said: str
) -> None:
    plans = PlanFile.beside(tmp_path, "s", "c")
    plans.path.write_text(edit(tmp_path))
    with caplog.at_level(logging.WARNING, logger="footfall.edge.plan_file"):
        detector, model = start(plans)
    assert f"{plans.path}: cannot use the kept plan (" in caplog.text
    assert said in caplog.text
    assert model.inputs == [probe_imgsz(camera(), FRAME)]
    assert detector.plan is not None
    assert json.loads(plans.path.read_text())["imgsz"] == list(detector.plan.imgsz)


def test_a_pinned_input_neither_reads_nor_writes_a_plan(tmp_path: Path) -> None:
    plans = PlanFile.beside(tmp_path, "s", "c")
    start(plans)
    before = plans.path.read_text()
    pinned, model = start(plans, camera(imgsz=[512, 1024], crop=[0, 200, 1920, 1080]))
    assert model.inputs == [(512, 1024)]
    assert pinned.plan is not None
    assert pinned.plan.reason == "model.imgsz and model.crop are set"
    assert plans.path.read_text() == before


def test_a_plan_that_cannot_be_written_leaves_counting_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the folder should be")
    plans = PlanFile.beside(blocked, "s", "c")
    with caplog.at_level(logging.WARNING, logger="footfall.edge.plan_file"):
        detector, _ = start(plans)
    assert detector.plan is not None
    assert f"{plans.path}: cannot keep the plan" in caplog.text


def test_a_kept_plan_that_leaves_people_too_small_is_planned_again_and_kept(tmp_path: Path) -> None:
    """The camera was zoomed out since its plan was kept: its people on the door line are now
    40 px, not 100. After model.replan_after_s of heartbeats saying so it plans again, and the
    file keeps the new plan for the next start."""
    plans = PlanFile.beside(tmp_path, "s", "c")
    first, _ = start(plans)
    assert first.plan is not None
    kept = (first.plan.crop, first.plan.imgsz)
    turned = camera(replan_after_s=60)  # not a planning setting: the kept plan still fits
    detector, _ = start(plans, turned)
    assert detector.plan is not None
    assert (detector.plan.crop, detector.plan.imgsz) == kept

    def zoomed_out(image: np.ndarray) -> Detections:  # 14 people 40 px tall, in the crop's pixels
        x0, y0 = detector.plan.crop[:2] if detector.plan is not None else (0, 0)
        x = np.linspace(820, 1180, 14) - x0
        xyxy = np.stack([x - 8, np.full(14, 560.0 - y0), x + 8, np.full(14, 600.0 - y0)], axis=1)
        return Detections(xyxy, np.full(14, 0.9), np.stack([x, xyxy[:, 3]], axis=1))

    detector.make = lambda imgsz: zoomed_out
    detector._detect = zoomed_out
    picture = np.zeros((FRAME[1], FRAME[0], 3), np.uint8)
    for beat in range(1, 14):
        detector(Frame(beat, 5.0 * beat, picture, 0.0))
        detector.report()
    replanned = (detector.plan.crop, detector.plan.imgsz)
    assert replanned != kept
    again, model = start(plans, turned)
    assert again.plan is not None
    assert (again.plan.crop, again.plan.imgsz) == replanned
    assert model.inputs == [detector.plan.imgsz]  # no probe: the new plan from the first picture
