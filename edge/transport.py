"""Store-and-forward MQTT publishing for edge devices and sensor bridges.

Every event is first committed to an on-disk queue (SQLite in WAL mode) and leaves it only when the
broker has acknowledged it (PUBACK, QoS 1). A broker outage, a network cut or a SIGKILL of the
process loses nothing: a restarted publisher drains the queue from its oldest row, in order.
Resending after a crash may deliver an event twice; ingest stores it idempotently (same point).

The queue has a cap. When it is full the configured policy applies, is logged, and is counted:
``drop_oldest`` (keep the newest data; default; events already handed to the broker are not dropped,
as they may still be delivered) or ``refuse_new`` (keep the oldest; ``put`` returns how many rows it
took). A failing disk (locked, full) makes a put raise with nothing changed, and the sender retry.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

from footfall.contracts.config import MqttSettings
from footfall.contracts.events import (
    EVENT_TYPES,
    MAX_BATCH_BYTES,
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
# Progress metadata committed with a put: fixed values, or a function of how many rows were taken.
Meta = dict[str, str] | Callable[[int], dict[str, str]]
ONLINE = b"online"
OFFLINE = b"offline"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Put:
    """What one put changed, applied to the in-memory counters once it is committed."""

    taken: int  # new rows inserted
    removed: int  # queued rows deleted to make room (drop_oldest)
    dropped: int  # events lost to drop_oldest: the removed rows and new ones beyond the cap
    refused: int  # new rows refused (refuse_new)


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
        # The newest row handed to the broker in this process: drop_oldest leaves it and those before
        # it alone, since they may still be delivered (counting them as dropped would be false).
        self._sent_upto = 0

    @property
    def depth(self) -> int:
        return self._depth

    def put(self, rows: Sequence[tuple[str, bytes]], *, meta: Meta | None = None) -> int:
        """Append rows in one transaction (with optional progress metadata); returns how many were
        taken. A full queue applies ``when_full``. ``meta`` may be a function of how many rows were
        taken, so that a progress marker never passes rows the queue refused."""
        with self._lock:
            with self._transaction_locked():
                change = self._put_locked(rows)
                values = meta(change.taken) if callable(meta) else meta
                for key, value in (values or {}).items():
                    self._set_meta_locked(key, value)
            # Only now: a transaction that failed leaves the counters as they were on disk.
            self._count_locked(change)
        return change.taken

    @contextmanager
    def _transaction_locked(self) -> Iterator[None]:
        """Run the block as one SQLite transaction (the caller holds the lock), rolled back if it
        raises; the error raised is always the one that made it fail."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            # SQLite has already rolled back after some errors (SQLITE_FULL, SQLITE_IOERR, ...): a
            # ROLLBACK then fails with "no transaction is active" and would hide the real error.
            if self._db.in_transaction:
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.Error as exc:
                    log.error("queue: the rollback failed as well: %s", exc)
            raise

    def _put_locked(self, rows: Sequence[tuple[str, bytes]]) -> _Put:
        """Write the rows (and what the full-queue policy removes); the counters are left to
        ``_count_locked``, after the commit."""
        overflow = self._depth + len(rows) - self.max_events
        removed = dropped = refused = 0
        if overflow > 0 and self.when_full == "refuse_new":
            keep = max(len(rows) - overflow, 0)
            refused = len(rows) - keep
            rows = rows[:keep]
            self._set_meta_locked("refused", str(self.refused + refused))
        elif overflow > 0:
            # The oldest rows not yet handed to the broker. Rows in flight stay until their PUBACK
            # (the queue may hold up to the publisher's window more than the cap meanwhile).
            removed = self._db.execute(
                "DELETE FROM queue WHERE seq IN (SELECT seq FROM queue WHERE seq > ? ORDER BY seq LIMIT ?)",
                (self._sent_upto, overflow),
            ).rowcount
            beyond = max(len(rows) - self.max_events, 0)  # more than the cap in one put: never fits
            rows = rows[beyond:]
            dropped = removed + beyond
            self._set_meta_locked("dropped", str(self.dropped + dropped))
        self._db.executemany("INSERT INTO queue (topic, payload) VALUES (?, ?)", rows)
        return _Put(taken=len(rows), removed=removed, dropped=dropped, refused=refused)

    def _count_locked(self, change: _Put) -> None:
        self._depth += change.taken - change.removed
        if change.refused:
            self.refused += change.refused
            log.warning(
                "queue full (%d events): refused %d new events (%d refused so far)",
                self.max_events,
                change.refused,
                self.refused,
            )
        if change.dropped:
            self.dropped += change.dropped
            log.warning(
                "queue full (%d events): dropped the %d oldest events not yet sent (%d dropped so far)",
                self.max_events,
                change.dropped,
                self.dropped,
            )

    def peek(self, after_seq: int, limit: int, *, sending: bool = False) -> list[tuple[int, str, bytes]]:
        """Up to ``limit`` rows after ``after_seq``, oldest first; ``sending``: they are about to go
        to the broker, so drop_oldest leaves them alone from now on."""
        with self._lock:
            rows: list[tuple[int, str, bytes]] = self._db.execute(
                "SELECT seq, topic, payload FROM queue WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
            ).fetchall()
            if sending and rows:
                self._sent_upto = max(self._sent_upto, rows[-1][0])
        return rows

    def delete(self, seqs: Iterable[int]) -> None:
        """Remove acknowledged rows: one transaction, one range per run of consecutive seqs (acks
        mostly arrive in order, so a whole window is usually one range)."""
        ranges = _runs(sorted(seqs))
        if not ranges:
            return
        with self._lock:
            with self._transaction_locked():
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
    too_large: int = 0  # events over the broker's maximum packet size: never sent, dropped
    send_errors: int = 0  # failed rounds of the sender (the queue's disk, paho), each retried


