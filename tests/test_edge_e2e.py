"""End to end on real footage with the real models (YOLO11n detection, footfall's default, and
YOLO11n-pose): counts against gt-derived truth."""

from __future__ import annotations

import json
import re
import shutil
import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from footfall.cli import app
from footfall.contracts.config import CameraConfig, load_config
from footfall.contracts.events import (
    CrossingEvent,
    HeartbeatEvent,
    OccupancyEvent,
    ZoneVisitEvent,
    parse_event,
)
from footfall.edge.cli import run_eval
from footfall.edge.groundtruth import find_sequence
from footfall.edge.pipeline import iter_events, run_frames

pytestmark = pytest.mark.model
CONFIGS = Path(__file__).resolve().parent.parent / "edge" / "configs"
START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export cache for the module (the ONNX/OpenVINO export runs once)."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture
def edge_env(monkeypatch: pytest.MonkeyPatch, model_cache: Path, pose_model_path: Path) -> Path:
    monkeypatch.setenv("FOOTFALL_CACHE_DIR", str(model_cache))
    monkeypatch.delenv("FOOTFALL_MODEL", raising=False)
    return pose_model_path


def camera(name: str) -> CameraConfig:
    return load_config(CONFIGS / f"{name}.yaml", CameraConfig)


@pytest.mark.parametrize(
    "clip",
    [pytest.param("tud_campus"), pytest.param("pets09_s2l1", marks=pytest.mark.slow)],
)
def test_counts_within_ten_percent_of_ground_truth(
    clip: str, video_dir: Path, edge_env: Path, detect_model_path: Path
) -> None:
    """footfall's defaults: the detection model, the planned input, the default analysis rate."""
    report = run_eval(find_sequence(video_dir / clip), camera(clip), weights=str(detect_model_path))
    assert report.truth_total >= 10  # the lines are really crossed
    assert report.relative_error <= 0.10, [(r.line, r.direction, r.truth, r.counted) for r in report.rows]
    assert report.precision >= 0.9
    assert report.recall >= 0.9
    for zone in report.zones:  # PETS: the path zone (visits of at least 1 s)
        assert zone.visit_error <= 0.25, zone
        assert zone.dwell_error is not None, zone
        assert zone.dwell_error <= 0.25, zone


def test_iter_events_are_valid_stable_and_timed(video_dir: Path, edge_env: Path) -> None:
    clip = str(video_dir / "tud_campus" / "TUD-Campus.mp4")
    config = camera("tud_campus")

    def run() -> list:
        return list(iter_events(clip, config, weights=str(edge_env), start=START, heartbeat_every_s=1.0))

    first, second = run(), run()
    assert [e.id for e in first] == [e.id for e in second]  # a rerun reproduces every id
    assert len({e.id for e in first}) == len(first)
    for event in first:
        assert parse_event(event.to_json(), topic=event.topic, now=START) == event
        assert START <= event.ts <= START + timedelta(seconds=71 / 25)  # media time from --start
    crossings = [e for e in first if isinstance(e, CrossingEvent)]
    assert len(crossings) >= 8
    assert {c.line for c in crossings} == {"left", "middle", "right"}
    assert all(c.ts == START + timedelta(seconds=c.frame / 25) for c in crossings if c.frame is not None)
    beats = [e for e in first if isinstance(e, HeartbeatEvent)]
    assert len(beats) == 2  # 2.84 s of video, one per second of media time after the first
    assert all(b.fps > 0 and b.frames > 0 and b.queue_depth == 0 for b in beats)
    # Each beat names the detector's planned input and how tall the people near the lines were at
    # it: TUD-Campus's walkers are far taller than the nano model needs (its plan is at the floor).
    assert all(re.fullmatch(r"[0-9]+x[0-9]+", b.detector_input or "") for b in beats)
    assert all(b.person_px_aim == 64 and (b.person_px or 0) > 64 for b in beats)
    occupancy = [e for e in first if e.type == "occupancy"]
    assert occupancy
    assert max(e.count for e in occupancy) >= 3


