"""Counts and zone visits against ground truth on the three dev clips, with the real models.

Venice-2 (1080p, groups, occlusions) runs with footfall's defaults: the default detector
(YOLO11n, ONNX) at the input size planned from the people it sees. The oracle mode (annotated boxes
as detections) isolates the tracker, linker and counter, at the native rate and at half of it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from footfall.contracts.config import CameraConfig, load_config
from footfall.edge.cli import run_eval
from footfall.edge.evaluation import Report, ZoneScore
from footfall.edge.groundtruth import find_sequence

pytestmark = pytest.mark.model
CONFIGS = Path(__file__).resolve().parent.parent / "edge" / "configs"
NATIVE_FPS = {"venice2": 30.0, "pets09_s2l1": 10.0, "tud_campus": 25.0}


def camera(name: str) -> CameraConfig:
    return load_config(CONFIGS / f"{name}.yaml", CameraConfig)


def assert_zone_close(zone: ZoneScore, visits: float = 0.25, dwell: float = 0.25) -> None:
    """Visits of at least 1 s and their median dwell within these shares of the truth."""
    assert zone.visit_error <= visits, zone
    assert zone.dwell_error is not None, zone
    assert zone.dwell_error <= dwell, zone


@pytest.mark.parametrize("clip", sorted(NATIVE_FPS))
@pytest.mark.parametrize("rate", [1.0, 0.5])
def test_oracle_counts_and_visits_match_the_truth(clip: str, rate: float, video_dir: Path) -> None:
    """With perfect boxes, identity is all that is left: groups and occlusions must not cost a count."""
    report = run_eval(find_sequence(video_dir / clip), camera(clip), fps=NATIVE_FPS[clip] * rate, oracle=True)
    assert report.truth_total >= 10
    assert report.relative_error <= 0.05, [(r.line, r.direction, r.truth, r.counted) for r in report.rows]
    for zone in report.zones:
        assert_zone_close(zone)
    assert_errors_listed(report, NATIVE_FPS[clip])


def assert_errors_listed(report: Report, native_fps: float) -> None:
    """Every unmatched crossing of the table is listed once, at its frame of the recording, with
    the annotated person (missed, wrong way) and footfall's id (false, wrong way) behind it."""
    kinds = ("missed", "false", "wrong_direction")
    assert [sum(e.kind == k for e in report.errors) for k in kinds] == [report.total(k) for k in kinds]
    for e in report.errors:
        assert e.t == pytest.approx(e.frame / native_fps), e
        assert (e.person is not None) == (e.kind != "false"), e
        assert (e.track is not None) == (e.kind != "missed"), e
    assert [e.t for e in report.errors] == sorted(e.t for e in report.errors)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["detect", "pose"])
def test_venice2_with_each_model_at_the_planned_input(
    kind: str,
    video_dir: Path,
    detect_model_path: Path,
    pose_model_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """footfall's defaults (the detection model), and the pose model at the same planned input, its
    ankles giving the feet where it sees them. Measured on 2026-11-30: detection 9.1 % (2 missed,
    2 false: both a woman walking along the picture's bottom edge, cut off by it, the truth having
    her feet below the lines' ends), 11 zone visits of 10, median dwell 5.0 s against 5.8 s; pose
    18.2 % (3 missed, 3 false), 9 visits, 4.7 s: hence detection is the default. The issue's goal
    for dev clips is 10 %; a cell moves by a crossing or two with a few pixels of crop."""
    monkeypatch.setenv("FOOTFALL_CACHE_DIR", str(tmp_path))
    weights = detect_model_path if kind == "detect" else pose_model_path
    report = run_eval(find_sequence(video_dir / "venice2"), camera("venice2"), weights=str(weights))
    assert report.truth_total == 22
    assert report.relative_error <= 0.25, [(r.line, r.direction, r.truth, r.counted) for r in report.rows]
    assert report.recall >= 0.8
    assert report.errors, "Venice-2 has its known errors (the docstring): each must be listed"
    assert_errors_listed(report, NATIVE_FPS["venice2"])
    (zone,) = report.zones
    assert_zone_close(zone)


@pytest.mark.slow
def test_pets_at_a_third_of_its_frame_rate(video_dir: Path, detect_model_path: Path) -> None:
    """3.3 frames/s: people 50-90 px tall walk further than their own width between two analysed
    frames. Before the tracker widened its boxes by the distance a person may walk, 26 of the 75
    crossings were missed (30.7 %); measured 0 % (0 missed, 0 false) on 2026-11-30."""
    clip, weights = "pets09_s2l1", str(detect_model_path)
    sequence = find_sequence(video_dir / clip)
    report = run_eval(sequence, camera(clip), fps=NATIVE_FPS[clip] / 3, weights=weights)
    assert report.truth_total == 75
    assert report.relative_error <= 0.05, [(r.line, r.direction, r.truth, r.counted) for r in report.rows]
    assert report.recall >= 0.95
    (zone,) = report.zones
    assert_zone_close(zone)  # measured 24 visits of 23, median dwell 11.0 s against 12.2 s


def test_tud_campus_with_the_detection_model(
    video_dir: Path, detect_model_path: Path, tmp_path: Path
) -> None:
    report = run_eval(
        find_sequence(video_dir / "tud_campus"), camera("tud_campus"), weights=str(detect_model_path)
    )
    assert report.truth_total == 11  # one person is past the left line on the last frame
    assert report.relative_error <= 0.2, [(r.line, r.direction, r.truth, r.counted) for r in report.rows]


def test_eval_writes_its_report_as_json_for_scripts(video_dir: Path, tmp_path: Path) -> None:
    """``footfall eval --json``: the same figures as the printed table, per line, zone and total."""
    import json

    from typer.testing import CliRunner

    from footfall.cli import app

    clip, out = video_dir / "pets09_s2l1", tmp_path / "report.json"
    args = ["eval", str(clip), "--config", str(CONFIGS / "pets09_s2l1.yaml"), "--oracle", "--fps", "5"]
    result = CliRunner().invoke(app, [*args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    report = run_eval(find_sequence(clip), camera("pets09_s2l1"), fps=5.0, oracle=True)
    assert written["truth"] == report.truth_total == sum(row["truth"] for row in written["lines"])
    assert written["relative_error"] == report.relative_error
    assert written["oracle"] is True
    assert written["fps"] == 5.0
    assert (written["native_fps"], written["analysed_fps"]) == (10.0, 5.0)  # every 2nd frame
    (zone,) = written["zones"]
    assert zone["counted_visits"] == report.zones[0].counted_visits
    assert zone["dwell_error"] == report.zones[0].dwell_error
    assert f"error {written['relative_error']:.1%}" in result.output
    # Without --fps the camera's default rate applies; the report says which rate that was.
    result = CliRunner().invoke(app, [*args[:-2], "--json", str(out)])
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert written["fps"] is None
    assert written["analysed_fps"] == written["native_fps"] == 10.0  # 15 fps default > PETS's 10