class _Sent(NamedTuple):
    """One MQTT message in flight: the queue rows it carries and its size on the wire."""

    seqs: list[int]
    size: int


# MQTT v5 PUBACK reason code: "the message is accepted but there are no subscribers".
NO_MATCHING_SUBSCRIBERS = 0x10
# PUBACK codes a broker gives a message it finds too large (0x83 implementation specific, 0x97 quota
# exceeded; 0x95 is no PUBACK code in the spec, but a broker may send it): a batch goes again in
# smaller batches.
SIZE_REFUSALS = frozenset({0x83, 0x95, 0x97})
# Disconnect reasons a too-large message can cause: 0x95 "packet too large", and 0x81 / 0x82, which
# paho reports when it cannot read the broker's answer to one (Mosquitto 2.0 with message_size_limit).
SIZE_DISCONNECTS = frozenset({0x81, 0x82, 0x95})
# Events whose topics share ``footfall/v1/{store}/{device}`` go out as one batch message up to these.
DEFAULT_MAX_BATCH = 500
# (well under the contract's MAX_BATCH_BYTES; lowered by --max-batch-bytes for a broker whose message
# size limit is lower and that does not announce it)
DEFAULT_MAX_BATCH_BYTES = 256 * 1024
MIN_BATCH_BYTES = 1024
# A PUBLISH packet's bytes besides topic and payload: fixed header (up to 5), topic length (2),
# packet id (2), properties length (1).
PUBLISH_OVERHEAD = 10
# The sender retries a failing round (e.g. the queue's disk) with back-off up to this, and says that it
# still fails this often.
SENDER_MAX_BACKOFF_S = 5.0
SENDER_REMINDER_S = 300.0


