"""Helpers for the ingest / transport / bridge tests: real `footfall` subprocesses and MQTT clients."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from footfall.contracts.config import MqttSettings
from footfall.contracts.events import (
    DEADLETTER_TOPIC,
    EVENT_TYPES,
    CrossingEvent,
    Event,
    is_batch_topic,
    parse_batch,
    parse_event,
)
from footfall.contracts.influx import InfluxClient
from footfall.contracts.tls import TlsFiles
from tests.servers import InfluxServer, MosquittoServer
from tests.tls_support import tls_args

FOOTFALL = [sys.executable, "-m", "footfall"]


def crossing_events(
    n: int, *, store: str = "store-a", device: str = "cam-1", start: datetime | None = None
) -> list[CrossingEvent]:
    """N distinct crossings, 1 ms apart, ending about now (inside the accepted time window)."""
    start = start or datetime.now(UTC) - timedelta(minutes=5)
    run = uuid.uuid4().hex[:8]
    return [
        CrossingEvent(
            id=f"{run}-{i}",
            store=store,
            device=device,
            ts=start + timedelta(milliseconds=i),
            line="door",
            kind="entrance",
            direction="in" if i % 3 else "out",
            track_id=i,
            frame=i,
        )
        for i in range(n)
    ]


def events_in(messages: Iterable[mqtt.MQTTMessage]) -> list[Event]:
    """The events carried by received MQTT messages, in order, batch messages unpacked."""
    events: list[Event] = []
    for msg in messages:
        if is_batch_topic(msg.topic):
            batch, rejected = parse_batch(msg.payload, topic=msg.topic)
            assert not rejected, rejected
            events += batch
        elif msg.topic.rpartition("/")[2] in EVENT_TYPES:
            events.append(parse_event(msg.payload, topic=msg.topic))
    return events


def write_jsonl(path: Path, events: Iterable[CrossingEvent]) -> Path:
    path.write_text("".join(e.to_json() + "\n" for e in events))
    return path


@dataclass
class LoggedProcess:
    """A `footfall ...` child process whose output goes to a file the test can wait on."""

    args: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> LoggedProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*FOOTFALL, *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
            )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text: str, timeout_s: float = 20.0, *, occurrences: int = 1) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.log().count(text) >= occurrences:
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(
                    f"process exited ({self.proc.returncode}) before {text!r}:\n{self.log()}"
                )
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} after {timeout_s}s:\n{self.log()[-3000:]}")

    def wait(self, timeout_s: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {timeout_s}s:\n{self.log()[-3000:]}") from None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)


def ingest_process(
    broker: MosquittoServer,
    influx: InfluxServer,
    db: str,
    log_path: Path,
    *,
    client_id: str,
    batch_size: int = 500,
    share: bool = True,
    tls: TlsFiles | None = None,
    influx_ca: Path | None = None,
) -> LoggedProcess:
    """`footfall ingest` as the deployment runs it. With ``tls`` (a client certificate) it uses the
    broker's TLS listener; an HTTPS InfluxDB is verified with ``influx_ca`` (default: its own CA),
    given through INFLUX_CA as a service's environment would."""
    influx_ca = influx_ca or (influx.tls.ca if influx.tls is not None else None)
    return LoggedProcess(
        [
            "ingest",
            "--share" if share else "--no-share",
            "--mqtt-url",
            broker.tls_url() if tls is not None else broker.url(),
            *(tls_args(tls) if tls is not None else []),
            "--influx-url",
            influx.url,
            "--influx-db",
            db,
            "--client-id",
            client_id,
            # Own group per test: killed workers of other tests keep their sessions on the broker.
            "--group",
            client_id,
            "--batch-size",
            str(batch_size),
            "--max-latency",
            "0.2",
        ],
        log_path,
        # Secrets through the environment, as in production.
        env={
            "MQTT_USER": "ingest",
            "MQTT_PASSWORD": broker.users["ingest"][0],
            "INFLUX_USER": influx.admin_user,
            "INFLUX_PASSWORD": influx.admin_password,
            **({"INFLUX_CA": str(influx_ca)} if influx_ca is not None else {}),
        },
    )


def count_points(client: InfluxClient, measurement: str = "crossing", where: str = "") -> int:
    column = "count" if measurement == "deadletter" else "id"
    series = client.query(f'SELECT count("{column}") FROM "{measurement}" {where}')
    return int(series[0].column("count")[0]) if series else 0


def wait_for_count(
    client: InfluxClient,
    expected: int,
    *,
    measurement: str = "crossing",
    timeout_s: float = 30.0,
    where: str = "",
) -> int:
    """Wait until `expected` points are stored, then a little longer to catch any surplus."""
    deadline = time.monotonic() + timeout_s
    count = 0
    while time.monotonic() < deadline:
        count = count_points(client, measurement, where)
        if count >= expected:
            time.sleep(0.5)
            return count_points(client, measurement, where)
        time.sleep(0.2)
    return count


class MqttTestClient:
    """A plain paho client (MQTT v5) for tests: publish with PUBACK waits, collect subscriptions."""

    def __init__(
        self,
        broker: MosquittoServer,
        user: str,
        *,
        client_id: str | None = None,
        persistent: bool = False,
        tls: TlsFiles | None = None,
    ) -> None:
        # With ``tls`` (a certificate whose CN is ``user``), through the broker's TLS listener.
        s = MqttSettings.from_url(broker.tls_url(), tls) if tls else MqttSettings.from_url(broker.url(user))
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-{user}-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        s.configure(self.client)
        self.client.max_inflight_messages_set(200)
        self.messages: list[mqtt.MQTTMessage] = []
        self._arrived = threading.Condition()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self.client.on_connect = lambda *a: self._connected.set()
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        props = None
        if persistent:  # keeps its subscriptions (and missed messages) across broker restarts
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
        self.client.connect(s.host, s.port, clean_start=not persistent, properties=props)
        self.client.loop_start()
        assert self._connected.wait(10), f"{user} could not connect"

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._arrived:
            self.messages.append(msg)
            self._arrived.notify_all()

    def subscribe(self, topic: str) -> MqttTestClient:
        self._subscribed.clear()
        self.client.subscribe(topic, qos=1)
        assert self._subscribed.wait(10)
        return self

    def publish(self, topic: str, payload: bytes | str, *, wait: bool = True) -> None:
        info = self.client.publish(topic, payload, qos=1)
        if wait:
            info.wait_for_publish(10)

    def wait_for(self, predicate: Callable[[list[mqtt.MQTTMessage]], bool], timeout_s: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            while not predicate(self.messages):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._arrived.wait(remaining)
        return True

    def json_messages(self, topic: str | None = None) -> list[dict[str, object]]:
        return [json.loads(m.payload) for m in self.messages if topic is None or m.topic == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def deadletter_listener(broker: MosquittoServer) -> MqttTestClient:
    return MqttTestClient(broker, "admin").subscribe(DEADLETTER_TOPIC)
