"""Several cameras in one `footfall edge run` (a store file), real parts only: the real YOLO11n ONNX
model shared by the cameras, real footage, Mosquitto, `footfall ingest` and InfluxDB.

Each camera must store the crossings that `footfall count` counts for that camera alone, and a
camera whose source breaks must not stop the others.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from footfall.cli import app
from footfall.contracts.events import CrossingEvent, parse_event
from footfall.contracts.influx import InfluxClient
from tests.conftest import DEFAULT_MQTT_USERS
from tests.ingest_support import LoggedProcess, ingest_process, wait_for_count
from tests.servers import InfluxServer, MosquittoServer

CONFIGS = Path(__file__).resolve().parent.parent / "edge" / "configs"
STORE = "store-042"
EDGE_USER = "edge-store-042"
PETS_FRAMES = 200  # 20 s of the PETS path: enough crossings, a short test


def _camera_entry(clip_config: str, camera: str, source: Path) -> dict[str, object]:
    data = yaml.safe_load((CONFIGS / f"{clip_config}.yaml").read_text())
    entry = {k: v for k, v in data.items() if k not in ("store", "camera", "model")}
    return {"camera": camera, "source": str(source), **entry}


def _frame_folder(video: Path, folder: Path, frames: int, fps: float, broken_at: int | None = None) -> Path:
    """The first ``frames`` pictures of ``video`` as JPEG files with a seqinfo.ini (a MOT frame
    folder); ``broken_at``: from that picture on two are garbage bytes, as a failing disk or upload
    leaves them."""
    folder.mkdir(parents=True)
    capture = cv2.VideoCapture(str(video))
    for k in range(frames):
        ok, image = capture.read()
        assert ok, f"{video} has fewer than {frames} frames"
        cv2.imwrite(str(folder / f"{k + 1:06d}.jpg"), image)
    capture.release()
    if broken_at is not None:  # two in a row: a sampled rate (every n-th picture) meets one of them
        for k in (broken_at, broken_at + 1):
            (folder / f"{k:06d}.jpg").write_bytes(b"\xff\xd8 not a picture")
    (folder / "seqinfo.ini").write_text(f"[Sequence]\nframeRate={fps:g}\n")
    return folder


def _count_alone(entry: dict[str, object], model: Path, start: str, tmp_path: Path) -> list[CrossingEvent]:
    """What `footfall count` counts for one camera of the store file on its own."""
    camera = {k: v for k, v in entry.items() if k != "source"}
    config = tmp_path / f"{entry['camera']}.yaml"
    config.write_text(yaml.safe_dump({"store": STORE, **camera}))
    out = tmp_path / f"{entry['camera']}.jsonl"
    args = ["count", str(entry["source"]), "--config", str(config), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--model", str(model), "--start", start])
    assert result.exit_code == 0, result.output
    events = [parse_event(line) for line in out.read_text().splitlines()]
    return [e for e in events if isinstance(e, CrossingEvent)]


def _edge_run(
    store_file: Path, broker: MosquittoServer, model: Path, start: str, tmp_path: Path
) -> LoggedProcess:
    args = ["edge", "run", "--config", str(store_file), "--mqtt-url", broker.url(), "--model", str(model)]
    args += ["--start", start, "--queue", str(tmp_path / "queue.sqlite")]
    env = {"MQTT_USER": EDGE_USER, "MQTT_PASSWORD": broker.users[EDGE_USER][0]}
    return LoggedProcess(args, tmp_path / "edge.log", env=env)


def _stored_crossings(client: InfluxClient) -> Counter[tuple[str, str, str]]:
    found: Counter[tuple[str, str, str]] = Counter()
    for series in client.query('SELECT "id", "line", "direction", "device" FROM "crossing"'):
        for row in series.values:
            record = dict(zip(series.columns, row, strict=True))
            found[(str(record["device"]), str(record["line"]), str(record["direction"]))] += 1
    return found


def _tally(device: str, crossings: list[CrossingEvent]) -> Counter[tuple[str, str, str]]:
    return Counter((device, c.line, c.direction) for c in crossings)


@pytest.fixture
def broker(mosquitto_factory: Callable[..., MosquittoServer]) -> MosquittoServer:
    users = {**DEFAULT_MQTT_USERS, EDGE_USER: ("store-secret", [f"topic readwrite footfall/v1/{STORE}/#"])}
    return mosquitto_factory(users=users)


@pytest.fixture
def start_ts() -> str:
    return (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.model
@pytest.mark.servers
@pytest.mark.slow
def test_two_cameras_in_one_process_store_what_each_counts_alone(
    broker: MosquittoServer,
    influxdb: InfluxServer,
    influx_db: InfluxClient,
    detect_model_path: Path,
    video_dir: Path,
    start_ts: str,
    tmp_path: Path,
) -> None:
    pets = _frame_folder(
        video_dir / "pets09_s2l1" / "PETS09-S2L1_480x360.mp4", tmp_path / "pets", PETS_FRAMES, 10
    )
    entries = [
        _camera_entry("tud_campus", "entrance", video_dir / "tud_campus" / "TUD-Campus.mp4"),
        _camera_entry("pets09_s2l1", "walkway", pets),
    ]
    store_file = tmp_path / "store.yaml"
    store_file.write_text(yaml.safe_dump({"store": STORE, "cameras": entries}))
    alone = sum(
        (_tally(str(e["camera"]), _count_alone(e, detect_model_path, start_ts, tmp_path)) for e in entries),
        Counter(),
    )
    assert {device for device, _, _ in alone} == {"entrance", "walkway"}, "both cameras must see crossings"

    ingest = ingest_process(broker, influxdb, influx_db.database, tmp_path / "ingest.log", client_id="ing-mc")
    ingest.start().wait_for_log("ingest ready")
    edge = _edge_run(store_file, broker, detect_model_path, start_ts, tmp_path).start()
    try:
        assert edge.wait(600) == 0, edge.log()
        assert "all events delivered; stopped" in edge.log()
        assert wait_for_count(influx_db, sum(alone.values()), timeout_s=60) >= sum(alone.values()) - 2
        stored = _stored_crossings(influx_db)
        # Per camera, line and direction: what that camera counts alone, within one crossing
        # (a batched inference may differ from a single one in the last float bits).
        for key in alone.keys() | stored.keys():
            assert abs(stored[key] - alone[key]) <= 1, (key, stored[key], alone[key])
    finally:
        edge.kill()
        ingest.terminate()


@pytest.mark.model
@pytest.mark.servers
def test_a_camera_whose_source_breaks_stops_alone(
    broker: MosquittoServer,
    influxdb: InfluxServer,
    influx_db: InfluxClient,
    detect_model_path: Path,
    video_dir: Path,
    start_ts: str,
    tmp_path: Path,
) -> None:
    clip = video_dir / "tud_campus" / "TUD-Campus.mp4"
    broken = _frame_folder(clip, tmp_path / "broken", 60, 25, broken_at=30)
    entries = [_camera_entry("tud_campus", "entrance", clip), _camera_entry("tud_campus", "backdoor", broken)]
    store_file = tmp_path / "store.yaml"
    store_file.write_text(yaml.safe_dump({"store": STORE, "cameras": entries}))
    alone = _tally("entrance", _count_alone(entries[0], detect_model_path, start_ts, tmp_path))

    ingest = ingest_process(broker, influxdb, influx_db.database, tmp_path / "ingest.log", client_id="ing-br")
    ingest.start().wait_for_log("ingest ready")
    edge = _edge_run(store_file, broker, detect_model_path, start_ts, tmp_path).start()
    try:
        # The run fails, naming the camera and the picture, after the good camera finished and
        # its events were delivered.
        assert edge.wait(300) != 0, edge.log()
        log = edge.log()
        assert "camera backdoor stopped" in log
        assert "jpg: not a readable image" in log
        assert "all events delivered; stopped" in log
        assert wait_for_count(influx_db, sum(alone.values()), timeout_s=60) >= sum(alone.values())
        entrance = Counter({k: n for k, n in _stored_crossings(influx_db).items() if k[0] == "entrance"})
        assert entrance == alone
    finally:
        edge.kill()
        ingest.terminate()


@pytest.mark.model
@pytest.mark.servers
def test_a_restart_detects_with_the_input_the_first_start_planned(
    broker: MosquittoServer, detect_model_path: Path, video_dir: Path, start_ts: str, tmp_path: Path
) -> None:
    """`edge run` keeps the camera's planned input beside its queue (edge/plan_file.py); the next
    start detects with it from the first frame, a moved line plans again, --replan plans afresh."""
    data = yaml.safe_load((CONFIGS / "tud_campus.yaml").read_text())
    camera_file = tmp_path / "entrance.yaml"
    camera_file.write_text(yaml.safe_dump({**data, "store": STORE, "camera": "entrance"}))
    plan_file = tmp_path / f"plan-{STORE}-entrance.json"

    def start(name: str, *extra: str) -> str:
        args = ["edge", "run", "--config", str(camera_file), "--mqtt-url", broker.url()]
        args += ["--source", str(video_dir / "tud_campus" / "TUD-Campus.mp4")]
        args += ["--model", str(detect_model_path)]
        args += ["--start", start_ts, "--queue", str(tmp_path / "queue.sqlite"), "--no-require-subscriber"]
        env = {"MQTT_USER": EDGE_USER, "MQTT_PASSWORD": broker.users[EDGE_USER][0]}
        edge = LoggedProcess([*args, *extra], tmp_path / f"{name}.log", env=env).start()
        try:
            assert edge.wait(300) == 0, edge.log()
        finally:
            edge.kill()
        return edge.log()

    def described() -> str:  # how the start-up log names the kept plan's input and crop
        kept = json.loads(plan_file.read_text())
        (x1, y1, x2, y2), (h, w) = kept["crop"], kept["imgsz"]
        return f"detector input {w}x{h} on the crop ({x1},{y1})-({x2},{y2}) of the 640x480 picture: "

    probed = "picture: people near the layout"  # a plan made now (a kept one says where it came from)
    first = start("first")
    assert described() + "people near the layout" in first
    assert probed in first
    planned = plan_file.read_text()
    second = start("second")
    assert described() + f"kept from {json.loads(planned)['planned_at']} in {plan_file}" in second
    assert probed not in second
    assert plan_file.read_text() == planned

    data["lines"][0]["start"][0] += 20
    data["lines"][0]["end"][0] += 20
    camera_file.write_text(yaml.safe_dump({**data, "store": STORE, "camera": "entrance"}))
    moved = start("moved")
    assert f"{plan_file}: planned for a different lines; planning again" in moved
    assert probed in moved
    assert json.loads(plan_file.read_text())["planned_from"]["lines"][0] == [[380, 300], [380, 480]]
    replanned = start("replanned", "--replan")
    assert f"{plan_file}: planning afresh (--replan)" in replanned
    assert probed in replanned
    assert "kept from" not in replanned


@pytest.mark.model
def test_shared_model_batches_concurrent_cameras_without_mixing_them_up(
    detect_model_path: Path, video_dir: Path
) -> None:
    """Four threads, each with its own pictures, through one SharedModel: each gets the people of
    its own pictures (as a lone call finds them), and pictures that waited together ran together."""
    from footfall.edge.inference import YoloModel
    from footfall.edge.multicam import SharedModel

    capture = cv2.VideoCapture(str(video_dir / "tud_campus" / "TUD-Campus.mp4"))
    images = [capture.read()[1] for _ in range(8)]
    model = YoloModel(detect_model_path, "onnx", threads=1)
    alone = [model([image], (480, 640), 0.25, 0.7)[0] for image in images]
    shared = SharedModel(model, max_batch=4)
    results: dict[int, list[np.ndarray]] = {}

    def camera(k: int) -> None:
        results[k] = [shared([images[j]], (480, 640), 0.25, 0.7)[0].xyxy for j in range(k, 8, 4)]

    threads = [threading.Thread(target=camera, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        for got, j in zip(results[k], range(k, 8, 4), strict=True):
            np.testing.assert_allclose(got, alone[j].xyxy, atol=0.05)
    assert sum(shared.batches) == 8
    assert max(shared.batches) > 1, shared.batches


def test_store_file_errors_name_the_file_and_key(tmp_path: Path) -> None:
    from footfall.contracts.config import ConfigError, load_edge_config

    path = tmp_path / "store.yaml"
    path.write_text(
        yaml.safe_dump({"store": STORE, "cameras": [{"camera": "a"}, {"camera": "a", "source": "0"}]})
    )
    with pytest.raises(ConfigError) as info:
        load_edge_config(path)
    assert f"{path}: cameras.0.source: Field required" in str(info.value)
    path.write_text(yaml.safe_dump({"store": STORE, "cameras": [{"camera": "a", "source": "0"}] * 2}))
    with pytest.raises(ConfigError, match=r"duplicate camera names \['a'\]"):
        load_edge_config(path)
    path.write_text(yaml.safe_dump({"store": STORE, "cameras": [{"camera": "a", "source": "clips/a.mp4"}]}))
    store = load_edge_config(path)
    assert store.camera_configs()[0][0] == str(tmp_path.absolute() / "clips" / "a.mp4")  # type: ignore[union-attr]
