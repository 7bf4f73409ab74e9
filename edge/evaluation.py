"""Accuracy audit: counted crossings against ground-truth crossings, per line and direction.

Counts are compared per (line, direction); events are matched one-to-one (same line and
direction, nearest in time, within ``tolerance_s``) for precision and recall.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from footfall.contracts.config import LineConfig
from footfall.edge.counting import Crossing


@dataclass(frozen=True, slots=True)
class LineScore:
    line: str
    direction: str
    truth: int
    counted: int

    @property
    def error(self) -> int:
        return self.counted - self.truth


@dataclass(frozen=True, slots=True)
class Report:
    rows: list[LineScore]
    matched: int
    truth_events: int
    counted_events: int

    @property
    def truth_total(self) -> int:
        return sum(r.truth for r in self.rows)

    @property
    def abs_error(self) -> int:
        return sum(abs(r.error) for r in self.rows)

    @property
    def relative_error(self) -> float:
        """Summed |counted - truth| over lines and directions, as a fraction of all true crossings."""
        return self.abs_error / self.truth_total if self.truth_total else float(self.abs_error > 0)

    @property
    def precision(self) -> float:
        return self.matched / self.counted_events if self.counted_events else 1.0

    @property
    def recall(self) -> float:
        return self.matched / self.truth_events if self.truth_events else 1.0


def match_events(truth: Sequence[Crossing], counted: Sequence[Crossing], tolerance_s: float) -> int:
    """Greedy one-to-one matching by time within each (line, direction); returns the matches."""
    matched = 0
    keys = {(c.line, c.direction) for c in truth} | {(c.line, c.direction) for c in counted}
    for key in keys:
        free = sorted(c.t for c in counted if (c.line, c.direction) == key)
        for t in sorted(c.t for c in truth if (c.line, c.direction) == key):
            best = min(range(len(free)), key=lambda i: abs(free[i] - t), default=None)
            if best is not None and abs(free[best] - t) <= tolerance_s:
                free.pop(best)
                matched += 1
    return matched


def evaluate(
    lines: Iterable[LineConfig],
    truth: Sequence[Crossing],
    counted: Sequence[Crossing],
    tolerance_s: float = 1.0,
) -> Report:
    true_n = Tally((c.line, c.direction) for c in truth)
    counted_n = Tally((c.line, c.direction) for c in counted)
    rows = [
        LineScore(line.name, direction, true_n[(line.name, direction)], counted_n[(line.name, direction)])
        for line in lines
        for direction in ("in", "out")
    ]
    return Report(rows, match_events(truth, counted, tolerance_s), len(truth), len(counted))
