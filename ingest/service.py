"""The central ingest: MQTT (shared subscription, manual acks) -> validation -> InfluxDB batches.

Guarantees:
- A message is acknowledged to the broker only after the batch holding it is in InfluxDB (or its
  dead letter is), so a crash, a SIGKILL or a database outage loses nothing: the broker keeps the
  un-acknowledged messages in the persistent session and sends them again.
- Every point's timestamp is derived from the event (``event_to_point``), so a redelivered event
  overwrites itself: at-least-once delivery becomes exactly-once storage.
- Bad input never stops the loop: it goes to ``footfall/v1/deadletter`` with a reason and is
  counted in the ``deadletter`` measurement.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential

from footfall.contracts.config import MqttSettings
from footfall.contracts.events import (
    DEADLETTER_TOPIC,
    TOPIC_ROOT,
    DeadLetter,
    DeadLetterReason,
    EventError,
    is_batch_topic,
    is_status_topic,
    parse_batch,
    parse_event,
)
from footfall.contracts.fastpath import message_lines
from footfall.contracts.influx import InfluxClient, InfluxError
from footfall.contracts.measurements import deadletter_point, event_to_line

if TYPE_CHECKING:  # paho declares its socket protocol for type checkers only
    from paho.mqtt.client import SocketLike

log = logging.getLogger("footfall.ingest")

SUBSCRIPTION = f"{TOPIC_ROOT}/+/+/+"
COMPONENT = "ingest"
# MQTT v5 allows at most 65535 un-acknowledged QoS 1 messages in flight to one client.
MAX_RECEIVE_MAXIMUM = 65535


def default_client_id() -> str:
    return f"footfall-ingest-{socket.gethostname()}"


@dataclass(frozen=True)
class IngestSettings:
    mqtt: MqttSettings
    group: str = "footfall-ingest"
    # False: a plain (exclusive) subscription for a single worker. Mosquitto 2.0.x does not restore
    # shared subscriptions from its persistence file, so only an exclusive one also survives a
    # broker restart that happens while this worker is disconnected (see docs/ingest.md).
    shared: bool = True
    # Stable per worker: the broker keeps this client's session (subscription and un-acknowledged
    # messages) across restarts. Give each worker of a group its own id.
    client_id: str = field(default_factory=default_client_id)
    batch_size: int = 5000
    max_latency_s: float = 0.5
    receive_maximum: int = MAX_RECEIVE_MAXIMUM
    session_expiry_s: int = 7 * 24 * 3600
    max_backoff_s: float = 10.0
    stats_every_s: float = 10.0

    @property
    def subscriptions(self) -> list[str]:
        """Events, plus the dead letters of bridges (counted here so every dead letter is in one place)."""
        topics = [SUBSCRIPTION, DEADLETTER_TOPIC]
        return [f"$share/{self.group}/{t}" if self.shared else t for t in topics]


@dataclass
class IngestStats:
    received: int = 0
    written: int = 0
    status_messages: int = 0
    batches: int = 0
    write_retries: int = 0
    deadletters: Counter[str] = field(default_factory=Counter)
    # Dead letters published whose ``deadletter`` point InfluxDB refused (so missing from its counts).
    unstored_deadletters: int = 0

    def summary(self) -> str:
        dead = ", ".join(f"{k}={v}" for k, v in sorted(self.deadletters.items())) or "none"
        return (
            f"received={self.received} written={self.written} batches={self.batches} "
            f"retries={self.write_retries} status={self.status_messages} "
            f"unstored_deadletters={self.unstored_deadletters} deadletters: {dead}"
        )


class _BufferedSocket:
    """Reads the socket in 64 KiB chunks and serves paho's small reads from memory.

    paho reads each packet with several tiny ``recv`` calls after one ``select``; at thousands of
    messages per second those syscalls dominate. paho already honours ``pending()`` (meant for TLS
    sockets) to skip waiting in ``select`` while buffered bytes remain. A large read (the body of a
    batch message) with nothing buffered goes straight to the socket, without a copy.
    """

    CHUNK = 65536

    def __init__(self, sock: SocketLike) -> None:
        self._sock = sock
        self._buffer = b""
        self._pos = 0

    def recv(self, size: int) -> bytes:
        if self._pos >= len(self._buffer):
            if size >= self.CHUNK:
                return self._sock.recv(size)
            data = self._sock.recv(self.CHUNK)
            if not data:
                return b""
            self._buffer, self._pos = data, 0
        out = self._buffer[self._pos : self._pos + size]
        self._pos += len(out)
        return out

    def pending(self) -> int:
        own = len(self._buffer) - self._pos
        return own + (self._sock.pending() if hasattr(self._sock, "pending") else 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


_PUBACK = struct.Struct("!BBH")


class _FastReadClient(mqtt.Client):
    """paho's client reading up to 1000 packets per wake-up (paho reads one per ``select`` when it
    has nothing of its own in flight, as for a pure subscriber), from a buffered socket."""

    def _create_socket(self) -> Any:
        return _BufferedSocket(super()._create_socket())

    def ack_many(self, mids: list[int]) -> None:
        """PUBACK many QoS 1 messages with one write: paho would queue, wake its loop and ``send``
        once per message. Same 4-byte packets as paho's own ``ack`` (MQTT v5 allows the short form)."""
        if mids:
            packet = b"".join(_PUBACK.pack(mqtt.PUBACK, 2, mid) for mid in mids)
            self._packet_queue(mqtt.PUBACK, packet, 0, 1)

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        for _ in range(1000):
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                break
        return MQTTErrorCode.MQTT_ERR_SUCCESS


