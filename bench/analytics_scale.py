"""Analytics at scale: 1 M and 10 M raw events (10 / 100 stores x 30 days).

For each size it measures, separately, wall time and peak memory (RSS sampled every 10 ms, shown as
the increase over the RSS at the start of the phase) of:

- compute: the pure KPI core on data already in memory (``compute_kpis``);
- DuckDB: loading the raw events (setup), the job's read, compute and KPI write;
- InfluxDB 1.x (a real ``influxd`` started here): loading via line protocol (setup), the job's
  read over ``/query`` (InfluxQL, epoch=ns, day chunks), compute and KPI write.

Usage: ``.venv/bin/python bench/analytics_scale.py [--sizes 1e6,1e7] [--skip-influx]``
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from footfall.analytics import DuckDBStore, InfluxStore, StoreMeta, StoresConfig, build_grid, compute_kpis
from footfall.analytics.core import REPEAT_WINDOW_DAYS
from footfall.analytics.frames import RawDataBuilder
from footfall.analytics.grid import local_midnight
from footfall.contracts.measurements import CROSSING, HEARTBEAT, WIFI, ZONE_VISIT, datetime_to_ns

DAYS = 30
START = date(2026, 9, 1)
ZONES = ("Europe/Berlin", "America/New_York", "UTC")
# per store-day: 144 heartbeats (every 10 min), then crossings / zone visits / Wi-Fi sightings
MIX = {"crossing": 0.60, "zone_visit": 0.12, "wifi": 0.24}


class Peak:
    """Peak RSS of this process during a block, sampled every 10 ms."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()

    @contextmanager
    def measure(self) -> Iterator[dict[str, float]]:
        gc.collect()
        out: dict[str, float] = {}
        start_rss = self.proc.memory_info().rss
        self.peak = start_rss
        self._stop.clear()

        def sample() -> None:
            while not self._stop.wait(0.01):
                self.peak = max(self.peak, self.proc.memory_info().rss)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        t0 = time.perf_counter()
        try:
            yield out
        finally:
            out["s"] = time.perf_counter() - t0
            self._stop.set()
            thread.join()
            self.peak = max(self.peak, self.proc.memory_info().rss)
            out["peak_mb"] = (self.peak - start_rss) / 2**20


def make_stores(n: int) -> StoresConfig:
    return StoresConfig(
        stores=[
            StoreMeta(
                id=f"store-{i:03d}", timezone=ZONES[i % len(ZONES)], opening_hours={"mon-sat": "09:00-20:00"}
            )
            for i in range(n)
        ]
    )


