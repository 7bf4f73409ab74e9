"""Ingest's per-event work in one process: message -> line protocol, contract path vs fast path.

The contract path is ``parse_batch`` (pydantic) + ``event_to_line``; the fast path is
``contracts.fastpath.batch_lines`` (msgspec structs derived from the same models), which ingest tries
first. Both run on the same batch messages (the benchmark mix of tests: crossings, zone visits,
occupancy; 500 events per message as the edge sends its backlog), alternating, best of ``--rounds``.
Prints µs per event for each and the ratio. Not part of the test suite.

    .venv/bin/python bench/ingest_validation.py --events 200000
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.ingest_throughput import make_events  # noqa: E402
from footfall.contracts.events import batch_payload, batch_topic, parse_batch  # noqa: E402
from footfall.contracts.fastpath import batch_lines  # noqa: E402
from footfall.contracts.measurements import event_to_line  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--per-message", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    by_device: dict[tuple[str, str], list[bytes]] = defaultdict(list)
    for event in make_events(args.events):
        by_device[event.store, event.device].append(event.to_json().encode())
    messages = [
        (batch_topic(store, device), batch_payload(events[i : i + args.per_message]))
        for (store, device), events in by_device.items()
        for i in range(0, len(events), args.per_message)
    ]
    now = datetime.now(UTC)

    def contract() -> list[str]:
        lines: list[str] = []
        for topic, payload in messages:
            events, rejected = parse_batch(payload, topic=topic, now=now)
            assert not rejected
            lines += [event_to_line(e) for e in events]
        return lines

    def fast() -> list[str]:
        lines: list[str] = []
        for topic, payload in messages:
            batch = batch_lines(payload, topic=topic, now=now)
            assert batch is not None, "a valid message missed the fast path"
            lines += batch
        return lines

    assert fast() == contract(), "the two paths disagree"
    best: dict[str, float] = {}
    paths: dict[str, Callable[[], list[str]]] = {"contract": contract, "fast": fast}
    for _ in range(args.rounds):
        for name, path in paths.items():
            start = time.perf_counter()
            path()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
    print(f"events: {args.events:,} in {len(messages)} batch messages of up to {args.per_message}")
    for name in paths:
        print(f"{name:9} {best[name] / args.events * 1e6:6.2f} µs per event (best of {args.rounds})")
    print(f"speed-up  {best['contract'] / best['fast']:.2f}x (contract time / fast time)")


if __name__ == "__main__":
    main()
