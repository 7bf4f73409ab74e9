"""A camera's planned detector input, kept on disk so that a restart detects as before.

Without ``model.imgsz`` a camera plans its crop and model input from the people it sees first
(edge/scale.py), so who is in view at start-up decides the plan: started at five moments of
Venice-2, its camera planned inputs 1024-1280 px wide and counted its lines 9-18 % off
(docs/accuracy.md, "When the camera starts"). A store's counts should not change character at
every restart (a power cut, an update), nor should each start spend its first seconds probing at
the largest input. So ``footfall edge run`` writes each camera's plan to a small JSON file beside
its queue and detects with it from the first frame of the next start, as long as nothing the plan
was made from has changed: the picture's size, the lines and zones, and the model settings the
plan follows (``person_px``, ``max_imgsz``, ``crop_to_layout``). A change to any of them (a line
moved, a camera switched to 4K), ``--replan``, or a deleted file plans again and replaces the file.

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
from footfall.edge.scale import InputPlan

log = logging.getLogger(__name__)

FORMAT = 1


def planned_from(config: CameraConfig, frame_size: tuple[int, int]) -> dict[str, Any]:
    """Everything a plan depends on besides the people seen (the file's key, kept readable so
    the log can say what changed)."""
    model = config.model
    return {
        "frame_size": list(frame_size),
        "lines": [[list(line.start), list(line.end)] for line in config.lines],
        "zones": [[list(p) for p in zone.polygon] for zone in config.zones],
        "person_px": model.person_px,
        "max_imgsz": model.max_imgsz,
        "crop_to_layout": model.crop_to_layout,
    }


@dataclass(frozen=True, slots=True)
class PlanFile:
    """Where one camera's plan is kept; ``replan`` ignores what is there (and replaces it)."""

    path: Path
    replan: bool = False

    @classmethod
    def beside(cls, folder: Path, store: str, camera: str, replan: bool = False) -> PlanFile:
        return cls(folder / f"plan-{store}-{camera}.json", replan)

    def load(self, config: CameraConfig, frame_size: tuple[int, int]) -> InputPlan | None:
        """The kept plan, if it was made for this camera as it is configured now."""
        if self.replan or not self.path.exists():
            return None
        try:
            key, plan = self._read()
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            log.warning("%s: cannot read the kept plan (%s); planning again", self.path, exc)
            return None
        changed = _changes(key, planned_from(config, frame_size))
        if changed:
            log.info("%s: planned for another %s; planning again", self.path, " and ".join(changed))
            return None
        if plan.crop[2] > frame_size[0] or plan.crop[3] > frame_size[1]:  # edited by hand
            log.warning("%s: crop %s reaches beyond the picture; planning again", self.path, list(plan.crop))
            return None
        return plan

    def _read(self) -> tuple[Any, InputPlan]:
        kept = json.loads(self.path.read_text(encoding="utf-8"))
        if not isinstance(kept, dict) or kept.get("format") != FORMAT:
            raise ValueError(f"not a plan of format {FORMAT}")
        x1, y1, x2, y2 = (int(v) for v in kept["crop"])
        height, width = (int(v) for v in kept["imgsz"])
        if not (0 <= x1 < x2 and 0 <= y1 < y2 and height > 0 and width > 0):
            raise ValueError(f"crop {kept['crop']} or input {kept['imgsz']} is not a box")
        reason = f"kept from {kept['planned_at']} in {self.path}: {kept['reason']}"
        return kept["planned_from"], InputPlan((x1, y1, x2, y2), (height, width), reason, kept.get("warning"))

    def save(self, config: CameraConfig, frame_size: tuple[int, int], plan: InputPlan) -> None:
        """Keep ``plan`` for the next start (written whole or not at all)."""
        kept = {
            "format": FORMAT,
            "planned_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "planned_from": planned_from(config, frame_size),
            "crop": list(plan.crop),
            "imgsz": list(plan.imgsz),
            "reason": plan.reason,
            "warning": plan.warning,
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_name(self.path.name + ".partial")
            partial.write_text(json.dumps(kept, indent=1) + "\n", encoding="utf-8")
            os.replace(partial, self.path)
        except OSError as exc:  # counting goes on; the next start plans again
            log.warning("%s: cannot keep the plan (%s)", self.path, exc)


def _changes(kept: Any, now: dict[str, Any]) -> list[str]:
    """The names of what differs between the kept plan's key and the camera's (all of it when the
    key is not a mapping)."""
    if not isinstance(kept, dict):
        return ["configuration"]
    names = {"frame_size": "picture size", "lines": "lines", "zones": "zones"}
    return [names.get(k, f"model.{k}") for k in now if kept.get(k) != now[k]]
