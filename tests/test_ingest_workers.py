"""Ingest as a group: two workers split one shared subscription without loss or duplicates; a point
InfluxDB itself refuses is dead-lettered (`db_rejected`) while the rest of its batch is stored."""

from __future__ import annotations

import re
from datetime import UTC, datetime
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


def test_dead_letter_point_refused_too_is_logged_counted_and_acknowledged(
    mosquitto: MosquittoServer, influxdb: InfluxServer, influx_db: InfluxClient, tmp_path: Path
) -> None:
    """InfluxDB refuses a point and then its ``deadletter`` point as well (here a field type conflict
    on ``deadletter``; a database at its series limit does the same): the dead letter is written
    once, the refusal logged and counted, the message acknowledged, and ingest goes on."""
    good = crossing_events(5, device="calm-cam")
    bad = OccupancyEvent(id="occ-2", store="store-a", device="conflict-cam", ts=good[0].ts, count=3)
    now_ns = datetime_to_ns(datetime.now(UTC))
    influx_db.write_lines(
        [f'occupancy,device=seed,store=store-a count="many",id="seed" {datetime_to_ns(bad.ts)}']
        # The dead letter is stamped when it is written: the shard of now, or of the next minutes.
        + [f'deadletter,component=seed,reason=seed count="many" {now_ns + m * 60 * 10**9}' for m in (0, 10)]
    )
    log = "InfluxDB refused the deadletter point"
    first, again = (
        ingest_process(mosquitto, influxdb, influx_db.database, tmp_path / f"{n}.log", client_id="twice")
        for n in ("first", "again")
    )
    first.start().wait_for_log("ingest ready")
    sender = MqttTestClient(mosquitto, "admin")
    try:
        for event in [*good[:2], bad, *good[2:4]]:
            sender.publish(event.topic, event.to_json(), wait=False)
        first.wait_for_log(log)
        sender.publish(good[4].topic, good[4].to_json())  # after it, ingest still runs
        assert wait_for_count(influx_db, 5, timeout_s=15, where="WHERE device = 'calm-cam'") == 5
        first.terminate()
        # Acknowledged: the same worker started again is not handed the refused message a second time.
        again.start().wait_for_log("ingest ready")
        late = crossing_events(1, device="late-cam")[0]
        sender.publish(late.topic, late.to_json())
        assert wait_for_count(influx_db, 1, timeout_s=15, where="WHERE device = 'late-cam'") == 1
        again.terminate()
    finally:
        sender.close()
        first.kill()
        again.kill()
    assert "unstored_deadletters=1 " in first.log().rpartition("stopped: ")[2]
    assert "occ-2" not in first.log().partition(log)[2].partition("\n")[0]  # no event data logged
    assert "db_rejected" not in again.log()
