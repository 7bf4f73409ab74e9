"""Fault tests with real processes: N events in, exactly N points in InfluxDB (no loss, no duplicate).

The edge side is `footfall edge replay` (the same store-and-forward publisher as `footfall edge
run`), the central side `footfall ingest`, both real subprocesses so that SIGKILL is real.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from footfall.contracts.influx import InfluxClient
from tests.ingest_support import (
    LoggedProcess,
    count_points,
    crossing_events,
    ingest_process,
    wait_for_count,
    write_jsonl,
)
from tests.servers import InfluxServer, MosquittoServer

pytestmark = pytest.mark.servers

N = 1500
RATE = 500  # events/s: the stream lasts ~3 s, faults land in the middle of it


def _replay(
    broker: MosquittoServer, events_file: Path, tmp_path: Path, name: str = "replay"
) -> LoggedProcess:
    return LoggedProcess(
        [
            "edge",
            "replay",
            str(events_file),
            "--mqtt-url",
            broker.url(),
            "--queue",
            str(tmp_path / "edge-queue.sqlite"),
            "--rate",
            str(RATE),
        ],
        tmp_path / f"{name}.log",
        env={"MQTT_USER": "edge-store-a", "MQTT_PASSWORD": broker.users["edge-store-a"][0]},
    )


def _assert_exactly(client: InfluxClient, n: int, timeout_s: float = 60) -> None:
    assert wait_for_count(client, n, timeout_s=timeout_s) == n
    (series,) = client.query('SELECT count(distinct("id")) FROM "crossing"')
    assert series.column("count") == [n]


def _wait_until_stored_some(client: InfluxClient) -> None:
    """Let the stream get going (some points stored, most still to come) before the fault."""
    deadline = time.monotonic() + 20
    while count_points(client) < 100 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert 0 < count_points(client) < N, "the fault must land mid-stream"


@pytest.fixture
def broker(mosquitto_factory: Callable[..., MosquittoServer]) -> MosquittoServer:
    return mosquitto_factory()


def test_broker_restarted_mid_stream(
    broker: MosquittoServer, influxdb: InfluxServer, influx_db: InfluxClient, tmp_path: Path
) -> None:
    # The default shared subscription. Mosquitto 2.0 does not restore shared subscriptions from its
    # persistence file: until ingest has subscribed again, it answers the edge "no matching
    # subscribers" (PUBACK 0x10), and the edge keeps those events queued and sends them again.
    ingest = ingest_process(
        broker, influxdb, influx_db.database, tmp_path / "ingest.log", client_id="ing-broker"
    )
    ingest.start().wait_for_log("ingest ready")
    replay = _replay(broker, write_jsonl(tmp_path / "events.jsonl", crossing_events(N)), tmp_path).start()
    try:
        _wait_until_stored_some(influx_db)
        broker.restart()
        assert replay.wait(60) == 0, replay.log()
        _assert_exactly(influx_db, N)
        assert "disconnected" in replay.log()
        assert "disconnected from broker" in ingest.log()
    finally:
        replay.kill()
        ingest.terminate()


def test_broker_restarted_while_ingest_is_down(
    broker: MosquittoServer, influxdb: InfluxServer, influx_db: InfluxClient, tmp_path: Path
) -> None:
    """After the restart the broker has forgotten ingest's shared subscription and, with ingest still
    down, no subscriber at all: it answers "no matching subscribers", the edge keeps the events."""

    def interrupt(first: LoggedProcess, replay: LoggedProcess) -> None:
        first.terminate()
        broker.restart()
        replay.wait_for_log("no subscriber on the broker", timeout_s=30)
        assert count_points(influx_db) < N

    _restart_ingest_mid_stream(broker, influxdb, influx_db, tmp_path, "ing-down", interrupt)


@pytest.mark.slow
def test_influxdb_stopped_for_30s_mid_stream(
    broker: MosquittoServer, influx_factory: Callable[[], InfluxServer], tmp_path: Path
) -> None:
    influx = influx_factory()
    db = influx.create_database("outage")
    ingest = ingest_process(broker, influx, db.database, tmp_path / "ingest.log", client_id="ing-outage")
    ingest.start().wait_for_log("ingest ready")
    replay = _replay(broker, write_jsonl(tmp_path / "events.jsonl", crossing_events(N)), tmp_path).start()
    try:
        _wait_until_stored_some(db)
        influx.stop()
        stopped_at = time.monotonic()
        # The edge keeps publishing into the broker while the database is down.
        assert replay.wait(60) == 0, replay.log()
        time.sleep(max(0.0, 30 - (time.monotonic() - stopped_at)))
        influx.start()
        _assert_exactly(db, N, timeout_s=90)
        assert "InfluxDB write failed" in ingest.log()
    finally:
        replay.kill()
        ingest.terminate()
        influx.kill()


def test_ingest_sigkilled_mid_stream_and_restarted(
    broker: MosquittoServer, influxdb: InfluxServer, influx_db: InfluxClient, tmp_path: Path
) -> None:
    def interrupt(first: LoggedProcess, replay: LoggedProcess) -> None:
        first.kill()  # SIGKILL: un-acked messages of the killed worker stay in its broker session
        time.sleep(1.0)

    _restart_ingest_mid_stream(broker, influxdb, influx_db, tmp_path, "ing-kill", interrupt)


def _restart_ingest_mid_stream(
    broker: MosquittoServer,
    influxdb: InfluxServer,
    influx_db: InfluxClient,
    tmp_path: Path,
    client_id: str,
    interrupt: Callable[[LoggedProcess, LoggedProcess], None],
) -> None:
    """Stream N events; mid-stream ``interrupt(ingest, replay)``; start ingest again; exactly N stored."""

    def ingest() -> LoggedProcess:
        return ingest_process(
            broker, influxdb, influx_db.database, tmp_path / "ingest.log", client_id=client_id
        )

    first = ingest().start()
    first.wait_for_log("ingest ready")
    replay = _replay(broker, write_jsonl(tmp_path / "events.jsonl", crossing_events(N)), tmp_path).start()
    second = ingest()
    try:
        _wait_until_stored_some(influx_db)
        interrupt(first, replay)
        second.start().wait_for_log("ingest ready", occurrences=2)
        assert replay.wait(90) == 0, replay.log()
        _assert_exactly(influx_db, N)
    finally:
        replay.kill()
        first.kill()
        second.terminate()


def test_edge_sigkilled_with_backlog_and_restarted(
    broker: MosquittoServer, influxdb: InfluxServer, influx_db: InfluxClient, tmp_path: Path
) -> None:
    ingest = ingest_process(
        broker, influxdb, influx_db.database, tmp_path / "ingest.log", client_id="ing-edge"
    )
    ingest.start().wait_for_log("ingest ready")
    events_file = write_jsonl(tmp_path / "events.jsonl", crossing_events(N))
    broker.stop()  # the store's uplink is down: everything the edge produces piles up on its disk
    first = _replay(broker, events_file, tmp_path, "replay-1").start()
    second = _replay(broker, events_file, tmp_path, "replay-2")
    try:
        time.sleep(1.5)
        first.kill()  # SIGKILL with a backlog (and lines of the file not queued yet)
        assert "disconnected" not in first.log() or "queued" in first.log()
        broker.start()
        # Ingest subscribes again first; otherwise the edge would hold its events until it has.
        ingest.wait_for_log("ingest ready", occurrences=2)
        second.start()
        assert second.wait(60) == 0, second.log()
        assert "resuming" in second.log()
        _assert_exactly(influx_db, N)
    finally:
        first.kill()
        second.kill()
        ingest.terminate()
