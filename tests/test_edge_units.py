"""Edge helpers that need no model: sources, ground points, image sizes, ground truth, config."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from footfall.contracts.config import CameraConfig, ConfigError, LineConfig, load_config
from footfall.edge.detector import fit_imgsz, ground_points
from footfall.edge.evaluation import evaluate
from footfall.edge.groundtruth import find_sequence, gt_crossings, load_gt
from footfall.edge.models import resolve_weights
from footfall.edge.sources import FolderSource, SourceError, open_source

CONFIGS = Path(__file__).resolve().parent.parent / "edge" / "configs"


def write_video(path: Path, frames: int, fps: float, size: tuple[int, int] = (64, 48)) -> None:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(frames):
        image = np.full((size[1], size[0], 3), i % 256, dtype=np.uint8)
        writer.write(image)
    writer.release()


@pytest.mark.parametrize(
    ("frame_size", "long_side", "expected"),
    [
        ((1920, 1080), 640, (384, 640)),  # 16:9 camera: no square letterbox
        ((1280, 720), 640, (384, 640)),
        ((480, 360), 1280, (960, 1280)),  # small people: upscaled input
        ((640, 480), 640, (480, 640)),
        ((1080, 1920), 640, (640, 384)),  # portrait
    ],
)
def test_fit_imgsz_keeps_the_aspect_ratio(
    frame_size: tuple[int, int], long_side: int, expected: tuple[int, int]
) -> None:
    assert fit_imgsz(frame_size, long_side) == expected


def test_ground_point_prefers_confident_ankles() -> None:
    boxes = np.array([[0, 0, 10, 100], [20, 0, 40, 100], [50, 0, 60, 80]], dtype=float)
    kpts = np.zeros((3, 17, 3))
    kpts[0, 15] = [4, 95, 0.9]
    kpts[0, 16] = [8, 97, 0.8]  # both ankles -> their mean
    kpts[1, 15] = [25, 90, 0.9]
    kpts[1, 16] = [35, 99, 0.1]  # one confident ankle -> that one
    kpts[2, 15:17] = [[55, 70, 0.2], [56, 71, 0.3]]  # none confident -> bottom-centre
    got = ground_points(boxes, kpts, min_conf=0.5)
    np.testing.assert_allclose(got, [[6, 96], [25, 90], [55, 80]])
    np.testing.assert_allclose(ground_points(boxes, None, 0.5), [[5, 100], [30, 100], [55, 80]])


def test_model_override_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg_file, env_file, flag_file = (tmp_path / n for n in ("cfg.pt", "env.pt", "flag.pt"))
    for f in (cfg_file, env_file, flag_file):
        f.write_bytes(b"x")
    config = CameraConfig.model_validate({"store": "s", "camera": "c", "model": {"weights": str(cfg_file)}})
    monkeypatch.delenv("FOOTFALL_MODEL", raising=False)
    assert resolve_weights(config.model) == cfg_file
    monkeypatch.setenv("FOOTFALL_MODEL", str(env_file))
    assert resolve_weights(config.model) == env_file
    assert resolve_weights(config.model, str(flag_file)) == flag_file
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_weights(config.model, str(tmp_path / "missing.pt"))


def test_unknown_counting_key_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "cam.yaml"
    path.write_text("store: s\ncamera: c\ncounting:\n  hysteresis: 0.1\n  confrm_frames: 2\n")
    with pytest.raises(ConfigError, match=r"cam.yaml: counting.confrm_frames: unknown key"):
        load_config(path, CameraConfig)


def test_video_file_source_media_time(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    write_video(path, 20, fps=10)
    with open_source(str(path)) as source:
        frames = list(source)
    assert source.fps == pytest.approx(10)
    assert [f.index for f in frames] == list(range(20))
    assert frames[-1].t == pytest.approx(1.9)


def test_realtime_source_drops_frames_when_the_consumer_is_slow(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    write_video(path, 40, fps=100)
    seen = []
    with open_source(str(path), realtime=True) as source:
        for frame in source:
            seen.append(frame.index)
            time.sleep(0.03)  # three frame periods per frame
        dropped = source.dropped
    assert seen == sorted(seen)
    assert dropped > 0
    assert len(seen) + dropped == 40  # every frame was either processed or counted as dropped


def test_a_recording_is_read_ahead_a_bounded_few_frames_and_loses_none(tmp_path: Path) -> None:
    import threading

    from footfall.edge.sources import Frame, _ReadAhead

    produced = []

    def produce() -> Iterator[Frame]:
        for i in range(10):
            produced.append(i)
            yield Frame(i, i / 10, np.zeros((2, 2, 3), np.uint8), time.monotonic())

    reader = _ReadAhead(produce(), depth=2)
    frames = reader.frames()
    assert next(frames).index == 0
    time.sleep(0.3)  # a slow analysis: the reader fills its queue and waits
    assert len(produced) <= 1 + 2 + 1  # taken, queued, and one waiting for room
    assert [f.index for f in frames] == list(range(1, 10))

    path = tmp_path / "clip.mp4"
    write_video(path, 30, fps=10)
    with open_source(str(path)) as source:
        for frame in source:
            time.sleep(0.005)
            if frame.index == 5:
                break  # a consumer that stops early ends the reader thread with the pass
    assert not [t for t in threading.enumerate() if t.name == "footfall-read-ahead"]


def test_closing_a_recording_from_another_thread_ends_its_pass(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "clip.mp4"
    write_video(path, 200, fps=10)
    source = open_source(str(path))
    seen = []
    for frame in source:
        seen.append(frame.index)
        if frame.index == 3:
            threading.Thread(target=source.close).start()  # e.g. a camera stopped by its service
        time.sleep(0.01)
    assert seen[:4] == [0, 1, 2, 3]
    assert len(seen) < 200


def test_an_unreadable_image_in_a_folder_fails_the_pass_after_the_frames_before_it(
    tmp_path: Path,
) -> None:
    import cv2

    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i + 1:06d}.jpg"), np.zeros((48, 64, 3), np.uint8))
    (tmp_path / "000004.jpg").write_bytes(b"not a picture")
    frames = iter(FolderSource(tmp_path, fps=10))
    assert [next(frames).index for _ in range(3)] == [0, 1, 2]
    with pytest.raises(SourceError, match=r"000004\.jpg: not a readable image"):
        next(frames)


def test_frame_folder_takes_fps_from_seqinfo(tmp_path: Path) -> None:
    import cv2

    (tmp_path / "img1").mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / "img1" / f"{i + 1:06d}.jpg"), np.zeros((48, 64, 3), np.uint8))
    (tmp_path / "seqinfo.ini").write_text("[Sequence]\nframeRate=7\nimWidth=64\n")
    source = FolderSource(tmp_path)
    assert (source.fps, source.size, source.frame_count) == (7.0, (64, 48), 3)
    assert [f.t for f in source] == pytest.approx([0, 1 / 7, 2 / 7])
    (tmp_path / "seqinfo.ini").unlink()
    with pytest.raises(SourceError, match="--fps"):
        FolderSource(tmp_path / "img1")
    assert FolderSource(tmp_path / "img1", fps=25).fps == 25


def test_missing_source_is_a_clear_error() -> None:
    with pytest.raises(SourceError, match="no such file"):
        open_source("/nonexistent/clip.mp4")


def test_ground_truth_keeps_only_the_pedestrians_of_mot16_files(tmp_path: Path) -> None:
    """MOT16/17/20 rows carry a class: cars, reflections, people on vehicles and static people are
    not pedestrians, whatever their conf flag (TrackEval keeps class 1 only). MOT15 rows carry world
    coordinates there instead."""
    mot17 = tmp_path / "mot17.txt"
    mot17.write_text(
        "1,1,10,20,30,90,1,1,0.8\n"  # pedestrian
        "1,2,50,20,30,90,0,1,1.0\n"  # pedestrian flagged "ignore"
        "1,3,90,20,60,40,1,3,1.0\n"  # car
        "1,4,200,20,30,90,1,12,1.0\n"  # reflection
        "2,1,12,20,30,90,1,1,0.7\n"
    )
    assert load_gt(mot17)[:, :2].tolist() == [[0, 1], [1, 1]]
    mot15 = tmp_path / "mot15.txt"
    mot15.write_text("1,9,499,158,31,75,1,-4.1554,-7.3591,0\n1,15,258,219,32,88,1,-1,-1,-1\n")
    assert load_gt(mot15)[:, 1].tolist() == [9, 15]


def test_an_annotated_clip_opens_with_its_boxes_in_the_media_pixels(tmp_path: Path) -> None:
    """The benchmarks open a sequence with ``open_clip``: frames at seqinfo's rate, boxes
    annotated on a 128 px wide original scaled to the 64 px frames they score."""
    import cv2

    from footfall.edge.groundtruth import open_clip

    (tmp_path / "img1").mkdir()
    for i in range(2):
        cv2.imwrite(str(tmp_path / "img1" / f"{i + 1:06d}.jpg"), np.zeros((48, 64, 3), np.uint8))
    (tmp_path / "seqinfo.ini").write_text("[Sequence]\nframeRate=7\nimWidth=128\n")
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "gt.txt").write_text("1,1,20,10,10,40,1,1,1\n2,1,24,10,10,40,1,1,1\n")
    clip = open_clip(tmp_path)
    assert (clip.media, clip.native_fps, clip.size) == (str(tmp_path / "img1"), 7.0, (64, 48))
    assert clip.rows.tolist() == [[0, 1, 10, 5, 5, 20], [1, 1, 12, 5, 5, 20]]
    # Without imWidth in seqinfo.ini the boxes are taken as they are.
    (tmp_path / "seqinfo.ini").write_text("[Sequence]\nframeRate=7\n")
    assert find_sequence(tmp_path).annotation(64)[:, 2:].tolist() == [[20, 10, 10, 40], [24, 10, 10, 40]]


@pytest.mark.model
def test_ground_truth_is_scaled_to_the_video(video_dir: Path) -> None:
    seq = find_sequence(video_dir / "pets09_s2l1")
    assert seq.annotated_width == 768  # seqinfo describes the original; the mp4 is 480 wide
    rows = load_gt(seq.gt_file, 480 / 768)
    assert rows[:, 0].min() == 0  # frames are 0-based after loading
    feet_y = rows[:, 3] + rows[:, 5]
    assert feet_y.max() <= 360 + 5  # inside the 480x360 frame
    config = load_config(CONFIGS / "pets09_s2l1.yaml", CameraConfig)
    truth = gt_crossings(rows, config, fps=10.0)
    assert len(truth) >= 50
    # The truth scores perfectly against itself (a check of the evaluation, not of the model).
    report = evaluate(config.lines, truth, truth)
    assert (report.abs_error, report.precision, report.recall) == (0, 1.0, 1.0)


def test_motion_gate_skips_only_static_empty_frames() -> None:
    from footfall.edge.motion import MotionGate

    gate = MotionGate(max_skip_s=2.0)
    rng = np.random.default_rng(0)
    background = rng.integers(0, 255, (360, 480, 3), dtype=np.uint8)
    noisy = [np.clip(background.astype(int) + rng.integers(-3, 4, background.shape), 0, 255).astype(np.uint8)]
    assert gate.should_detect(background, 0.0, tracking=False)  # the first frame is always analysed
    assert not gate.should_detect(noisy[0], 0.1, tracking=False)  # sensor noise is not motion
    assert gate.should_detect(background, 0.2, tracking=True)  # someone is tracked: always analyse
    walker = background.copy()
    walker[100:200, 200:240] = 255  # a person-sized change
    assert gate.should_detect(walker, 0.3, tracking=False)
    assert not gate.should_detect(walker, 0.4, tracking=False)
    assert gate.should_detect(walker, 2.5, tracking=False)  # never skip longer than max_skip_s
    assert gate.skipped == 2
    assert MotionGate(enabled=False).should_detect(background, 0.0, tracking=False)


def test_count_with_a_missing_model_fails_before_touching_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from footfall.cli import app

    monkeypatch.delenv("FOOTFALL_MODEL", raising=False)
    clip, out = tmp_path / "clip.mp4", tmp_path / "events.jsonl"
    write_video(clip, 5, fps=10)
    out.write_text("previous run\n")
    config = CONFIGS / "tud_campus.yaml"
    result = CliRunner().invoke(
        app,
        ["count", str(clip), "--config", str(config), "--out", str(out), "--model", str(tmp_path / "no.pt")],
    )
    assert isinstance(result.exception, ConfigError)
    assert "does not exist" in str(result.exception)
    assert out.read_text() == "previous run\n"


def test_stream_source_reconnects_and_gives_up_when_the_server_is_gone(tmp_path: Path) -> None:
    """A real HTTP stream: each end of stream is a drop, followed by a reconnect with back-off."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from footfall.edge.sources import StreamSource

    write_video(tmp_path / "clip.mp4", 10, fps=10)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://user:secret@127.0.0.1:{server.server_address[1]}/clip.mp4"
    source = StreamSource(url, max_backoff_s=1.0, give_up_after_s=2.0)
    assert "secret" not in source._safe_name()
    frames = []

    ticks = []

    def consume() -> None:
        for frame in source:
            if frame.image is None:
                ticks.append(frame)  # nothing arrived for STALL_TICK_S: the clock still moves
                continue
            frames.append(frame)
            if len(frames) == 25:  # two reconnects done: take the server away
                server.shutdown()
                server.server_close()

    with pytest.raises(SourceError, match="no frames for 2 s"):
        consume()
    source.close()
    assert len(frames) >= 25
    assert source.reconnects >= 2
    assert [f.index for f in frames] == sorted(f.index for f in frames)
    assert ticks  # the outage was visible to the consumer while it lasted
    assert all(tick.t > frames[-1].t for tick in ticks[-1:])


