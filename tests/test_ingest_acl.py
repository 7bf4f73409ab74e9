"""A device of store A cannot inject events for store B: not through the broker's topic ACL, and not
by putting store B into a payload published under its own topic (ingest checks topic == payload)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from footfall.contracts.config import MqttSettings
from footfall.contracts.events import DEADLETTER_TOPIC
from footfall.contracts.influx import InfluxClient
from footfall.edge.transport import DiskQueue, StoreAndForwardPublisher
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


def test_store_a_device_cannot_inject_store_b_events(
    mosquitto: MosquittoServer, influxdb: InfluxServer, influx_db: InfluxClient, tmp_path: Path
) -> None:
    ingest = ingest_process(
        mosquitto, influxdb, influx_db.database, tmp_path / "ingest.log", client_id="ing-acl"
    )
    ingest.start().wait_for_log("ingest ready")
    listener = deadletter_listener(mosquitto)
    # 1) Topic ACL: edge-store-a publishing under footfall/v1/store-b/... is refused by the broker.
    queue = DiskQueue(tmp_path / "q.sqlite")
    publisher = StoreAndForwardPublisher(
        MqttSettings.from_url(mosquitto.url("edge-store-a")), queue, store="store-a", device="acl-cam"
    ).start()
    forged = crossing_events(3, store="store-b", device="acl-cam")
    honest = crossing_events(5, store="store-a", device="acl-cam")
    # 2) Payload/topic mismatch: store-b in the payload, published under store-a's own topic.
    spoofer = MqttTestClient(mosquitto, "edge-store-a")
    try:
        publisher.publish_many(forged)
        publisher.publish_many(honest)
        assert publisher.wait_drained(30), "refused events must not block the queue"
        spoof = crossing_events(1, store="store-b", device="acl-cam")[0]
        spoofer.publish("footfall/v1/store-a/acl-cam/crossing", spoof.to_json())
        assert listener.wait_for(lambda msgs: any(m.topic == DEADLETTER_TOPIC for m in msgs), 15)
        assert wait_for_count(influx_db, 5, timeout_s=15) == 5
        time.sleep(0.5)
    finally:
        publisher.stop()
        spoofer.close()
        listener.close()
        ingest.terminate()
    assert publisher.stats.refused_by_broker == 3
    assert count_points(influx_db, where="WHERE store = 'store-b'") == 0
    assert count_points(influx_db, where="WHERE store = 'store-a'") == 5
    (letter,) = listener.json_messages(DEADLETTER_TOPIC)
    assert letter["reason"] == "topic_mismatch"
    assert letter["topic"] == "footfall/v1/store-a/acl-cam/crossing"
