"""Ingest as a group: two workers split one shared subscription without loss or duplicates; a point
InfluxDB itself refuses is dead-lettered (`db_rejected`) while the rest of its batch is stored."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from footfall.contracts.events import DEADLETTER_TOPIC, OccupancyEvent
from footfall.contracts.influx import InfluxClient
from footfall.contracts.measurements import datetime_to_ns
from tests.ingest_support import (
    MqttTestClient,
    count_points,
    crossing_events,
    deadletter_listener,
    ingest_process,
    wait_for_count,
)
from tests.servers import InfluxServer, MosquittoServer

# A broker of this module's own (tests/conftest.py `mosquitto`): its sessions stay here.
OWN_BROKER = True
pytestmark = pytest.mark.servers


def test_two_workers_share_the_load(
    mosquitto: MosquittoServer, influxdb: InfluxServer, influx_db: InfluxClient, tmp_path: Path
) -> None:
    workers = [
        ingest_process(mosquitto, influxdb, influx_db.database, tmp_path / f"w{i}.log", client_id=f"w{i}")
        for i in range(2)
    ]
    for worker in workers:
        # One group for both (ingest_process defaults the group to the client id).
        worker.args[worker.args.index("--group") + 1] = "shared-pair"
        worker.start().wait_for_log("ingest ready")
    sender = MqttTestClient(mosquitto, "admin")
    events = crossing_events(1000, device="pair-cam")
    try:
        for event in events:
            sender.publish(event.topic, event.to_json(), wait=False)
        assert wait_for_count(influx_db, 1000) == 1000
    finally:
        sender.close()
        for worker in workers:
            worker.terminate()
    received = [int(re.findall(r"stopped: received=(\d+)", w.log())[-1]) for w in workers]
    assert sum(received) == 1000
    assert min(received) > 0, f"one worker got nothing: {received}"


def test_point_refused_by_influxdb_is_dead_lettered_and_the_batch_still_written(
    mosquitto: MosquittoServer, influxdb: InfluxServer, influx_db: InfluxClient, tmp_path: Path
) -> None:
    # A string "count" already in this shard's occupancy: InfluxDB answers 400 (field type conflict)
    # for an occupancy point with the integer "count"; crossings are unaffected.
    good = crossing_events(20, device="fine-cam")
    bad = OccupancyEvent(id="occ-1", store="store-a", device="conflict-cam", ts=good[0].ts, count=3)
    # At the bad point's own time, in another series: field types are per shard, and a shard
    # boundary can fall anywhere (weekly shards begin on Monday 00:00 UTC).
    seed_ns = datetime_to_ns(bad.ts)
    influx_db.write_lines([f'occupancy,device=seed,store=store-a count="many",id="seed" {seed_ns}'])
    ingest = ingest_process(
        mosquitto, influxdb, influx_db.database, tmp_path / "ingest.log", client_id="conflict"
    )
    ingest.start().wait_for_log("ingest ready")
    listener = deadletter_listener(mosquitto)
    sender = MqttTestClient(mosquitto, "admin")
    try:
        for event in [*good[:10], bad, *good[10:]]:
            sender.publish(event.topic, event.to_json(), wait=False)
        assert listener.wait_for(lambda msgs: any(m.topic == DEADLETTER_TOPIC for m in msgs), 20)
        assert count_points(influx_db, where="WHERE device = 'fine-cam'") == 20
    finally:
        sender.close()
        listener.close()
        ingest.terminate()
    (letter,) = listener.json_messages(DEADLETTER_TOPIC)
    assert letter["reason"] == "db_rejected"
    assert letter["topic"] == bad.topic
    assert "conflict" in str(letter["detail"])
    assert count_points(influx_db, "deadletter", where="WHERE reason = 'db_rejected'") == 1
