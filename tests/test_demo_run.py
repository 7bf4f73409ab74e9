"""``footfall demo`` end to end: real model on the bundled clip, embedded store, report in Chromium."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from matplotlib import image as mpimg

from footfall import demo
from footfall.contracts.config import CameraConfig, ConfigError, load_config
from footfall.contracts.events import CrossingEvent, HeartbeatEvent, ZoneVisitEvent, stable_event_id
from tests.conftest import require
from tests.demo_browser import chromium_binary, dump_dom, screenshot

REPO = Path(__file__).resolve().parent.parent


def test_model_resolution_never_downloads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from footfall.edge import models

    monkeypatch.delenv("FOOTFALL_MODEL", raising=False)
    monkeypatch.setattr(models, "default_weights_candidates", lambda config: [tmp_path / "cache" / "m.onnx"])
    with pytest.raises(ConfigError, match="footfall model fetch"):
        demo.resolve_model(None)
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"x")
    monkeypatch.setenv("FOOTFALL_MODEL", str(weights))
    assert demo.resolve_model(None) == str(weights)
    with pytest.raises(ConfigError, match="never downloaded"):
        demo.resolve_model(str(tmp_path / "typo.pt"))  # an explicit model never falls back
    monkeypatch.delenv("FOOTFALL_MODEL")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "m.onnx").write_bytes(b"x")
    assert demo.resolve_model(None) == str(tmp_path / "cache" / "m.onnx")  # the default model


def _clip_run(config: CameraConfig) -> demo.ClipRun:
    """Two people as the edge reports them: in, table visit, out."""
    t0 = datetime(2026, 3, 14, 9, tzinfo=UTC)
    events: list = []
    for track, (start, dwell) in enumerate([(5.0, 12.0), (40.0, 30.0)], start=1):
        at = t0 + timedelta(seconds=start)
        common = {"store": config.store, "device": config.camera, "track_id": track}
        events += [
            CrossingEvent(
                id=stable_event_id(track, "in"), ts=at, line="door", kind="entrance", direction="in", **common
            ),
            ZoneVisitEvent(
                id=stable_event_id(track, "zone"),
                ts=at + timedelta(seconds=2 + dwell),
                zone="table",
                enter_ts=at + timedelta(seconds=2),
                exit_ts=at + timedelta(seconds=2 + dwell),
                dwell_s=dwell,
                **common,
            ),
            CrossingEvent(
                id=stable_event_id(track, "out"),
                ts=at + timedelta(seconds=4 + dwell),
                line="side-exit",
                kind="entrance",
                direction="out",
                **common,
            ),
        ]
    return demo.ClipRun(events, frames=100, seconds=2.0, frame_png=None)


def test_visits_group_each_persons_events() -> None:
    config = load_config(demo.SAMPLE_CONFIG, CameraConfig)
    visits = demo.visits_of(_clip_run(config).events)
    assert [v.track_id for v in visits] == [1, 2]
    assert [v.span.total_seconds() for v in visits] == [16.0, 34.0]


def test_history_replays_visits_in_open_hours_only() -> None:
    config = load_config(demo.SAMPLE_CONFIG, CameraConfig)
    tz = ZoneInfo("Europe/Berlin")
    last = date(2026, 3, 14)  # a Saturday
    history = demo.build_history(_clip_run(config), config, last_day=last, weeks=2, tz=tz, seed=3)
    assert (history.first_day, history.last_day) == (last - timedelta(days=13), last)
    assert len({e.id for e in history.events}) == len(history.events)  # replays get fresh ids
    for event in history.events:
        local = event.ts.astimezone(tz)
        assert local.weekday() != 6  # closed on Sundays
        assert demo.OPEN_HOUR <= local.hour < demo.CLOSE_HOUR
    ins = [e for e in history.events if isinstance(e, CrossingEvent) and e.direction == "in"]
    campaign_week = sum(1 for e in ins if e.ts >= history.campaign_start)
    week_before = sum(
        1 for e in ins if history.campaign_start - timedelta(days=7) <= e.ts < history.campaign_start
    )
    assert campaign_week > week_before  # the generated campaign adds visitors
    beats = [e for e in history.events if isinstance(e, HeartbeatEvent)]
    assert len(beats) == 12 * 60 * (demo.CLOSE_HOUR - demo.OPEN_HOUR)  # 12 open days, one a minute
    assert 0 < len(history.pos) < len(ins)


@pytest.mark.slow
@pytest.mark.model
def test_demo_command_end_to_end(tmp_path: Path, detect_model_path: Path, video_dir: Path) -> None:
    """The README's first command, as a newcomer runs it: no --model, so the default model
    (yolo11n.onnx) from the edge's chain; the cache is empty here, so ../shared's copy."""
    require(chromium_binary() is not None, "chromium (Debian package chromium)")
    with (video_dir / "intel_one_by_one" / "gt_presence_intervals.csv").open() as fh:
        people = len(list(csv.DictReader(fh)))
    out = tmp_path / "demo"
    env = os.environ | {"YOLO_OFFLINE": "1", "YOLO_VERBOSE": "False"}
    env |= {"FOOTFALL_CACHE_DIR": str(tmp_path / "empty-cache")}
    env.pop("FOOTFALL_MODEL", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "footfall",
            "demo",
            "--out",
            str(out),
            "--day",
            "2026-03-14",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=560,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"({detect_model_path.name})" in proc.stdout  # the default model counted
    counted = re.search(r"counted (\d+) in / (\d+) out", proc.stdout)
    assert counted, proc.stdout
    # Each of the clip's people walks in once and leaves once (hand-checked presence intervals).
    assert abs(int(counted[1]) - people) <= 1
    assert abs(int(counted[2]) - people) <= 1
    assert "capture rate" in proc.stdout
    assert "conversion" in proc.stdout
    assert re.search(r"campaign window-display: uplift\s*│\s*\+\d", proc.stdout)
    # the last day is inside the campaign: traffic above what the weeks before it lead to expect
    above = re.search(r"hours below / above expected\s*│\s*(\d+) / (\d+) of (\d+)", proc.stdout)
    assert above, proc.stdout
    assert int(above[2]) >= 1

    report = out / "report.html"
    dom = dump_dom(report, tmp_path / "profile")
    assert dom.count("<svg") == 5  # hourly traffic, against expected, capture rate, dwell, campaign uplift
    assert "Visitors against expected" in dom
    assert "Camera health" in dom
    assert "no camera issue" in dom  # the scene monitor ran on the sample clip and found nothing
    assert "data:image/png;base64," in dom
    shot = screenshot(report, tmp_path / "report.png", tmp_path / "profile")
    pixels = (mpimg.imread(shot)[..., :3] * 255).round().astype(int)
    blue = np.all(np.abs(pixels - np.array([0x32, 0x74, 0xD9])) <= 2, axis=-1)
    assert blue.sum() > 500  # the charts' bars were painted