def test_count_cli_writes_events_annotated_video_and_summary(
    video_dir: Path, edge_env: Path, tmp_path: Path
) -> None:
    import cv2

    out, video = tmp_path / "events.jsonl", tmp_path / "annotated.mp4"
    result = CliRunner().invoke(
        app,
        [
            "count",
            str(video_dir / "tud_campus" / "TUD-Campus.mp4"),
            "--config",
            str(CONFIGS / "tud_campus.yaml"),
            "--out",
            str(out),
            "--annotate",
            str(video),
            "--model",
            str(edge_env),
            "--start",
            "2026-11-20T09:00:00Z",
        ],
    )
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in out.read_text().splitlines()]
    crossings = [e for e in events if e["type"] == "crossing"]
    assert len(crossings) >= 8
    assert all(e["ts"].startswith("2026-11-20T09:00:0") for e in crossings)
    assert "middle" in result.output
    assert "median dwell" in result.output
    cap = cv2.VideoCapture(str(video))
    # 71 frames at 25 fps, analysed at the default 15 fps at most: every 2nd frame, 12.5 fps.
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 36
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(12.5)
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (640, 480)


def test_count_cli_reports_the_camera_issues_of_a_faulty_recording(
    video_dir: Path, edge_env: Path, tmp_path: Path
) -> None:
    """A recording made from PETS (covered 10-22 s, then a frozen picture 32-44 s), encoded to a file:
    `footfall count` writes each issue's start and end at its frame's media time, and every heartbeat
    says which issues are in force. Motion JPEG, as IP cameras record it: every frame on its own, so
    the frozen frames decode identical (an MPEG-4 Part 2 encoder keeps refining a still picture by a
    few grey levels, which the monitor does not call frozen; see docs/edge.md)."""
    import cv2

    from tests.scene_support import load_clip, recording

    clip = load_clip(video_dir, "pets09_s2l1")
    source = tmp_path / "faulty.avi"
    writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"MJPG"), clip.fps, (480, 360))
    covered = dict(recording(clip, 52.0, "covered", (10.0, 22.0)))
    for t, image in recording(clip, 52.0, "frozen", (32.0, 44.0)):
        writer.write(covered[t] if t < 30 else image)
    writer.release()
    out = tmp_path / "events.jsonl"
    args = ["count", str(source), "--config", str(CONFIGS / "pets09_s2l1.yaml"), "--out", str(out)]
    result = CliRunner().invoke(
        app, [*args, "--model", str(edge_env), "--fps", "5", "--start", "2026-11-20T09:00:00Z"]
    )
    assert result.exit_code == 0, result.output
    events = [parse_event(line, now=START) for line in out.read_text().splitlines()]

    def media_s(event: object) -> float:
        return (event.ts - START).total_seconds()  # type: ignore[attr-defined]

    issues = [(e.issue, e.state, media_s(e)) for e in events if e.type == "camera_issue"]
    assert [(i, s) for i, s, _ in issues] == [
        ("covered", "started"),
        ("covered", "cleared"),
        ("frozen", "started"),
        ("frozen", "cleared"),
    ], issues
    for (_, _, t), began in zip(issues, (10, 22, 32, 44), strict=True):
        assert began <= t <= began + 10, issues
    beats = {round(media_s(e)): e.camera_issues for e in events if e.type == "heartbeat"}
    assert beats == {10: "", 20: "covered", 30: "", 40: "frozen", 50: ""}
    # The summary ends with the people size the ops alert would judge the placement by.
    sizes = [e.person_px for e in events if e.type == "heartbeat" and e.person_px is not None]
    assert sizes
    said = " ".join(result.output.split())  # (the console wraps long lines)
    assert f"{statistics.median(sizes):.1f} px at the detector's" in said


