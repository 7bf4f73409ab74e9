"""Detection at the right scale: the model input chosen from the people the camera shows.

A nano model finds people reliably once they are some 64 pixels tall at its input; a fixed
640-pixel input shrinks 1080p or 4K people below that, and blows 360p people up for nothing. So,
unless ``model.imgsz`` is set, the detector starts by *probing*: it runs on the whole picture at
the largest affordable input (``model.max_imgsz``, never above the camera's own resolution) until
it has seen enough people near the configured lines and zones. Then it plans:

* **crop**: the bounding box of the lines and zones, widened by the people's own height (a
  person whose feet touch a line has their head one height above it; a walker must be tracked a
  little before and after) and clipped to the picture. Detection runs on that crop only. The
  height is the one of tall people *at that edge*: a camera looking down a floor sees far people
  (higher in the picture) smaller, so a straight line is fitted to the height against the foot's
  row when the sightings span at least a person's height of rows; otherwise the tall tenth of all
  sightings stands for every row.
* **scale**: so that the smallest tenth of the people seen near the layout are ``person_px``
  tall at the model input; up-scaling is allowed (a 360p camera), the input's long side is capped
  by ``model.max_imgsz`` (the CPU's budget) and a multiple of the model stride.

The plan is logged once, with a warning when the cap leaves the smallest people far too small;
``model.imgsz`` overrides all of it (whole picture at that size).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from footfall.contracts.config import (
    PEOPLE_SIZE_MIN_BEATS,
    PERSON_PX_WARN_SHARE,
    CameraConfig,
    ConfigError,
    ModelConfig,
)
from footfall.edge.detector import STRIDE, Detections, fit_imgsz
from footfall.edge.linking import BOTTOM, LEFT, RIGHT, TOP, edges_within
from footfall.edge.sources import Frame

log = logging.getLogger(__name__)

# Planning waits for this many person sightings near the layout (a few frames of a busy scene)...
PROBE_SIGHTINGS = 12
# ... or, in a quiet scene, for this many after this long.
PROBE_MIN_SIGHTINGS, PROBE_PATIENCE_S = 3, 10.0
# The crop around the layout, in the height of the tallest people seen near it (90th percentile).
MARGIN_ABOVE, MARGIN_SIDES, MARGIN_BELOW = 1.5, 1.0, 0.5
# People whose feet are within this many of their heights of a line or zone are "near" it.
NEAR_LAYOUT_HEIGHTS = 1.5
# Never plan below the long side nano models are trained at: large people in a tight group lose
# their outlines first (TUD-Campus: 320 px lost 2 of 10 crossings that 640 px keeps).
MIN_INPUT = 640
# The planning rule's version: raise it when plan_input or the probe decides differently, so that
# plans kept by `edge run` (edge/plan_file.py) are made again after an update.
PLANNER_VERSION = 1
# The heartbeat's people size comes from the sightings since the previous beat, at most this many
# (the latest): a bounded memory for a crowd, and a 10th percentile as steady as the planner's.
REPORT_SIGHTINGS = 4096


@dataclass(frozen=True, slots=True)
class InputPlan:
    crop: tuple[int, int, int, int]  # x1, y1, x2, y2 in source pixels
    imgsz: tuple[int, int]  # (height, width) of the model input
    reason: str
    # Set when the CPU budget (model.max_imgsz) leaves the smallest people well below
    # model.person_px: what to tell the installer, logged as a warning at start-up.
    warning: str | None = None

    def describe(self, frame_size: tuple[int, int]) -> str:
        x1, y1, x2, y2 = self.crop
        pinned = self.pinned()
        return (
            f"detector input {self.imgsz[1]}x{self.imgsz[0]} on the crop ({x1},{y1})-({x2},{y2}) "
            f"of the {frame_size[0]}x{frame_size[1]} picture: {self.reason} "
            f"(to pin it in the camera file: model: {{imgsz: {pinned['imgsz']}, crop: {pinned['crop']}}})"
        )

    def pinned(self) -> dict[str, list[int]]:
        """The ``model`` settings that make a camera detect with this plan from its first frame."""
        return {"imgsz": list(self.imgsz), "crop": list(self.crop)}


@dataclass(frozen=True, slots=True)
class InputReport:
    """What a heartbeat says about the detector (contracts: ``HeartbeatEvent``)."""

    detector_input: str  # "WIDTHxHEIGHT" of the model input, or "probing"
    person_px: float | None  # the small people near the layout at that input (10th percentile)
    person_px_aim: int  # model.person_px


def layout_points(config: CameraConfig) -> NDArray[np.float64]:
    """Every configured line end and zone corner, ``(K, 2)``."""
    points = [p for line in config.lines for p in (line.start, line.end)]
    points += [p for zone in config.zones for p in zone.polygon]
    return np.asarray(points, dtype=np.float64).reshape(-1, 2)


def near_layout(
    config: CameraConfig, ground: NDArray[np.float64], heights: NDArray[np.float64]
) -> NDArray[np.bool_]:
    """Which people stand within NEAR_LAYOUT_HEIGHTS of a line or zone (all, without a layout)."""
    from footfall.edge.geometry import points_in_polygon

    if not config.lines and not config.zones:
        return np.ones(len(ground), bool)
    reach = NEAR_LAYOUT_HEIGHTS * heights
    near = np.zeros(len(ground), bool)
    for line in config.lines:
        near |= _distance_to_segment(ground, np.asarray(line.start), np.asarray(line.end)) <= reach
    for zone in config.zones:
        near |= points_in_polygon(ground, zone.polygon)
        corners = np.asarray(zone.polygon, dtype=np.float64)
        for a, b in zip(corners, np.roll(corners, -1, axis=0), strict=True):
            near |= _distance_to_segment(ground, a, b) <= reach
    return near


def _distance_to_segment(
    p: NDArray[np.float64], a: NDArray[np.float64], b: NDArray[np.float64]
) -> NDArray[np.float64]:
    ab = b - a
    u = np.clip(((p - a) @ ab) / max(float(ab @ ab), 1e-9), 0.0, 1.0)
    closest = a + u[:, None] * ab
    return np.asarray(np.hypot(*(p - closest).T))


def tall_heights_at(
    rows: NDArray[np.float64], heights: NDArray[np.float64], feet_y: NDArray[np.float64] | None
) -> NDArray[np.float64]:
    """The height of tall people (90th percentile) whose feet are on each of ``rows``.

    Perspective makes the height of people roughly linear in their foot's row; the fitted line is
    raised to the 90th percentile of what it leaves (tall people, not average ones) and kept within
    the 10th-90th percentile of all heights seen, so a fit on a few sightings never goes wild.
    """
    small, tall = np.percentile(heights, [10, 90])
    flat = np.full(len(rows), tall)
    if feet_y is None or len(heights) < PROBE_MIN_SIGHTINGS or np.ptp(feet_y) < np.median(heights):
        return flat
    slope, intercept = np.polyfit(feet_y, heights, 1)
    lift = np.percentile(heights - (intercept + slope * feet_y), 90)
    return np.asarray(np.clip(intercept + slope * rows + lift, small, tall), dtype=np.float64)


def plan_input(
    config: CameraConfig,
    frame_size: tuple[int, int],
    heights: NDArray[np.float64],
    feet_y: NDArray[np.float64] | None = None,
) -> InputPlan:
    """The crop and model input for people of ``heights`` (pixels), their feet on picture rows
    ``feet_y`` (when known), seen near the layout."""
    width, height = frame_size
    model = config.model
    small, tall = float(np.percentile(heights, 10)), float(np.percentile(heights, 90))
    crop, margins = (0, 0, width, height), ""
    if model.crop_to_layout and (config.lines or config.zones):
        pts = layout_points(config)
        top_y, bottom_y = pts[:, 1].min(), pts[:, 1].max()
        at_top, at_bottom = tall_heights_at(np.array([top_y, bottom_y]), heights, feet_y)
        crop = (
            max(0, math.floor(pts[:, 0].min() - MARGIN_SIDES * tall)),
            max(0, math.floor(top_y - MARGIN_ABOVE * at_top)),
            min(width, math.ceil(pts[:, 0].max() + MARGIN_SIDES * tall)),
            min(height, math.ceil(bottom_y + MARGIN_BELOW * at_bottom)),
        )
        margins = f"; tall people {at_top:.0f} px at the layout's top, {at_bottom:.0f} px at its bottom"
    crop_long = max(crop[2] - crop[0], crop[3] - crop[1])
    wanted = crop_long * model.person_px / small
    long_side = int(min(max(wanted, MIN_INPUT), model.max_imgsz))
    reach = small * long_side / crop_long
    reason = (
        f"people near the layout {small:.0f}-{tall:.0f} px (10th-90th percentile of {len(heights)}), "
        f"the smallest {reach:.0f} px at the input (aim {model.person_px}"
        + (f", capped by model.max_imgsz {model.max_imgsz})" if wanted > model.max_imgsz else ")")
        + margins
    )
    imgsz = fit_imgsz((crop[2] - crop[0], crop[3] - crop[1]), long_side)
    too_small = reach < PERSON_PX_WARN_SHARE * model.person_px
    return InputPlan(crop, imgsz, reason, _too_small_warning(model, reach) if too_small else None)


def _too_small_warning(model: ModelConfig, reach: float) -> str:
    return (
        f"the smallest people near the layout are {reach:.0f} px at the model input, well under the "
        f"{model.person_px} px the detector needs (model.person_px): model.max_imgsz {model.max_imgsz} "
        "caps the input, so far people may be missed. Lines and zones over a smaller part of the "
        "picture, or where people look larger, keep them large enough; a larger model.max_imgsz "
        "costs time"
    )


def probe_imgsz(config: CameraConfig, frame_size: tuple[int, int]) -> tuple[int, int]:
    """Input while probing: the whole picture, as large as the budget and the camera allow."""
    long_side = min(max(frame_size), config.model.max_imgsz)
    return fit_imgsz(frame_size, max(STRIDE, long_side))


Detect = Callable[[NDArray[np.uint8]], Detections]


@dataclass(slots=True)
class LayoutDetector:
    """Callable like a detector (a frame in, detections in picture pixels out) that probes,
    plans once, then detects on the planned crop at the planned size.

    ``make(imgsz)`` builds a detector for one input size (exported models are per size);
    ``on_plan`` hears of the plan the probe makes (``footfall edge run`` keeps it for the next start).
    """

    config: CameraConfig
    frame_size: tuple[int, int]
    make: Callable[[tuple[int, int]], Detect]
    plan: InputPlan | None = None
    on_plan: Callable[[InputPlan], None] | None = None
    _detect: Detect | None = None
    _heights: list[float] = field(default_factory=list)
    _feet_y: list[float] = field(default_factory=list)
    _probe_started_t: float | None = None
    # Heights (picture pixels) of the confident people near the layout since the last report.
    _recent: deque[float] = field(default_factory=lambda: deque(maxlen=REPORT_SIGHTINGS))
    # The same people's (height, feet row), the latest REPORT_SIGHTINGS: what a new plan is made
    # from when the people stay too small at the planned input (model.replan_after_s).
    _lately: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=REPORT_SIGHTINGS))
    # (time, people size as a share of the aim) of each report within model.replan_after_s.
    _shares: deque[tuple[float, float]] = field(default_factory=deque)
    _planned_t: float | None = None  # the first frame's time at the current plan
    _now: float = 0.0  # the latest frame's time

    def __post_init__(self) -> None:
        model = self.config.model
        if model.imgsz is None:
            return
        crop = model.crop or (0, 0, *self.frame_size)
        width, height = self.frame_size
        if crop[2] > width or crop[3] > height:
            origin = f"{model.source}: model.crop" if model.source else "model.crop"
            raise ConfigError(f"{origin}: {list(crop)} reaches beyond the {width}x{height} picture")
        area = (crop[2] - crop[0], crop[3] - crop[1])
        size = fit_imgsz(area, model.imgsz) if isinstance(model.imgsz, int) else model.imgsz
        reason = "model.imgsz and model.crop are set" if model.crop else "model.imgsz is set"
        self.adopt(InputPlan(crop, size, reason))

    @property
    def watched(self) -> tuple[int, int, int, int] | None:
        """The part of the picture people are looked for in (None: all of it, while probing)."""
        return self.plan.crop if self.plan is not None else None

    def __call__(self, frame: Frame) -> Detections:
        image = frame.image
        if image is None:
            raise ValueError("LayoutDetector needs a picture")
        self._now = frame.t
        if self.plan is not None and self._detect is not None:
            if self._planned_t is None:
                self._planned_t = frame.t
            x1, y1, x2, y2 = self.plan.crop
            found = _shifted(self._detect(image[y1:y2, x1:x2]), x1, y1)
            self._note(found.select(~_cut_by_crop(found.xyxy, self.plan.crop, self.frame_size)))
            return found
        return self._probe(image, frame.t)

    def _note(self, found: Detections) -> Detections:
        """Keep the confident people near the layout in ``found`` for the reports and a re-plan."""
        near = self._near(found)
        self._recent.extend(near.heights.tolist())
        self._lately.extend(zip(near.heights.tolist(), near.ground[:, 1].tolist(), strict=True))
        return near

    def report(self) -> InputReport:
        """The input now and how tall the people seen near the layout since the last report were
        at it; starts the next report's sightings afresh."""
        if self.plan is None:
            size, area = probe_imgsz(self.config, self.frame_size), self.frame_size
        else:
            x1, y1, x2, y2 = self.plan.crop
            size, area = self.plan.imgsz, (x2 - x1, y2 - y1)
        # A model exported at a fixed input runs at its own size whatever was planned.
        size = getattr(self._detect, "imgsz", size)
        label = "probing" if self.plan is None else f"{size[1]}x{size[0]}"
        scale = min(size[1] / area[0], size[0] / area[1])  # the letterbox's
        small = round(float(np.percentile(self._recent, 10)) * scale, 1) if self._recent else None
        self._recent.clear()
        if small is not None and self.plan is not None:
            self._judge(small / self.config.model.person_px)
        return InputReport(label, small, self.config.model.person_px)

    def _judge(self, share: float) -> None:
        """Plan again when, for model.replan_after_s since the plan, the reports put the people
        near the layout under PERSON_PX_WARN_SHARE of the aim (their median, as the ops alert
        judges a camera, from at least PEOPLE_SIZE_MIN_BEATS reports that saw someone)."""
        window = self.config.model.replan_after_s
        if window <= 0 or self.config.model.imgsz is not None:
            return
        self._shares.append((self._now, share))
        while self._shares[0][0] < self._now - window:
            self._shares.popleft()
        if self._planned_t is None or self._now - self._planned_t < window:
            return
        median = float(np.median([s for _, s in self._shares]))
        if len(self._shares) >= PEOPLE_SIZE_MIN_BEATS and median < PERSON_PX_WARN_SHARE:
            self._replan(median, window)

    def _replan(self, median: float, window: float) -> None:
        """A new plan from the people seen lately; adopted (and kept, ``on_plan``) if it differs."""
        assert self.plan is not None
        heights, feet_y = (np.asarray(column) for column in zip(*self._lately, strict=True))
        plan = plan_input(self.config, self.frame_size, heights, feet_y)
        self._shares.clear()
        self._planned_t = self._now  # judged afresh over the next window
        where = f"{self.config.store}/{self.config.camera}"
        said = (
            f"people near the layout have been {median:.0%} of model.person_px at the detector's input "
            f"for {window:.0f} s (the median of the heartbeats' smallest tenth)"
        )
        if (plan.crop, plan.imgsz) == (self.plan.crop, self.plan.imgsz):
            log.warning(
                "%s: %s; planned again from the latest %d, the input stays: %s",
                where,
                said,
                len(heights),
                plan.warning or "the latest people are large enough at it",
            )
            return
        log.warning("%s: %s: planning the input again from the latest %d", where, said, len(heights))
        self.adopt(plan)
        if self.on_plan is not None:
            self.on_plan(plan)

    def _near(self, found: Detections) -> Detections:
        """The confident people near the layout in ``found``."""
        confident = found.select(found.conf >= self.config.model.conf)
        return confident.select(near_layout(self.config, confident.ground, confident.heights))

    def _probe(self, image: NDArray[np.uint8], t: float) -> Detections:
        if self._detect is None:
            self._detect = self.make(probe_imgsz(self.config, self.frame_size))
        if self._probe_started_t is None:
            self._probe_started_t = t
        found = self._detect(image)
        near = self._note(found)
        self._heights += near.heights.tolist()
        self._feet_y += near.ground[:, 1].tolist()
        waited = t - self._probe_started_t  # (a stream's clock starts at 0.0: not a missing value)
        enough = len(self._heights) >= PROBE_SIGHTINGS
        if enough or (waited >= PROBE_PATIENCE_S and len(self._heights) >= PROBE_MIN_SIGHTINGS):
            heights, feet_y = np.asarray(self._heights), np.asarray(self._feet_y)
            plan = plan_input(self.config, self.frame_size, heights, feet_y)
            self.adopt(plan)
            if self.on_plan is not None:
                self.on_plan(plan)
        return found

    def adopt(self, plan: InputPlan) -> None:
        """Detect with ``plan`` from now on (a benchmark may hand one over instead of probing)."""
        self.plan, self._planned_t = plan, None
        log.info("%s/%s: %s", self.config.store, self.config.camera, plan.describe(self.frame_size))
        if plan.warning is not None:
            log.warning("%s/%s: %s", self.config.store, self.config.camera, plan.warning)
        self._detect = self.make(plan.imgsz)


def _cut_by_crop(
    xyxy: NDArray[np.float64], crop: tuple[int, int, int, int], frame_size: tuple[int, int]
) -> NDArray[np.bool_]:
    """Boxes that reach an edge of the crop lying inside the picture: the crop cut them (someone
    walking out of it), so their height is not the person's."""
    x1, y1, x2, y2 = crop
    inner = (LEFT if x1 > 0 else 0) | (TOP if y1 > 0 else 0)
    inner |= (RIGHT if x2 < frame_size[0] else 0) | (BOTTOM if y2 < frame_size[1] else 0)
    return np.asarray(edges_within(xyxy, crop, 1.0) & inner != 0)


def _shifted(found: Detections, dx: int, dy: int) -> Detections:
    if dx == 0 and dy == 0:
        return found
    offset = np.array([dx, dy, dx, dy], dtype=np.float64)
    return Detections(found.xyxy + offset, found.conf, found.ground + offset[:2])
