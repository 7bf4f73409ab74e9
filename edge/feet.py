"""Where a tracked person's feet are when the detector's box does not reach them.

Crossings and visits are decided on the ground point: the box's bottom-centre (or the ankles, for
pose models). When someone nearer the camera hides a person's legs, the detector boxes only what it
sees: the upper body, whose bottom lies a third to half a height above the feet (median 0.32-0.43 of
the annotated height on the dev clips), so the person seems to walk beyond a line's end or outside a
zone. The head is still where it was, and the feet are one full height below it: the person's
height from their last full view.

A short box alone is not enough: detectors' boxes also shrink and grow by a fifth from one frame to
the next on small people. Only a box whose missing legs lie behind another person's box, one that
ends nearer the camera, is taken for hidden legs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]

# A full view is trusted this long: a walker's height changes little with perspective in 2 s, and
# an occlusion that lasts longer usually breaks the track anyway.
HOLD_S = 2.0
# A box shorter than this share of the person's full height may be missing its legs ...
SHORT = 0.8
# ... if its top is within this share of the full height of where the head was (someone who sits
# down or bends over lowers their head too).
HEAD_STILL = 0.2


@dataclass(frozen=True, slots=True)
class FullView:
    """The last box that showed a person from head to feet."""

    frame: int
    top: float
    height: float


class HiddenLegs:
    """Per track, the last full view; ``feet`` corrects the ground points of boxes cut short."""

    def __init__(self, fps: float) -> None:
        self.hold_frames = max(1, round(HOLD_S * fps))
        self._full: dict[int, FullView] = {}

    def __len__(self) -> int:
        return len(self._full)

    def feet(self, ids: list[int], boxes: Array, ground: Array, frame: int, everyone: Array) -> Array:
        """The ground points of the tracked people ``ids`` (their matched ``boxes`` and ``ground``
        points) on tracker frame ``frame``; ``everyone`` is all of this frame's detections."""
        feet = np.array(ground, dtype=np.float64, copy=True)
        for k, (person, box) in enumerate(zip(ids, boxes, strict=True)):
            full = self._full.get(person)
            if full is not None and frame - full.frame > self.hold_frames:
                full = None
            hidden = _hidden_feet(box, feet[k], full, everyone)
            if hidden is not None:
                feet[k, 1] = hidden
            elif full is None or box[3] - box[1] >= SHORT * full.height:
                self._full[person] = FullView(frame, float(box[1]), float(box[3] - box[1]))
        live = set(ids)
        self._full = {i: v for i, v in self._full.items() if i in live or frame - v.frame <= self.hold_frames}
        return feet


def _hidden_feet(box: Array, ground: Array, full: FullView | None, everyone: Array) -> float | None:
    """The row of the feet, when ``box`` is a person's upper body with the legs behind someone."""
    if full is None or ground[1] < box[3] - 1:  # no full view yet, or a pose model saw the ankles
        return None
    top, height = float(box[1]), float(box[3] - box[1])
    if height >= SHORT * full.height or abs(top - full.top) > HEAD_STILL * full.height:
        return None
    feet_y = top + full.height
    x = (box[0] + box[2]) / 2
    # someone whose box spans the hidden legs at this person's centre and ends nearer the camera
    across = (everyone[:, 0] <= x) & (x <= everyone[:, 2])
    in_front = across & (everyone[:, 1] <= feet_y) & (everyone[:, 3] > box[3] + 1)
    return feet_y if bool(in_front.any()) else None
