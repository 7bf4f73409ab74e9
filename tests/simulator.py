"""A deterministic store simulator: contract events, POS records and the exact truth.

Usage::

    from tests.simulator import SimConfig, simulate, emit_to_influx, emit_via_mqtt, emit_to_store

    sim = simulate(SimConfig(weeks=5, seed=7))
    sim.events      # list[Event]: crossing / zone_visit / wifi / heartbeat, ordered by time
    sim.pos         # list[PosTransaction]
    sim.stores      # StoresConfig describing the simulated stores (time zones, hours, lines, staff)
    sim.campaigns   # CampaignsConfig with one campaign that really lifted traffic
    sim.truth       # Truth: expected KPI fields per (store, UTC ns of the hour/day start)
    emit_to_influx(sim, influx_client)  # exactly the lines ingest writes (event_to_point().to_line())
    emit_via_mqtt(sim.events, "mqtt://admin:pw@127.0.0.1:1883")  # paho, QoS 1, topic = event.topic
    emit_to_store(sim, DuckDBStore(path))

What is simulated, per store and local day (store A Europe/Berlin, B America/New_York, C
Asia/Kolkata by default; the default five weeks from Monday 2026-10-05 cross both DST ends):

- customers arriving by a Poisson process over the opening hours (known arrival and departure
  times; each crosses the street ``passby`` line 5 s before entering through ``door``), visiting
  0-2 zones (``shelf``, ``checkout``) with known dwell, 35 % buying (POS at departure - 60 s);
- walk-bys crossing only the passby line; some carry phones seen weakly for a few seconds;
- Wi-Fi: 45 % of customers carry a phone seen every 90 s while inside; 80 % of those come from a
  per-store pool of returning devices (repeat visits), the rest use randomized addresses;
- staff: two per store, arriving 30 min before opening and leaving 20 min after closing
  (crossings outside opening hours), taking a break through the front door from the back-room
  staff zone (tracks seen in a staff zone), phones seen every 5 min all shift (staff devices);
- heartbeats every 10 min from the camera (health values varying by beat, the camera issues in
  force), except a 3-hour outage at store C on one day, during which nothing happens (no arrivals are
  generated into it, nobody is inside);
- broken cameras (``SimConfig.broken``) on the Tuesday of the last week: store C's door camera is
  covered and counts nobody, store A's was knocked and counts one person in ten (heartbeats go on,
  reporting ``covered`` / ``moved``, with their ``camera_issue`` events); store B's door line misses
  40 % of exits on the Wednesday (``SimConfig.one_way``);
- a campaign (``autumn-promo``, stores A and B, Thu-Sat of the last week) adding 40 % extra arrivals.

``Truth`` is computed here from the simulated people, independently of the analytics code.
"""

from __future__ import annotations

import hashlib
import zlib
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from footfall.analytics.config import (
    Campaign,
    CampaignsConfig,
    StaffRules,
    StoreMeta,
    StoresConfig,
    WifiRules,
)
from footfall.analytics.pos import PosTransaction
from footfall.contracts.events import (
    CameraIssueEvent,
    CrossingEvent,
    Event,
    HeartbeatEvent,
    WifiEvent,
    ZoneVisitEvent,
    stable_event_id,
)
from footfall.contracts.measurements import datetime_to_ns, event_to_point
from footfall.edge.bridges import MacHasher

HOUR = timedelta(hours=1)
MAX_UNACKED = 30_000
SECOND_NS = 1_000_000_000


@dataclass(frozen=True)
class SimStore:
    id: str
    timezone: str
    opening_hours: dict[str, str]
    arrivals_per_hour: float


DEFAULT_STORES = (
    SimStore("store-a", "Europe/Berlin", {"mon-sat": "09:00-20:00", "sun": "11:00-17:00"}, 9.0),
    SimStore("store-b", "America/New_York", {"mon-sun": "10:00-21:00"}, 7.0),
    SimStore("store-c", "Asia/Kolkata", {"mon-sat": "10:00-19:00"}, 6.0),
)


def recent_start(weeks: int, today: date | None = None) -> date:
    """The Monday starting ``weeks`` whole weeks that end on the last Sunday at least two days ago
    (UTC): every store's last local day (UTC-12..UTC+14) is then over, and the oldest event is
    well inside ingest's 400-day window."""
    today = today or datetime.now(UTC).date()
    latest = today - timedelta(days=2)
    last_sunday = latest - timedelta(days=(latest.weekday() - 6) % 7)
    return last_sunday - timedelta(days=7 * weeks - 1)


