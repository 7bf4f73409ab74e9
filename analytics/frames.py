"""Columnar raw data handed from the readers (InfluxDB, DuckDB, events in memory) to the pure core.

Tag strings become small integer codes once, at the edge; the core then works on numpy arrays only.
Crossings of lines that are neither entrance nor passby for their store (e.g. staff doors) are
dropped here, and each kept crossing carries its *role* (0 = entrance, 1 = passby).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Self, TypeVar

import numpy as np

from footfall.analytics.config import StoreMeta, StoresConfig
from footfall.analytics.pos import PosTransaction
from footfall.contracts.events import (
    CrossingEvent,
    Event,
    HeartbeatEvent,
    WifiEvent,
    ZoneVisitEvent,
)
from footfall.contracts.measurements import datetime_to_ns, event_to_point

ENTRANCE, PASSBY = 0, 1
# A tag column already coded by a database: (distinct labels, index into them per row).
Coded = tuple[Sequence[str], np.ndarray]
NO_TRACK = -1
NO_HASH = -1


class Vocab:
    """Strings <-> dense int32 codes, growing as new strings appear."""

    def __init__(self, initial: Iterable[str] = ()) -> None:
        self.labels: list[str] = []
        self._index: dict[str, int] = {}
        for label in initial:
            self.code(label)

    def code(self, label: str) -> int:
        idx = self._index.get(label)
        if idx is None:
            idx = self._index[label] = len(self.labels)
            self.labels.append(label)
        return idx

    def get(self, label: str) -> int | None:
        return self._index.get(label)

    def codes(self, labels: Sequence[str] | np.ndarray) -> np.ndarray:
        """Codes of many labels (strings, or integers already coded by a database: kept apart
        from strings by their ``str()``)."""
        arr = np.asarray(labels)
        if arr.dtype.kind not in "iu":
            arr = arr.astype(object)
        uniq, inverse = np.unique(arr, return_inverse=True)
        mapping = np.array([self.code(str(u)) for u in uniq], dtype=np.int32)
        return mapping[inverse.reshape(-1)] if len(uniq) else np.zeros(0, np.int32)

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class _Table:
    def __len__(self) -> int:
        # Every column has the table's length; the first is as good as any.
        return len(getattr(self, fields(self)[0].name))

    @classmethod
    def concat(cls, parts: Sequence[Self]) -> Self:
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})


@dataclass
class Crossings(_Table):
    store: np.ndarray  # int32 store code
    ts: np.ndarray  # int64 ns
    role: np.ndarray  # int8: ENTRANCE / PASSBY
    inbound: np.ndarray  # bool: direction "in"
    count: np.ndarray  # int64 (1 per camera crossing, the interval total for beam counters)
    device: np.ndarray  # int32 device code
    track: np.ndarray  # int64, NO_TRACK when the source has no tracks
    line: np.ndarray  # int32 line code


@dataclass
class ZoneVisits(_Table):
    store: np.ndarray
    ts: np.ndarray  # int64 ns: the visit's end (the event time)
    enter: np.ndarray  # int64 ns
    dwell_s: np.ndarray  # float64
    zone: np.ndarray  # int32 zone code
    device: np.ndarray
    track: np.ndarray


@dataclass
class WifiSightings(_Table):
    store: np.ndarray
    ts: np.ndarray
    device_hash: np.ndarray  # int64 code of the hashed device id (never the hash itself in the core)
    rssi: np.ndarray  # int16
    randomized: np.ndarray  # bool
    # int64 code of the same MAC's hash under the previous rotation key (same codes as device_hash),
    # NO_HASH when the sighting has none
    prev_hash: np.ndarray


@dataclass
class Heartbeats(_Table):
    store: np.ndarray
    ts: np.ndarray


@dataclass
class PosRecords(_Table):
    store: np.ndarray
    ts: np.ndarray
    amount: np.ndarray  # float64, NaN when the source has no amount


_T = TypeVar("_T", bound=_Table)


def _empty(cls: type[_T]) -> _T:
    dtypes = {
        "ts": np.int64,
        "enter": np.int64,
        "track": np.int64,
        "count": np.int64,
        "device_hash": np.int64,
        "prev_hash": np.int64,
        "dwell_s": np.float64,
        "amount": np.float64,
        "inbound": bool,
        "randomized": bool,
        "role": np.int8,
        "rssi": np.int16,
    }
    return cls(**{f.name: np.zeros(0, dtypes.get(f.name, np.int32)) for f in fields(cls)})


@dataclass
class RawData:
    """Everything the KPI core reads, for one window. Codes index ``stores``, ``devices``, ``zones``."""

    stores: Vocab
    devices: Vocab = field(default_factory=Vocab)
    zones: Vocab = field(default_factory=Vocab)
    lines: Vocab = field(default_factory=Vocab)
    crossings: Crossings = field(default_factory=lambda: _empty(Crossings))
    zone_visits: ZoneVisits = field(default_factory=lambda: _empty(ZoneVisits))
    wifi: WifiSightings = field(default_factory=lambda: _empty(WifiSightings))
    heartbeats: Heartbeats = field(default_factory=lambda: _empty(Heartbeats))
    pos: PosRecords = field(default_factory=lambda: _empty(PosRecords))

    @property
    def n_events(self) -> int:
        return len(self.crossings) + len(self.zone_visits) + len(self.wifi) + len(self.heartbeats)


class RawDataBuilder:
    """Collects chunks of columns with string tags (scalars for a whole chunk, or arrays) into RawData."""

    def __init__(self, stores: StoresConfig) -> None:
        self.config = stores
        self.data = RawData(stores=Vocab(s.id for s in stores.stores))
        self._hashes = Vocab()
        self._parts: dict[str, list[_Table]] = {}
        self._meta_cache: dict[str, StoreMeta] = {}

    def meta(self, store: str) -> StoreMeta:
        if store not in self._meta_cache:
            self._meta_cache[store] = self.config.meta(store) or StoreMeta(id=store)
        return self._meta_cache[store]

    def _tag(self, vocab: Vocab, value: str | np.ndarray | Coded, n: int) -> np.ndarray:
        if isinstance(value, str):
            return np.full(n, vocab.code(value), np.int32)
        if isinstance(value, tuple):  # (labels, codes into labels), already coded by a database
            labels, codes = value
            return np.array([vocab.code(x) for x in labels], np.int32)[np.asarray(codes, np.int64)]
        return vocab.codes(value)

    def add_crossings(
        self,
        *,
        combos: Sequence[tuple[str, ...]],
        combo: np.ndarray,
        ts: np.ndarray,
        count: np.ndarray,
        track: np.ndarray,
        only_role: int | None = None,
    ) -> None:
        """``combos``: distinct (store, device, line, kind, direction); ``combo``: index per row.
        ``only_role``: keep only the crossings of that role (ENTRANCE / PASSBY)."""
        if len(ts) == 0:
            return
        c_store = np.array([self.data.stores.code(c[0]) for c in combos], np.int32)
        c_device = np.array([self.data.devices.code(c[1]) for c in combos], np.int32)
        c_line = np.array([self.data.lines.code(c[2]) for c in combos], np.int32)
        c_role = np.array([self.meta(c[0]).line_role(c[2], c[3]) for c in combos], np.int8)
        c_in = np.array([c[4] == "in" for c in combos], bool)
        combo = np.asarray(combo, np.int64)
        keep = c_role[combo] >= 0 if only_role is None else c_role[combo] == only_role
        if not keep.all():
            combo, ts, count, track = combo[keep], ts[keep], count[keep], track[keep]
        self._parts.setdefault("crossings", []).append(
            Crossings(
                store=c_store[combo],
                ts=np.asarray(ts, np.int64),
                role=c_role[combo],
                inbound=c_in[combo],
                count=np.asarray(count, np.int64),
                device=c_device[combo],
                track=np.asarray(track, np.int64),
                line=c_line[combo],
            )
        )

    def add_zone_visits(
        self,
        *,
        combos: Sequence[tuple[str, ...]],
        combo: np.ndarray,
        ts: np.ndarray,
        enter: np.ndarray,
        dwell_s: np.ndarray,
        track: np.ndarray,
    ) -> None:
        """``combos``: distinct (store, device, zone); ``combo``: index per row."""
        if len(ts) == 0:
            return
        c_store = np.array([self.data.stores.code(c[0]) for c in combos], np.int32)
        c_device = np.array([self.data.devices.code(c[1]) for c in combos], np.int32)
        c_zone = np.array([self.data.zones.code(c[2]) for c in combos], np.int32)
        combo = np.asarray(combo, np.int64)
        self._parts.setdefault("zone_visits", []).append(
            ZoneVisits(
                store=c_store[combo],
                ts=np.asarray(ts, np.int64),
                enter=np.asarray(enter, np.int64),
                dwell_s=np.asarray(dwell_s, np.float64),
                zone=c_zone[combo],
                device=c_device[combo],
                track=np.asarray(track, np.int64),
            )
        )

    def add_wifi(
        self,
        *,
        store: str | np.ndarray | Coded,
        ts: np.ndarray,
        device_hash: np.ndarray,
        rssi: np.ndarray,
        randomized: np.ndarray,
        prev_hash: np.ndarray | None = None,
    ) -> None:
        """``device_hash`` / ``prev_hash``: hash strings, or integer codes of one shared coding
        (a database's); a missing previous hash is None, "" or a negative code."""
        n = len(ts)
        if n:
            self._parts.setdefault("wifi", []).append(
                WifiSightings(
                    store=self._tag(self.data.stores, store, n),
                    ts=np.asarray(ts, np.int64),
                    device_hash=self._hashes.codes(device_hash).astype(np.int64),
                    rssi=np.asarray(rssi, np.int16),
                    randomized=np.asarray(randomized, bool),
                    prev_hash=self._optional_hashes(prev_hash, n),
                )
            )

    def _optional_hashes(self, values: np.ndarray | None, n: int) -> np.ndarray:
        out = np.full(n, NO_HASH, np.int64)
        if values is None:
            return out
        arr = np.asarray(values)
        if arr.dtype.kind in "iu":
            present = arr >= 0
        else:
            present = np.array([isinstance(v, str) and v != "" for v in arr.tolist()], bool)
        if present.any():
            out[present] = self._hashes.codes(arr[present])
        return out

    def add_heartbeats(self, *, store: str | np.ndarray, ts: np.ndarray) -> None:
        if len(ts):
            self._parts.setdefault("heartbeats", []).append(
                Heartbeats(store=self._tag(self.data.stores, store, len(ts)), ts=np.asarray(ts, np.int64))
            )

    def add_pos(self, *, store: str | np.ndarray, ts: np.ndarray, amount: np.ndarray) -> None:
        if len(ts):
            self._parts.setdefault("pos", []).append(
                PosRecords(
                    store=self._tag(self.data.stores, store, len(ts)),
                    ts=np.asarray(ts, np.int64),
                    amount=np.asarray(amount, np.float64),
                )
            )

    def build(self) -> RawData:
        for name, parts in self._parts.items():
            setattr(self.data, name, type(parts[0]).concat(parts))
        self._parts = {}
        return self.data


def raw_from_events(
    events: Iterable[Event], stores: StoresConfig, pos: Iterable[PosTransaction] = ()
) -> RawData:
    """Build RawData straight from contract events (and POS records), with the same timestamps
    (including the sub-millisecond id offset) as the points ingest writes."""
    builder = RawDataBuilder(stores)
    columns = _EventColumns()
    for event in events:
        columns.add(event)
    columns.feed(builder)
    pos = list(pos)
    builder.add_pos(
        store=np.asarray([p.store for p in pos], dtype=object),
        ts=np.asarray([p.to_point().ts_ns for p in pos], np.int64),
        amount=np.asarray([np.nan if p.amount is None else p.amount for p in pos], np.float64),
    )
    return builder.build()


class _EventColumns:
    """Contract events sorted into the columns RawDataBuilder takes, one list per field; crossings
    and zone visits coded by their (store, device, line or zone, ...) combination."""

    def __init__(self) -> None:
        self.line_combos: dict[tuple[str, str, str, str, str], int] = {}
        self.zone_combos: dict[tuple[str, str, str], int] = {}
        self.c: dict[str, list[Any]] = {k: [] for k in ("combo", "ts", "count", "track")}
        self.z: dict[str, list[Any]] = {k: [] for k in ("combo", "ts", "enter", "dwell_s", "track")}
        self.w: dict[str, list[Any]] = {
            k: [] for k in ("store", "ts", "device_hash", "rssi", "randomized", "prev_hash")
        }
        self.h: dict[str, list[Any]] = {"store": [], "ts": []}

    def add(self, event: Event) -> None:
        ts = event_to_point(event).ts_ns
        match event:
            case CrossingEvent():
                line_key = (event.store, event.device, event.line, event.kind, event.direction)
                self._append(self.c, self.line_combos.setdefault(line_key, len(self.line_combos)), ts)
                self.c["count"].append(event.count)
                self.c["track"].append(NO_TRACK if event.track_id is None else event.track_id)
            case ZoneVisitEvent():
                zone_key = (event.store, event.device, event.zone)
                self._append(self.z, self.zone_combos.setdefault(zone_key, len(self.zone_combos)), ts)
                self.z["enter"].append(datetime_to_ns(event.enter_ts))
                self.z["dwell_s"].append(event.dwell_s)
                self.z["track"].append(event.track_id)
            case WifiEvent():
                for k, v in (
                    ("store", event.store),
                    ("ts", ts),
                    ("device_hash", event.device_hash),
                    ("rssi", event.rssi),
                    ("randomized", event.randomized),
                    ("prev_hash", event.prev_device_hash),
                ):
                    self.w[k].append(v)
            case HeartbeatEvent():
                self.h["store"].append(event.store)
                self.h["ts"].append(ts)

    @staticmethod
    def _append(columns: dict[str, list[Any]], combo: int, ts: int) -> None:
        columns["combo"].append(combo)
        columns["ts"].append(ts)

    def feed(self, builder: RawDataBuilder) -> None:
        arr, c, z, w = np.asarray, self.c, self.z, self.w
        builder.add_crossings(
            combos=list(self.line_combos),
            combo=arr(c["combo"], np.int64),
            ts=arr(c["ts"], np.int64),
            count=arr(c["count"], np.int64),
            track=arr(c["track"], np.int64),
        )
        builder.add_zone_visits(
            combos=list(self.zone_combos),
            combo=arr(z["combo"], np.int64),
            ts=arr(z["ts"], np.int64),
            enter=arr(z["enter"], np.int64),
            dwell_s=arr(z["dwell_s"], np.float64),
            track=arr(z["track"], np.int64),
        )
        builder.add_wifi(
            store=arr(w["store"], dtype=object),
            ts=arr(w["ts"], np.int64),
            device_hash=arr(w["device_hash"], dtype=object),
            rssi=arr(w["rssi"], np.int64),
            randomized=arr(w["randomized"], bool),
            prev_hash=arr(w["prev_hash"], dtype=object),
        )
        builder.add_heartbeats(store=arr(self.h["store"], dtype=object), ts=arr(self.h["ts"], np.int64))