def make_columns(config: StoresConfig, total: int, seed: int = 1) -> dict[str, dict[str, np.ndarray]]:
    """Synthetic raw events as columns per measurement (store ids as strings, ns timestamps)."""
    rng = np.random.default_rng(seed)
    n_st = len(config.stores)
    names = np.array([s.id for s in config.stores], dtype=object)
    day0 = np.array([datetime_to_ns(local_midnight(START, s.tz)) for s in config.stores], np.int64)
    day_ns = 86_400 * 10**9
    hb_per_day = 144
    n_hb = n_st * DAYS * hb_per_day
    rest = total - n_hb
    cols: dict[str, dict[str, np.ndarray]] = {}
    st = np.repeat(np.arange(n_st), DAYS * hb_per_day)
    k = np.tile(np.arange(DAYS * hb_per_day), n_st)
    cols[HEARTBEAT] = {
        "store": names[st],
        "device": np.full(n_hb, "cam-1", dtype=object),
        "time": day0[st] + k * 600 * 10**9 + 17 * 10**9,
        "fps": np.full(n_hb, 10.0),
    }

    def when(n: int) -> tuple[np.ndarray, np.ndarray]:
        s = rng.integers(0, n_st, n)
        d = rng.integers(0, DAYS, n)
        # opening hours 09:00-20:00 local (approximated as offsets from local midnight)
        t = day0[s] + d * day_ns + rng.integers(9 * 3600, 20 * 3600, n) * 10**9 + rng.integers(0, 10**6, n)
        return s, t

    n_c = int(rest * MIX["crossing"] / sum(MIX.values()))
    s, t = when(n_c)
    passby = rng.random(n_c) < 0.4
    cols[CROSSING] = {
        "store": names[s],
        "device": np.full(n_c, "cam-1", dtype=object),
        "line": np.where(passby, "street", "door").astype(object),
        "kind": np.where(passby, "passby", "entrance").astype(object),
        "direction": np.where(rng.random(n_c) < 0.5, "in", "out").astype(object),
        "source": np.full(n_c, "camera", dtype=object),
        "time": t,
        "count": np.ones(n_c, np.int64),
        "track_id": rng.integers(0, 10**6, n_c),
    }
    n_z = int(rest * MIX["zone_visit"] / sum(MIX.values()))
    s, t = when(n_z)
    dwell = rng.exponential(180, n_z)
    cols[ZONE_VISIT] = {
        "store": names[s],
        "device": np.full(n_z, "cam-1", dtype=object),
        "zone": np.array(["shelf", "checkout", "backroom"], dtype=object)[rng.integers(0, 3, n_z)],
        "time": t,
        "dwell_s": dwell,
        "track_id": rng.integers(0, 10**6, n_z),
        "enter_ns": t - (dwell * 1e9).astype(np.int64),
    }
    n_w = rest - n_c - n_z
    s, t = when(n_w)
    pool = np.array([f"{x:032x}" for x in rng.integers(0, 2**62, 20_000 * max(1, n_st // 10))], dtype=object)
    cols[WIFI] = {
        "store": names[s],
        "device": np.full(n_w, "wifi-1", dtype=object),
        "sensor": np.full(n_w, "s1", dtype=object),
        "time": t,
        "device_hash": pool[rng.integers(0, len(pool), n_w)],
        "rssi": rng.integers(-90, -40, n_w),
        "randomized": rng.random(n_w) < 0.2,
    }
    return cols


def raw_from_columns(config: StoresConfig, cols: dict[str, dict[str, np.ndarray]]) -> Any:
    """The in-memory RawData the readers would build (for the pure compute measurement)."""
    b = RawDataBuilder(config)
    c = cols[CROSSING]
    keys = np.stack([c["store"], c["device"], c["line"], c["kind"], c["direction"]]).astype(str)
    combos, combo = np.unique(keys, axis=1, return_inverse=True)
    b.add_crossings(
        combos=[tuple(x) for x in combos.T],
        combo=combo.reshape(-1),
        ts=c["time"],
        count=c["count"],
        track=c["track_id"],
    )
    z = cols[ZONE_VISIT]
    keys = np.stack([z["store"], z["device"], z["zone"]]).astype(str)
    combos, combo = np.unique(keys, axis=1, return_inverse=True)
    b.add_zone_visits(
        combos=[tuple(x) for x in combos.T],
        combo=combo.reshape(-1),
        ts=z["time"],
        enter=z["enter_ns"],
        dwell_s=z["dwell_s"],
        track=z["track_id"],
    )
    w = cols[WIFI]
    b.add_wifi(
        store=w["store"],
        ts=w["time"],
        device_hash=w["device_hash"],
        rssi=w["rssi"],
        randomized=w["randomized"],
    )
    h = cols[HEARTBEAT]
    b.add_heartbeats(store=h["store"], ts=h["time"])
    return b.build()


def job_phases(
    source: Any, config: StoresConfig, peak: Peak, label: str, report: Callable[..., None]
) -> None:
    first, last = START, START + timedelta(days=DAYS - 1)
    grid = build_grid(config.stores, first, last, lookback_days=REPEAT_WINDOW_DAYS, context_days=1)
    with peak.measure() as m:
        raw = source.read_raw(
            config, grid.read_start_ns, grid.read_end_ns, wifi_start_ns=grid.lookback_start_ns
        )
    report(label, "read", raw.n_events, m)
    with peak.measure() as m:
        kpis = compute_kpis(raw, grid, config)
    report(label, "compute", raw.n_events, m)
    points = kpis.all_points()
    with peak.measure() as m:
        source.write_points(points)
    report(label, f"write {len(points)} KPI points", raw.n_events, m)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1e6,1e7")
    parser.add_argument("--skip-influx", action="store_true")
    parser.add_argument("--skip-duckdb", action="store_true")
    args = parser.parse_args()
    peak = Peak()
    rows: list[tuple[str, str, int, float, float]] = []

    def report(label: str, phase: str, n: int, m: dict[str, float]) -> None:
        rows.append((label, phase, n, m["s"], m["peak_mb"]))
        print(
            f"{label:>18} {phase:<28} {n:>11,d} events {m['s']:8.2f} s {n / m['s'] / 1e6:7.2f} M/s  "
            f"peak +{m['peak_mb']:7.0f} MiB",
            flush=True,
        )

    for size in (int(float(x)) for x in args.sizes.split(",")):
        n_stores = max(1, round(size / 1e5))
        config = make_stores(n_stores)
        cols = make_columns(config, size)
        total = sum(len(c["time"]) for c in cols.values())
        label = f"{total / 1e6:.0f}M/{n_stores}st"
        raw = raw_from_columns(config, cols)
        grid = build_grid(config.stores, START, START + timedelta(days=DAYS - 1), REPEAT_WINDOW_DAYS, 1)
        with peak.measure() as m:
            compute_kpis(raw, grid, config)
        report(label, "pure compute (in memory)", raw.n_events, m)
        del raw
        if not args.skip_duckdb:
            with tempfile.TemporaryDirectory() as tmp, DuckDBStore(Path(tmp) / "bench.duckdb") as duck:
                with peak.measure() as m:
                    for measurement, c in cols.items():
                        duck.write_columns(measurement, c)
                report(label, "duckdb load raw (setup)", total, m)
                job_phases(duck, config, peak, label + " duckdb", report)
        if not args.skip_influx:
            from tests.servers import InfluxServer, have_binary

            if not have_binary("influxd"):
                print("influxd not installed: InfluxDB phases skipped")
                continue
            with tempfile.TemporaryDirectory() as tmp:
                server = InfluxServer(Path(tmp))
                server.start()
                try:
                    client = server.create_database("bench")
                    client.timeout_s = 600
                    influx = InfluxStore(client)
                    with peak.measure() as m:
                        for measurement, c in cols.items():
                            influx.write_columns(measurement, c)
                    report(label, "influx load raw (setup)", total, m)
                    job_phases(influx, config, peak, label + " influx", report)
                    # the same read with passby crossings row by row (the reader before it summed them)
                    row_reader = InfluxStore(client, passby_sums=False)
                    grid = build_grid(
                        config.stores, START, START + timedelta(days=DAYS - 1), REPEAT_WINDOW_DAYS, 1
                    )
                    with peak.measure() as m:
                        raw = row_reader.read_raw(
                            config, grid.read_start_ns, grid.read_end_ns, wifi_start_ns=grid.lookback_start_ns
                        )
                    report(label + " influx", "read, passby row by row", raw.n_events, m)
                    del raw
                finally:
                    server.stop()
    print("\nsize, phase, events, seconds, peak MiB")
    for row in rows:
        print(f"{row[0]}, {row[1]}, {row[2]}, {row[3]:.2f}, {row[4]:.0f}")


if __name__ == "__main__":
    main()