@dataclass
class SimConfig:
    stores: Sequence[SimStore] = DEFAULT_STORES
    # A Monday. None: the recent weeks (``recent_start``), so the events pass ingest's time window;
    # a fixed date (e.g. 2026-10-05, whose weeks cross both DST ends) for direct writes.
    start: date | None = None
    weeks: int = 5
    seed: int = 7
    campaign_uplift: float = 0.4
    outage: tuple[str, int, int, int] | None = (
        "store-c",
        9,
        13,
        16,
    )  # store, day index, local hours [from, to)
    # Broken days: the door camera counts only this share of the crossings (both directions) while its
    # heartbeats go on: (store, day index, share). The Tuesday of the last week: store C (9 open hours,
    # ~6 visitors an hour) counts nobody, as a covered or frozen camera does; store A (~9 an hour)
    # counts one person in ten, as a knocked one might.
    broken: tuple[tuple[str, int, float], ...] = (("store-c", 29, 0.0), ("store-a", 29, 0.1))
    # What the broken cameras' scene monitors report: a camera counting nobody is covered (from 80
    # minutes before opening to 30 after closing), one counting a few was knocked (moved, from 07:50
    # until 08:10 the next morning).
    # A line that miscounts one direction: store, day index, direction, share counted (store B, the
    # Wednesday of the last week, 60 % of exits).
    one_way: tuple[str, int, str, float] | None = ("store-b", 30, "out", 0.6)
    heartbeat_every: timedelta = timedelta(minutes=10)
    loyal_pool: int = 60
    wifi_share: float = 0.45
    randomized_share: float = 0.2
    purchase_share: float = 0.35

    def door_share(self, store: str, day_index: int, direction: str) -> float:
        """The share of door crossings the store's camera counts on that day, in that direction."""
        share = 1.0
        for broken_store, broken_day, counted in self.broken:
            if (broken_store, broken_day) == (store, day_index):
                share *= counted
        if self.one_way is not None and self.one_way[:3] == (store, day_index, direction):
            share *= self.one_way[3]
        return share

    def __post_init__(self) -> None:
        if self.start is None:
            self.start = recent_start(self.weeks)
        if self.start.weekday() != 0:
            raise ValueError(f"the simulation starts on a Monday, not {self.start:%A %Y-%m-%d}")


@dataclass
class Person:
    store: str
    arrival: datetime
    departure: datetime
    campaign_extra: bool


@dataclass
class Truth:
    """Expected KPI fields. Keys: (store, UTC ns of the local hour / local midnight); ``all`` for rollups
    (UTC hours; calendar days stamped at UTC midnight). A missing key = no point expected."""

    hourly: dict[tuple[str, int], dict[str, float]] = field(default_factory=dict)
    daily: dict[tuple[str, int], dict[str, float]] = field(default_factory=dict)
    zone_dwell_hourly: dict[tuple[str, str, int], list[float]] = field(default_factory=dict)
    zone_dwell_daily: dict[tuple[str, str, int], list[float]] = field(default_factory=dict)
    visit_duration_true_s: dict[tuple[str, int], list[float]] = field(default_factory=dict)  # per day
    campaign_extra: dict[str, int] = field(default_factory=dict)  # injected extra visitors per store
    gap_hours: set[tuple[str, int]] = field(default_factory=set)
    # repeat visits whose previous visit was under the previous hashing key (only linkable through
    # prev_device_hash)
    repeats_across_rotation: int = 0
    outage_days: set[tuple[str, int]] = field(default_factory=set)
    # (store, issue, started, cleared) of the camera issues the simulated edges reported
    camera_issues: list[tuple[str, str, datetime, datetime]] = field(default_factory=list)
    # The Poisson rate behind the visitors of each local hour (campaign included): what a perfect
    # forecast would say. Keys: (store, UTC ns of the local hour); hours without arrivals absent.
    expected_visitors: dict[tuple[str, int], float] = field(default_factory=dict)


@dataclass
class Simulation:
    config: SimConfig
    events: list[Event]
    pos: list[PosTransaction]
    stores: StoresConfig
    campaigns: CampaignsConfig
    truth: Truth
    people: list[Person]

    @property
    def start(self) -> date:
        assert self.config.start is not None
        return self.config.start

    @property
    def end(self) -> date:
        """Last simulated local day (inclusive)."""
        return self.start + timedelta(days=7 * self.config.weeks - 1)


def _crossing(
    event_id: str, store: str, ts: datetime, line: str, direction: str, track: int
) -> CrossingEvent:
    kind = "passby" if line == "street" else "entrance"
    return CrossingEvent(
        id=event_id,
        store=store,
        device="cam-1",
        ts=ts,
        line=line,
        kind=kind,
        direction=direction,
        track_id=track,
    )  # type: ignore[arg-type]


def _mac(*parts: object, randomized: bool = False) -> bytes:
    """A deterministic MAC; ``randomized`` sets the locally-administered bit (as probing phones do)."""
    raw = bytearray(hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=6).digest())
    raw[0] = (raw[0] & 0xFC) | (0x02 if randomized else 0x00)  # unicast; LA bit as asked
    return bytes(raw)


def _local_hour_ns(ts: datetime, tz: ZoneInfo) -> int:
    local = ts.astimezone(tz)
    return datetime_to_ns(local.replace(minute=0, second=0, microsecond=0))


def _local_midnight_ns(day: date, tz: ZoneInfo) -> int:
    return datetime_to_ns(datetime(day.year, day.month, day.day, tzinfo=tz))


