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
from footfall.edge.inference import People
from footfall.edge.pipeline import model_detector
from footfall.edge.plan_file import PlanFile
from footfall.edge.scale import LayoutDetector, probe_imgsz
from footfall.edge.sources import Frame

FRAME = (1920, 1080)


class Walkers:
    """A model that finds 14 people 100 px tall along the door line wherever it looks, and
    remembers each input size it was run at."""

    def __init__(self) -> None:
        self.inputs: list[tuple[int, int]] = []

    def __call__(
        self, images: list[np.ndarray], imgsz: tuple[int, int], conf: float, iou: float
    ) -> list[People]:
        self.inputs.append(imgsz)
        x = np.linspace(820, 1180, 14)
        xyxy = np.stack([x - 20, np.full(14, 500.0), x + 20, np.full(14, 600.0)], axis=1)
        return [People(xyxy, np.full(14, 0.9), None) for _ in images]

    def input_size(self, wanted: tuple[int, int]) -> tuple[int, int]:
        return wanted


def camera(line_y: float = 600, **model: object) -> CameraConfig:
    data = {
        "store": "s",
        "camera": "c",
        "lines": [{"name": "door", "start": [800, line_y], "end": [1200, line_y], "inside": [1000, 400]}],
        "model": model,
    }
    return validate_config(data, CameraConfig, source="cam.yaml")


def start(
    plans: PlanFile, config: CameraConfig | None = None, frame: tuple[int, int] = FRAME
) -> tuple[LayoutDetector, Walkers]:
    """A camera starting: its detector, run on one picture."""
    model = Walkers()
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
        (camera(line_y=650), FRAME, "planned for another lines"),
        (camera(person_px=80), FRAME, "planned for another model.person_px"),
        (camera(max_imgsz=960), FRAME, "planned for another model.max_imgsz"),
        (camera(), (2560, 1440), "planned for another picture size"),
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


def kept_plan_edited(tmp_path: Path, **changes: object) -> str:
    """What a first start keeps, with ``changes`` made to it by hand."""
    plans = PlanFile.beside(tmp_path / "first", "s", "c")
    start(plans)
    return json.dumps({**json.loads(plans.path.read_text()), **changes})


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (lambda _: "{not json", "cannot read the kept plan"),
        (lambda _: "[]", "(not a plan of format 1)"),
        (lambda path: kept_plan_edited(path, format=99), "(not a plan of format 1)"),
        (lambda path: kept_plan_edited(path, crop=[1, 2]), "cannot read the kept plan"),
        (lambda path: kept_plan_edited(path, imgsz=["a", 640]), "cannot read the kept plan"),
        (lambda path: kept_plan_edited(path, crop=[500, 0, 400, 300]), "is not a box"),
        (lambda path: kept_plan_edited(path, crop=[0, 0, 1920, 1200]), "reaches beyond the picture"),
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
    assert f"{plans.path}: " in caplog.text
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