class IngestService:
    """One ingest worker. ``run()`` blocks until ``stop()``.

    Two threads share one pending batch: paho's network thread validates each message as it arrives
    and appends its points; the calling thread takes the batch when it is full (``batch_size``) or
    old enough (``max_latency_s``), writes it to InfluxDB and then acknowledges its messages. The
    next batch fills while one is written. The network thread waits (and so stops reading from the
    broker) while twice ``batch_size`` points are pending, which bounds memory during an outage.
    """

    def __init__(self, settings: IngestSettings, influx: InfluxClient) -> None:
        self.settings = settings
        self.influx = influx
        self.stats = IngestStats()
        self._pending = _Batch()
        self._cond = threading.Condition()
        self._max_pending = 2 * settings.batch_size
        self._connection = 0
        self._connected = False
        self._stopping = threading.Event()
        self.ready = threading.Event()
        self._client = self._make_client()

    # ---- MQTT side (paho network thread) -------------------------------------------------------

    def _make_client(self) -> _FastReadClient:
        client = _FastReadClient(
            CallbackAPIVersion.VERSION2,
            client_id=self.settings.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        self.settings.mqtt.configure(client)
        client.reconnect_delay_set(min_delay=1, max_delay=5)
        # Our own publishes are only dead letters; let paho queue as many as needed.
        client.max_inflight_messages_set(0)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.settings.session_expiry_s
        # Let the broker have many un-acknowledged messages in flight to us: we ack per batch.
        props.ReceiveMaximum = min(self.settings.receive_maximum, MAX_RECEIVE_MAXIMUM)
        return props

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        props: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.error("broker refused the connection: %s", reason_code)
            return
        self._connection += 1
        self._connected = True
        log.info("connected (session present: %s)", flags.session_present)
        client.subscribe([(topic, 1) for topic in self.settings.subscriptions])

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        props: Properties | None,
    ) -> None:
        if any(rc.is_failure for rc in reason_codes):
            log.error("subscription to %s refused: %s", self.settings.subscriptions, reason_codes)
            return
        log.info("ingest ready: subscribed to %s", ", ".join(self.settings.subscriptions))
        self.ready.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        props: Properties | None,
    ) -> None:
        # A connection that never came up (e.g. the broker refused our certificate, which
        # footfall.contracts.tls has logged once, in words) is retried quietly, with paho's back-off.
        was_connected, self._connected = self._connected, False
        if was_connected and not self._stopping.is_set():
            log.warning("disconnected from broker (%s); reconnecting", reason_code)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        part = _Batch()
        # paho's type allows a bytearray; it hands over bytes, which bytes() returns as they are (no copy).
        payload = bytes(msg.payload)
        try:
            self._validate(msg.topic, payload, part)
        except Exception as exc:  # our bug must not stop ingest or lose the message: it is dead-lettered
            log.exception("internal error validating a message from %s", msg.topic)
            part = _Batch(messages=1)
            self._dead_letter(
                part, msg.topic, payload, "internal_error", f"internal error: {exc!r}", datetime.now(UTC)
            )
        if msg.qos:
            part.acks.append((msg.mid, self._connection))
        with self._cond:
            # Back-pressure: while the writer is behind (e.g. InfluxDB is down), stop reading.
            while len(self._pending.lines) >= self._max_pending and not self._stopping.is_set():
                self._cond.wait(0.5)
            self._pending.merge(part)
            if len(self._pending.lines) >= self.settings.batch_size:
                self._cond.notify_all()

    def _validate(self, topic: str, payload: bytes, part: _Batch) -> None:
        """One message -> its line(s) and dead letter(s) in ``part``."""
        part.messages += 1
        if is_status_topic(topic):
            # Retained online/offline of devices; not an event, nothing to store.
            part.status += 1
            return
        if topic == DEADLETTER_TOPIC:
            if line := self._foreign_dead_letter(payload, part):
                part.lines.append((line, topic))
            return
        now = datetime.now(UTC)
        # The common case, a message whose every event is valid, takes the compiled fast path; for
        # anything else the contract's validator gives the verdict and the dead-letter reasons.
        fast = message_lines(payload, topic=topic, now=now)
        if fast is not None:
            part.lines += [(line, topic) for line in fast]
            part.events += len(fast)
            return
        try:
            if is_batch_topic(topic):
                events, rejected = parse_batch(payload, topic=topic, now=now)
                for item in rejected:
                    self._dead_letter(part, topic, item.payload, item.error.reason, item.error.detail, now)
            else:
                events, rejected = [parse_event(payload, topic=topic, now=now)], []
        except EventError as exc:
            self._dead_letter(part, topic, payload, exc.reason, exc.detail, now)
            return
        for event in events:
            try:
                line = event_to_line(event)
            except Exception as exc:  # a valid event our formatter cannot write is our bug, not the sender's
                log.exception("internal error formatting an event from %s", topic)
                detail = f"internal error: {exc!r}"
                self._dead_letter(part, topic, event.to_json().encode(), "internal_error", detail, now)
            else:
                part.lines.append((line, topic))
                part.events += 1

    def _foreign_dead_letter(self, payload: bytes, part: _Batch) -> str | None:
        """A bridge's dead letter -> its ``deadletter`` point (ours are counted when we make them)."""
        try:
            letter = DeadLetter.model_validate_json(payload)
        except ValueError:
            log.warning("unreadable message on %s ignored", DEADLETTER_TOPIC)
            return None
        if letter.component == COMPONENT:
            return None
        part.deadletters[f"{letter.component}:{letter.reason}"] += 1
        return deadletter_point(letter).to_line()

    def _dead_letter(
        self, part: _Batch, topic: str, payload: bytes, reason: DeadLetterReason, detail: str, now: datetime
    ) -> None:
        letter = _make_dead_letter(topic, payload, reason, detail, now)
        part.letters.append(letter)
        part.deadletters[reason] += 1
        part.lines.append((deadletter_point(letter).to_line(), topic))

    # ---- writer side (the thread that called run) ----------------------------------------------

    def run(self) -> None:
        s = self.settings.mqtt
        self._client.connect_async(
            s.host, s.port, keepalive=30, clean_start=False, properties=self._connect_properties()
        )
        self._client.loop_start()
        last_stats = time.monotonic()
        try:
            while not self._stopping.is_set():
                batch = self._take_batch()
                if batch.messages:
                    self._write_batch(batch)
                if time.monotonic() - last_stats >= self.settings.stats_every_s:
                    log.info("stats: %s", self.stats.summary())
                    last_stats = time.monotonic()
        finally:
            # Whatever was not written stays un-acknowledged: the broker sends it again.
            with self._cond:
                self._cond.notify_all()
            self._client.disconnect()
            self._client.loop_stop()
            log.info("stopped: %s", self.stats.summary())

    def stop(self) -> None:
        self._stopping.set()

    def _take_batch(self) -> _Batch:
        """Wait until the pending batch is full or its oldest message has waited ``max_latency_s``."""
        with self._cond:
            while not self._stopping.is_set():
                pending = self._pending
                if len(pending.lines) >= self.settings.batch_size:
                    break
                if pending.messages:
                    left = pending.started + self.settings.max_latency_s - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(min(left, 0.2))
                else:
                    self._cond.wait(0.2)
            batch, self._pending = self._pending, _Batch()
            self._cond.notify_all()  # the network thread may be waiting for room
            return batch

    def _write_batch(self, batch: _Batch) -> None:
        written = _WriteResult()
        self._write_or_bisect(batch.lines, written, datetime.now(UTC))
        if not written.complete:
            return  # stopping during an outage: nothing acked, the broker redelivers
        for letter in batch.letters + written.rejected:
            self._client.publish(DEADLETTER_TOPIC, letter.to_json().encode(), qos=1)
        self.stats.received += batch.messages
        self.stats.status_messages += batch.status
        self.stats.written += batch.events - len(written.rejected)
        self.stats.deadletters.update(batch.deadletters)
        self.stats.deadletters.update(letter.reason for letter in written.rejected)
        self.stats.unstored_deadletters += written.unstored_letters
        self.stats.batches += 1
        current = self._connection
        # After a reconnect the broker resends what the old connection left un-acked; an ack for a
        # packet id of the old connection would be meaningless.
        self._client.ack_many([mid for mid, connection in batch.acks if connection == current])

    def _write_or_bisect(self, points: list[tuple[str, str]], result: _WriteResult, now: datetime) -> None:
        """Write with retry until stored; lines InfluxDB refuses outright (HTTP 400, e.g. a field
        type conflict) are found by bisection and dead-lettered, the rest is still written."""
        if not points:
            return
        try:
            self._write_with_retry([line for line, _ in points])
            result.count += len(points)
        except InfluxError as exc:
            if exc.status != 400:
                result.complete = False  # only while stopping: the retry loop gave up
                return
            if len(points) > 1:
                half = len(points) // 2
                self._write_or_bisect(points[:half], result, now)
                self._write_or_bisect(points[half:], result, now)
                return
            line, topic = points[0]
            letter = _make_dead_letter(topic, line.encode(), "db_rejected", str(exc), now)
            result.rejected.append(letter)
            self._write_dead_letter_point(letter, result)

    def _write_dead_letter_point(self, letter: DeadLetter, result: _WriteResult) -> None:
        """The ``deadletter`` point of a line InfluxDB refused, written once. InfluxDB may refuse it
        too (the database at its series limit, a field type conflict on ``deadletter``): writing the
        refusal of the refusal again would never end, so it is logged and counted, and the message
        is still acknowledged; its dead letter is still published on the dead-letter topic."""
        try:
            self._write_with_retry([deadletter_point(letter).to_line()])
            result.count += 1
        except InfluxError as exc:
            if exc.status != 400:
                result.complete = False  # only while stopping: the retry loop gave up
                return
            result.unstored_letters += 1
            # Not InfluxDB's text: it quotes the refused line, which may carry a device hash.
            log.error(
                "InfluxDB refused the deadletter point of a db_rejected message from %s (HTTP 400); "
                "its dead letter is published but not counted in the deadletter measurement",
                letter.topic,
            )

    def _write_with_retry(self, lines: list[str]) -> None:
        def retryable(exc: BaseException) -> bool:
            # Anything but a malformed point (400) is worth retrying: the server is down, restarting,
            # overloaded, or credentials/database are being fixed. Until then nothing is acked.
            return isinstance(exc, InfluxError) and exc.status != 400

        said: list[str] = []

        def before_sleep(state: RetryCallState) -> None:
            self.stats.write_retries += 1
            exc = state.outcome.exception() if state.outcome else None
            # Each distinct problem once (e.g. a certificate problem), not every few seconds.
            repeated = said == [str(exc)]
            said[:] = [str(exc)]
            log.log(
                logging.DEBUG if repeated else logging.WARNING,
                "InfluxDB write failed (attempt %d), retrying in %.1fs: %s",
                state.attempt_number,
                state.next_action.sleep if state.next_action else 0,
                exc,
            )

        def wait_unless_stopping(seconds: float) -> None:
            self._stopping.wait(seconds)

        for attempt in Retrying(
            retry=retry_if_exception(retryable),
            wait=wait_exponential(multiplier=0.2, max=self.settings.max_backoff_s),
            stop=lambda _state: self._stopping.is_set(),
            before_sleep=before_sleep,
            reraise=True,
            sleep=wait_unless_stopping,
        ):
            with attempt:
                self.influx.write_lines(lines)