def _hours_on(meta: StoreMeta, day: date) -> tuple[datetime, datetime] | None:
    hours = meta.hours_on(day)
    if hours is None:
        return None
    tz = meta.tz
    base = datetime(day.year, day.month, day.day, tzinfo=tz)
    return (
        base.replace(hour=hours[0] // 60, minute=hours[0] % 60),
        base.replace(hour=hours[1] // 60, minute=hours[1] % 60),
    )


def camera_issues(
    cfg: SimConfig, metas: list[StoreMeta], days: list[date]
) -> list[tuple[str, str, datetime, datetime]]:
    """The camera issues of the broken days (see ``SimConfig.broken``), in UTC."""
    out = []
    for store, index, share in cfg.broken:
        if index >= len(days):
            continue  # a shorter simulation has no such day
        meta = next(m for m in metas if m.id == store)
        day = days[index]
        if share == 0:
            hours = _hours_on(meta, day)
            assert hours is not None
            span = (hours[0] - timedelta(minutes=80), hours[1] + timedelta(minutes=30))
            out.append((store, "covered", *(x.astimezone(UTC) for x in span)))
        else:
            begin = datetime(day.year, day.month, day.day, 7, 50, tzinfo=meta.tz)
            end = datetime.combine(day + timedelta(days=1), datetime.min.time(), meta.tz) + timedelta(
                minutes=490
            )
            out.append((store, "moved", begin.astimezone(UTC), end.astimezone(UTC)))
    return out


def _issue_events(issues: list[tuple[str, str, datetime, datetime]], eid: Callable[..., str]) -> list[Event]:
    events: list[Event] = []
    for store, issue, begin, end in issues:
        for state, ts, score in (("started", begin, 0.87), ("cleared", end, 0.02)):
            events.append(
                CameraIssueEvent(
                    id=eid("ci", store, issue, state, ts),
                    store=store,
                    device="cam-1",
                    ts=ts,
                    issue=issue,  # type: ignore[arg-type]
                    state=state,  # type: ignore[arg-type]
                    score=score,
                )
            )
    return events


def simulate(config: SimConfig | None = None) -> Simulation:
    return _World(config or SimConfig()).run()


def _store_metas(cfg: SimConfig) -> list[StoreMeta]:
    return [
        StoreMeta(
            id=s.id,
            timezone=s.timezone,
            opening_hours=s.opening_hours,
            entrance_lines=["door"],
            passby_lines=["street"],
            staff=StaffRules(
                zones=["backroom"], count_outside_hours=False, wifi_min_hours_per_day=6, wifi_min_days=3
            ),
            wifi=WifiRules(session_gap_s=300, visit_min_s=120, visit_min_rssi=-70),
        )
        for s in cfg.stores
    ]


def _campaign(metas: list[StoreMeta], days: list[date]) -> Campaign:
    """The first two stores' campaign, Thursday to Saturday of the last week (local days)."""
    first, last = days[-4], days[-2]
    tz = metas[0].tz
    return Campaign(
        name="autumn-promo",
        stores=[m.id for m in metas[:2]],
        start=datetime(first.year, first.month, first.day, tzinfo=tz),
        end=datetime(last.year, last.month, last.day, tzinfo=tz) + timedelta(days=1),
        channel="social",
        baseline_weeks=4,
    )


@dataclass(frozen=True)
class _Day:
    """One store's local day, and the outage in force on it (UTC; None: none)."""

    sim_store: SimStore
    meta: StoreMeta
    index: int
    date: date
    outage: tuple[datetime, datetime] | None

    @property
    def store(self) -> str:
        return self.meta.id

    @property
    def midnight_ns(self) -> int:
        return _local_midnight_ns(self.date, self.meta.tz)

    def hour_ns(self, ts: datetime) -> int:
        """The local hour ``ts`` falls in (UTC ns of its start): the truth tables' key."""
        return _local_hour_ns(ts, self.meta.tz)

    def at(self, hour: int, minute: int = 0) -> datetime:
        """A local time of the day, in UTC."""
        d = self.date
        return datetime(d.year, d.month, d.day, hour, minute, tzinfo=self.meta.tz).astimezone(UTC)

    def in_outage(self, t0: datetime, t1: datetime | None = None) -> bool:
        t1 = t1 or t0
        return self.outage is not None and t0 < self.outage[1] and t1 >= self.outage[0]


class _World:
    """One simulation run: the random draws (in a fixed order, so a seed gives the same run), the
    events and POS records emitted, and the truth accumulated beside them."""

    def __init__(self, cfg: SimConfig) -> None:
        assert cfg.start is not None
        self.cfg = cfg
        self.rng = np.random.default_rng(cfg.seed)
        self.metas = _store_metas(cfg)
        self.stores = StoresConfig(rollup_timezone="UTC", stores=self.metas)
        self.days = [cfg.start + timedelta(days=i) for i in range(7 * cfg.weeks)]
        self.campaign = _campaign(self.metas, self.days)
        # The bridge's real hashing: a secret per seed, keys rotating every 30 days (epochs counted
        # from 1970, so any 5 simulated weeks contain a rotation).
        self.hasher = MacHasher(hashlib.sha256(f"footfall-sim-{cfg.seed}".encode()).digest(), epoch_days=30)
        self.events: list[Event] = []
        self.pos: list[PosTransaction] = []
        self.people: list[Person] = []
        self.truth = Truth()
        self.track = 0  # the camera's track ids, per store
        self.transactions = 0
        # truth accumulators, per (store, local hour) or (store, local day) unless said otherwise
        self.hourly: dict[tuple[str, int], dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.occupancy_minutes: dict[tuple[str, int], list[float]] = defaultdict(list)  # per minute
        self.occupancy_day: dict[tuple[str, int], list[float]] = defaultdict(list)
        self.wifi_visit_days: dict[tuple[str, bytes], set[int]] = defaultdict(set)  # (store, MAC) -> ordinals
        self.visit_epochs: dict[tuple[str, bytes, int], int] = {}  # (store, MAC, day ordinal) -> key epoch
        self.visit_durations_h: dict[tuple[str, int], list[float]] = defaultdict(list)
        self.visit_durations_d: dict[tuple[str, int], list[float]] = defaultdict(list)

    def run(self) -> Simulation:
        cfg = self.cfg
        self.truth.camera_issues = camera_issues(cfg, self.metas, self.days)
        self.events += _issue_events(self.truth.camera_issues, self.eid)
        for sim_store, meta in zip(cfg.stores, self.metas, strict=True):
            self.track = 0
            loyal = [_mac("loyal", cfg.seed, meta.id, i) for i in range(cfg.loyal_pool)]
            for index, day in enumerate(self.days):
                self._simulate_day(self._day(sim_store, meta, index, day), loyal)
        self._assemble_truth()
        self.events.sort(key=lambda e: e.ts)
        campaigns = CampaignsConfig(campaigns=[self.campaign])
        return Simulation(cfg, self.events, self.pos, self.stores, campaigns, self.truth, self.people)

    def eid(self, *parts: object) -> str:
        return stable_event_id("sim", self.cfg.seed, *parts)

    def _day(self, sim_store: SimStore, meta: StoreMeta, index: int, day: date) -> _Day:
        plain = _Day(sim_store, meta, index, day, None)
        outage = self.cfg.outage
        if not (outage and outage[0] == meta.id and outage[1] == index):
            return plain
        self.truth.outage_days.add((meta.id, plain.midnight_ns))
        return replace(plain, outage=(plain.at(outage[2]), plain.at(outage[3])))

    def _simulate_day(self, day: _Day, loyal: list[bytes]) -> None:
        self._heartbeats(day)
        self._walkbys(day)
        hours = _hours_on(day.meta, day.date)
        if hours is None:
            return
        open_t, close_t = (x.astimezone(UTC) for x in hours)
        self._staff(day, open_t, close_t)
        loyal_today = list(self.rng.permutation(len(loyal)))
        arrivals: list[int] = []  # the door crossings counted (ns), for the occupancy truth
        departures: list[int] = []
        for person in sorted(self._visitors(day, open_t, close_t), key=lambda p: p.arrival):
            self._customer(day, person, loyal, loyal_today, arrivals, departures)
        self._occupancy_truth(day, open_t, close_t, arrivals, departures)

    def _sighting(self, event_id: str, day: _Day, ts: datetime, mac: bytes, rssi: int) -> WifiEvent:
        """What the Wi-Fi bridge publishes for a MAC seen at ``ts``."""
        epoch, current, previous = self.hasher.hashes(mac, ts)
        return WifiEvent(
            id=event_id,
            store=day.store,
            device="wifi-1",
            ts=ts,
            sensor="s1",
            device_hash=current,
            prev_device_hash=previous,
            rssi=rssi,
            randomized=bool(mac[0] & 0x02),  # locally administered, as the bridge flags it
            key_epoch=epoch,
        )

    def _door(self, day: _Day, event_id: str, ts: datetime, direction: str, track: int) -> bool:
        """Emit a door crossing if the camera counts it (see ``SimConfig.door_share``); the choice
        hashes the event id, so the random draws of everything else stay as they were."""
        share = self.cfg.door_share(day.store, day.index, direction)
        if share < 1 and zlib.crc32(event_id.encode()) % 1000 >= share * 1000:
            return False
        self.events.append(_crossing(event_id, day.store, ts, "door", direction, track))
        return True

    def _zone_visit(
        self, event_id: str, day: _Day, zone: str, track: int, enter: datetime, exit_: datetime
    ) -> None:
        self.events.append(
            ZoneVisitEvent(
                id=event_id,
                store=day.store,
                device="cam-1",
                ts=exit_,
                zone=zone,
                track_id=track,
                enter_ts=enter,
                exit_ts=exit_,
                dwell_s=(exit_ - enter).total_seconds(),
            )
        )

    def _heartbeats(self, day: _Day) -> None:
        """Every ``heartbeat_every`` all day, except during the outage; the hours they cover are
        the hours with data."""
        sid, beat = day.store, 0
        t = day.at(0) + timedelta(seconds=37)
        next_midnight = datetime.combine(
            day.date + timedelta(days=1), datetime.min.time(), day.meta.tz
        ).astimezone(UTC)
        while t < next_midnight:
            if not day.in_outage(t):
                # Health values vary by beat (not drawn from rng: the other events stay as they
                # were), so a dashboard's mean and max of them differ.
                issues = (i for st, i, b, e in self.truth.camera_issues if st == sid and b <= t < e)
                self.events.append(
                    HeartbeatEvent(
                        id=self.eid("hb", sid, t),
                        store=sid,
                        device="cam-1",
                        ts=t,
                        fps=10.0 - (beat % 4) * 0.5,
                        latency_ms=40.0 + (beat % 7) * 5,
                        dropped_frames=beat % 3,
                        queue_depth=(beat % 5) * 2,
                        uptime_s=float(beat * self.cfg.heartbeat_every.total_seconds()),
                        camera_issues=",".join(issues),
                        detector_input=f"{640 + 64 * (len(sid) % 3)}x384",
                        # Some beats saw nobody near the lines (no size); the sizes straddle the
                        # alert's share of the aim.
                        person_px=None if beat % 7 == 6 else (45.0 if beat % 2 else 70.0) + beat % 5,
                        person_px_aim=64,
                    )
                )
                self.hourly[(sid, day.hour_ns(t))]["_covered"] = 1
            t += self.cfg.heartbeat_every
            beat += 1

    def _walkbys(self, day: _Day) -> None:
        """People crossing only the street line, 07:00-22:00 local; some carry a phone seen weakly."""
        rng, sid = self.rng, day.store
        for hour in range(7, 22):
            h0 = day.at(hour)
            for _ in range(rng.poisson(day.sim_store.arrivals_per_hour * 1.5)):
                t = h0 + timedelta(seconds=int(rng.integers(0, 3600)))
                if day.in_outage(t, t + timedelta(seconds=30)):
                    continue
                self.track += 1
                track = self.track
                direction = "in" if rng.random() < 0.5 else "out"
                self.events.append(_crossing(self.eid("wb", sid, track), sid, t, "street", direction, track))
                self.hourly[(sid, day.hour_ns(t))]["passersby"] += 1
                if rng.random() < 0.3:  # a phone seen weakly, briefly
                    mac = _mac("walkby", self.cfg.seed, sid, track, randomized=bool(rng.random() < 0.5))
                    for k in range(int(rng.integers(1, 3))):
                        ts = t + timedelta(seconds=10 * k)
                        rssi = int(rng.integers(-88, -75))
                        self.events.append(self._sighting(self.eid("wbw", sid, track, k), day, ts, mac, rssi))
                    self.hourly[(sid, day.hour_ns(t))]["wifi_walkbys"] += 1

    def _staff(self, day: _Day, open_t: datetime, close_t: datetime) -> None:
        """Two staff: in before opening, out after closing, a break through the door from the
        back room; their phones seen every 5 minutes all shift."""
        sid, d = day.store, day.date
        for n_staff in range(2):
            arrive, leave = open_t - timedelta(minutes=30), close_t + timedelta(minutes=20)
            self.track += 1
            self._door(day, self.eid("st-in", sid, d, n_staff), arrive, "in", self.track)
            self.track += 1
            self._door(day, self.eid("st-out", sid, d, n_staff), leave, "out", self.track)
            brk = open_t + timedelta(hours=2 + 2 * n_staff, minutes=7)
            if not day.in_outage(brk - timedelta(minutes=15), brk + timedelta(minutes=40)):
                self._staff_break(day, n_staff, brk)
            staff_mac = _mac("staff", self.cfg.seed, sid, n_staff)
            t = arrive
            while t <= leave:
                if not day.in_outage(t):
                    event_id = self.eid("st-w", sid, d, n_staff, t)
                    self.events.append(self._sighting(event_id, day, t, staff_mac, -60))
                t += timedelta(minutes=5)

    def _staff_break(self, day: _Day, n_staff: int, brk: datetime) -> None:
        """From the back room out through the door at ``brk``, and in again 25 minutes later back
        to the back room: a track each way, both seen in the staff zone."""
        sid, d = day.store, day.date
        self.track += 1
        visit = self.eid("st-z1", sid, d, n_staff)
        self._zone_visit(
            visit, day, "backroom", self.track, brk - timedelta(minutes=10), brk - timedelta(seconds=20)
        )
        self._door(day, self.eid("st-brk-out", sid, d, n_staff), brk, "out", self.track)
        self.track += 1
        back = brk + timedelta(minutes=25)
        self._door(day, self.eid("st-brk-in", sid, d, n_staff), back, "in", self.track)
        visit = self.eid("st-z2", sid, d, n_staff)
        self._zone_visit(
            visit, day, "backroom", self.track, back + timedelta(seconds=40), back + timedelta(minutes=6)
        )

    def _visitors(self, day: _Day, open_t: datetime, close_t: datetime) -> list[Person]:
        """Customers arriving by a Poisson process, hour by hour, until 45 minutes before closing
        (the campaign's extra arrivals drawn after each hour's own); none into the outage."""
        rng, campaign = self.rng, self.campaign
        last_arrival = close_t - timedelta(minutes=45)
        visitors: list[Person] = []
        t = open_t
        while t < last_arrival:
            h_end = min(t + HOUR - timedelta(seconds=t.minute * 60 + t.second), last_arrival)
            span = (h_end - t).total_seconds()
            for extra in (False, True):
                rate = day.sim_store.arrivals_per_hour * span / 3600
                if extra:
                    if not (day.store in campaign.stores and campaign.start <= t < campaign.end):
                        continue
                    rate *= self.cfg.campaign_uplift
                for _ in range(rng.poisson(rate)):
                    a = t + timedelta(seconds=int(rng.integers(0, int(span))))
                    if extra and not campaign.start <= a < campaign.end:
                        continue
                    d = a + timedelta(seconds=int(rng.integers(300, 2400)))
                    if not day.in_outage(a - timedelta(seconds=5), d):
                        visitors.append(Person(day.store, a, d, extra))
            t = h_end
        return visitors

    def _customer(
        self,
        day: _Day,
        p: Person,
        loyal: list[bytes],
        loyal_today: list[int],
        arrivals: list[int],
        departures: list[int],
    ) -> None:
        """A customer passes the street line 5 s before the door, visits 0-2 zones, may carry a
        phone and may buy."""
        sid, hourly = day.store, self.hourly
        self.people.append(p)
        if p.campaign_extra:
            self.truth.campaign_extra[sid] = self.truth.campaign_extra.get(sid, 0) + 1
        self.track += 1
        track, a, d = self.track, p.arrival, p.departure
        pb = a - timedelta(seconds=5)
        self.events.append(
            _crossing(self.eid("c-pb", sid, track), sid, pb, "street", "in", track + 1_000_000)
        )
        hourly[(sid, day.hour_ns(pb))]["passersby"] += 1
        if self._door(day, self.eid("c-in", sid, track), a, "in", track):
            hourly[(sid, day.hour_ns(a))]["visitors"] += 1
            arrivals.append(datetime_to_ns(a))
        if self._door(day, self.eid("c-out", sid, track), d, "out", track + 2_000_000):
            hourly[(sid, day.hour_ns(d))]["exits"] += 1
            departures.append(datetime_to_ns(d))
        self._zones(day, track, a, d)
        if self.rng.random() < self.cfg.wifi_share:
            self._phone(day, track, a, d, loyal, loyal_today)
        if self.rng.random() < self.cfg.purchase_share:
            self._purchase(day, d)

    def _zones(self, day: _Day, track: int, a: datetime, d: datetime) -> None:
        sid, rng = day.store, self.rng
        dwell_s = (d - a).total_seconds()
        for z, zone in enumerate(("shelf", "checkout")[: int(rng.integers(0, 3))]):
            z_in = a + timedelta(seconds=int(30 + z * dwell_s / 2))
            z_out = z_in + timedelta(seconds=int(rng.integers(20, max(21, int(dwell_s / 2) - 40))))
            self._zone_visit(self.eid("zv", sid, track, zone), day, zone, track, z_in, z_out)
            z_dwell = (z_out - z_in).total_seconds()
            self.truth.zone_dwell_hourly.setdefault((sid, zone, day.hour_ns(z_out)), []).append(z_dwell)
            self.truth.zone_dwell_daily.setdefault((sid, zone, day.midnight_ns), []).append(z_dwell)

    def _phone(
        self, day: _Day, track: int, a: datetime, d: datetime, loyal: list[bytes], loyal_today: list[int]
    ) -> None:
        """A customer's phone, seen every 90 s while inside: a returning device from the store's
        pool, or a randomized address; a Wi-Fi visit when seen for at least 120 s."""
        sid, rng = day.store, self.rng
        randomized = rng.random() < self.cfg.randomized_share or not loyal_today
        mac = (
            _mac("rnd", self.cfg.seed, sid, track, randomized=True)
            if randomized
            else loyal[loyal_today.pop()]
        )
        first = a + timedelta(seconds=int(rng.integers(5, 60)))
        ts = last = first
        k = 0
        while ts < d:
            self.events.append(
                self._sighting(self.eid("cw", sid, track, k), day, ts, mac, int(rng.integers(-66, -50)))
            )
            last = ts
            ts += timedelta(seconds=90)
            k += 1
        seen_s = (last - first).total_seconds()
        h = (sid, day.hour_ns(first))
        if seen_s < 120:
            self.hourly[h]["wifi_walkbys"] += 1
            return
        self.hourly[h]["wifi_visits"] += 1
        self.visit_durations_h[h].append(seen_s)
        self.visit_durations_d[(sid, day.midnight_ns)].append(seen_s)
        self.truth.visit_duration_true_s.setdefault((sid, day.midnight_ns), []).append(
            (d - a).total_seconds()
        )
        if not randomized:
            ordinal = day.date.toordinal()
            self.wifi_visit_days[(sid, mac)].add(ordinal)
            self.visit_epochs[(sid, mac, ordinal)] = self.hasher.epoch(first)

    def _purchase(self, day: _Day, d: datetime) -> None:
        """A POS transaction a minute before the customer leaves."""
        sid, rng = day.store, self.rng
        self.transactions += 1
        amount = round(float(rng.uniform(3, 80)), 2)
        pt = d - timedelta(seconds=60)
        items = int(rng.integers(1, 6))
        self.pos.append(PosTransaction(sid, datetime_to_ns(pt), f"{sid}-{self.transactions}", amount, items))
        hour = self.hourly[(sid, day.hour_ns(pt))]
        hour["transactions"] += 1
        hour["revenue"] += amount

    def _occupancy_truth(
        self, day: _Day, open_t: datetime, close_t: datetime, arrivals: list[int], departures: list[int]
    ) -> None:
        """Per opening minute, customers counted inside at the minute's end; a count left at closing
        (crossings the camera missed) is removed linearly over the day, as docs/analytics.md
        defines it (0 on every day the camera counted everyone)."""
        arr, dep = np.sort(np.array(arrivals, np.int64)), np.sort(np.array(departures, np.int64))
        minutes = [
            open_t + timedelta(minutes=k) for k in range(int((close_t - open_t).total_seconds() // 60))
        ]
        ends = np.array([datetime_to_ns(m + timedelta(minutes=1)) for m in minutes], np.int64)
        raw = (np.searchsorted(arr, ends, "left") - np.searchsorted(dep, ends, "left")).astype(float)
        drift = raw[-1] if len(raw) else 0.0
        for k, m in enumerate(minutes):
            occ = max(float(raw[k] - drift * (k + 1) / len(minutes)), 0.0)
            self.occupancy_minutes[(day.store, day.hour_ns(m))].append(occ)
            if not day.in_outage(m):  # minutes of hours without data do not count
                self.occupancy_day[(day.store, day.midnight_ns)].append(occ)

    def _assemble_truth(self) -> None:
        day_of_hour = self._day_of_hour()
        self._hourly_truth(day_of_hour)
        self._daily_truth(day_of_hour)
        _rollups(
            self.truth, self.stores, self.occupancy_minutes, self.visit_durations_h, self.visit_durations_d
        )
        self.truth.expected_visitors = expected_visitors(self.cfg, self.stores, self.days, self.campaign)

    def _day_of_hour(self) -> dict[tuple[str, int], int]:
        """Every local hour simulated (store, UTC ns of its start) -> its local midnight (ns)."""
        day_of_hour: dict[tuple[str, int], int] = {}
        for meta in self.metas:
            tz = meta.tz
            for day in self.days:
                t = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
                stop = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz).astimezone(UTC)
                while t < stop:
                    day_of_hour[(meta.id, datetime_to_ns(t))] = _local_midnight_ns(day, tz)
                    t += HOUR
        return day_of_hour

    def _hourly_truth(self, day_of_hour: dict[tuple[str, int], int]) -> None:
        """The fields of each hour with data; hours without heartbeats are gaps."""
        truth = self.truth
        for key, acc in self.hourly.items():
            if key not in day_of_hour:
                continue
            if not acc.get("_covered"):
                truth.gap_hours.add(key)
                continue
            truth.hourly[key] = _store_fields(
                acc, self.occupancy_minutes.get(key), self.visit_durations_h.get(key)
            )
        for key in day_of_hour:
            if key not in self.hourly or not self.hourly[key].get("_covered"):
                truth.gap_hours.add(key)

    def _daily_truth(self, day_of_hour: dict[tuple[str, int], int]) -> None:
        """Daily sums over the hours with data, and the day's Wi-Fi visitors and repeat visitors."""
        daily_acc: dict[tuple[str, int], dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for (sid, h_ns), fields in self.truth.hourly.items():
            acc = daily_acc[(sid, day_of_hour[(sid, h_ns)])]
            acc["covered_hours"] += 1
            for name in _DAILY_SUMS:
                acc[name] += fields.get(name, 0.0)
        for d_key, acc in daily_acc.items():
            fields = _store_fields(acc, self.occupancy_day.get(d_key), self.visit_durations_d.get(d_key))
            fields["covered_hours"] = acc["covered_hours"]
            fields.update(self._repeat_fields(*d_key))
            self.truth.daily[d_key] = fields

    def _repeat_fields(self, sid: str, midnight_ns: int) -> dict[str, float]:
        """Wi-Fi visitors of a local day, and those of them seen on a visit in the 30 days before."""
        tz = ZoneInfo(self.stores.meta(sid).timezone)  # type: ignore[union-attr]
        ordinal = datetime.fromtimestamp(midnight_ns / 1e9, tz).date().toordinal()
        days = self.wifi_visit_days
        devices = [dev for (s, dev), ords in days.items() if s == sid and ordinal in ords]
        repeats = [dev for dev in devices if any(ordinal - 30 <= o < ordinal for o in days[(sid, dev)])]
        self.truth.repeats_across_rotation += sum(
            self.visit_epochs[(sid, dev, ordinal)]
            != self.visit_epochs[(sid, dev, max(o for o in days[(sid, dev)] if o < ordinal))]
            for dev in repeats
        )
        fields: dict[str, float] = {"wifi_visitors": len(devices), "repeat_visitors": len(repeats)}
        if devices:
            fields["repeat_rate"] = len(repeats) / len(devices)
        return fields


# What a day's truth sums over its hours with data.
_DAILY_SUMS = ("visitors", "exits", "passersby", "wifi_visits", "wifi_walkbys", "transactions", "revenue")


def expected_visitors(
    cfg: SimConfig, stores: StoresConfig, days: Iterable[date], campaign: Campaign | None = None
) -> dict[tuple[str, int], float]:
    """The Poisson rate of the arrivals counted in each local hour (store, UTC ns of the hour's
    start): customers arrive from opening until 45 minutes before closing at the store's rate, plus
    the campaign's extra share inside its window. What a perfect forecast would say."""
    out: dict[tuple[str, int], float] = {}
    for sim_store, meta in zip(cfg.stores, stores.stores, strict=True):
        rate = sim_store.arrivals_per_hour
        for day in days:
            hours = _hours_on(meta, day)
            if hours is None:
                continue
            begin, end = hours[0], hours[1] - timedelta(minutes=45)
            t = begin.replace(minute=0)
            while t < end:
                hour = (t.astimezone(UTC), (t + HOUR).astimezone(UTC))
                expected = rate * _overlap_h(hour, (begin.astimezone(UTC), end.astimezone(UTC)))
                if campaign is not None and meta.id in campaign.stores:
                    window = (
                        max(begin.astimezone(UTC), campaign.start),
                        min(end.astimezone(UTC), campaign.end),
                    )
                    expected += rate * cfg.campaign_uplift * _overlap_h(hour, window)
                out[(meta.id, datetime_to_ns(hour[0]))] = expected
                t += HOUR
    return out


def _overlap_h(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> float:
    return max((min(a[1], b[1]) - max(a[0], b[0])).total_seconds(), 0.0) / 3600


def _store_fields(
    acc: dict[str, float], occ: list[float] | None, durations: list[float] | None
) -> dict[str, float]:
    f = {
        k: float(acc.get(k, 0.0))
        for k in ("visitors", "exits", "passersby", "wifi_visits", "wifi_walkbys", "transactions", "revenue")
    }
    f["walkbys"] = max(f["passersby"] - f["visitors"], 0.0)
    if f["passersby"]:
        f["capture_rate"] = f["visitors"] / f["passersby"]
    if f["visitors"]:
        f["conversion"] = f["transactions"] / f["visitors"]
        f["sales_per_visitor"] = f["revenue"] / f["visitors"]
    if f["transactions"]:
        f["atv"] = f["revenue"] / f["transactions"]
    if occ:
        f["occupancy_avg"] = float(np.mean(occ))
        f["occupancy_max"] = float(np.max(occ))
    if durations:
        f["visit_duration_median_s"] = float(np.median(durations))
    return f


def _rollups(
    truth: Truth,
    stores: StoresConfig,
    occupancy_minutes: dict[tuple[str, int], list[float]],
    durations_h: dict[tuple[str, int], list[float]],
    durations_d: dict[tuple[str, int], list[float]],
) -> None:
    """store=all: hourly by UTC hour, daily by local calendar date stamped at UTC midnight."""
    sums = ("visitors", "exits", "passersby", "wifi_visits", "wifi_walkbys", "transactions", "revenue")
    for table, durations, key_of in (
        (truth.hourly, durations_h, lambda sid, ns: ns - ns % (3600 * SECOND_NS)),
        (truth.daily, durations_d, lambda sid, ns: _utc_midnight_of_local_date(stores, sid, ns)),
    ):
        acc: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        pooled: dict[int, list[float]] = defaultdict(list)
        occ: dict[int, float] = defaultdict(float)
        for (sid, ns), fields in list(table.items()):
            if sid == "all":
                continue
            k = key_of(sid, ns)
            for name in sums:
                acc[k][name] += fields.get(name, 0.0)
            for name in ("covered_hours", "wifi_visitors", "repeat_visitors"):
                if name in fields:
                    acc[k][name] += fields[name]
            if "occupancy_avg" in fields:
                occ[k] += fields["occupancy_avg"]
                acc[k]["_occ"] = 1
            pooled[k] += durations.get((sid, ns), [])
        for k, a in acc.items():
            f = _store_fields(a, None, pooled.get(k) or None)
            for name in ("covered_hours", "wifi_visitors", "repeat_visitors"):
                if name in a:
                    f[name] = a[name]
            if a.get("wifi_visitors"):
                f["repeat_rate"] = a["repeat_visitors"] / a["wifi_visitors"]
            if a.get("_occ"):
                f["occupancy_avg"] = occ[k]
            table[("all", k)] = f
    del occupancy_minutes


def _utc_midnight_of_local_date(stores: StoresConfig, sid: str, local_midnight_ns: int) -> int:
    tz = ZoneInfo(stores.meta(sid).timezone)  # type: ignore[union-attr]
    d = datetime.fromtimestamp(local_midnight_ns / 1e9, tz).date()
    return datetime_to_ns(datetime(d.year, d.month, d.day, tzinfo=UTC))


# --------------------------------------------------------------------------- emitting


def emit_to_influx(sim: Simulation, client, batch: int = 20_000) -> int:  # type: ignore[no-untyped-def]
    """Write the events exactly as ingest does (``event_to_point(e).to_line()``) plus the POS points."""
    lines = [event_to_point(e).to_line() for e in sim.events] + [p.to_point().to_line() for p in sim.pos]
    for i in range(0, len(lines), batch):
        client.write_lines(lines[i : i + batch])
    return len(lines)


def emit_to_store(sim: Simulation, store) -> int:  # type: ignore[no-untyped-def]
    """Write events and POS into any analytics EventStore (e.g. DuckDBStore)."""
    return store.write_points([event_to_point(e) for e in sim.events] + [p.to_point() for p in sim.pos])


def emit_via_mqtt(events: Iterable[Event], mqtt_url: str, *, timeout_s: float = 120.0) -> int:
    """Publish events through a real broker as the edge does: paho-mqtt, QoS 1, topic = event.topic.
    The user in ``mqtt_url`` must be allowed to write every store's topics (e.g. ``admin``)."""
    import time

    import paho.mqtt.client as mqtt

    from footfall.contracts.config import MqttSettings

    settings = MqttSettings.from_url(mqtt_url)
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"sim-{time.monotonic_ns()}", clean_session=True
    )
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    client.max_inflight_messages_set(1000)
    client.connect(settings.host, settings.port)
    client.loop_start()
    pending: deque[mqtt.MQTTMessageInfo] = deque()
    deadline = time.monotonic() + timeout_s
    sent = 0

    def settle(keep: int) -> None:
        while len(pending) > keep:
            info = pending.popleft()
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            if not info.is_published():
                raise TimeoutError("broker did not acknowledge every event in time")

    try:
        for event in events:
            # paho's message ids wrap at 65535: never have that many unacknowledged
            settle(MAX_UNACKED)
            pending.append(client.publish(event.topic, event.to_json(), qos=1))
            sent += 1
        settle(0)
    finally:
        client.loop_stop()
        client.disconnect()
    return sent
