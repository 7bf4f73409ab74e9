"""Store-and-forward MQTT publishing for edge devices and sensor bridges.

Every event is first committed to an on-disk queue (SQLite in WAL mode) and leaves it only when the
broker has acknowledged it (PUBACK, QoS 1). A broker outage, a network cut or a SIGKILL of the
process loses nothing: a restarted publisher drains the queue from its oldest row, in order.
Resending after a crash may deliver an event twice; ingest stores it idempotently (same point).

The queue has a cap. When it is full the configured policy applies, is logged, and is counted:
``drop_oldest`` (keep the newest data; default) or ``refuse_new`` (keep the oldest; ``put`` returns
False for what it could not take).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from footfall.contracts.config import MqttSettings
from footfall.contracts.events import (
    EVENT_TYPES,
    MAX_BATCH_EVENTS,
    Event,
    HeartbeatEvent,
    batch_payload,
    batch_topic,
    split_topic,
    status_topic,
)

log = logging.getLogger("footfall.transport")

FullPolicy = Literal["drop_oldest", "refuse_new"]
ONLINE = b"online"
OFFLINE = b"offline"


class DiskQueue:
    """A durable FIFO of (topic, payload) rows with a cap; safe to use from several threads."""

    def __init__(
        self, path: str | Path, *, max_events: int = 1_000_000, when_full: FullPolicy = "drop_oldest"
    ):
        if max_events < 1:
            raise ValueError("max_events must be at least 1")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_events = max_events
        self.when_full = when_full
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        # WAL + synchronous=NORMAL: a committed row survives a crash or SIGKILL of this process
        # (use FULL to also survive a power cut, at the cost of an fsync per commit).
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,"
            " payload BLOB NOT NULL)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._depth = int(self._db.execute("SELECT count(*) FROM queue").fetchone()[0])
        self.dropped = int(self.get_meta("dropped") or 0)
        self.refused = int(self.get_meta("refused") or 0)

    @property
    def depth(self) -> int:
        return self._depth

    def put(self, rows: Sequence[tuple[str, bytes]], *, meta: dict[str, str] | None = None) -> int:
        """Append rows in one transaction (with optional progress metadata); returns how many were
        taken. A full queue applies ``when_full``."""
        with self._transaction():
            taken = self._put_locked(rows)
            for key, value in (meta or {}).items():
                self._set_meta_locked(key, value)
        return taken

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """Hold the lock and run the block as one SQLite transaction, rolled back if it raises."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _put_locked(self, rows: Sequence[tuple[str, bytes]]) -> int:
        overflow = self._depth + len(rows) - self.max_events
        if overflow > 0 and self.when_full == "refuse_new":
            keep = max(len(rows) - overflow, 0)
            self.refused += len(rows) - keep
            self._set_meta_locked("refused", str(self.refused))
            log.warning(
                "queue full (%d events): refused %d new events (%d refused so far)",
                self.max_events,
                len(rows) - keep,
                self.refused,
            )
            rows = rows[:keep]
        elif overflow > 0:
            removed = self._db.execute(
                "DELETE FROM queue WHERE seq IN (SELECT seq FROM queue ORDER BY seq LIMIT ?)", (overflow,)
            ).rowcount
            self._depth -= removed
            self.dropped += overflow  # rows that do not fit at all (more than the cap in one put) count too
            self._set_meta_locked("dropped", str(self.dropped))
            if removed < overflow:
                rows = rows[overflow - removed :]
            log.warning(
                "queue full (%d events): dropped the %d oldest events (%d dropped so far)",
                self.max_events,
                overflow,
                self.dropped,
            )
        self._db.executemany("INSERT INTO queue (topic, payload) VALUES (?, ?)", rows)
        self._depth += len(rows)
        return len(rows)

    def peek(self, after_seq: int, limit: int) -> list[tuple[int, str, bytes]]:
        with self._lock:
            return self._db.execute(
                "SELECT seq, topic, payload FROM queue WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
            ).fetchall()

    def delete(self, seqs: Iterable[int]) -> None:
        """Remove acknowledged rows: one transaction, one range per run of consecutive seqs (acks
        mostly arrive in order, so a whole window is usually one range)."""
        ranges = _runs(sorted(seqs))
        if not ranges:
            return
        with self._transaction():
            removed = self._db.executemany("DELETE FROM queue WHERE seq BETWEEN ? AND ?", ranges).rowcount
            self._depth -= removed

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta_locked(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        with self._lock:
            self._db.close()


@dataclass
class PublisherStats:
    published: int = 0  # events handed to the broker (re-sends after "no subscriber" count again)
    messages: int = 0  # MQTT messages: one event, or a batch of them
    acknowledged: int = 0
    refused_by_broker: int = 0
    unrouted: int = 0  # events the broker took while nothing subscribed: kept and sent again


# MQTT v5 PUBACK reason code: "the message is accepted but there are no subscribers".
NO_MATCHING_SUBSCRIBERS = 0x10
# Events whose topics share ``footfall/v1/{store}/{device}`` go out as one batch message up to these.
DEFAULT_MAX_BATCH = 500
# (well under the contract's MAX_BATCH_BYTES)
BATCH_TARGET_BYTES = 256 * 1024


class StoreAndForwardPublisher:
    """Publishes queued events with QoS 1 over a persistent MQTT v5 session.

    A sender thread hands queued rows to paho (at most ``window`` events un-acknowledged at a time);
    on each PUBACK the rows are deleted. paho itself re-sends un-acknowledged messages after a
    reconnect. Consecutive events of one device leave as one batch message
    (``footfall/v1/{store}/{device}/batch``, up to ``max_batch`` events): a backlog drains in a few
    hundred messages instead of hundreds of thousands, while a lone live event keeps its own topic.

    With ``require_subscriber`` (default), a PUBACK saying "no matching subscribers" does not count
    as delivered: the broker would have dropped the event (e.g. just after a broker restart, before
    ingest has subscribed again), so it stays queued and is sent again after a back-off, in order.
    The device's retained status topic reads ``online`` while connected and ``offline`` (the last
    will) when the connection is lost.
    """

    def __init__(
        self,
        settings: MqttSettings,
        queue: DiskQueue,
        *,
        store: str,
        device: str,
        client_id: str | None = None,
        window: int = 5000,
        max_batch: int = DEFAULT_MAX_BATCH,
        require_subscriber: bool = True,
        max_hold_s: float = 30.0,
        session_expiry_s: int = 7 * 24 * 3600,
    ) -> None:
        if not 1 <= max_batch <= MAX_BATCH_EVENTS:
            raise ValueError(f"max_batch must be 1..{MAX_BATCH_EVENTS}")
        self.settings = settings
        self.queue = queue
        self.store = store
        self.device = device
        self.window = window
        self.max_batch = max_batch
        self.require_subscriber = require_subscriber
        self.max_hold_s = max_hold_s
        self.session_expiry_s = session_expiry_s
        self.stats = PublisherStats()
        self._status_topic = status_topic(store, device)
        self._inflight: dict[int, list[int]] = {}  # paho mid -> queue seqs; sender thread only
        self._inflight_events = 0
        self._acked: deque[tuple[int, int]] = deque()  # (mid, reason code) from the network thread
        self._last_seq = 0
        # Oldest queued event the broker had no subscriber for; sending resumes there after a hold.
        self._retry_from: int | None = None
        self._hold_until = 0.0
        self._hold_s = 0.0
        self._connected = threading.Event()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._idle = threading.Event()
        self._thread = threading.Thread(target=self._send_loop, name="footfall-sender", daemon=True)
        self._client = self._make_client(client_id or f"footfall-{store}-{device}")

    def _make_client(self, client_id: str) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.settings.configure(client)
        client.will_set(self._status_topic, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        # Our own window bounds what paho holds; paho's limit would rescan its queue on every PUBACK.
        client.max_inflight_messages_set(0)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    # ---- paho network thread -------------------------------------------------------------------

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
        client.publish(self._status_topic, ONLINE, qos=1, retain=True)
        log.info(
            "connected to %s:%d; %d events queued", self.settings.host, self.settings.port, self.queue.depth
        )
        self._connected.set()
        self._wake.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags, reason_code, props) -> None:  # type: ignore[no-untyped-def]
        # A connection that never came up (e.g. the broker refused our certificate, which
        # footfall.contracts.tls has logged once, in words) is retried quietly, with paho's back-off.
        was_connected = self._connected.is_set()
        self._connected.clear()
        if was_connected and not self._stopping.is_set():
            log.warning("disconnected (%s); %d events queued, reconnecting", reason_code, self.queue.depth)

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, reason_code, props) -> None:  # type: ignore[no-untyped-def]
        # Called with paho's message lock held: only record it, the sender thread does the rest.
        self._acked.append((mid, reason_code.value))
        self._wake.set()

    # ---- sender thread -------------------------------------------------------------------------

    def start(self) -> StoreAndForwardPublisher:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry_s
        s = self.settings
        self._client.connect_async(s.host, s.port, keepalive=30, clean_start=False, properties=props)
        self._client.loop_start()
        self._thread.start()
        return self

    def _send_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            self._settle_acks()
            sent = self._send_more() if self._connected.is_set() else 0
            if not sent:
                if not self._inflight and self.queue.depth == 0:
                    self._idle.set()
                self._wake.wait(0.1)
        self._settle_acks()

    def _settle_acks(self) -> None:
        done: list[int] = []
        unrouted = 0
        while self._acked:
            mid, code = self._acked.popleft()
            seqs = self._inflight.pop(mid, None)
            if seqs is None:
                continue  # e.g. the retained status message
            self._inflight_events -= len(seqs)
            if code == NO_MATCHING_SUBSCRIBERS and self.require_subscriber:
                unrouted += len(seqs)
                self._retry_from = seqs[0] if self._retry_from is None else min(self._retry_from, seqs[0])
                continue
            if code >= 0x80:
                # The broker refused it for good (e.g. the ACL): re-sending cannot help.
                self.stats.refused_by_broker += len(seqs)
                log.error("broker refused %d queued event(s) (code %#x); dropping them", len(seqs), code)
            else:
                self.stats.acknowledged += len(seqs)
            done.extend(seqs)
        self.queue.delete(done)
        if unrouted:
            self.stats.unrouted += unrouted
            if time.monotonic() >= self._hold_until:
                self._hold_s = min(max(2 * self._hold_s, 1.0), self.max_hold_s)
                self._hold_until = time.monotonic() + self._hold_s
                log.warning(
                    "no subscriber on the broker for %d event(s) (ingest not subscribed?); kept queued, "
                    "sending again in %.0f s",
                    unrouted,
                    self._hold_s,
                )
        elif done and self._retry_from is None:
            self._hold_s = 0.0

    def _send_more(self) -> int:
        if self._retry_from is not None:
            # Resend from the oldest unrouted event, once nothing is in flight (no duplicates).
            if self._inflight or time.monotonic() < self._hold_until:
                return 0
            self._last_seq, self._retry_from = self._retry_from - 1, None
        room = self.window - self._inflight_events
        if room <= 0:
            return 0
        rows = self.queue.peek(self._last_seq, min(room, 2000))
        for topic, payload, seqs in self._messages(rows):
            info = self._client.publish(topic, payload, qos=1)
            self._inflight[info.mid] = seqs
            self._inflight_events += len(seqs)
            self.stats.messages += 1
        if rows:
            self._last_seq = rows[-1][0]
            self.stats.published += len(rows)
            self._idle.clear()
        return len(rows)

    def _messages(self, rows: Sequence[tuple[int, str, bytes]]) -> Iterator[tuple[str, bytes, list[int]]]:
        """Consecutive events of one device -> batch messages; anything else -> one message each."""
        group: list[tuple[int, str, bytes]] = []
        group_device: tuple[str, str] | None = None
        size = 0
        for row in rows:
            device = _event_device(row[1]) if self.max_batch > 1 else None
            if group and (
                device is None
                or device != group_device
                or len(group) >= self.max_batch
                or size + len(row[2]) + 1 > BATCH_TARGET_BYTES
            ):
                yield _as_message(group, group_device)
                group, size = [], 0
            if device is None:
                yield row[1], row[2], [row[0]]
                continue
            group.append(row)
            group_device = device
            size += len(row[2]) + 1
        if group:
            yield _as_message(group, group_device)

    # ---- producer API --------------------------------------------------------------------------

    def publish(self, event: Event) -> bool:
        return self.publish_many([event]) == 1

    def publish_many(self, events: Sequence[Event], *, meta: dict[str, str] | None = None) -> int:
        """Queue events durably (in one transaction); returns how many the queue took."""
        rows = [(e.topic, self._with_depth(e).to_json().encode()) for e in events]
        return self.publish_payloads(rows, meta=meta)

    def publish_payloads(
        self, rows: Sequence[tuple[str, bytes]], *, meta: dict[str, str] | None = None
    ) -> int:
        """Queue ready-made (topic, payload) messages, e.g. dead letters."""
        taken = self.queue.put(rows, meta=meta)
        self._idle.clear()
        self._wake.set()
        return taken

    def _with_depth(self, event: Event) -> Event:
        if isinstance(event, HeartbeatEvent):
            return event.model_copy(update={"queue_depth": self.queue.depth})
        return event

    def wait_drained(self, timeout_s: float | None = None) -> bool:
        """Block until every queued event is acknowledged by the broker."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            if self._idle.wait(0.2) and self.queue.depth == 0 and not self._inflight:
                return True
            if deadline is not None and time.monotonic() > deadline:
                return False

    def stop(self) -> None:
        """Stop sending; what is not acknowledged stays queued for the next start."""
        self._stopping.set()
        self._wake.set()
        self._thread.join(5)
        if self._connected.is_set():
            # A clean goodbye suppresses the will, so say offline ourselves.
            self._client.publish(self._status_topic, OFFLINE, qos=1, retain=True).wait_for_publish(2)
        self._client.disconnect()
        self._client.loop_stop()


def _runs(seqs: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted seqs -> (first, last) of each run of consecutive numbers."""
    runs: list[tuple[int, int]] = []
    for seq in seqs:
        if runs and seq == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], seq)
        elif not runs or seq != runs[-1][1]:
            runs.append((seq, seq))
    return runs


def _event_device(topic: str) -> tuple[str, str] | None:
    """(store, device) of an event topic; ``None`` for anything else (dead letters, ...)."""
    parts = split_topic(topic)
    return (parts[0], parts[1]) if parts is not None and parts[2] in EVENT_TYPES else None


def _as_message(
    group: list[tuple[int, str, bytes]], device: tuple[str, str] | None
) -> tuple[str, bytes, list[int]]:
    """A group of one device's events -> (topic, payload, queue seqs) of one MQTT message."""
    if len(group) == 1:
        seq, topic, payload = group[0]
        return topic, payload, [seq]
    assert device is not None  # a group only ever holds event topics of one device
    return batch_topic(*device), batch_payload(row[2] for row in group), [row[0] for row in group]