class StoreAndForwardPublisher:
    """Publishes queued events with QoS 1 over a persistent MQTT v5 session.

    A sender thread hands queued rows to paho (at most ``window`` events un-acknowledged at a time);
    on each PUBACK the rows are deleted. paho itself re-sends un-acknowledged messages after a
    reconnect. Consecutive events of one device leave as one batch message
    (``footfall/v1/{store}/{device}/batch``, up to ``max_batch`` events and ``max_batch_bytes``, and
    never over the Maximum Packet Size the broker announces): a backlog drains in a few hundred
    messages instead of hundreds of thousands, while a lone live event keeps its own topic. A batch the
    broker refuses for its size is sent again in smaller batches.

    With ``require_subscriber`` (default), a PUBACK saying "no matching subscribers" does not count
    as delivered: the broker would have dropped the event (e.g. just after a broker restart, before
    ingest has subscribed again), so it stays queued and is sent again after a back-off, in order.
    The device's retained status topic reads ``online`` while connected and ``offline`` (the last
    will) when the connection is lost. A sender round that fails (the queue's disk, ...) is logged
    and retried with back-off; ``failure`` says why while it lasts.
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
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        require_subscriber: bool = True,
        max_hold_s: float = 30.0,
        session_expiry_s: int = 7 * 24 * 3600,
    ) -> None:
        if not 1 <= max_batch <= MAX_BATCH_EVENTS:
            raise ValueError(f"max_batch must be 1..{MAX_BATCH_EVENTS}")
        if not MIN_BATCH_BYTES <= max_batch_bytes <= MAX_BATCH_BYTES:
            raise ValueError(f"max_batch_bytes must be {MIN_BATCH_BYTES}..{MAX_BATCH_BYTES}")
        self.settings = settings
        self.queue = queue
        self.store = store
        self.device = device
        self.window = window
        self.max_batch = max_batch
        self.max_batch_bytes = max_batch_bytes
        self.require_subscriber = require_subscriber
        self.max_hold_s = max_hold_s
        self.session_expiry_s = session_expiry_s
        self.stats = PublisherStats()
        self.failure: str | None = None  # why the sender fails right now; None while it works
        self._status_topic = status_topic(store, device)
        self._inflight: dict[int, _Sent] = {}  # paho mid -> what it carries; sender thread only
        self._inflight_events = 0
        self._acked: deque[tuple[int, int]] = deque()  # (mid, reason code) from the network thread
        # (disconnect reason, mids paho dropped) from the network thread: to send again, smaller.
        self._taken_back: deque[tuple[str, list[int]]] = deque()
        self._to_delete: list[int] = []  # settled rows whose delete has not succeeded yet
        self._last_seq = 0
        self._batch_bytes = max_batch_bytes  # lowered when the broker refuses a batch for its size
        self._broker_max_packet: int | None = None  # the broker's Maximum Packet Size, if it says
        # Oldest queued event the broker had no subscriber for; sending resumes there after a hold.
        self._retry_from: int | None = None
        self._hold_until = 0.0
        self._hold_s = 0.0
        self._said: set[str] = set()  # problems logged once (sender errors, refusals)
        self._said_at = 0.0
        self._connected = threading.Event()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._idle = threading.Event()
        self._retry = self._make_retrying()
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
        # MQTT v5: a broker may announce the largest packet it takes; batches stay under it.
        limit = getattr(props, "MaximumPacketSize", None) if props is not None else None
        self._broker_max_packet = limit if isinstance(limit, int) and limit > 0 else None
        client.publish(self._status_topic, ONLINE, qos=1, retain=True)
        log.info(
            "connected to %s:%d; %d events queued%s",
            self.settings.host,
            self.settings.port,
            self.queue.depth,
            f"; the broker takes packets up to {limit} bytes" if self._broker_max_packet else "",
        )
        self._connected.set()
        self._wake.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags, reason_code, props) -> None:  # type: ignore[no-untyped-def]
        # A connection that never came up (e.g. the broker refused our certificate, which
        # footfall.contracts.tls has logged once, in words) is retried quietly, with paho's back-off.
        was_connected = self._connected.is_set()
        self._connected.clear()
        if getattr(reason_code, "value", None) in SIZE_DISCONNECTS:
            # paho would send the same messages again after the reconnect and be cut off again, for
            # ever: take them back, the sender sends their events again in smaller batches.
            self._taken_back.append((str(reason_code), [m.mid for m in client.drop_out_messages()]))
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
        try:
            while not self._stopping.is_set():
                try:
                    sent = self._retrying(self._step)
                except Exception:  # the retry gives up only when stopping: what is queued stays
                    break
                if not sent:
                    self._wake.wait(0.1)
            self._settle_acks()  # rows acknowledged before the stop leave the queue
        except Exception as exc:
            log.warning("stopping with the queue failing (%s); unsent events stay queued", exc)
        except BaseException as exc:  # not expected at all; never end silently
            self.failure = f"the sender stopped: {exc!r}"
            log.critical("%s; queued events stay on disk for the next start", self.failure)
            raise

    def _step(self) -> int:
        """One round: settle acknowledgements, take back what paho dropped, send more."""
        self._wake.clear()
        self._settle_acks()
        self._take_back()
        sent = self._send_more() if self._connected.is_set() else 0
        if not sent and not self._inflight and self.queue.depth == 0:
            self._idle.set()
        return sent

    def _make_retrying(self) -> Retrying:
        """While a sender round raises (a locked or failing disk, ...), retry it with capped
        exponential back-off until it works or the publisher stops: the sender never ends while
        producers go on queueing."""

        def pause(seconds: float) -> None:
            self._stopping.wait(seconds)

        return Retrying(
            retry=retry_if_exception_type(Exception),
            wait=wait_exponential(multiplier=0.1, max=SENDER_MAX_BACKOFF_S),
            stop=lambda _state: self._stopping.is_set(),
            before_sleep=self._on_send_error,
            sleep=pause,
            reraise=True,
        )

    def _retrying(self, step: Callable[[], T]) -> T:
        result = self._retry(step)
        if self.failure is not None:
            log.warning(
                "sending works again (it failed with %s); %d events queued", self.failure, self.queue.depth
            )
            self.failure = None
            self._said.clear()
        return result

    def _on_send_error(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self.stats.send_errors += 1
        self.failure = f"{type(exc).__name__}: {exc}"
        wait = state.next_action.sleep if state.next_action else 0.0
        # Each kind of problem once (and a reminder while it lasts), not every few seconds.
        now = time.monotonic()
        if self.failure in self._said and now - self._said_at < SENDER_REMINDER_S:
            log.debug("sending failed again (attempt %d): %s", state.attempt_number, self.failure)
            return
        self._said.add(self.failure)
        self._said_at = now
        log.error(
            "sending failed (%s); %d events stay queued, retrying with back-off (now %.1f s)",
            self.failure,
            self.queue.depth,
            wait,
        )

    def _settle_acks(self) -> None:
        unrouted = 0
        while self._acked:
            mid, code = self._acked.popleft()
            sent = self._inflight.pop(mid, None)
            if sent is None:
                continue  # e.g. the retained status message
            self._inflight_events -= len(sent.seqs)
            if code == NO_MATCHING_SUBSCRIBERS and self.require_subscriber:
                unrouted += len(sent.seqs)
                self._resend_from(sent.seqs[0])
            elif code >= 0x80 and code in SIZE_REFUSALS and len(sent.seqs) > 1:
                self._shrink_batches(sent.size, f"refused (code {code:#x})")
                self._resend_from(sent.seqs[0])
            elif code >= 0x80:
                # The broker refused it for good (e.g. the ACL): re-sending cannot help.
                self.stats.refused_by_broker += len(sent.seqs)
                self._say_once(
                    f"refused {code}",
                    "broker refused %d queued event(s) (code %#x); dropping them",
                    len(sent.seqs),
                    code,
                )
                self._to_delete.extend(sent.seqs)
            else:
                self.stats.acknowledged += len(sent.seqs)
                self._to_delete.extend(sent.seqs)
        if unrouted:
            self._hold_unrouted(unrouted)
        elif self._to_delete and self._retry_from is None:
            self._hold_s = 0.0
        if self._to_delete:
            # Kept until the delete succeeds: a failed one is retried, the rows are not resent.
            self.queue.delete(self._to_delete)
            self._to_delete = []

    def _resend_from(self, seq: int) -> None:
        self._retry_from = seq if self._retry_from is None else min(self._retry_from, seq)

    def _hold_unrouted(self, unrouted: int) -> None:
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

    def _take_back(self) -> None:
        """Messages paho dropped after the broker cut the connection (perhaps over their size): their
        events go again, from the oldest, in batches of at most half the largest one's size."""
        while self._taken_back:
            reason, mids = self._taken_back.popleft()
            lost = [self._inflight.pop(mid) for mid in mids if mid in self._inflight]
            if not lost:
                continue
            self._inflight_events -= sum(len(sent.seqs) for sent in lost)
            self._resend_from(min(sent.seqs[0] for sent in lost))
            largest = max(lost, key=lambda sent: sent.size)
            if len(largest.seqs) > 1:
                self._shrink_batches(largest.size, f"cut the connection ({reason})")
            else:
                self._say_once(
                    f"cut {reason}",
                    "the broker cut the connection (%s) with no batch in flight; if its message size limit "
                    "is below a single event (%d bytes), raise it",
                    reason,
                    largest.size,
                )

    def _shrink_batches(self, size: int, what: str) -> None:
        smaller = max(min(self._batch_bytes, size // 2), 1)
        if smaller < self._batch_bytes:
            self._batch_bytes = smaller
            log.warning(
                "the broker %s for a batch message of %d bytes; batches now stay under %d bytes "
                "(--max-batch-bytes sets this from the start)",
                what,
                size,
                smaller,
            )

    def _say_once(self, key: str, message: str, *args: object) -> None:
        log.log(logging.DEBUG if key in self._said else logging.ERROR, message, *args)
        self._said.add(key)

    def _send_more(self) -> int:
        if self._retry_from is not None:
            # Resend from the oldest unrouted event, once nothing is in flight (no duplicates).
            if self._inflight or time.monotonic() < self._hold_until:
                return 0
            self._last_seq, self._retry_from = self._retry_from - 1, None
        room = self.window - self._inflight_events
        if room <= 0:
            return 0
        rows = self.queue.peek(self._last_seq, min(room, 2000), sending=True)
        for topic, payload, seqs in self._messages(rows):
            size = _packet_size(topic, payload)
            limit = self._broker_max_packet  # read once: the network thread sets it on a reconnect
            if limit is not None and size > limit:
                self._refuse_too_large(seqs, size, limit)
            else:
                info = self._client.publish(topic, payload, qos=1)
                self._inflight[info.mid] = _Sent(seqs, size)
                self._inflight_events += len(seqs)
                self.stats.messages += 1
                self.stats.published += len(seqs)
            # Message by message: after an error half-way, the rest goes next round, nothing twice.
            self._last_seq = seqs[-1]
        if rows:
            self._idle.clear()
        return len(rows)

    def _refuse_too_large(self, seqs: list[int], size: int, limit: int) -> None:
        """A single event over the broker's Maximum Packet Size: the broker would cut the connection
        over it on every try, so it is dropped, logged and counted rather than block the queue."""
        self.stats.too_large += len(seqs)
        self._say_once(
            "too large",
            "an event of %d bytes is over the broker's maximum packet size (%d bytes); dropping it "
            "(further ones are counted in too_large)",
            size,
            limit,
        )
        self._to_delete.extend(seqs)

    def _messages(self, rows: Sequence[tuple[int, str, bytes]]) -> Iterator[tuple[str, bytes, list[int]]]:
        """Consecutive events of one device -> batch messages; anything else -> one message each."""
        group: list[tuple[int, str, bytes]] = []
        group_device: tuple[str, str] | None = None
        size = limit = 0
        for row in rows:
            device = _event_device(row[1]) if self.max_batch > 1 else None
            if group and (
                device is None
                or device != group_device
                or len(group) >= self.max_batch
                or size + len(row[2]) + 2 > limit  # with the brackets and one more comma
            ):
                yield _as_message(group, group_device)
                group, size = [], 0
            if device is None:
                yield row[1], row[2], [row[0]]
                continue
            if not group:
                limit = self._batch_limit(device)
            group.append(row)
            group_device = device
            size += len(row[2]) + 1
        if group:
            yield _as_message(group, group_device)

    def _batch_limit(self, device: tuple[str, str]) -> int:
        """The most payload bytes of one device's batch message: ``max_batch_bytes`` (or less after
        the broker refused one), and under the maximum packet size the broker announced."""
        if self._broker_max_packet is None:
            return self._batch_bytes
        room = self._broker_max_packet - _packet_size(batch_topic(*device), b"")
        return min(self._batch_bytes, room)

    # ---- producer API --------------------------------------------------------------------------

    def publish(self, event: Event) -> bool:
        return self.publish_many([event]) == 1

    def publish_many(self, events: Sequence[Event], *, meta: Meta | None = None) -> int:
        """Queue events durably (in one transaction); returns how many the queue took."""
        rows = [(e.topic, self._with_depth(e).to_json().encode()) for e in events]
        return self.publish_payloads(rows, meta=meta)

    def publish_payloads(self, rows: Sequence[tuple[str, bytes]], *, meta: Meta | None = None) -> int:
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
        """Block until every queued event is acknowledged by the broker (False after ``timeout_s``).
        Raises if the sender thread has ended, which nothing but a bug does."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            if self._idle.wait(0.2) and self.queue.depth == 0 and not self._inflight:
                return True
            if self._thread.ident is not None and not self._thread.is_alive() and not self._stopping.is_set():
                raise RuntimeError(self.failure or "the sender thread has ended")
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


def _packet_size(topic: str, payload: bytes) -> int:
    """The size of a QoS 1 PUBLISH of ``payload`` on ``topic`` (no properties), as the broker counts it."""
    return PUBLISH_OVERHEAD + len(topic.encode()) + len(payload)


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
