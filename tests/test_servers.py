"""The real-server fixtures themselves: auth on InfluxDB, ACLs on Mosquitto, restart keeps data."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
import pytest
import requests

from footfall.contracts.config import MqttSettings
from footfall.contracts.influx import InfluxClient, InfluxError
from tests.servers import InfluxServer, MosquittoServer

pytestmark = pytest.mark.servers


def test_influx_requires_auth_and_keeps_data_over_restart(influx_factory) -> None:  # type: ignore[no-untyped-def]
    server: InfluxServer = influx_factory()
    client = server.create_database("fixture_check")
    anonymous = InfluxClient(url=server.url, database="fixture_check")
    with pytest.raises(InfluxError):
        anonymous.write_lines(["m v=1i 1"])
    client.write_lines(["m,store=a v=1i 1000000000", "m,store=a v=2i 2000000000"])
    server.restart()
    (series,) = client.query("SELECT sum(v) FROM m")
    assert series.column("sum") == [3]
    assert requests.get(f"{server.url}/query", params={"q": "SHOW DATABASES"}, timeout=5).status_code == 401


def _connect(server: MosquittoServer, user: str, password: str) -> tuple[mqtt.Client, int]:
    s = MqttSettings.from_url(server.url())
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"fixture-check-{user}-{password}", protocol=mqtt.MQTTv5
    )
    client.username_pw_set(user, password)
    done = threading.Event()
    result: list[int] = []

    def on_connect(c, userdata, flags, reason_code, props):  # type: ignore[no-untyped-def]
        result.append(reason_code.value)
        done.set()

    client.on_connect = on_connect
    client.connect(s.host, s.port)
    client.loop_start()
    done.wait(5)
    return client, result[0] if result else -1


def test_mosquitto_password_and_acl(mosquitto: MosquittoServer) -> None:
    rejected, rc = _connect(mosquitto, "edge-store-a", "wrong")
    rejected.loop_stop()
    assert rc != 0
    admin, rc = _connect(mosquitto, "admin", "admin-secret")
    assert rc == 0
    got: list[str] = []
    arrived = threading.Event()

    def on_message(c, userdata, msg):  # type: ignore[no-untyped-def]
        got.append(msg.topic)
        arrived.set()

    admin.on_message = on_message
    admin.subscribe("footfall/v1/#", qos=1)
    edge, rc = _connect(mosquitto, "edge-store-a", "edge-a-secret")
    assert rc == 0
    # Mosquitto answers the refused publish and then drops the connection; paho reconnects and
    # re-sends its queued QoS 1 message, so only wait for the allowed one to arrive.
    edge.publish("footfall/v1/store-b/cam/crossing", b"{}", qos=1)
    edge.publish("footfall/v1/store-a/cam/crossing", b"{}", qos=1)
    assert arrived.wait(5)
    threading.Event().wait(0.5)
    assert got == ["footfall/v1/store-a/cam/crossing"]  # store-b was refused by the ACL
    for c in (admin, edge):
        c.loop_stop()
        c.disconnect()