def test_eval_cli_on_a_frame_folder_and_max_error_exit_code(
    video_dir: Path, edge_env: Path, tmp_path: Path
) -> None:
    """A MOT sequence as img1/ frames (fps from seqinfo.ini); a rate too low to count fails the audit."""
    import cv2

    seq = tmp_path / "TUD-Campus"
    (seq / "img1").mkdir(parents=True)
    shutil.copytree(video_dir / "tud_campus" / "gt", seq / "gt")
    shutil.copy(video_dir / "tud_campus" / "seqinfo.ini", seq / "seqinfo.ini")
    cap = cv2.VideoCapture(str(video_dir / "tud_campus" / "TUD-Campus.mp4"))
    index = 0
    while True:
        ok, image = cap.read()
        if not ok:
            break
        index += 1
        cv2.imwrite(str(seq / "img1" / f"{index:06d}.png"), image)
    runner = CliRunner()
    ok = runner.invoke(
        app, ["eval", str(seq), "--config", str(CONFIGS / "tud_campus.yaml"), "--model", str(edge_env)]
    )
    assert ok.exit_code == 0, ok.output
    assert "precision" in ok.output
    assert "OK: error" in ok.output
    # Sampled at 1 frame a second, 3 sightings of each walker are too few to confirm any track.
    args = ["eval", str(seq), "--config", str(CONFIGS / "tud_campus.yaml"), "--model", str(edge_env)]
    bad = runner.invoke(app, [*args, "--fps", "1"])
    assert bad.exit_code == 1, bad.output
    assert "FAIL" in bad.output