@dataclass(slots=True)
class _Batch:
    """Validated messages waiting for one InfluxDB write, and what to do once it is written."""

    lines: list[tuple[str, str]] = field(default_factory=list)  # (line, topic it came from)
    letters: list[DeadLetter] = field(default_factory=list)  # to publish once stored
    acks: list[tuple[int, int]] = field(default_factory=list)  # (packet id, connection)
    messages: int = 0
    events: int = 0
    status: int = 0
    deadletters: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)

    def merge(self, part: _Batch) -> None:
        if not self.messages:
            self.started = time.monotonic()
        self.lines += part.lines
        self.letters += part.letters
        self.acks += part.acks
        self.messages += part.messages
        self.events += part.events
        self.status += part.status
        if part.deadletters:
            self.deadletters.update(part.deadletters)


def _make_dead_letter(
    topic: str, payload: bytes, reason: DeadLetterReason, detail: str, now: datetime
) -> DeadLetter:
    log.warning("dead letter (%s) from %s: %s", reason, topic, detail[:200])
    return DeadLetter.build(
        reason=reason, detail=detail, topic=topic, payload=payload, component=COMPONENT, received_at=now
    )


@dataclass
class _WriteResult:
    count: int = 0
    complete: bool = True
    rejected: list[DeadLetter] = field(default_factory=list)
    # Dead letters of ``rejected`` whose own ``deadletter`` point InfluxDB refused as well.
    unstored_letters: int = 0
