"""A camera's planned detector input, kept on disk so that a restart detects as before.

Without ``model.imgsz`` a camera plans its crop and model input from the people it sees first
(edge/scale.py), so who is in view at start-up decides the plan: started at five moments of
Venice-2, its camera planned inputs 1024-1280 px wide and counted its lines 9-18 % off
(docs/accuracy.md, "When the camera starts"). A store's counts should not change character at
every restart (a power cut, an update), nor should each start spend its first seconds probing at
the largest input. So ``footfall edge run`` writes each camera's plan to a small JSON file beside
its queue and detects with it from the first frame of the next start, as long as nothing the plan
was made from has changed: the picture's size, the lines and zones, the model settings the plan
follows (``person_px``, ``max_imgsz``, ``crop_to_layout``, ``conf``) and the planning rule's
version (an update that plans differently plans again). A change to any of them (a line moved, a
camera switched to 4K), ``--replan`` (which deletes the file) or a deleted file plans again.

The file is a cache, never a source of truth: one that cannot be read is logged and planned over.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from footfall.contracts.config import CameraConfig
from footfall.edge.detector import STRIDE
from footfall.edge.scale import PLANNER_VERSION, InputPlan

log = logging.getLogger(__name__)

FORMAT = 1


def planned_from(config: CameraConfig, frame_size: tuple[int, int]) -> dict[str, Any]:
    """Everything a plan depends on besides the people seen (the file's key, kept readable so
    the log can say what changed)."""
    model = config.model
    return {
        "planner": PLANNER_VERSION,
        "frame_size": list(frame_size),
        "lines": [[list(line.start), list(line.end)] for line in config.lines],
        "zones": [[list(p) for p in zone.polygon] for zone in config.zones],
        "person_px": model.person_px,
        "max_imgsz": model.max_imgsz,
        "crop_to_layout": model.crop_to_layout,
        "conf": model.conf,
    }


@dataclass(frozen=True, slots=True)
class PlanFile:
    """Where one camera's plan is kept; ``replan`` deletes what is there and plans afresh."""

    path: Path
    replan: bool = False

    @classmethod
    def beside(cls, folder: Path, store: str, camera: str, replan: bool = False) -> PlanFile:
        return cls(folder / f"plan-{store}-{camera}.json", replan)

    def load(self, config: CameraConfig, frame_size: tuple[int, int]) -> InputPlan | None:
        """The kept plan, if it was made for this camera as it is configured now."""
        if self.replan:
            # Deleted, not only ignored: a start that ends before it plans must not leave the
            # old plan for the next one.
            self.path.unlink(missing_ok=True)
            log.info("%s: planning afresh (--replan)", self.path)
            return None
        if not self.path.exists():
            return None
        try:
            key, plan = self._read()
            changed = _changes(key, planned_from(config, frame_size))
            if not changed:
                _check_fits(plan, frame_size, config.model.max_imgsz)
        except Exception as exc:  # a cache: whatever is wrong with it, the camera plans anew
            log.warning("%s: cannot use the kept plan (%s); planning again", self.path, exc)
            return None
        if changed:
            log.info("%s: planned for a different %s; planning again", self.path, " and ".join(changed))
            return None
        return plan

    def _read(self) -> tuple[Any, InputPlan]:
        kept = json.loads(self.path.read_text(encoding="utf-8"))
        if not isinstance(kept, dict) or kept.get("format") != FORMAT:
            raise ValueError(f"not a plan of format {FORMAT}")
        x1, y1, x2, y2 = _whole_numbers(kept["crop"], 4)
        height, width = _whole_numbers(kept["imgsz"], 2)
        if not (0 <= x1 < x2 and 0 <= y1 < y2 and height > 0 and width > 0):
            raise ValueError(f"crop {kept['crop']} or input {kept['imgsz']} is not a box")
        warning = kept.get("warning")
        if warning is not None and not isinstance(warning, str):
            raise ValueError(f"warning {warning!r} is not text")
        reason = f"kept from {kept['planned_at']} in {self.path}: {kept['reason']}"
        return kept["planned_from"], InputPlan((x1, y1, x2, y2), (height, width), reason, warning)

    def save(self, config: CameraConfig, frame_size: tuple[int, int], plan: InputPlan) -> None:
        """Keep ``plan`` for the next start (written whole or not at all)."""
        kept = {
            "format": FORMAT,
            "planned_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "planned_from": planned_from(config, frame_size),
            **plan.pinned(),  # the same two settings that pin a plan in a camera file
            "reason": plan.reason,
            "warning": plan.warning,
        }
        partial = self.path.with_name(self.path.name + ".partial")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with partial.open("w", encoding="utf-8") as out:
                out.write(json.dumps(kept, indent=1) + "\n")
                out.flush()
                os.fsync(out.fileno())  # a power cut is when the next start needs it
            os.replace(partial, self.path)
        except OSError as exc:  # counting goes on; the next start plans again
            log.warning("%s: cannot keep the plan (%s)", self.path, exc)


def _whole_numbers(values: Any, n: int) -> list[int]:
    if not isinstance(values, list) or len(values) != n or any(type(v) is not int for v in values):
        raise ValueError(f"{values!r} is not {n} whole numbers")
    return values


def _changes(key: Any, now: dict[str, Any]) -> list[str]:
    """What differs between the kept plan's key and the camera as configured now."""
    if not isinstance(key, dict):
        raise ValueError("planned_from is not a mapping")
    names = {"frame_size": "picture size", "lines": "lines", "zones": "zones", "planner": "planning rule"}
    return [names.get(k, f"model.{k}") for k in now if key.get(k) != now[k]]


def _check_fits(plan: InputPlan, frame_size: tuple[int, int], max_imgsz: int) -> None:
    """A plan for this camera that was edited by hand into one it cannot run raises ValueError."""
    width, height = frame_size
    if plan.crop[2] > width or plan.crop[3] > height:
        raise ValueError(f"crop {list(plan.crop)} reaches beyond the {width}x{height} picture")
    if any(side % STRIDE for side in plan.imgsz) or max(plan.imgsz) > max_imgsz + STRIDE:
        raise ValueError(f"input {list(plan.imgsz)} is not in steps of {STRIDE} up to model.max_imgsz")