def test_preview_draws_the_layout(video_dir: Path, tmp_path: Path) -> None:
    import cv2

    out = tmp_path / "preview.png"
    source = str(video_dir / "pets09_s2l1" / "PETS09-S2L1_480x360.mp4")
    result = CliRunner().invoke(
        app, ["preview", source, "--config", str(CONFIGS / "pets09_s2l1.yaml"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    drawn = cv2.imread(str(out))
    cap = cv2.VideoCapture(source)
    _, raw = cap.read()
    assert drawn.shape == raw.shape
    # The configured line at x=220 is drawn in the line colour (BGR 0,215,255).
    column = drawn[150:250, 219:222].reshape(-1, 3).astype(int)
    assert (abs(column - [0, 215, 255]).sum(axis=1) < 60).mean() > 0.5


@pytest.mark.slow
def test_zone_visits_occupancy_and_motion_gate_on_the_intel_clip(video_dir: Path, edge_env: Path) -> None:
    """Six people come one at a time to a table (hand-checked presence intervals)."""
    import csv

    folder = video_dir / "intel_one_by_one"
    with (folder / "gt_presence_intervals.csv").open() as handle:
        intervals = [(int(r["first_frame"]), int(r["last_frame"])) for r in csv.DictReader(handle)]
    fps = 10.0
    view, occupancy, visits, skipped = 0, [], [], []
    for outcome in run_frames(
        str(folder / "one-by-one-person-detection.mp4"),
        camera("intel_one_by_one"),
        weights=str(edge_env),
        start=START,
    ):
        for event in outcome.events:
            if isinstance(event, OccupancyEvent) and event.zone is None:
                view = event.count
            elif isinstance(event, ZoneVisitEvent):
                visits.append(event)
        if not outcome.final:
            occupancy.append(view)
            if not outcome.analysed:
                skipped.append(outcome.frame.index)
    present = np.zeros(len(occupancy), dtype=bool)
    for first, last in intervals:
        present[first : last + 1] = True
    counts = np.array(occupancy)
    assert counts.max() == 1  # one person at a time
    assert np.mean((counts > 0) == present) >= 0.9  # edges: half-visible people, 1 s occupancy grace
    # One visit to the table per person, inside that person's presence interval.
    assert len(visits) == len(intervals)
    for visit, (first, last) in zip(sorted(visits, key=lambda v: v.enter_ts), intervals, strict=True):
        enter_frame = (visit.enter_ts - START).total_seconds() * fps
        exit_frame = (visit.exit_ts - START).total_seconds() * fps
        assert first - 5 <= enter_frame < exit_frame <= last + 5
        assert visit.dwell_s >= 5
    # The motion gate skipped inference only while the room was empty, and it did skip.
    assert len(skipped) >= 50
    assert not present[skipped].any()


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_every_runtime_finds_the_group_with_feet_inside_the_boxes(
    backend: str, video_dir: Path, edge_env: Path
) -> None:
    import cv2

    from footfall.contracts.config import ModelConfig
    from footfall.edge.detector import PersonDetector

    cap = cv2.VideoCapture(str(video_dir / "tud_campus" / "TUD-Campus.mp4"))
    _, image = cap.read()
    detector = PersonDetector(ModelConfig(weights=str(edge_env), backend=backend), (640, 480))
    assert detector.model.backend_name == backend  # type: ignore[union-attr]
    assert detector.model.info.task == "pose"  # type: ignore[union-attr]
    if backend == "onnx":  # workers that spin between runs would steal the cores from the frame's work
        options = detector.model._backend._session.get_session_options()  # type: ignore[union-attr]
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    found = detector(image)
    confident = found.conf >= 0.5
    assert confident.sum() >= 4  # the walking group in the first frame
    x1, y1, x2, y2 = found.xyxy.T
    gx, gy = found.ground.T
    assert np.all((gx >= x1 - 1) & (gx <= x2 + 1) & (gy >= y1 + 0.6 * (y2 - y1)) & (gy <= y2 + 1))


def test_a_stalled_live_source_still_beats_and_closes_visits(video_dir: Path, edge_env: Path) -> None:
    """Frames, then a 4 s outage (image-less ticks, as live sources yield them): the outage shows
    as a heartbeat with fps 0, and people who vanished have their zone visits closed."""
    import time

    from footfall.edge.sources import Frame, FrameSource, open_source

    with open_source(str(video_dir / "tud_campus" / "TUD-Campus.mp4")) as clip:
        images = [f.image for f in clip][:40]

    class StallingSource(FrameSource):
        fps, size, live = 25.0, (640, 480), True

        def __iter__(self):  # type: ignore[override]
            for i, image in enumerate(images):
                yield Frame(i, i / 25, image, time.monotonic())
            for k in range(1, 5):
                time.sleep(0.05)  # the pipeline measures fps on the wall clock
                yield Frame(len(images) - 1, len(images) / 25 + k * 1.0, None, time.monotonic())

    config = CameraConfig.model_validate(
        {
            **camera("tud_campus").model_dump(),
            "zones": [{"name": "walkway", "polygon": [[0, 300], [640, 300], [640, 480], [0, 480]]}],
            "counting": {"forget_after_s": 2.0},
        }
    )
    outcomes = list(
        run_frames(StallingSource(), config, weights=str(edge_env), start=START, heartbeat_every_s=1.0)
    )
    stalled = [o for o in outcomes if not o.pictured and not o.final]
    assert len(stalled) == 4
    assert not any(o.analysed for o in stalled)
    # Heartbeats travel with the next frame that leaves the linker (up to linking.delay_s late).
    beats = [e for o in outcomes for e in o.events if isinstance(e, HeartbeatEvent)]
    assert beats
    assert beats[-1].fps == 0
    visits = [e for o in stalled for e in o.events if isinstance(e, ZoneVisitEvent)]
    assert len(visits) >= 3  # closed by forgetting during the outage, not at the end of the stream
    assert all(v.exit_ts <= START + timedelta(seconds=40 / 25) for v in visits)
    view = [e for o in stalled for e in o.events if isinstance(e, OccupancyEvent) and e.zone is None]
    assert view[-1].count == 0