def test_a_camera_down_at_start_fails_fast_for_commands_and_is_awaited_by_services() -> None:
    import socket

    from footfall.edge.sources import StreamSource

    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/stream.mjpg"
    with pytest.raises(SourceError, match="cannot open"):
        open_source(url)
    waiting = StreamSource(url, wait_for_first_connection=True, max_backoff_s=0.5, give_up_after_s=1.5)
    assert waiting.size == (0, 0)
    seen = []

    def consume() -> None:
        seen.extend(waiting)

    with pytest.raises(SourceError, match="no frames"):
        consume()
    waiting.close()
    assert seen
    assert all(f.image is None for f in seen)


def test_a_lower_fps_samples_a_recording_in_media_time(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    write_video(path, 30, fps=30)
    with open_source(str(path), fps=10) as source:
        frames = list(source)
    assert (source.fps, source.frame_count) == (pytest.approx(10), 10)
    assert [f.index for f in frames] == list(range(0, 30, 3))  # the file's own frame numbers
    assert [f.t for f in frames] == pytest.approx([i / 30 for i in range(0, 30, 3)])


def test_a_lower_fps_samples_a_frame_folder(tmp_path: Path) -> None:
    import cv2

    (tmp_path / "img1").mkdir()
    for i in range(6):
        cv2.imwrite(str(tmp_path / "img1" / f"{i + 1:06d}.jpg"), np.zeros((48, 64, 3), np.uint8))
    (tmp_path / "seqinfo.ini").write_text("[Sequence]\nframeRate=30\nimWidth=64\n")
    source = FolderSource(tmp_path, fps=15)
    assert (source.fps, source.frame_count) == (15.0, 3)
    assert [(f.index, f.t) for f in source] == [
        (0, 0.0),
        (2, pytest.approx(2 / 30)),
        (4, pytest.approx(4 / 30)),
    ]


def test_eval_splits_errors_into_misses_false_counts_and_wrong_directions() -> None:
    from footfall.edge.counting import Crossing

    door = LineConfig(name="door", start=(0, 0), end=(10, 0), inside=(5, 5))

    def c(direction: str, t: float, person: int) -> Crossing:
        return Crossing("door", "entrance", direction, person, round(t * 30), t)  # type: ignore[arg-type]

    truth = [c("in", 1.0, 1), c("in", 5.0, 2), c("in", 9.0, 3)]
    # one right, one reversed, one invented
    counted = [c("in", 1.2, 40), c("out", 5.3, 41), c("out", 20.0, 42)]
    report = evaluate([door], truth, counted, tolerance_s=1.0)
    rows = {r.direction: r for r in report.rows}
    assert (rows["in"].matched, rows["in"].missed, rows["in"].wrong_direction) == (1, 1, 1)
    assert (rows["out"].false, rows["out"].counted) == (1, 2)
    assert (report.total("missed"), report.total("false"), report.total("wrong_direction")) == (1, 1, 1)
    # each one listed, in time order: the true crossing's time, frame and person, footfall's id
    assert [(e.kind, e.direction, e.t, e.frame, e.person, e.track) for e in report.errors] == [
        ("wrong_direction", "in", 5.0, 150, 2, 41),
        ("missed", "in", 9.0, 270, 3, None),
        ("false", "out", 20.0, 600, None, 42),
    ]
    assert report.as_dict()["errors"][1] == {
        "kind": "missed",
        "line": "door",
        "direction": "in",
        "t": 9.0,
        "frame": 270,
        "person": 3,
        "track": None,
    }


def test_eval_prints_the_first_unmatched_crossings_and_says_how_many_more() -> None:
    from rich.console import Console

    from footfall.edge.cli import ERRORS_SHOWN, _errors_table
    from footfall.edge.counting import Crossing

    door = LineConfig(name="door", start=(0, 0), end=(10, 0), inside=(5, 5))
    invented = [
        Crossing("door", "entrance", "in", 100 + k, 30 * k, float(k)) for k in range(ERRORS_SHOWN + 5)
    ]
    report = evaluate([door], [], invented, tolerance_s=1.0)
    console = Console(record=True, width=200)
    console.print(_errors_table(report))
    text = console.export_text()
    assert f"the first {ERRORS_SHOWN} of {ERRORS_SHOWN + 5}: --json lists all" in text
    shown = [line for line in text.splitlines() if " false " in line]
    assert len(shown) == ERRORS_SHOWN
    cells = [cell.strip() for cell in shown[0].strip("│ ").split("│")]
    assert cells == ["0.00", "0", "door", "in", "false", "-", "100"]
    assert len(report.as_dict()["errors"]) == ERRORS_SHOWN + 5


def test_recordings_are_analysed_at_the_default_rate_unless_told(tmp_path: Path) -> None:
    from footfall.contracts.config import validate_config
    from footfall.edge.cli import _recording_fps

    camera = validate_config({"store": "s", "camera": "c"}, CameraConfig, source="cam.yaml")
    clip = tmp_path / "clip.mp4"
    write_video(clip, 3, fps=30)
    folder = tmp_path / "img1"
    folder.mkdir()
    assert _recording_fps(str(clip), None, camera) == camera.model.analysis_fps == 15
    assert _recording_fps(str(clip), 0, camera) is None  # every frame
    assert _recording_fps(str(clip), 5, camera) == 5
    assert _recording_fps(str(folder), None, camera) is None  # its own rate unknown: --fps is the rate
    assert _recording_fps("rtsp://cam/stream", None, camera) is None  # live: frames drop by themselves


def test_people_whose_feet_are_out_of_the_picture_do_not_count() -> None:
    from footfall.edge.tracking import Tracks

    xyxy = np.array([[10, 10, 50, 470], [100, 300, 160, 480], [200, 200, 240, 479.5]], dtype=float)
    tracks = Tracks(np.array([1, 2, 3]), xyxy, xyxy[:, [0, 3]], xyxy[:, 3] - xyxy[:, 1])
    assert tracks.feet_in_view(480).ids.tolist() == [1]


def beat(person_px: float | None, detector_input: str = "1088x512") -> object:
    from datetime import UTC, datetime

    from footfall.contracts.events import HeartbeatEvent

    return HeartbeatEvent(
        id="h", store="s", device="d", ts=datetime(2026, 12, 2, tzinfo=UTC), fps=10, latency_ms=50,
        dropped_frames=0, detector_input=detector_input, person_px=person_px, person_px_aim=64,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("sizes", "said"),
    [
        ([], "at the detector's input: no heartbeat saw any"),
        ([None, None], "at the detector's input: no heartbeat saw any"),
        ([60.0, None, 70.0, 66.0], "66.0 px at the detector's 1088x512 input (each heartbeat's"),
        ([60.0, 40.0, 45.0], "45.0 px at the detector's 1088x512 input (each heartbeat's"),
    ],
)
def test_count_sums_up_the_people_size_at_the_detector_input(sizes: list[float | None], said: str) -> None:
    """`footfall count` tells the installer what the ops alert would say of the placement."""
    from footfall.edge.cli import _Totals

    totals = _Totals()
    for size in sizes:
        totals.add(beat(size))  # type: ignore[arg-type]
    text = totals.people_size()
    assert said in text
    share = None if not any(sizes) else float(np.median([s for s in sizes if s is not None])) / 64
    assert ("too small, the model will miss people" in text) == (share is not None and share < 0.8)
    if share is not None:
        assert f"smallest tenth, the median of 3; aim 64 px, {share:.0%} of it)" in text
